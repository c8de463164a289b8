//! Scheduling under real traffic matches the real kernel: the committed
//! Linux 6.1 captures in `crates/rvs-core/tests/fixtures/refvm/sched/`
//! (format in `refvm-scenarios/README.md`) are replayed with real packets
//! through rvsd in the same LVS-NAT topology: client 198.51.100.2 and
//! 198.51.100.100-163, VIP 198.51.100.10 (plus 198.51.100.32-63 marked 1
//! for dh), DIP 203.0.113.1, three real servers 203.0.113.11-13 whose
//! HTTP servers answer their own name. The rules of each capture are
//! applied in the capture's order, every request uses the capture's
//! client address and pinned client port, and the real server that
//! answered must be the one the kernel chose (or the request must be
//! refused where the kernel refused it).
//!
//! Hash schedulers (sh, mh, dh): every line of the capture. Connection
//! schedulers (lc, wlc, sed, nq): the capture's held/short pattern, with
//! rvs's ActiveConn/InActConn checked against the kernel's `before:`
//! counters ahead of each request and the `after:` ones at the end.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed on
//! every exit path, panics included.

use rvs_testnet::{
    is_root, start_http, tx_checksum_off, unique_prefix, veth, workspace_bin, NatTopology, Netns,
    Rvsd,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn bin(package: &str, name: &str) -> PathBuf {
    workspace_bin(Path::new(RVSD), package, name).expect("build a workspace binary")
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rvs-core/tests/fixtures/refvm/sched")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `ipvsadm` rules of a capture, in order, without the `ipvsadm`
/// word.
fn rules(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("# rules, in the order"))
        .skip(1)
        .take_while(|l| l.starts_with("#   ipvsadm "))
        .map(|l| l.trim_start_matches("#   ipvsadm ").to_string())
        .collect()
}

/// The sched topology: the NAT walkthrough plus a third real server,
/// the client's extra addresses and the director's dh VIPs with mark 1.
struct Sched {
    // Dropped first (fields drop in order): rs3 before the rest.
    rs3: Netns,
    topo: NatTopology,
}

impl Sched {
    fn create(tag: &str) -> Sched {
        let topo = NatTopology::create(tag).expect("topology");
        let rs3 = Netns::create(&format!("{}-rs3", unique_prefix(tag))).expect("rs3");
        veth(&topo.director, "rs3", &rs3, "eth0").expect("veth");
        topo.director
            .ip(&["link", "set", "rs3", "master", "br0"])
            .expect("plug rs3");
        rs3.ip(&["addr", "add", "203.0.113.13/24", "dev", "eth0"])
            .expect("addr");
        rs3.ip(&["route", "add", "default", "via", "203.0.113.1"])
            .expect("route");
        tx_checksum_off(&rs3, "eth0");
        let sched = Sched { rs3, topo };
        start_http(
            &sched.rs3,
            &sched.topo.dir,
            "rs3",
            "203.0.113.13".parse().expect("addr"),
            "RS3-web3",
        )
        .expect("rs3 http");
        let batch = |name: &str, lines: String| -> String {
            let p = sched.topo.dir.join(name);
            std::fs::write(&p, lines).expect("batch file");
            p.to_string_lossy().to_string()
        };
        let client: String = (100..164)
            .map(|i| format!("addr add 198.51.100.{i}/24 dev eth0\n"))
            .collect();
        let b = batch("client.batch", client);
        sched.topo.client.ip(&["-batch", &b]).expect("client addrs");
        let vips: String = (32..64)
            .map(|i| format!("addr add 198.51.100.{i}/32 dev eth0\n"))
            .collect();
        let b = batch("vips.batch", vips);
        sched.topo.director.ip(&["-batch", &b]).expect("dh vips");
        sched
            .topo
            .director
            .run(&[
                "iptables",
                "-w",
                "-t",
                "mangle",
                "-A",
                "PREROUTING",
                "-d",
                "198.51.100.32/27",
                "-p",
                "tcp",
                "--dport",
                "80",
                "-j",
                "MARK",
                "--set-mark",
                "1",
            ])
            .expect("mark 1");
        sched
    }

    fn rvsd(&self) -> Rvsd<'_> {
        Rvsd::start(
            &self.topo.director,
            Path::new(RVSD),
            &bin("rvsadm", "rvsadm"),
            &self.topo.dir,
            &[],
        )
        .expect("start rvsd")
    }
}

