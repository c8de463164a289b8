//! The seed's walkthroughs with real packets: network namespaces for a
//! client, a director and two real servers (documentation addresses),
//! real HTTP servers answering `RS1-web1` / `RS2-web2`, rvsd in the
//! director namespace, the seed's `ipvsadm` commands through an
//! `ipvsadm` symlink to rvsadm, and curl from the client. Everything is
//! printed like a shell transcript (`[namespace]# command`, then its
//! output), and everything is removed at the end, on an error, or on
//! Ctrl-C (the namespaces and their processes belong to guards that
//! clean up when dropped; SIGINT/SIGTERM only raise a flag checked
//! between steps).

use anyhow::{bail, Context, Result};
use rvs_testnet::{DrTopology, NatTopology, Netns, Rvsd, TunTopology, DR_VIP, NAT_VIP, TUN_VIP};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which walkthrough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nat,
    Dr,
    Tun,
}

/// Where the rvs binaries are.
#[derive(Debug, Clone)]
pub struct Bins {
    pub rvsd: PathBuf,
    pub rvsadm: PathBuf,
    pub realserver: PathBuf,
}

impl Bins {
    /// The binaries in directory `dir` (where cargo puts them).
    pub fn in_dir(dir: &Path) -> Result<Bins> {
        let b = Bins {
            rvsd: dir.join("rvsd"),
            rvsadm: dir.join("rvsadm"),
            realserver: dir.join("rvs-realserver"),
        };
        for p in [&b.rvsd, &b.rvsadm, &b.realserver] {
            if !p.exists() {
                bail!(
                    "{} is missing: build it first (cargo build -p rvsd -p rvsadm -p rvs-realserver)",
                    p.display()
                );
            }
        }
        Ok(b)
    }
}

/// Prints and runs commands; stops at the next step once interrupted.
struct Shell {
    interrupted: Arc<AtomicBool>,
    /// `PATH` with the `ipvsadm` and `rvs-realserver` links first.
    path: String,
    socket: String,
    run_dir: String,
}

