//! Blocking probes: TCP connect, HTTP GET and external commands. Each call
//! is one attempt, bounded by the timeout it is given, and returns a
//! [`ProbeOutcome`]; the state machines decide what the outcome means.
//!
//! HTTP GET speaks plain HTTP/1.0 (or 1.1 with `Connection: close`) over
//! one connection, reads the whole body (chunked bodies are decoded) and,
//! when a digest is configured, compares the lowercase hex MD5 of the body
//! with it, as keepalived's `genhash` prints it. HTTPS (SSL_GET) runs the
//! same exchange inside TLS ([`crate::tls`]: rustls, any certificate
//! accepted unless a CA file is configured, SNI only when named).

use crate::checker::ProbeOutcome;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Largest body an HTTP probe reads (8 MiB); a larger one fails the check.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// What to probe, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeSpec {
    Tcp(TcpProbe),
    Http(HttpProbe),
    Misc(MiscProbe),
}

/// TCP_CHECK: a connect within the timeout passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpProbe {
    /// The real server, or `connect_ip`/`connect_port` when given.
    pub target: SocketAddr,
}

/// HTTP_GET / SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProbe {
    pub target: SocketAddr,
    /// SSL_GET: speak TLS (see [`crate::tls`]).
    pub tls: bool,
    /// TLS: the server name to send as SNI and to verify against a CA
    /// (default: none sent; the address is used for verification).
    pub sni: Option<String>,
    /// TLS: accept only certificates chaining to the PEM certificates in
    /// this file (default: any certificate, as keepalived).
    pub ca_file: Option<std::path::PathBuf>,
    /// Request path (`/`).
    pub path: String,
    /// `Host:` header; the target address when `None`.
    pub virtualhost: Option<String>,
    /// Accepted status codes as inclusive ranges; empty means 200-299.
    pub status_codes: Vec<(u16, u16)>,
    /// Expected lowercase hex MD5 of the body (`genhash` output).
    pub digest: Option<String>,
    /// Send HTTP/1.1 instead of HTTP/1.0.
    pub http11: bool,
}

/// MISC_CHECK: run a command; exit 0 passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiscProbe {
    /// Command line, run by `/bin/sh -c`.
    pub command: String,
    /// `misc_dynamic`: exit 1 fails, 2..=255 passes with weight status - 2.
    pub dynamic: bool,
}

impl ProbeSpec {
    /// Run one attempt, bounded by `timeout`.
    pub fn run(&self, timeout: Duration) -> ProbeOutcome {
        match self {
            ProbeSpec::Tcp(p) => probe_tcp(p, timeout),
            ProbeSpec::Http(p) => probe_http(p, timeout),
            ProbeSpec::Misc(p) => probe_misc(p, timeout),
        }
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timeout".to_string(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        _ => {
            let text = e.to_string();
            match e.raw_os_error() {
                Some(code) => text
                    .strip_suffix(&format!(" (os error {code})"))
                    .map(str::to_lowercase)
                    .unwrap_or(text),
                None => text,
            }
        }
    }
}

fn connect(target: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    let timeout = timeout.max(Duration::from_millis(1));
    TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| format!("connect to {target}: {}", io_reason(&e)))
}

/// TCP_CHECK.
pub fn probe_tcp(p: &TcpProbe, timeout: Duration) -> ProbeOutcome {
    match connect(p.target, timeout) {
        Ok(s) => {
            let _ = s.shutdown(Shutdown::Both);
            ProbeOutcome::pass("TCP connect ok")
        }
        Err(reason) => ProbeOutcome::fail(reason),
    }
}