/// Wait until rvsd's datapath steers `services` virtual services and
/// `marks` firewall marks (its log's last `steering` line).
fn wait_steering(d: &Rvsd<'_>, (services, marks): (usize, usize)) {
    let want_s = format!("steering {services} service(s),");
    let want_m = format!(", {marks} mark(s)");
    Netns::wait_for(&want_s, Duration::from_secs(10), || {
        d.log_text()
            .lines()
            .rev()
            .filter_map(|l| l.split("datapath: ").nth(1))
            .find(|l| l.starts_with("steering "))
            .is_some_and(|l| l.starts_with(&want_s) && l.ends_with(&want_m))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
}

fn rip_of(body: &str) -> String {
    match body {
        "RS1-web1" => "203.0.113.11".into(),
        "RS2-web2" => "203.0.113.12".into(),
        "RS3-web3" => "203.0.113.13".into(),
        other => format!("unexpected body {other:?}"),
    }
}

/// HTTP GETs from pinned (source address, source port) pairs to
/// (destination, port), one after the other, in one Python process in
/// the client namespace. Input lines `src sport dst dport`; output, one
/// line per request: the body's last line, `REFUSED` or `ERROR <text>`.
const REQUESTS: &str = r#"
import socket, sys
for line in sys.stdin.read().split("\n"):
    if not line.strip():
        continue
    src, sport, dst, dport = line.split()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    try:
        s.bind((src, int(sport)))
        s.connect((dst, int(dport)))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        print(data.decode().strip().split("\n")[-1].strip(), flush=True)
    except ConnectionRefusedError:
        print("REFUSED", flush=True)
    except Exception as e:
        print("ERROR", type(e).__name__, e, flush=True)
    finally:
        s.close()
"#;

fn requests(client: &Netns, reqs: &[(String, u16, String, u16)]) -> Vec<String> {
    let input: String = reqs
        .iter()
        .map(|(s, sp, d, dp)| format!("{s} {sp} {d} {dp}\n"))
        .collect();
    let out = client
        .output_with_input(&["/usr/bin/python3", "-c", REQUESTS], &[], input.as_bytes())
        .expect("python3");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| match l {
            "REFUSED" => "FAIL rc=7".to_string(),
            l if l.starts_with("ERROR") => l.to_string(),
            l => rip_of(l),
        })
        .collect()
}

/// Replay one hash-scheduler capture: apply its rules, send every
/// request, compare the answering real servers line by line.
fn replay_hash(d: &Rvsd<'_>, client: &Netns, file: &str, steering: (usize, usize)) {
    let text = fixture(file);
    let rules = rules(&text);
    assert!(rules.len() == 4, "{file}: rules {rules:?}");
    for r in &rules {
        d.ipvsadm(r).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    wait_steering(d, steering);
    // `-A -t 198.51.100.10:8001 ...` or `-A -f 1 ...`.
    let vport: u16 = rules[0]
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(80);
    let mut reqs = Vec::new();
    let mut want = Vec::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (dst, dport) = match w.iter().find_map(|x| x.strip_prefix("vip=")) {
            Some(vip) => (vip.to_string(), 80),
            None => ("198.51.100.10".to_string(), vport),
        };
        let sport: u16 = w[1].parse().expect("client port");
        reqs.push((w[0].to_string(), sport, dst, dport));
        want.push(if w[3] == "FAIL" {
            format!("FAIL {}", w[4])
        } else {
            w[3].to_string()
        });
    }
    // 64 requests (dh: one per VIP of the /27, 32).
    assert_eq!(
        want.len(),
        if file.starts_with("dh") { 32 } else { 64 },
        "{file}"
    );
    let got = requests(client, &reqs);
    let diff: Vec<String> = reqs
        .iter()
        .zip(
            want.iter()
                .zip(got.iter().chain(std::iter::repeat(&String::new()))),
        )
        .filter(|(_, (w, g))| w != g)
        .map(|((s, sp, dst, _), (w, g))| format!("{s}:{sp} -> {dst}: kernel {w}, rvs {g}"))
        .collect();
    assert!(
        diff.is_empty(),
        "{file}: {} of {} differ:\n{}\nrvsd log:\n{}",
        diff.len(),
        want.len(),
        diff.join("\n"),
        d.log_text()
    );
}

fn hash_test(tag: &str, files: &[&str]) {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let s = Sched::create(tag);
    let d = s.rvsd();
    for (i, f) in files.iter().enumerate() {
        let steering = if f.starts_with("dh") {
            (0, 1)
        } else {
            (i + 1, 0)
        };
        replay_hash(&d, &s.topo.client, f, steering);
    }
}

#[test]
fn sh_matches_the_kernel_captures() {
    hash_test(
        "rvssh",
        &[
            "sh-111.txt",
            "sh-211.txt",
            "sh-011.txt",
            "sh-port-fixaddr.txt",
            "sh-port-both.txt",
        ],
    );
}

#[test]
fn mh_matches_the_kernel_captures() {
    hash_test(
        "rvsmh",
        &[
            "mh-111.txt",
            "mh-211.txt",
            "mh-port-fixaddr.txt",
            "mh-port-both.txt",
        ],
    );
}

#[test]
fn dh_matches_the_kernel_capture() {
    hash_test("rvsdh", &["dh-111.txt"]);
}

/// `rip -> (ActiveConn, InActConn)` from `<rip>:80 A/I` words.
fn counters(words: &str) -> BTreeMap<String, (u32, u32)> {
    let w: Vec<&str> = words.split_whitespace().collect();
    w.chunks(2)
        .filter_map(|c| {
            let rip = c.first()?.trim_end_matches(":80").to_string();
            let (a, i) = c.get(1)?.split_once('/')?;
            Some((rip, (a.parse().ok()?, i.parse().ok()?)))
        })
        .collect()
}

/// rvs's counters for the service on `vport`, from `ipvsadm -L -n -t`.
fn rvs_counters(d: &Rvsd<'_>, vport: u16) -> BTreeMap<String, (u32, u32)> {
    let text = d
        .ipvsadm(&format!("-L -n -t 198.51.100.10:{vport}"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.first() == Some(&"->") && w.len() == 6 && w[1].starts_with("203.")).then(|| {
                (
                    w[1].trim_end_matches(":80").to_string(),
                    (
                        w[4].parse().unwrap_or(u32::MAX),
                        w[5].parse().unwrap_or(u32::MAX),
                    ),
                )
            })
        })
        .collect()
}

