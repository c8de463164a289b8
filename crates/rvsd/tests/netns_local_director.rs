//! End-to-end: the director service script `dist/rvs-director` runs the
//! seed's director workflow (`start|status|stop`) inside a director
//! namespace, every path overridden through the environment.
//!
//! 1. `start` with a configuration whose `rules` function is the seed's
//!    NAT recipe: forwarding on, the VIP up on eth0, rvsd started by the
//!    script, rules applied; four curls from the client alternate RS2,
//!    RS1, RS2, RS1 (the kernel's answer to the seed).
//! 2. `status` prints "running" and the table; `save` writes the rules.
//! 3. `stop`: forwarding off, table cleared, VIP down, the script's rvsd
//!    gone; `status` says stopped with exit status 3.
//! 4. `start` with a configuration without `rules` loads the saved file
//!    (`service ipvsadm start`), and traffic flows again.
//!
//! Needs root; skipped otherwise. Namespaces are removed on every exit
//! path; the rvsd the script starts is killed by the PID in its pid file
//! (a guard, so panics included).

use rvs_testnet::{is_root, workspace_bin, NatTopology, Netns, NAT_VIP};
use std::path::{Path, PathBuf};
use std::process::Output;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/rvs-director")
}

/// Kills the rvsd the script started (by the PID it recorded) on drop.
struct PidFileGuard(PathBuf);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.0) else {
            return;
        };
        if let Ok(pid) = text.trim().parse::<i32>() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn run(&self, ns: &Netns, conf: &Path, action: &str) -> Output {
        let s = script().to_string_lossy().to_string();
        let mut env: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let conf_s = conf.to_string_lossy().to_string();
        env.push(("RVS_DIRECTOR_CONF", &conf_s));
        ns.output(&["bash", &s, action], &env)
            .expect("run rvs-director")
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}stderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sysctl(ns: &Netns, key: &str) -> String {
    let out = ns.run(&["cat", &format!("/proc/sys/{key}")]).expect("cat");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn has_vip(ns: &Netns) -> bool {
    let out = ns
        .ip(&["-o", "addr", "show", "dev", "eth0"])
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout).contains("inet 198.51.100.10/")
}

fn curls(topo: &NatTopology) -> Vec<String> {
    (0..4)
        .map(|_| {
            topo.curl_from_client(NAT_VIP, 80)
                .unwrap_or_else(|e| format!("curl failed: {e}"))
        })
        .collect()
}

const TABLE: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  198.51.100.10:80 rr\n  \
-> 203.0.113.11:80              Masq    1      0          2         \n  \
-> 203.0.113.12:80              Masq    1      0          2         \n";

#[test]
fn director_script_start_status_stop_in_a_namespace() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvlds").expect("topology");
    let ns = &topo.director;
    // The script brings the VIP up itself.
    ns.ip(&["addr", "del", "198.51.100.10/24", "dev", "eth0"])
        .expect("remove the VIP");
    ns.sysctl("net.ipv4.ip_forward", "0")
        .expect("forwarding off");

    let rvsadm = workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("rvsadm");
    let dir = &topo.dir;
    let path = |n: &str| dir.join(n).to_string_lossy().to_string();
    let pidfile = dir.join("rvsd.pid");
    let _guard = PidFileGuard(pidfile.clone());
    let env = Env {
        vars: vec![
            ("RVSD".into(), RVSD.into()),
            ("RVSADM".into(), rvsadm.to_string_lossy().to_string()),
            ("RVS_SOCKET".into(), path("rvsd.sock")),
            ("RVS_RULES".into(), path("rules")),
            ("RVS_LOCK".into(), path("director.lock")),
            ("RVS_PIDFILE".into(), path("rvsd.pid")),
            ("RVS_LOG".into(), path("rvsd.log")),
        ],
    };
    let log = || std::fs::read_to_string(dir.join("rvsd.log")).unwrap_or_default();
    // The seed's NAT director script, as configuration.
    let seed_conf = dir.join("director.conf");
    std::fs::write(
        &seed_conf,
        "VIP=198.51.100.10/24\nVIP_DEV=eth0\nRIP1=203.0.113.11\nRIP2=203.0.113.12\n\
rules() {\n  $IPVSADM -A -t 198.51.100.10:80 -s rr &&\n  \
$IPVSADM -a -t 198.51.100.10:80 -r $RIP1 -m &&\n  \
$IPVSADM -a -t 198.51.100.10:80 -r $RIP2 -m\n}\n",
    )
    .expect("write conf");

    let out = env.run(ns, &seed_conf, "status");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "rvs director is stopped\n"
    );

    let out = env.run(ns, &seed_conf, "start");
    assert!(out.status.success(), "{}\nrvsd log:\n{}", text(&out), log());
    assert_eq!(sysctl(ns, "net/ipv4/ip_forward"), "1");
    assert!(has_vip(ns));
    assert!(pidfile.exists());
    Netns::wait_for(
        "steering installed",
        std::time::Duration::from_secs(10),
        || log().contains("steering 1 service(s), 2 NAT source(s)"),
    )
    .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", log()));
    assert_eq!(
        curls(&topo),
        ["RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1"],
        "rvsd log:\n{}",
        log()
    );

    let out = env.run(ns, &seed_conf, "status");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // After the seed's four curls each real server shows `0 2`.
    assert_eq!(
        stdout,
        format!("rvs director is running (VIP 198.51.100.10 on eth0)\n{TABLE}")
    );

    let out = env.run(ns, &seed_conf, "save");
    assert!(out.status.success(), "{}", text(&out));
    let saved = std::fs::read_to_string(dir.join("rules")).expect("rules file");
    assert!(saved.contains("-A -t 198.51.100.10:80 -s rr"), "{saved}");
    assert!(
        saved.contains("-a -t 198.51.100.10:80 -r 203.0.113.11:80 -m -w 1"),
        "{saved}"
    );

    let out = env.run(ns, &seed_conf, "stop");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sysctl(ns, "net/ipv4/ip_forward"), "0");
    assert!(!has_vip(ns));
    assert!(!pidfile.exists());
    let out = env.run(ns, &seed_conf, "status");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let rules = ns.run(&["iptables-save"]).expect("iptables-save");
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("RVS-PRE"),
        "rvsd left its hooks behind"
    );

    // `service ipvsadm start`: no rules function, the saved file is loaded.
    let plain_conf = dir.join("plain.conf");
    std::fs::write(&plain_conf, "VIP=198.51.100.10/24\nVIP_DEV=eth0\n").expect("write conf");
    let out = env.run(ns, &plain_conf, "start");
    assert!(out.status.success(), "{}\nrvsd log:\n{}", text(&out), log());
    assert!(String::from_utf8_lossy(&out.stdout).contains("rules loaded from"));
    Netns::wait_for(
        "steering reinstalled",
        std::time::Duration::from_secs(10),
        || {
            log()
                .matches("steering 1 service(s), 2 NAT source(s)")
                .count()
                >= 2
        },
    )
    .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", log()));
    // A fresh rvsd: rr starts over.
    assert_eq!(
        curls(&topo),
        ["RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1"],
        "rvsd log:\n{}",
        log()
    );
    let out = env.run(ns, &plain_conf, "stop");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!pidfile.exists());
}