/// Lowercase hex MD5, as `genhash` prints it.
pub fn md5_hex(data: &[u8]) -> String {
    let digest = Md5::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parse a complete response (status line, headers, body up to EOF or a
/// decoded chunked body).
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("no end of HTTP headers")?;
    let head = std::str::from_utf8(raw.get(..head_end).unwrap_or_default())
        .map_err(|_| "HTTP headers are not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(format!("not an HTTP response: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            }
        }
    }
    let rest = raw.get(head_end + 4..).unwrap_or_default();
    let body = if chunked {
        decode_chunked(rest)?
    } else {
        match length {
            Some(n) => rest
                .get(..n)
                .ok_or("body shorter than Content-Length")?
                .to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok(HttpResponse { status, body })
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("truncated chunked body")?;
        let size_text = std::str::from_utf8(data.get(..line_end).unwrap_or_default())
            .map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = data.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        body.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

fn status_ok(codes: &[(u16, u16)], status: u16) -> bool {
    if codes.is_empty() {
        return (200..=299).contains(&status);
    }
    codes.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
}

/// Judge a response against the probe's expectations.
pub fn judge_http(p: &HttpProbe, resp: &HttpResponse) -> ProbeOutcome {
    if !status_ok(&p.status_codes, resp.status) {
        return ProbeOutcome::fail(format!("HTTP status {} not expected", resp.status));
    }
    if let Some(want) = &p.digest {
        let got = md5_hex(&resp.body);
        if !got.eq_ignore_ascii_case(want.trim()) {
            return ProbeOutcome::fail(format!(
                "HTTP {} body digest {got} differs from {want}",
                resp.status
            ));
        }
        return ProbeOutcome::pass(format!("HTTP {} digest ok", resp.status));
    }
    ProbeOutcome::pass(format!("HTTP {}", resp.status))
}

/// The request an HTTP probe sends.
pub fn http_request(p: &HttpProbe) -> String {
    let host = p.virtualhost.clone().unwrap_or_else(|| match p.target {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    });
    let path = if p.path.is_empty() { "/" } else { &p.path };
    let version = if p.http11 { "1.1" } else { "1.0" };
    format!("GET {path} HTTP/{version}\r\nUser-Agent: rvs-health\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn remaining(d: Instant) -> Duration {
    d.saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// HTTP_GET and SSL_GET.
pub fn probe_http(p: &HttpProbe, timeout: Duration) -> ProbeOutcome {
    let deadline = Instant::now() + timeout;
    let stream = match connect(p.target, timeout) {
        Ok(s) => s,
        Err(reason) => return ProbeOutcome::fail(reason),
    };
    // A second handle on the same socket, to move the timeouts as the
    // deadline approaches while TLS owns the stream.
    let ctl = match stream.try_clone() {
        Ok(c) => c,
        Err(e) => return ProbeOutcome::fail(format!("socket: {}", io_reason(&e))),
    };
    if !p.tls {
        let mut stream = stream;
        return exchange(p, &mut stream, &ctl, deadline, "HTTP");
    }
    let config = match crate::tls::client_config(p.ca_file.as_deref()) {
        Ok(c) => c,
        Err(reason) => return ProbeOutcome::fail(reason),
    };
    let name = match crate::tls::server_name(p.sni.as_deref(), p.target.ip()) {
        Ok(n) => n,
        Err(reason) => return ProbeOutcome::fail(reason),
    };
    let conn = match rustls::ClientConnection::new(config, name) {
        Ok(c) => c,
        Err(e) => return ProbeOutcome::fail(format!("TLS setup: {e}")),
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    exchange(p, &mut tls, &ctl, deadline, "HTTPS")
}

/// Send the request over `stream` and judge the response; `ctl` is the
/// underlying socket (for timeouts).
fn exchange<S: Read + Write>(
    p: &HttpProbe,
    stream: &mut S,
    ctl: &TcpStream,
    deadline: Instant,
    what: &str,
) -> ProbeOutcome {
    let sent = ctl
        .set_write_timeout(Some(remaining(deadline)))
        .and_then(|()| ctl.set_read_timeout(Some(remaining(deadline))))
        .and_then(|()| stream.write_all(http_request(p).as_bytes()))
        .and_then(|()| stream.flush());
    if let Err(e) = sent {
        return ProbeOutcome::fail(format!("{what} request to {}: {}", p.target, io_reason(&e)));
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if Instant::now() >= deadline {
            return ProbeOutcome::fail(format!("{what} response from {}: timeout", p.target));
        }
        if let Err(e) = ctl.set_read_timeout(Some(remaining(deadline))) {
            return ProbeOutcome::fail(format!(
                "{what} response from {}: {}",
                p.target,
                io_reason(&e)
            ));
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(buf.get(..n).unwrap_or_default());
                if raw.len() > MAX_BODY {
                    return ProbeOutcome::fail(format!(
                        "{what} response from {} larger than {MAX_BODY} bytes",
                        p.target
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Many servers close TLS without close_notify after the body;
            // what arrived is judged like a plain close.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => {
                return ProbeOutcome::fail(format!(
                    "{what} response from {}: {}",
                    p.target,
                    io_reason(&e)
                ))
            }
        }
    }
    match parse_response(&raw) {
        Ok(resp) => judge_http(p, &resp),
        Err(e) => ProbeOutcome::fail(format!("{what} response from {}: {e}", p.target)),
    }
}

/// What an exit status means for a MISC_CHECK (`None`: killed by a signal).
pub fn judge_exit(code: Option<i32>, dynamic: bool) -> ProbeOutcome {
    match code {
        Some(0) => ProbeOutcome::pass("exit status 0"),
        Some(c) if dynamic && (2..=255).contains(&c) => ProbeOutcome::Pass {
            weight: u32::try_from(c - 2).ok(),
            detail: format!("exit status {c}, weight {}", c - 2),
        },
        Some(c) => ProbeOutcome::fail(format!("exit status {c}")),
        None => ProbeOutcome::fail("killed by a signal"),
    }
}

/// MISC_CHECK: run the command in its own process group; past the
/// timeout the whole group is killed and the check fails.
pub fn probe_misc(p: &MiscProbe, timeout: Duration) -> ProbeOutcome {
    use std::os::unix::process::CommandExt;
    let deadline = Instant::now() + timeout;
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&p.command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return ProbeOutcome::fail(format!("cannot run {:?}: {e}", p.command)),
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return judge_exit(status.code(), p.dynamic),
            Ok(None) => {}
            Err(e) => return ProbeOutcome::fail(format!("waiting for {:?}: {e}", p.command)),
        }
        if Instant::now() >= deadline {
            if let Some(pid) =
                rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0))
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return ProbeOutcome::fail(format!("timeout after {} ms", timeout.as_millis()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