fn wait_counters(d: &Rvsd<'_>, vport: u16, want: &BTreeMap<String, (u32, u32)>, what: &str) {
    let mut last = BTreeMap::new();
    let ok = Netns::wait_for(what, Duration::from_secs(5), || {
        last = rvs_counters(d, vport);
        &last == want
    });
    assert!(
        ok.is_ok(),
        "{what}: rvs counters {last:?}, kernel {want:?}\n{}",
        d.ipvsadm("-L -c -n").unwrap_or_default()
    );
}

/// Hold a connection from `src` to VIP:`vport` (sending nothing) for at
/// most `secs` seconds; returns once connected.
fn hold_from(client: &Netns, dir: &Path, src: &str, vport: u16, secs: u32) {
    let flag = dir.join(format!("held-{src}-{vport}"));
    let script = format!(
        "import socket,time\n\
         s=socket.socket()\n\
         s.bind(('{src}',0))\n\
         s.settimeout(5)\n\
         s.connect(('198.51.100.10',{vport}))\n\
         open('{}','w').close()\n\
         time.sleep({secs})\n",
        flag.display()
    );
    client
        .spawn(&["/usr/bin/python3", "-c", &script], &[], None)
        .expect("hold");
    Netns::wait_for("held connection", Duration::from_secs(10), || flag.exists())
        .expect("held connection");
}

/// The real server of `src`'s ESTABLISHED connection to VIP:`vport`.
fn established_dest(d: &Rvsd<'_>, src: &str, vport: u16) -> String {
    let text = d.ipvsadm("-L -c -n").unwrap_or_default();
    let vip = format!("198.51.100.10:{vport}");
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| {
            w.len() == 6
                && w[2] == "ESTABLISHED"
                && w[3].starts_with(&format!("{src}:"))
                && w[4] == vip
        })
        .map(|w| w[5].trim_end_matches(":80").to_string())
        .unwrap_or_else(|| format!("no ESTABLISHED entry in:\n{text}"))
}

fn replay_conn(d: &Rvsd<'_>, s: &Sched, file: &str, services: usize) {
    let text = fixture(file);
    for r in rules(&text) {
        d.ipvsadm(&r).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    wait_steering(d, (services, 0));
    let vport: u16 = rules(&text)[0]
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .expect("vport");
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        // `N kind client -> rs | before: ...`
        let (head, before) = l.split_once("| before:").expect("before");
        let w: Vec<&str> = head.split_whitespace().collect();
        let (n, kind, src, want) = (w[0], w[1], w[2], w[4]);
        wait_counters(
            d,
            vport,
            &counters(before),
            &format!("{file} #{n}: counters before"),
        );
        let got = if kind == "hold" {
            hold_from(&s.topo.client, &s.topo.dir, src, vport, 60);
            established_dest(d, src, vport)
        } else {
            requests(
                &s.topo.client,
                &[(src.to_string(), 0, "198.51.100.10".to_string(), vport)],
            )
            .pop()
            .unwrap_or_default()
        };
        assert_eq!(got, want, "{file} #{n} ({kind} from {src})");
    }
    let after = text
        .lines()
        .find_map(|l| l.strip_prefix("# after:"))
        .expect("after");
    wait_counters(d, vport, &counters(after), &format!("{file}: after"));
}

#[test]
fn lc_wlc_sed_nq_match_the_kernel_captures_with_held_connections() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let s = Sched::create("rvslc");
    let d = s.rvsd();
    for (i, f) in [
        "lc-111.txt",
        "wlc-111.txt",
        "wlc-321.txt",
        "sed-321.txt",
        "nq-321.txt",
    ]
    .into_iter()
    .enumerate()
    {
        replay_conn(&d, &s, f, i + 1);
    }
}
