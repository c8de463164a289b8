//! Configuration, reload and metrics end to end with real traffic
//! (issue 5): the seed's NAT topology, rvsd started with `--config` in the
//! director namespace, curl from the client.
//!
//! * a reload (SIGHUP) that adds a service, changes a weight and removes a
//!   real server while a download from a remaining server is running: the
//!   download completes with the right size and MD5. The client
//!   (`rvs_testnet::start_gated_download`) reads slowly through a small
//!   receive buffer and holds at half the file until the test releases
//!   it, so the transfer is in flight at the reload however fast the
//!   datapath is (curl's `--limit-rate` is not: the server pushes the
//!   file into the client's auto-tuned buffer and closes early);
//! * an invalid file at start is refused (rvsd exits, naming the line);
//!   reloads of invalid files (`rvsadm --reload`, SIGHUP) leave
//!   `ipvsadm -L -n` byte for byte unchanged, and checking goes on;
//! * a keepalived.conf with two virtual servers and HTTP_GET / TCP_CHECK
//!   checkers (`--config-format keepalived`) serves both VIPs;
//! * the metrics endpoint, bound to 127.0.0.1 inside the director
//!   namespace and scraped there with curl, shows counters that move.
//!
//! Needs root; skipped otherwise.

mod netns_health_lab;

use netns_health_lab::{
    md5sum, rvsadm_out, sighup, stop, wait_log, wait_pool, wait_steering, wait_until, Lab, MARGIN,
    RVSD,
};
use rvs_testnet::{
    start_gated_download, start_http_on, GatedDownload, Netns, Rvsd, Spawned, NAT_RIP1, NAT_RIP2,
    NAT_VIP,
};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn count(got: &[Result<String, String>], page: &str) -> usize {
    got.iter().filter(|r| r.as_deref() == Ok(page)).count()
}

/// `len` pseudo-random bytes (xorshift64), the same on every run.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Put `big.bin` (`len` bytes) on both real servers; its MD5.
fn serve_big_file(lab: &Lab, len: usize) -> String {
    let data = payload(len);
    for rs in ["www-rs1", "www-rs2"] {
        std::fs::write(lab.topo.dir.join(rs).join("big.bin"), &data).expect("big.bin");
    }
    md5sum(&data)
}

/// Download VIP:80/big.bin from the client at most `rate` bytes/s,
/// holding at `hold` bytes until released (at most 60 s); returns once
/// the first bytes arrived.
fn start_download(lab: &Lab, rate: u64, hold: u64) -> GatedDownload {
    start_gated_download(
        &lab.topo.client,
        &lab.topo.dir,
        (NAT_VIP, 80),
        "/big.bin",
        rate,
        hold,
        Duration::from_secs(60),
    )
    .expect("start the download")
}

/// `(RIP:PORT, ActiveConn)` of the `-L -n` rows of `port`'s service.
fn active(d: &Rvsd<'_>) -> Vec<(String, String)> {
    d.ipvsadm("-L -n")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.first() != Some(&"->") || w.get(1) == Some(&"RemoteAddress:Port") {
                return None;
            }
            Some((w.get(1)?.to_string(), w.get(4)?.to_string()))
        })
        .collect()
}

/// Wait until one real server has ActiveConn 1; its `RIP:PORT`.
fn busy_server(d: &Rvsd<'_>) -> String {
    let mut busy = None;
    let ok = wait_until("a server with ActiveConn 1", MARGIN, || {
        busy = active(d)
            .into_iter()
            .find(|(_, a)| a == "1")
            .map(|(s, _)| s);
        busy.is_some()
    });
    assert!(
        ok,
        "no active connection: {:?}\n{}",
        active(d),
        d.log_text()
    );
    busy.unwrap_or_default()
}

/// Wait (bounded) for a process of `ns` to exit on its own; its status.
fn wait_exit(ns: &Netns, p: Spawned, timeout: Duration) -> String {
    wait_until("the download to finish", timeout, || !ns.is_running(p));
    ns.stop(p, Duration::from_secs(1)).unwrap_or_default()
}