impl Shell {
    fn check(&self) -> Result<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        Ok(())
    }

    fn note(&self, text: &str) {
        println!("\n# {text}");
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("PATH", self.path.as_str()),
            ("RVS_SOCKET", self.socket.as_str()),
            ("RVS_RUN_DIR", self.run_dir.as_str()),
        ]
    }

    /// Show `[label]# line`, run it in `ns` (split on whitespace), show
    /// its output. Returns its stdout; an error if it failed and
    /// `must` is set.
    fn run(&self, ns: &Netns, label: &str, line: &str, input: Option<&[u8]>) -> Result<String> {
        self.check()?;
        let shown = match input {
            Some(_) => format!("{line} < rules.save"),
            None => line.to_string(),
        };
        println!("[{label}]# {shown}");
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = match input {
            Some(bytes) => ns.output_with_input(&args, &self.env(), bytes),
            None => ns.output(&args, &self.env()),
        }
        .with_context(|| format!("run {line}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            println!("(exit {})", out.status.code().unwrap_or(-1));
            self.check()?;
            bail!("`{line}` failed");
        }
        Ok(stdout)
    }

    fn curls(&self, client: &Netns, vip: Ipv4Addr, n: usize) -> Result<()> {
        for _ in 0..n {
            self.check()?;
            let url = format!("http://{vip}/");
            println!("[client]# curl -sS --noproxy '*' --max-time 5 {url}");
            let args = ["curl", "-sS", "--noproxy", "*", "--max-time", "5", &url];
            let out = client.output(&args, &[])?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Wait (quietly, at most 3 s) until every connection of the last
    /// curls is finished as far as the director can tell, so a listing
    /// shows them in InActConn.
    fn settle(&self, d: &Rvsd<'_>) {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !self.interrupted.load(Ordering::Relaxed) {
            let busy = d.ipvsadm("-L -n").ok().is_some_and(|t| {
                t.lines()
                    .filter(|l| l.trim_start().starts_with("->"))
                    .filter_map(|l| l.split_whitespace().nth(4))
                    .any(|active| active != "0" && active != "ActiveConn")
            });
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Run the walkthrough of `mode`.
pub fn run(mode: Mode, bins: &Bins) -> Result<()> {
    if !rvs_testnet::is_root() {
        bail!("the network-namespace demo needs root; `./scripts/demo.sh --engine` runs the walkthrough without it");
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .context("cannot handle Ctrl-C")?;
    }
    let links = tempdir()?;
    let result = (|| -> Result<()> {
        std::os::unix::fs::symlink(&bins.rvsadm, links.0.join("ipvsadm"))?;
        std::os::unix::fs::symlink(&bins.realserver, links.0.join("rvs-realserver"))?;
        let path = format!(
            "{}:{}",
            links.0.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let shell = |dir: &Path| Shell {
            interrupted: Arc::clone(&interrupted),
            path: path.clone(),
            socket: dir.join("rvsd.sock").to_string_lossy().to_string(),
            run_dir: dir.to_string_lossy().to_string(),
        };
        match mode {
            Mode::Nat => {
                println!(
                    "# Building the LVS-NAT network: namespaces client, director, rs1, rs2 ..."
                );
                let topo = NatTopology::create("rvsdemo").context("build the NAT network")?;
                nat(&shell(&topo.dir), &topo, bins)
            }
            Mode::Dr => {
                println!("# Building the LVS-DR network: namespaces sw (bridge), client, director, rs1, rs2 ...");
                let topo = DrTopology::create("rvsdemo").context("build the DR network")?;
                dr(&shell(&topo.dir), &topo, bins)
            }
            Mode::Tun => {
                println!("# Building the LVS-TUN network: namespaces sw (bridge), router, client, director, rs1, rs2 ...");
                let topo = TunTopology::create("rvsdemo").context("build the TUN network")?;
                tun(&shell(&topo.dir), &topo, bins)
            }
        }
    })();
    println!("\n# Cleaning up: rvsd stopped, namespaces and their processes removed.");
    result
}

/// A private directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> Result<TempDir> {
    let p = std::env::temp_dir().join(format!("rvs-demo-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(TempDir(p))
}

fn start_rvsd<'a>(sh: &Shell, ns: &'a Netns, dir: &Path, bins: &Bins) -> Result<Rvsd<'a>> {
    sh.check()?;
    let d = Rvsd::start(ns, &bins.rvsd, &bins.rvsadm, dir, &[]).context("start rvsd")?;
    println!(
        "# rvsd is running in the director namespace (pid {}); ipvsadm is a symlink to rvsadm.",
        d.pid.pid
    );
    Ok(d)
}

fn stop_rvsd(sh: &Shell, d: &Rvsd<'_>) {
    if let Some(status) = d.stop(Duration::from_secs(5)) {
        if !sh.interrupted.load(Ordering::Relaxed) {
            println!("\n# rvsd stopped ({status}); its netfilter rules are gone.");
        }
    }
}

fn nat(sh: &Shell, topo: &NatTopology, bins: &Bins) -> Result<()> {
    println!(
        "# LVS-NAT: client 198.51.100.2; director VIP 198.51.100.10 (eth0), DIP 203.0.113.1 (br0);\n\
         # real servers 203.0.113.11 (RS1-web1) and 203.0.113.12 (RS2-web2), gateway = DIP"
    );
    let d = start_rvsd(sh, &topo.director, &topo.dir, bins)?;
    let dir = &topo.director;
    let r = (|| -> Result<()> {
        sh.run(dir, "director", "sysctl -w net.ipv4.ip_forward=1", None)?;
        sh.run(
            dir,
            "director",
            "ipvsadm -A -t 198.51.100.10:80 -s rr",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -a -t 198.51.100.10:80 -r 203.0.113.11 -m",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -a -t 198.51.100.10:80 -r 203.0.113.12 -m",
            None,
        )?;
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        d.wait_steering(1, 2).context("steering rules")?;
        sh.note("Round robin: four requests alternate, the last real server added first");
        sh.curls(&topo.client, NAT_VIP, 4)?;
        sh.settle(&d);
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        sh.note("Weighted round robin, RS1 weight 3, RS2 weight 1");
        sh.run(
            dir,
            "director",
            "ipvsadm -E -t 198.51.100.10:80 -s wrr",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -e -t 198.51.100.10:80 -r 203.0.113.11 -m -w 3",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -e -t 198.51.100.10:80 -r 203.0.113.12 -m -w 1",
            None,
        )?;
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        sh.curls(&topo.client, NAT_VIP, 8)?;
        sh.settle(&d);
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        sh.run(dir, "director", "ipvsadm -L -n --stats", None)?;
        sh.run(dir, "director", "ipvsadm -L -c -n", None)?;
        sh.note("Save, clear, restore");
        let saved = sh.run(dir, "director", "ipvsadm -S -n", None)?;
        std::fs::write(topo.dir.join("rules.save"), &saved)?;
        sh.run(dir, "director", "ipvsadm -C", None)?;
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        sh.run(dir, "director", "ipvsadm -R", Some(saved.as_bytes()))?;
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        Ok(())
    })();
    stop_rvsd(sh, &d);
    r
}

fn realservers(sh: &Shell, rss: [&Netns; 2], mode: &str) -> Result<()> {
    for (rs, label) in rss.into_iter().zip(["rs1", "rs2"]) {
        sh.run(
            rs,
            label,
            &format!("rvs-realserver start --vip 198.51.100.10 --mode {mode}"),
            None,
        )?;
    }
    sh.run(rss[0], "rs1", "ip -br addr show lo", None)?;
    Ok(())
}

fn dr(sh: &Shell, topo: &DrTopology, bins: &Bins) -> Result<()> {
    println!(
        "# LVS-DR: one L2 segment 198.51.100.0/24: client .2, director .1 with VIP .10 on eth0,\n\
         # real servers .11 (RS1-web1) and .12 (RS2-web2) with the VIP on lo"
    );
    sh.note("Real servers: VIP on lo, ARP hidden (the seed's real-server script)");
    realservers(sh, [&topo.rs1, &topo.rs2], "dr")?;
    let d = start_rvsd(sh, &topo.director, &topo.dir, bins)?;
    let dir = &topo.director;
    let r = (|| -> Result<()> {
        sh.run(
            dir,
            "director",
            "ipvsadm -A -t 198.51.100.10:80 -s wlc",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -a -t 198.51.100.10:80 -r 198.51.100.11 -g -w 2",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -a -t 198.51.100.10:80 -r 198.51.100.12 -g -w 1",
            None,
        )?;
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        d.wait_steering(1, 0).context("steering rules")?;
        sh.note("Weighted least-connection 2:1; replies go from the real servers straight to the client");
        sh.curls(&topo.client, DR_VIP, 9)?;
        sh.settle(&d);
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        sh.note("The director sees only client -> server packets: finished connections wait in FIN_WAIT");
        sh.run(dir, "director", "ipvsadm -L -c -n", None)?;
        sh.run(dir, "director", "ipvsadm -L -n --stats", None)?;
        Ok(())
    })();
    stop_rvsd(sh, &d);
    r?;
    sh.run(&topo.rs1, "rs1", "rvs-realserver stop", None)?;
    sh.run(&topo.rs2, "rs2", "rvs-realserver stop", None)?;
    Ok(())
}

fn tun(sh: &Shell, topo: &TunTopology, bins: &Bins) -> Result<()> {
    println!(
        "# LVS-TUN: client .2 and director .1 (VIP .10) on 198.51.100.0/24; real servers\n\
         # 203.0.113.11 (RS1-web1) and .12 (RS2-web2) behind a router (.254); IPIP from the director"
    );
    sh.note(
        "Real servers: VIP on lo, ARP hidden, IPIP decapsulator (this kernel has no ipip module)",
    );
    realservers(sh, [&topo.rs1, &topo.rs2], "tun")?;
    sh.run(&topo.rs1, "rs1", "rvs-realserver status", None)?;
    let d = start_rvsd(sh, &topo.director, &topo.dir, bins)?;
    let dir = &topo.director;
    let r = (|| -> Result<()> {
        sh.run(
            dir,
            "director",
            "ipvsadm -A -t 198.51.100.10:80 -s rr",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -a -t 198.51.100.10:80 -r 203.0.113.11 -i",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -a -t 198.51.100.10:80 -r 203.0.113.12 -i",
            None,
        )?;
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        d.wait_steering(1, 0).context("steering rules")?;
        sh.curls(&topo.client, TUN_VIP, 6)?;
        sh.settle(&d);
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        sh.note(
            "OutPkts stay 0: replies go from the real servers to the client through the router",
        );
        sh.run(dir, "director", "ipvsadm -L -n --stats", None)?;
        sh.run(dir, "director", "ipvsadm -S -n", None)?;
        sh.note("Weighted round robin 3:1");
        sh.run(
            dir,
            "director",
            "ipvsadm -E -t 198.51.100.10:80 -s wrr",
            None,
        )?;
        sh.run(
            dir,
            "director",
            "ipvsadm -e -t 198.51.100.10:80 -r 203.0.113.11 -i -w 3",
            None,
        )?;
        sh.curls(&topo.client, TUN_VIP, 8)?;
        sh.settle(&d);
        sh.run(dir, "director", "ipvsadm -L -n", None)?;
        Ok(())
    })();
    stop_rvsd(sh, &d);
    r?;
    sh.run(&topo.rs1, "rs1", "rvs-realserver stop", None)?;
    sh.run(&topo.rs2, "rs2", "rvs-realserver stop", None)?;
    Ok(())
}
