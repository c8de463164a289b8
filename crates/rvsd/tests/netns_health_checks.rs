//! The checkers end to end with real traffic (issue 5): rvsd with a TOML
//! `--config` in the director namespace of the seed's NAT topology.
//!
//! * HTTP GET with expected status codes and a body digest (the MD5 is
//!   computed by coreutils' `md5sum`, not by the code under test): a page
//!   that changes fails the digest, a path that starts answering 200 where
//!   404 is expected fails the status check;
//! * HTTPS GET against a self-signed server (certificate made by the
//!   `openssl` command; skipped without it), next to a real server that
//!   speaks plain HTTP on the same port and so never passes;
//! * MISC_CHECK with `misc_dynamic`: exit status 2+N sets weight N, seen
//!   in `ipvsadm -L -n` and in the wrr shares of the traffic.
//!
//! Needs root; skipped otherwise.

mod netns_health_lab;

use netns_health_lab::{
    md5sum, stop, wait_health, wait_log, wait_pool, wait_steering, Lab, MARGIN,
};
use rvs_testnet::{start_http_on, Netns, Spawned, NAT_RIP1, NAT_RIP2, NAT_VIP};
use std::path::Path;

fn count(got: &[Result<String, String>], page: &str) -> usize {
    got.iter().filter(|r| r.as_deref() == Ok(page)).count()
}

#[test]
fn http_checks_judge_status_codes_and_the_body_digest() {
    let Some(lab) = Lab::new("rvhhttp") else {
        return;
    };
    // The NAT topology serves "RS1-web1\n" at / on RS1.
    let digest = md5sum(b"RS1-web1\n");
    let cfg = lab.write(
        "rvs.toml",
        &format!(
            r#"[[service]]
vip = "198.51.100.10:80"
scheduler = "rr"
delay_loop = 0.3
connect_timeout = 1
retry = 0

[[service.real]]
addr = "203.0.113.11:80"
[[service.real.check]]
type = "http"
path = "/"
status_codes = [200]
digest = "{digest}"

[[service.real]]
addr = "203.0.113.12:80"
[[service.real.check]]
type = "http"
path = "/missing"
status_codes = [404]
"#
        ),
    );
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    let both = [
        "TCP 198.51.100.10:80 rr",
        "-> 203.0.113.11:80 Masq 1",
        "-> 203.0.113.12:80 Masq 1",
    ];
    // Both pass their checks (not merely "up until proven down").
    wait_health(&d, "203.0.113.11:80", "RS1 digest ok", |l| {
        l.contains("  UP  weight 1  last: HTTP 200 digest ok (")
    });
    wait_health(&d, "203.0.113.12:80", "RS2 answers 404", |l| {
        l.contains("  UP  weight 1  last: HTTP 404 (")
    });
    wait_pool(&d, &both, MARGIN);
    wait_steering(&d, 1, 2);
    let got = lab.curls(80, 4);
    assert_eq!((count(&got, "RS1-web1"), count(&got, "RS2-web2")), (2, 2));

    // RS1's page changes: same status, other digest: RS1 leaves.
    let index1 = lab.topo.dir.join("www-rs1").join("index.html");
    std::fs::write(&index1, "RS1-changed\n").expect("change RS1's page");
    let only_rs2 = ["TCP 198.51.100.10:80 rr", "-> 203.0.113.12:80 Masq 1"];
    wait_pool(&d, &only_rs2, MARGIN);
    wait_log(
        &d,
        &format!(
            "TCP 198.51.100.10:80, 203.0.113.11:80 is gone. (HTTP 200 body digest {} differs from {digest})",
            md5sum(b"RS1-changed\n")
        ),
        MARGIN,
    );
    let got = lab.curls(80, 6);
    assert_eq!(count(&got, "RS2-web2"), 6, "{got:?}");

    // The page restored: RS1 is back.
    std::fs::write(&index1, "RS1-web1\n").expect("restore RS1's page");
    wait_pool(&d, &both, MARGIN);

    // RS2's /missing appears (200 where 404 is expected): RS2 leaves.
    std::fs::write(lab.topo.dir.join("www-rs2").join("missing"), "here\n").expect("write");
    let only_rs1 = ["TCP 198.51.100.10:80 rr", "-> 203.0.113.11:80 Masq 1"];
    wait_pool(&d, &only_rs1, MARGIN);
    wait_log(
        &d,
        "TCP 198.51.100.10:80, 203.0.113.12:80 is gone. (HTTP status 200 not expected)",
        MARGIN,
    );
    wait_steering(&d, 1, 1);
    let got = lab.curls(80, 4);
    assert_eq!(count(&got, "RS1-web1"), 4, "{got:?}");
}

