//! HTTPS (SSL_GET) probes against a local TLS server made at test time
//! (rcgen self-signed certificate, rustls server on loopback): up, down,
//! status and digest judged inside TLS, SNI sent only when named, any
//! certificate accepted unless a CA file is configured.

#![allow(clippy::unwrap_used)]

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rvs_health::probe::{md5_hex, probe_http, HttpProbe};
use rvs_health::ProbeOutcome;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BODY: &[u8] = b"hello over tls\n";

/// A TLS server answering every request with `status` and [`BODY`],
/// recording the SNI name of each handshake.
struct TlsServer {
    addr: SocketAddr,
    cert_pem: String,
    sni_seen: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
}

impl TlsServer {
    fn start(status: u16) -> TlsServer {
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let cert_pem = ck.cert.pem();
        let cert: CertificateDer<'static> = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let sni_seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, flag) = (Arc::clone(&sni_seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let Ok((sock, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                sock.set_nonblocking(false).unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(tls.conn.server_name().map(str::to_string));
                let head = format!(
                    "HTTP/1.0 {status} X\r\nContent-Length: {}\r\n\r\n",
                    BODY.len()
                );
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(BODY);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        TlsServer {
            addr,
            cert_pem,
            sni_seen,
            stop,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn https(target: SocketAddr) -> HttpProbe {
    HttpProbe {
        target,
        tls: true,
        path: "/".into(),
        virtualhost: None,
        status_codes: Vec::new(),
        digest: None,
        http11: false,
        sni: None,
        ca_file: None,
    }
}

const T: Duration = Duration::from_secs(5);

#[test]
fn self_signed_server_passes_with_no_sni_sent() {
    let srv = TlsServer::start(200);
    assert_eq!(
        probe_http(&https(srv.addr), T),
        ProbeOutcome::pass("HTTP 200")
    );
    assert_eq!(*srv.sni_seen.lock().unwrap(), vec![None]);
}

#[test]
fn status_and_digest_are_judged_inside_tls_and_sni_is_sent_when_named() {
    let srv = TlsServer::start(200);
    let mut p = https(srv.addr);
    p.digest = Some(md5_hex(BODY));
    p.sni = Some("web.example".into());
    assert_eq!(probe_http(&p, T), ProbeOutcome::pass("HTTP 200 digest ok"));
    assert_eq!(
        *srv.sni_seen.lock().unwrap(),
        vec![Some("web.example".to_string())]
    );
    p.digest = Some("0".repeat(32));
    assert!(!probe_http(&p, T).is_pass());

    let srv500 = TlsServer::start(500);
    assert_eq!(
        probe_http(&https(srv500.addr), T),
        ProbeOutcome::fail("HTTP status 500 not expected")
    );
}

#[test]
fn stopped_server_and_plain_http_server_fail() {
    // Nobody listens: connection refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let out = probe_http(&https(addr), T);
    assert_eq!(
        out,
        ProbeOutcome::fail(format!("connect to {addr}: connection refused"))
    );

    // A plain HTTP server: the TLS handshake fails, the check fails.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let paddr = plain.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = plain.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let out = probe_http(&https(paddr), T);
    assert!(!out.is_pass(), "{out:?}");
    assert!(out.text().starts_with("HTTPS "), "{out:?}");
}

#[test]
fn a_configured_ca_verifies_the_certificate() {
    let srv = TlsServer::start(200);
    let dir = tempdir();
    let good = dir.join("good.pem");
    std::fs::write(&good, &srv.cert_pem).unwrap();
    let other = TlsServer::start(200);
    let bad = dir.join("other.pem");
    std::fs::write(&bad, &other.cert_pem).unwrap();

    // Trusted CA and a name the certificate holds: pass.
    let mut p = https(srv.addr);
    p.ca_file = Some(good.clone());
    p.sni = Some("localhost".into());
    assert_eq!(probe_http(&p, T), ProbeOutcome::pass("HTTP 200"));
    // Trusted CA, verified against the address (an IP SAN): pass.
    p.sni = None;
    assert_eq!(probe_http(&p, T), ProbeOutcome::pass("HTTP 200"));
    // Trusted CA, wrong name: fail.
    p.sni = Some("elsewhere.example".into());
    assert!(!probe_http(&p, T).is_pass());
    // Another CA: fail.
    p.sni = Some("localhost".into());
    p.ca_file = Some(bad);
    assert!(!probe_http(&p, T).is_pass());
    // A missing CA file: fail, naming it.
    p.ca_file = Some(dir.join("missing.pem"));
    let out = probe_http(&p, T);
    assert!(out.text().contains("missing.pem"), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rvs-https-probe-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