const TWO_REALS: &str = r#"[[service]]
vip = "198.51.100.10:80"
scheduler = "rr"
delay_loop = 0.5
connect_timeout = 1
retry = 0

[[service.real]]
addr = "203.0.113.11:80"
[[service.real.check]]
type = "http"

[[service.real]]
addr = "203.0.113.12:80"
[[service.real.check]]
type = "http"
"#;

#[test]
fn reload_during_a_download_keeps_the_transfer_whole() {
    let Some(lab) = Lab::new("rvhreload") else {
        return;
    };
    const LEN: usize = 4 << 20;
    let md5 = serve_big_file(&lab, LEN);
    let cfg = lab.write("rvs.toml", TWO_REALS);
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    wait_pool(
        &d,
        &[
            "TCP 198.51.100.10:80 rr",
            "-> 203.0.113.11:80 Masq 1",
            "-> 203.0.113.12:80 Masq 1",
        ],
        MARGIN,
    );
    wait_steering(&d, 1, 2);

    // 4 MiB read at 512 KiB/s, held at 2 MiB until released below.
    let started = Instant::now();
    let dl = start_download(&lab, 512 << 10, LEN as u64 / 2);
    let busy = busy_server(&d);
    let busy_ip = busy.trim_end_matches(":80").to_string();
    std::thread::sleep(Duration::from_millis(500));

    // The new file: the busy server alone with weight 3, and a new
    // service on port 8080 mapped to it.
    let v2 = format!(
        r#"[[service]]
vip = "198.51.100.10:80"
scheduler = "rr"
delay_loop = 0.5
connect_timeout = 1
retry = 0

[[service.real]]
addr = "{busy}"
weight = 3
[[service.real.check]]
type = "http"

[[service]]
vip = "198.51.100.10:8080"
scheduler = "rr"
delay_loop = 0.5
connect_timeout = 1
retry = 0

[[service.real]]
addr = "{busy}"
[[service.real.check]]
type = "http"
"#
    );
    lab.write("rvs.toml", &v2);
    sighup(&d);
    wait_log(&d, &format!("reloaded {cfg}"), MARGIN);
    let b3 = format!("-> {busy} Masq 3");
    let b1 = format!("-> {busy} Masq 1");
    wait_pool(
        &d,
        &[
            "TCP 198.51.100.10:80 rr",
            &b3,
            "TCP 198.51.100.10:8080 rr",
            &b1,
        ],
        MARGIN,
    );
    // The reload happened while the transfer was running (part of the
    // body received, the client still reading), and the connection is
    // still there.
    let at_reload = dl.received();
    assert!(
        lab.topo.client.is_running(dl.pid) && at_reload < LEN as u64,
        "the download ended before the reload was applied ({:?}, {at_reload} bytes): {}\nlog:\n{}",
        started.elapsed(),
        dl.log_text(),
        d.log_text()
    );
    assert!(
        active(&d).contains(&(busy.clone(), "1".to_string())),
        "{:?}",
        active(&d)
    );
    // The new service serves meanwhile.
    let page = if busy_ip == NAT_RIP1.to_string() {
        "RS1-web1"
    } else {
        "RS2-web2"
    };
    wait_steering(&d, 2, 1);
    assert_eq!(lab.curl(NAT_VIP, 8080).as_deref(), Ok(page));
    // Bytes keep arriving on the old connection after the reload (unless
    // the client already sits at its hold point).
    if at_reload < LEN as u64 / 2 {
        let more = wait_until("bytes after the reload", MARGIN, || {
            dl.received() > at_reload
        });
        assert!(
            more,
            "no byte after the reload ({at_reload}): {}",
            dl.log_text()
        );
    }
    assert!(lab.topo.client.is_running(dl.pid), "{}", dl.log_text());

    dl.release().expect("release the download");
    let status = wait_exit(&lab.topo.client, dl.pid, Duration::from_secs(40));
    assert_eq!(status, "exit status: 0", "client: {}", dl.log_text());
    let got = std::fs::read(&dl.out).expect("the downloaded file");
    assert_eq!(got.len(), LEN);
    assert_eq!(md5sum(&got), md5);
    let log = d.log_text();
    assert!(log.contains("SIGHUP: reloading the configuration"), "{log}");
}

