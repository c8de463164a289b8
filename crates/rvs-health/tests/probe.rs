//! Probes against real sockets and processes on loopback.

#![allow(clippy::unwrap_used)]

use rvs_health::probe::{judge_exit, md5_hex, parse_response, probe_http, probe_misc, probe_tcp};
use rvs_health::{HttpProbe, MiscProbe, ProbeOutcome, TcpProbe};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// Serve `response` to `n` connections, returning the requests seen.
fn serve(response: &'static [u8], n: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let k = s.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..k]);
            }
            seen.push(String::from_utf8_lossy(&req).into_owned());
            let _ = s.write_all(response);
        }
        seen
    });
    (addr, h)
}

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

fn http(target: SocketAddr) -> HttpProbe {
    HttpProbe {
        target,
        tls: false,
        path: "/health".into(),
        virtualhost: Some("www.example.com".into()),
        status_codes: vec![],
        digest: None,
        http11: false,
        sni: None,
        ca_file: None,
    }
}

#[test]
fn md5_matches_known_values() {
    // RFC 1321 test suite values.
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
}

#[test]
fn tcp_connect_passes_and_refused_fails() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ok = probe_tcp(
        &TcpProbe {
            target: l.local_addr().unwrap(),
        },
        Duration::from_secs(2),
    );
    assert!(ok.is_pass());
    let bad = probe_tcp(
        &TcpProbe {
            target: closed_port(),
        },
        Duration::from_secs(2),
    );
    assert!(
        matches!(&bad, ProbeOutcome::Fail { reason } if reason.ends_with("connection refused")),
        "{bad:?}"
    );
}

#[test]
fn http_get_sends_path_and_host_and_checks_digest() {
    let (addr, h) = serve(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", 2);
    let mut p = http(addr);
    p.digest = Some("900150983cd24fb0d6963f7d28e17f72".into());
    let out = probe_http(&p, Duration::from_secs(2));
    assert_eq!(out, ProbeOutcome::pass("HTTP 200 digest ok"));
    p.digest = Some("00000000000000000000000000000000".into());
    let out = probe_http(&p, Duration::from_secs(2));
    assert_eq!(
        out,
        ProbeOutcome::fail("HTTP 200 body digest 900150983cd24fb0d6963f7d28e17f72 differs from 00000000000000000000000000000000")
    );
    let seen = h.join().unwrap();
    assert!(
        seen[0].starts_with("GET /health HTTP/1.0\r\n"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("\r\nHost: www.example.com\r\n"));
}

#[test]
fn http_status_codes() {
    let (addr, h) = serve(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    let mut p = http(addr);
    assert_eq!(
        probe_http(&p, Duration::from_secs(2)),
        ProbeOutcome::fail("HTTP status 503 not expected")
    );
    p.status_codes = vec![(200, 200), (500, 503)];
    assert_eq!(
        probe_http(&p, Duration::from_secs(2)),
        ProbeOutcome::pass("HTTP 503")
    );
    h.join().unwrap();
}

#[test]
fn http_timeout_is_bounded() {
    // A server that accepts but never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = http(l.local_addr().unwrap());
    let t0 = Instant::now();
    let out = probe_http(&p, Duration::from_millis(300));
    assert!(!out.is_pass());
    assert!(out.text().contains("timeout"), "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    drop(l);
}

#[test]
fn chunked_and_content_length_bodies() {
    let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
    let r = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nhixx").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (404, &b"hi"[..]));
    assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    assert!(parse_response(b"HTTP/1.0 200").is_err());
}

#[test]
fn misc_exit_codes() {
    assert!(judge_exit(Some(0), false).is_pass());
    assert!(!judge_exit(Some(1), true).is_pass());
    assert!(!judge_exit(Some(5), false).is_pass());
    assert_eq!(
        judge_exit(Some(5), true),
        ProbeOutcome::Pass {
            weight: Some(3),
            detail: "exit status 5, weight 3".into()
        }
    );
    assert_eq!(
        judge_exit(Some(2), true),
        ProbeOutcome::Pass {
            weight: Some(0),
            detail: "exit status 2, weight 0".into()
        }
    );
    assert!(!judge_exit(None, true).is_pass());
    let t = Duration::from_secs(5);
    assert!(probe_misc(
        &MiscProbe {
            command: "exit 0".into(),
            dynamic: false
        },
        t
    )
    .is_pass());
    assert_eq!(
        probe_misc(
            &MiscProbe {
                command: "exit 12".into(),
                dynamic: true
            },
            t
        ),
        ProbeOutcome::Pass {
            weight: Some(10),
            detail: "exit status 12, weight 10".into()
        }
    );
    let t0 = Instant::now();
    let out = probe_misc(
        &MiscProbe {
            command: "sleep 30".into(),
            dynamic: false,
        },
        Duration::from_millis(200),
    );
    assert_eq!(out, ProbeOutcome::fail("timeout after 200 ms"));
    assert!(t0.elapsed() < Duration::from_secs(5));
}