/// Python's HTTP server inside TLS (handshake in the handler thread, so
/// a client that never speaks TLS cannot block the accept loop), no
/// reverse DNS at start. argv: address, port, directory, cert, key.
const TLS_SERVER: &str = "\
import functools, http.server, socketserver, ssl, sys
class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
srv = Server((sys.argv[1], int(sys.argv[2])), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[4], sys.argv[5])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
srv.serve_forever()
";

fn python3() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// `curl -sk https://addr:port/` from `ns`: the trimmed body or the error.
fn curl_https(ns: &Netns, addr: std::net::Ipv4Addr, port: u16) -> Result<String, String> {
    let url = format!("https://{addr}:{port}/");
    let out = ns
        .output(
            &["curl", "-sSk", "--noproxy", "*", "--max-time", "5", &url],
            &[],
        )
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn https_check_against_a_self_signed_server() {
    let has_openssl = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_openssl {
        eprintln!("skipped: needs the openssl command for a self-signed certificate");
        return;
    }
    let Some(lab) = Lab::new("rvhtls") else {
        return;
    };
    let (cert, key) = (lab.path_str("cert.pem"), lab.path_str("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=rs1.example",
            "-keyout",
            &key,
            "-out",
            &cert,
        ])
        .output()
        .expect("run openssl");
    assert!(
        made.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let root = lab.topo.dir.join("www-rs1-tls");
    std::fs::create_dir_all(&root).expect("web root");
    std::fs::write(root.join("index.html"), "RS1-tls\n").expect("page");
    let root_s = root.to_string_lossy().into_owned();
    let rip1 = NAT_RIP1.to_string();
    let tls: Spawned = lab
        .topo
        .rs1
        .spawn(
            &[
                python3(),
                "-c",
                TLS_SERVER,
                &rip1,
                "443",
                &root_s,
                &cert,
                &key,
            ],
            &[],
            Some(&lab.path("https-rs1.log")),
        )
        .expect("start the TLS server");
    Netns::wait_for("TLS server on RS1", MARGIN, || {
        curl_https(&lab.topo.rs1, NAT_RIP1, 443).as_deref() == Ok("RS1-tls")
    })
    .expect("the TLS server answers");
    // RS2 answers plain HTTP on 443: an HTTPS check never passes there.
    start_http_on(
        &lab.topo.rs2,
        &lab.topo.dir,
        "rs2-443",
        (NAT_RIP2, 443),
        "RS2-plain",
    )
    .expect("plain HTTP on RS2:443");

    let digest = md5sum(b"RS1-tls\n");
    let cfg = lab.write(
        "rvs.toml",
        &format!(
            r#"[[service]]
vip = "198.51.100.10:443"
scheduler = "rr"
delay_loop = 0.3
connect_timeout = 1
retry = 0

[[service.real]]
addr = "203.0.113.11:443"
[[service.real.check]]
type = "https"
path = "/"
status_codes = [200]
digest = "{digest}"

[[service.real]]
addr = "203.0.113.12:443"
[[service.real.check]]
type = "https"
path = "/"
"#
        ),
    );
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    wait_health(&d, "203.0.113.11:443", "RS1 passes over TLS", |l| {
        l.contains("  UP  weight 1  last: HTTP 200 digest ok (")
    });
    let rs2 = wait_health(&d, "203.0.113.12:443", "RS2 fails over TLS", |l| {
        l.contains("  DOWN  ")
    });
    assert!(rs2.contains("HTTPS"), "{rs2}");
    let only_rs1 = ["TCP 198.51.100.10:443 rr", "-> 203.0.113.11:443 Masq 1"];
    wait_pool(&d, &only_rs1, MARGIN);
    wait_steering(&d, 1, 1);
    for _ in 0..4 {
        assert_eq!(
            curl_https(&lab.topo.client, NAT_VIP, 443).as_deref(),
            Ok("RS1-tls"),
            "{}",
            d.log_text()
        );
    }

    // The TLS server stops: RS1 leaves too.
    stop(&lab.topo.rs1, tls);
    wait_pool(&d, &["TCP 198.51.100.10:443 rr"], MARGIN);
    // (refused, or reset when the server died during a check)
    wait_log(
        &d,
        "TCP 198.51.100.10:443, 203.0.113.11:443 is gone. (",
        MARGIN,
    );
}

#[test]
fn misc_check_with_dynamic_weight_sets_the_table_weight() {
    let Some(lab) = Lab::new("rvhmisc") else {
        return;
    };
    // Each server's check exits with the number in its file.
    let w1 = lab.write("w1", "5\n");
    let w2 = lab.write("w2", "0\n");
    let cfg = lab.write(
        "rvs.toml",
        &format!(
            r#"[[service]]
vip = "198.51.100.10:80"
scheduler = "wrr"
delay_loop = 0.3
connect_timeout = 2

[[service.real]]
addr = "203.0.113.11:80"
weight = 1
[[service.real.check]]
type = "misc"
command = "exit $(cat {w1})"
misc_dynamic = true

[[service.real]]
addr = "203.0.113.12:80"
weight = 2
[[service.real.check]]
type = "misc"
command = "exit $(cat {w2})"
misc_dynamic = true
"#
        ),
    );
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    // Exit 5 = 2 + 3: weight 3. Exit 0: passes, weight stays 2.
    let pool_3_2 = [
        "TCP 198.51.100.10:80 wrr",
        "-> 203.0.113.11:80 Masq 3",
        "-> 203.0.113.12:80 Masq 2",
    ];
    wait_pool(&d, &pool_3_2, MARGIN);
    wait_steering(&d, 1, 2);
    // wrr 3:2 repeats every 5 picks: 10 picks hold two rounds.
    let got = lab.curls(80, 10);
    assert_eq!(
        (count(&got, "RS1-web1"), count(&got, "RS2-web2")),
        (6, 4),
        "{got:?}"
    );

    // Exit 9: weight 7.
    std::fs::write(&w1, "9\n").expect("w1");
    let pool_7_2 = [
        "TCP 198.51.100.10:80 wrr",
        "-> 203.0.113.11:80 Masq 7",
        "-> 203.0.113.12:80 Masq 2",
    ];
    wait_pool(&d, &pool_7_2, MARGIN);
    let got = lab.curls(80, 9);
    assert_eq!(
        (count(&got, "RS1-web1"), count(&got, "RS2-web2")),
        (7, 2),
        "{got:?}"
    );
    let line = netns_health_lab::health_line(&netns_health_lab::health(&d), "203.0.113.11:80")
        .unwrap_or_default();
    assert!(
        line.contains("  UP  weight 7  last: exit status 9, weight 7 ("),
        "{line}"
    );

    // Exit 1: the check fails and RS1 leaves.
    std::fs::write(&w1, "1\n").expect("w1");
    wait_pool(
        &d,
        &["TCP 198.51.100.10:80 wrr", "-> 203.0.113.12:80 Masq 2"],
        MARGIN,
    );
    wait_log(
        &d,
        "TCP 198.51.100.10:80, 203.0.113.11:80 is gone. (exit status 1)",
        MARGIN,
    );

    // Exit 4: back, with weight 2.
    std::fs::write(&w1, "4\n").expect("w1");
    wait_pool(
        &d,
        &[
            "TCP 198.51.100.10:80 wrr",
            "-> 203.0.113.11:80 Masq 2",
            "-> 203.0.113.12:80 Masq 2",
        ],
        MARGIN,
    );
}