/// Start rvsd on `cfg` and wait (bounded) for it to exit: the exit status
/// and its log.
fn start_expecting_refusal(lab: &Lab, cfg: &str, log_name: &str) -> (String, String) {
    let socket = lab.path_str("refused.sock");
    let log = lab.path(log_name);
    let p = lab
        .topo
        .director
        .spawn(
            &[RVSD, "--socket", &socket, "--config", cfg],
            &[],
            Some(&log),
        )
        .expect("start rvsd");
    let exited = wait_until("rvsd to refuse", MARGIN, || {
        !lab.topo.director.is_running(p)
    });
    let status = lab
        .topo
        .director
        .stop(p, Duration::from_secs(1))
        .unwrap_or_default();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exited, "rvsd kept running on an invalid file:\n{text}");
    (status, text)
}

#[test]
fn invalid_files_are_refused_and_change_nothing() {
    let Some(lab) = Lab::new("rvhinval") else {
        return;
    };
    // At start: an unknown key on line 3.
    let bad = lab.write(
        "bad.toml",
        "[[service]]\nvip = \"198.51.100.10:80\"\nschedulr = \"rr\"\n",
    );
    let (status, text) = start_expecting_refusal(&lab, &bad, "refused.log");
    assert_eq!(status, "exit status: 1", "{text}");
    assert!(
        text.contains(&format!("{bad}: line 3: unknown field `schedulr`")),
        "{text}"
    );
    assert!(!text.contains("listening on"), "{text}");
    let rules = lab
        .topo
        .director
        .run(&["iptables-save"])
        .expect("iptables-save");
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("RVS-"),
        "a refused start left steering rules"
    );

    // A valid start.
    let cfg = lab.write("rvs.toml", TWO_REALS);
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    let both = [
        "TCP 198.51.100.10:80 rr",
        "-> 203.0.113.11:80 Masq 1",
        "-> 203.0.113.12:80 Masq 1",
    ];
    wait_pool(&d, &both, MARGIN);
    wait_steering(&d, 1, 2);
    let before = d.ipvsadm("-L -n").expect("-L -n");

    // `rvsadm --reload` of a file that would also drop RS2 and reweigh
    // RS1, but has an unknown scheduler on line 16: refused, naming its
    // service.
    let broken = r#"[[service]]
vip = "198.51.100.10:80"
scheduler = "rr"
delay_loop = 0.5
connect_timeout = 1
retry = 0

[[service.real]]
addr = "203.0.113.11:80"
weight = 5
[[service.real.check]]
type = "http"

[[service]]
vip = "198.51.100.10:8080"
scheduler = "nosuch"
"#;
    // Semantic errors name the line of the block they are in (the
    // service declared on line 14); syntax errors name their own line.
    let line = 14;
    lab.write("rvs.toml", broken);
    let out = rvsadm_out(&d, &["--reload"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "reload of a broken file succeeded");
    assert!(err.contains(&format!("{cfg}: line {line}: ")), "{err}");
    assert!(err.contains("nosuch"), "{err}");
    assert_eq!(d.ipvsadm("-L -n").expect("-L -n"), before);

    // SIGHUP with a TOML syntax error on line 2: refused, logged.
    lab.write("rvs.toml", "[[service]]\nvip = \n");
    sighup(&d);
    wait_log(
        &d,
        &format!("reload refused, nothing changed: {cfg}: line 2: "),
        MARGIN,
    );
    assert_eq!(d.ipvsadm("-L -n").expect("-L -n"), before);

    // A file that parses but whose table the engine refuses (an IPv6
    // real server behind NAT in an IPv4 service), next to a valid weight
    // change and a valid new service: all or nothing.
    let refused = format!(
        "{}\n[[service]]\nvip = \"198.51.100.10:8080\"\n\n[[service.real]]\naddr = \"[2001:db8::1]:80\"\n",
        TWO_REALS.replace(
            "addr = \"203.0.113.11:80\"\n",
            "addr = \"203.0.113.11:80\"\nweight = 5\n"
        )
    );
    lab.write("rvs.toml", &refused);
    let out = rvsadm_out(&d, &["--reload"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "reload of a refused table succeeded");
    assert!(err.contains(&format!("reload of {cfg} refused: ")), "{err}");
    assert_eq!(d.ipvsadm("-L -n").expect("-L -n"), before);

    // Traffic and checking go on under the old file.
    wait_steering(&d, 1, 2);
    let got = lab.curls(80, 2);
    assert_eq!((count(&got, "RS1-web1"), count(&got, "RS2-web2")), (1, 1));
    stop(&lab.topo.rs2, lab.topo.http[1]);
    wait_pool(
        &d,
        &["TCP 198.51.100.10:80 rr", "-> 203.0.113.11:80 Masq 1"],
        MARGIN,
    );

    // A valid reload still applies.
    lab.write(
        "rvs.toml",
        &TWO_REALS.replace(
            "addr = \"203.0.113.11:80\"\n",
            "addr = \"203.0.113.11:80\"\nweight = 2\n",
        ),
    );
    let out = rvsadm_out(&d, &["--reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_pool(
        &d,
        &["TCP 198.51.100.10:80 rr", "-> 203.0.113.11:80 Masq 2"],
        MARGIN,
    );
}

#[test]
fn keepalived_conf_with_two_virtual_servers_serves_both() {
    let Some(lab) = Lab::new("rvhkeep") else {
        return;
    };
    let vip2 = Ipv4Addr::new(198, 51, 100, 11);
    lab.topo
        .director
        .ip(&["addr", "add", "198.51.100.11/24", "dev", "eth0"])
        .expect("second VIP");
    let alt1 = start_http_on(
        &lab.topo.rs1,
        &lab.topo.dir,
        "rs1-alt",
        (NAT_RIP1, 8080),
        "RS1-alt",
    )
    .expect("RS1:8080");
    let alt2 = start_http_on(
        &lab.topo.rs2,
        &lab.topo.dir,
        "rs2-alt",
        (NAT_RIP2, 8080),
        "RS2-alt",
    )
    .expect("RS2:8080");
    let _ = alt1;
    let digest = md5sum(b"RS1-web1\n");
    let conf = lab.write(
        "keepalived.conf",
        &format!(
            r#"! rvs end-to-end test: the LVS half of a keepalived director
global_defs {{
   router_id rvs_test
}}

vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {{
        198.51.100.10
    }}
}}

virtual_server 198.51.100.10 80 {{
    delay_loop 0.5
    lb_algo rr
    lb_kind NAT
    protocol TCP

    real_server 203.0.113.11 80 {{
        weight 1
        HTTP_GET {{
            url {{
                path /
                digest {digest}
                status_code 200
            }}
            connect_timeout 1
            nb_get_retry 0
        }}
    }}
    real_server 203.0.113.12 80 {{
        weight 1
        HTTP_GET {{
            url {{
                path /
                status_code 200
            }}
            connect_timeout 1
            retry 0
        }}
    }}
}}

virtual_server 198.51.100.11 8080 {{
    delay_loop 0.5
    lvs_sched wrr
    lvs_method NAT
    protocol TCP

    real_server 203.0.113.11 8080 {{
        weight 2
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server 203.0.113.12 8080 {{
        weight 1
        TCP_CHECK {{
            connect_port 8080
            connect_timeout 1
        }}
    }}
}}
"#
        ),
    );
    let d = lab.rvsd(&[
        "--config",
        &conf,
        "--config-format",
        "keepalived",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    wait_pool(
        &d,
        &[
            "TCP 198.51.100.10:80 rr",
            "-> 203.0.113.11:80 Masq 1",
            "-> 203.0.113.12:80 Masq 1",
            "TCP 198.51.100.11:8080 wrr",
            "-> 203.0.113.11:8080 Masq 2",
            "-> 203.0.113.12:8080 Masq 1",
        ],
        MARGIN,
    );
    wait_log(
        &d,
        &format!("{conf}: line 6: VRRP is not supported by rvs"),
        MARGIN,
    );
    wait_steering(&d, 2, 4);
    let got = lab.curls(80, 4);
    assert_eq!(
        (count(&got, "RS1-web1"), count(&got, "RS2-web2")),
        (2, 2),
        "{got:?}"
    );
    // wrr 2:1: three picks are one round.
    let got: Vec<_> = (0..6).map(|_| lab.curl(vip2, 8080)).collect();
    assert_eq!(
        (count(&got, "RS1-alt"), count(&got, "RS2-alt")),
        (4, 2),
        "{got:?}"
    );

    // TCP_CHECK at work: RS2's port 8080 closes, RS2 leaves the second
    // virtual server only.
    stop(&lab.topo.rs2, alt2);
    wait_pool(
        &d,
        &[
            "TCP 198.51.100.10:80 rr",
            "-> 203.0.113.11:80 Masq 1",
            "-> 203.0.113.12:80 Masq 1",
            "TCP 198.51.100.11:8080 wrr",
            "-> 203.0.113.11:8080 Masq 2",
        ],
        MARGIN,
    );
    wait_steering(&d, 2, 3);
    let got: Vec<_> = (0..3).map(|_| lab.curl(vip2, 8080)).collect();
    assert_eq!(count(&got, "RS1-alt"), 3, "{got:?}");
    let got = lab.curls(80, 2);
    assert_eq!(
        (count(&got, "RS1-web1"), count(&got, "RS2-web2")),
        (1, 1),
        "{got:?}"
    );
}

/// Scrape `/metrics` inside the director namespace: `name{labels}` ->
/// value, for every sample line.
fn scrape(lab: &Lab, addr: &str) -> BTreeMap<String, u64> {
    let url = format!("http://{addr}/metrics");
    let out = lab
        .topo
        .director
        .output(
            &["curl", "-sS", "--noproxy", "*", "--max-time", "5", &url],
            &[],
        )
        .expect("run curl");
    assert!(
        out.status.success(),
        "scrape: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sample(m: &BTreeMap<String, u64>, name: &str) -> u64 {
    *m.get(name)
        .unwrap_or_else(|| panic!("no sample {name} in {m:#?}"))
}

#[test]
fn metrics_scraped_during_traffic_move() {
    let Some(lab) = Lab::new("rvhmetr") else {
        return;
    };
    const LEN: usize = 2 << 20;
    serve_big_file(&lab, LEN);
    let metrics = "127.0.0.1:19617";
    let cfg = lab.write(
        "rvs.toml",
        &format!("[global]\nmetrics_listen = \"{metrics}\"\n\n{TWO_REALS}"),
    );
    let d = lab.rvsd(&["--config", &cfg]);
    wait_log(&d, &format!("metrics on http://{metrics}/metrics"), MARGIN);
    wait_pool(
        &d,
        &[
            "TCP 198.51.100.10:80 rr",
            "-> 203.0.113.11:80 Masq 1",
            "-> 203.0.113.12:80 Masq 1",
        ],
        MARGIN,
    );
    wait_steering(&d, 1, 2);

    let svc = "{service=\"TCP:198.51.100.10:80\"}";
    let rs = |ip: &str| format!("{{service=\"TCP:198.51.100.10:80\",server=\"{ip}:80\"}}");
    let m0 = scrape(&lab, metrics);
    for ip in ["203.0.113.11", "203.0.113.12"] {
        let up = format!(
            "rvs_real_server_up{{service=\"TCP:198.51.100.10:80\",server=\"{ip}:80\",overridden=\"false\"}}"
        );
        assert_eq!(sample(&m0, &up), 1, "{up}");
    }
    // Six requests, rr: three connections per server.
    let got = lab.curls(80, 6);
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    let m1 = scrape(&lab, metrics);
    let delta = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>, name: &str| {
        sample(b, name)
            .checked_sub(sample(a, name))
            .unwrap_or_else(|| panic!("{name} went down"))
    };
    assert_eq!(
        delta(&m0, &m1, &format!("rvs_service_connections_total{svc}")),
        6
    );
    for ip in ["203.0.113.11", "203.0.113.12"] {
        assert_eq!(
            delta(
                &m0,
                &m1,
                &format!("rvs_real_server_connections_total{}", rs(ip))
            ),
            3,
            "{ip}"
        );
    }
    // Per connection at least SYN, ACK, the request and a FIN come in,
    // and a SYN-ACK, the response and an ACK of the client's FIN go out;
    // every IPv4 TCP packet is at least 40 bytes.
    let inp = delta(&m0, &m1, &format!("rvs_service_in_packets_total{svc}"));
    let outp = delta(&m0, &m1, &format!("rvs_service_out_packets_total{svc}"));
    assert!(inp >= 6 * 4, "in packets +{inp}");
    assert!(outp >= 6 * 3, "out packets +{outp}");
    assert!(delta(&m0, &m1, &format!("rvs_service_in_bytes_total{svc}")) >= 40 * inp);
    assert!(delta(&m0, &m1, &format!("rvs_service_out_bytes_total{svc}")) >= 40 * outp + 6 * 9);

    // During a download (2 MiB read at 512 KiB/s, held at 1.5 MiB until
    // released): two scrapes a second apart see the busy server's
    // outgoing bytes grow.
    let dl = start_download(&lab, 512 << 10, (LEN as u64 * 3) / 4);
    let busy = busy_server(&d);
    let busy_ip = busy.trim_end_matches(":80");
    let m2 = scrape(&lab, metrics);
    std::thread::sleep(Duration::from_secs(1));
    let m3 = scrape(&lab, metrics);
    let grew = delta(
        &m2,
        &m3,
        &format!("rvs_real_server_out_bytes_total{}", rs(busy_ip)),
    );
    assert!(grew >= 128 * 1024, "out bytes +{grew} in a second");
    assert!(
        delta(
            &m2,
            &m3,
            &format!("rvs_real_server_out_packets_total{}", rs(busy_ip))
        ) >= 64
    );
    assert_eq!(
        sample(
            &m3,
            &format!("rvs_real_server_active_connections{}", rs(busy_ip))
        ),
        1
    );
    assert!(sample(&m3, "rvs_connections") >= 1);
    assert_eq!(
        sample(&m3, "rvs_drops_total{reason=\"no_dest\"}"),
        sample(&m0, "rvs_drops_total{reason=\"no_dest\"}")
    );
    assert!(
        lab.topo.client.is_running(dl.pid),
        "download over too early: {}",
        dl.log_text()
    );
    dl.release().expect("release the download");
    let status = wait_exit(&lab.topo.client, dl.pid, Duration::from_secs(30));
    assert_eq!(status, "exit status: 0", "client: {}", dl.log_text());
    assert_eq!(std::fs::read(&dl.out).expect("download").len(), LEN);
    let m4 = scrape(&lab, metrics);
    assert!(
        delta(&m0, &m4, &format!("rvs_service_out_bytes_total{svc}")) >= LEN as u64,
        "the whole download is counted"
    );
}
