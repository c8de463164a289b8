//! A small HTTP endpoint (loopback by default) serving Prometheus text at
//! `/metrics` and the health status listing at `/status`: per service and
//! per real server counters, active/inactive connections, weights, health
//! state, plus engine drop counters and the connection-table size.
//!
//! Anything may connect to it, so it trusts nothing it reads: requests
//! are bounded in size and time, writes time out and concurrent scrapes
//! are capped ([`ScrapeLimits`]); a bad request gets `400`, a slow one
//! `408`, one too many `503`.

use crate::health::HealthHandle;
use crate::server::Shared;
use anyhow::Context;
use rvs_core::ServiceKey;
use rvs_health::{ServerState, ServiceStatus};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn service_label(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => match addr {
            std::net::IpAddr::V4(a) => format!("{}:{a}:{port}", protocol.name()),
            std::net::IpAddr::V6(a) => format!("{}:[{a}]:{port}", protocol.name()),
        },
        ServiceKey::Fwmark { mark, .. } => format!("FWM:{mark}"),
    }
}

fn server_label(addr: std::net::IpAddr, port: u16) -> String {
    match addr {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The Prometheus exposition text.
pub fn render(shared: &Shared, health: Option<&HealthHandle>) -> String {
    let (snapshot, stats, conns, drains) = {
        let d = shared.lock();
        (
            d.engine.snapshot(),
            d.engine.stats(),
            d.engine.conn_count(),
            d.drains.entries_owned(),
        )
    };
    let status: Vec<ServiceStatus> = health
        .map(|h| h.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
        .unwrap_or_default();
    let mut out = String::new();
    let help = |out: &mut String, name: &str, kind: &str, text: &str| {
        let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
    };
    help(
        &mut out,
        "rvs_connections",
        "gauge",
        "Entries in the connection table.",
    );
    let _ = writeln!(out, "rvs_connections {conns}");
    help(
        &mut out,
        "rvs_drops_total",
        "counter",
        "Frames dropped by the engine, by reason.",
    );
    for (reason, n) in [
        ("malformed", stats.drop_malformed),
        ("no_dest", stats.drop_no_dest),
        ("dest_unavailable", stats.drop_dest_unavailable),
        ("table_full", stats.drop_table_full),
        ("ttl", stats.drop_ttl),
        ("too_big", stats.drop_too_big),
        ("no_tunnel_source", stats.drop_no_tunnel_source),
    ] {
        let _ = writeln!(out, "rvs_drops_total{{reason=\"{reason}\"}} {n}");
    }
    let counters = [
        ("connections", "Connections scheduled."),
        ("in_packets", "Packets from clients."),
        ("out_packets", "Packets to clients."),
        ("in_bytes", "Bytes from clients."),
        ("out_bytes", "Bytes to clients."),
    ];
    for (name, text) in counters {
        help(
            &mut out,
            &format!("rvs_service_{name}_total"),
            "counter",
            text,
        );
        for s in &snapshot.services {
            let v = match name {
                "connections" => s.stats.conns,
                "in_packets" => s.stats.inpkts,
                "out_packets" => s.stats.outpkts,
                "in_bytes" => s.stats.inbytes,
                _ => s.stats.outbytes,
            };
            let _ = writeln!(
                out,
                "rvs_service_{name}_total{{service=\"{}\"}} {v}",
                service_label(&s.config.key)
            );
        }
        help(
            &mut out,
            &format!("rvs_real_server_{name}_total"),
            "counter",
            text,
        );
        for s in &snapshot.services {
            for d in &s.dests {
                let v = match name {
                    "connections" => d.stats.conns,
                    "in_packets" => d.stats.inpkts,
                    "out_packets" => d.stats.outpkts,
                    "in_bytes" => d.stats.inbytes,
                    _ => d.stats.outbytes,
                };
                let _ = writeln!(
                    out,
                    "rvs_real_server_{name}_total{{service=\"{}\",server=\"{}\"}} {v}",
                    service_label(&s.config.key),
                    server_label(d.config.addr, d.config.port)
                );
            }
        }
    }
    for (name, text) in [
        ("active_connections", "ActiveConn of the real server."),
        ("inactive_connections", "InActConn of the real server."),
        ("weight", "Weight in the table."),
    ] {
        help(&mut out, &format!("rvs_real_server_{name}"), "gauge", text);
        for s in &snapshot.services {
            for d in &s.dests {
                let v = match name {
                    "active_connections" => i64::from(d.active),
                    "inactive_connections" => i64::from(d.inactive),
                    _ => i64::from(d.config.weight),
                };
                let _ = writeln!(
                    out,
                    "rvs_real_server_{name}{{service=\"{}\",server=\"{}\"}} {v}",
                    service_label(&s.config.key),
                    server_label(d.config.addr, d.config.port)
                );
            }
        }
    }
    help(
        &mut out,
        "rvs_real_server_up",
        "gauge",
        "Health state of a declared real server (1 up, 0 down).",
    );
    help(
        &mut out,
        "rvs_service_quorum_up",
        "gauge",
        "Whether the service has quorum (0: sorry server or degraded).",
    );
    render_latency(&mut out, health);
    help(
        &mut out,
        "rvs_real_server_draining",
        "gauge",
        "Real servers listed with weight 0 until their connections end (1 while draining).",
    );
    for d in &drains {
        let _ = writeln!(
            out,
            "rvs_real_server_draining{{service=\"{}\",server=\"{}\"}} 1",
            service_label(&d.service),
            server_label(d.addr, d.port)
        );
    }
    for s in &status {
        let svc = service_label(&s.service);
        let _ = writeln!(
            out,
            "rvs_service_quorum_up{{service=\"{svc}\"}} {}",
            u8::from(s.quorum_up)
        );
        for r in &s.servers {
            let _ = writeln!(
                out,
                "rvs_real_server_up{{service=\"{svc}\",server=\"{}\",overridden=\"{}\"}} {}",
                r.server,
                r.overridden,
                u8::from(r.state == ServerState::Up)
            );
        }
    }
    out
}

/// Check latency per real server: a Prometheus histogram of attempt
/// durations and the newest one.
fn render_latency(out: &mut String, health: Option<&HealthHandle>) {
    let Some(h) = health else {
        return;
    };
    let mut rows: Vec<(String, String, rvs_health::LatencyHistogram)> = h
        .latency
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((svc, srv), l)| (service_label(svc), srv.to_string(), l.clone()))
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let _ = writeln!(
        out,
        "# HELP rvs_check_duration_seconds Duration of health-check attempts.\n# TYPE rvs_check_duration_seconds histogram"
    );
    for (svc, srv, l) in &rows {
        for (bound, n) in rvs_health::latency::BUCKETS.iter().zip(l.buckets.iter()) {
            let _ = writeln!(
                out,
                "rvs_check_duration_seconds_bucket{{service=\"{svc}\",server=\"{srv}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "rvs_check_duration_seconds_bucket{{service=\"{svc}\",server=\"{srv}\",le=\"+Inf\"}} {}\nrvs_check_duration_seconds_sum{{service=\"{svc}\",server=\"{srv}\"}} {}\nrvs_check_duration_seconds_count{{service=\"{svc}\",server=\"{srv}\"}} {}",
            l.count, l.sum, l.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP rvs_check_last_duration_seconds Duration of the newest health-check attempt.\n# TYPE rvs_check_last_duration_seconds gauge"
    );
    for (svc, srv, l) in &rows {
        if let Some(d) = l.last {
            let _ = writeln!(
                out,
                "rvs_check_last_duration_seconds{{service=\"{svc}\",server=\"{srv}\"}} {}",
                d.as_secs_f64()
            );
        }
    }
}

/// The status listing: per service, per real server, state, last result
/// and time of the last transition (seconds since rvsd started).
pub fn render_status(health: Option<&HealthHandle>) -> String {
    let Some(h) = health else {
        return "no health checking (rvsd runs without --config)\n".to_string();
    };
    let now = h.origin.elapsed();
    let status = h.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut out = String::new();
    for s in &status {
        let _ = writeln!(
            out,
            "{} quorum {} live-weight {}{}",
            service_label(&s.service),
            if s.quorum_up { "up" } else { "lost" },
            s.weight_sum,
            if s.sorry_active { " sorry-server" } else { "" }
        );
        for r in &s.servers {
            let state = match r.state {
                ServerState::Up => "UP",
                ServerState::Down => "DOWN",
            };
            let last = match &r.last_result {
                Some((text, at)) => {
                    format!("{text} ({:.1}s ago)", now.saturating_sub(*at).as_secs_f64())
                }
                None => "-".to_string(),
            };
            let since = match r.last_transition {
                Some(t) => format!("{:.1}s ago", now.saturating_sub(t).as_secs_f64()),
                None => "start".to_string(),
            };
            let _ = writeln!(
                out,
                "  {} {state}{} weight {} last: {last} since: {since}",
                r.server,
                if r.overridden { " OVERRIDE" } else { "" },
                r.effective_weight
            );
        }
    }
    out
}

/// Limits that keep a scraper (or anything else that connects) from
/// pinning threads or memory: requests are read with a bounded line
/// length, a bounded number of header lines and one deadline for the
/// whole request; writes time out; at most `max_concurrent` scrapes are
/// served at once and the others get `503` at once.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeLimits {
    /// Longest request or header line, in bytes (8 KiB, as common HTTP
    /// servers; a scrape request is a few hundred bytes).
    pub max_line: usize,
    /// Most header lines (100: far more than any scraper sends).
    pub max_headers: usize,
    /// The whole request must arrive within this (10 s: a scraper sends
    /// it at once; a client trickling bytes is cut off).
    pub request_deadline: Duration,
    /// A write that cannot progress for this long ends the scrape (10 s:
    /// a client that stops reading).
    pub write_timeout: Duration,
    /// Scrapes served at once (16: Prometheus scrapes one at a time per
    /// target; the rest is someone misbehaving).
    pub max_concurrent: usize,
}

impl Default for ScrapeLimits {
    fn default() -> ScrapeLimits {
        ScrapeLimits {
            max_line: 8 * 1024,
            max_headers: 100,
            request_deadline: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_concurrent: 16,
        }
    }
}

/// Reads from a stream, failing with `TimedOut` once `until` has passed
/// however the bytes trickle in (a per-read timeout alone would let a
/// client sending one byte at a time hold the thread forever).
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    until: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request deadline passed",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut s = self.stream;
        s.read(buf)
    }
}

/// Why a request was not served.
#[derive(Debug, PartialEq, Eq)]
enum BadRequest {
    /// Malformed, or a line or the header block over the limits.
    Malformed,
    /// Not all there before the deadline.
    TimedOut,
}

/// Read one request (line and headers) within the limits; the path of
/// the request line, without any query string.
fn read_request<R: BufRead>(reader: &mut R, limits: &ScrapeLimits) -> Result<String, BadRequest> {
    let max = u64::try_from(limits.max_line).unwrap_or(u64::MAX);
    let mut read_line = |buf: &mut Vec<u8>| -> Result<usize, BadRequest> {
        buf.clear();
        let n = reader
            .by_ref()
            .take(max.saturating_add(1))
            .read_until(b'\n', buf)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    BadRequest::TimedOut
                }
                _ => BadRequest::Malformed,
            })?;
        if buf.len() > limits.max_line {
            return Err(BadRequest::Malformed);
        }
        Ok(n)
    };
    let mut line = Vec::new();
    if read_line(&mut line)? == 0 {
        return Err(BadRequest::Malformed);
    }
    let request = String::from_utf8_lossy(&line).into_owned();
    let mut words = request.split_whitespace();
    let (Some(_method), Some(target)) = (words.next(), words.next()) else {
        return Err(BadRequest::Malformed);
    };
    let path = target.split('?').next().unwrap_or(target).to_string();
    // Skip the headers (an HTTP/0.9-style request may end without them).
    let mut headers = 0usize;
    loop {
        if read_line(&mut line)? == 0 || line == b"\r\n" || line == b"\n" {
            return Ok(path);
        }
        headers += 1;
        if headers > limits.max_headers {
            return Err(BadRequest::Malformed);
        }
    }
}

fn respond(stream: &mut TcpStream, code: &str, kind: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.0 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn serve(
    mut stream: TcpStream,
    shared: &Shared,
    health: Option<&HealthHandle>,
    limits: &ScrapeLimits,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(limits.write_timeout))?;
    let request = {
        let mut reader = BufReader::new(DeadlineReader {
            stream: &stream,
            until: Instant::now() + limits.request_deadline,
        });
        read_request(&mut reader, limits)
    };
    let path = match request {
        Ok(path) => path,
        Err(e) => {
            let (code, body) = match e {
                BadRequest::Malformed => ("400 Bad Request", "bad request\n"),
                BadRequest::TimedOut => ("408 Request Timeout", "request timeout\n"),
            };
            respond(&mut stream, code, "text/plain", body)?;
            close_gently(&stream);
            return Ok(());
        }
    };
    let (code, body, kind) = match path.as_str() {
        "/metrics" => (
            "200 OK",
            render(shared, health),
            "text/plain; version=0.0.4",
        ),
        "/status" => ("200 OK", render_status(health), "text/plain"),
        _ => (
            "404 Not Found",
            "try /metrics or /status\n".to_string(),
            "text/plain",
        ),
    };
    respond(&mut stream, code, kind, &body)
}

/// Close after an error response without resetting the connection: a
/// close with unread input sends a reset, which can destroy the response
/// before the client reads it. So stop writing, then discard what the
/// client still sends, bounded in bytes and time.
fn close_gently(stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    let mut s = stream;
    for _ in 0..16 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// One scrape in progress; the count goes down when it ends, panics
/// included.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Listen on `addr` and serve scrapes on a thread each, with the
/// default [`ScrapeLimits`].
pub fn start(
    addr: SocketAddr,
    shared: Arc<Shared>,
    health: Option<HealthHandle>,
) -> anyhow::Result<SocketAddr> {
    start_with(addr, shared, health, ScrapeLimits::default())
}

/// Listen on `addr` and serve scrapes on a thread each, within `limits`.
pub fn start_with(
    addr: SocketAddr,
    shared: Arc<Shared>,
    health: Option<HealthHandle>,
    limits: ScrapeLimits,
) -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let local = listener.local_addr()?;
    let in_flight = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("rvsd-metrics".into())
        .spawn(move || loop {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of
                    // spinning on the error.
                    crate::log(&format!("metrics: accept failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if in_flight.fetch_add(1, Ordering::SeqCst) >= limits.max_concurrent {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                // A few bytes into an empty socket buffer: does not block.
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    "too many scrapes at once\n",
                );
                continue;
            }
            let guard = InFlight(Arc::clone(&in_flight));
            let shared = Arc::clone(&shared);
            let health = health.clone();
            let spawned = std::thread::Builder::new()
                .name("rvsd-scrape".into())
                .spawn(move || {
                    let _guard = guard;
                    let _ = serve(stream, &shared, health.as_ref(), &limits);
                });
            if let Err(e) = spawned {
                crate::log(&format!("metrics: cannot start a scrape thread: {e}"));
            }
        })?;
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::Engine;

    fn server(limits: ScrapeLimits) -> SocketAddr {
        let shared = Arc::new(Shared::new(Engine::new(), None));
        start_with("127.0.0.1:0".parse().expect("addr"), shared, None, limits)
            .expect("metrics listener")
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s
    }

    /// Send `request`, read the answer until the server closes.
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = connect(addr);
        s.write_all(request).expect("send");
        let mut out = Vec::new();
        s.read_to_end(&mut out).expect("read the answer");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Like [`exchange`], for a server that may close without reading the
    /// request: a reset or an empty answer is `None`.
    fn try_exchange(addr: SocketAddr, request: &[u8]) -> Option<String> {
        let mut s = connect(addr);
        s.write_all(request).ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
    }

    fn status_line(answer: &str) -> &str {
        answer.split("\r\n").next().unwrap_or("")
    }

    #[test]
    fn a_scrape_gets_the_counters_and_a_query_string_is_ignored() {
        let addr = server(ScrapeLimits::default());
        let a = exchange(addr, b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(status_line(&a), "HTTP/1.0 200 OK");
        assert!(a.contains("\r\n\r\n# HELP rvs_connections "), "{a}");
        assert!(a.contains("\nrvs_connections 0\n"), "{a}");
        let a = exchange(addr, b"GET /nope HTTP/1.0\r\n\r\n");
        assert_eq!(status_line(&a), "HTTP/1.0 404 Not Found");
    }

    #[test]
    fn garbage_gets_400_and_the_endpoint_keeps_serving() {
        let limits = ScrapeLimits {
            max_line: 64,
            max_headers: 3,
            ..ScrapeLimits::default()
        };
        let addr = server(limits);
        // No path; binary bytes; a line one byte over the limit (65 bytes
        // before the newline); more header lines than allowed.
        let long = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(50));
        let headers = "GET /metrics HTTP/1.0\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n\r\n";
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"\xff\xfe\x00\r\n\r\n",
            long.as_bytes(),
            headers.as_bytes(),
            b"\r\n",
        ] {
            let a = exchange(addr, bad);
            assert_eq!(
                status_line(&a),
                "HTTP/1.0 400 Bad Request",
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Exactly at the limits: served.
        let fits = "GET /metrics HTTP/1.0\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
        assert_eq!(
            status_line(&exchange(addr, fits.as_bytes())),
            "HTTP/1.0 200 OK"
        );
    }

    /// An endless source of one byte that counts what was taken.
    struct Endless {
        byte: u8,
        taken: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(self.byte);
            self.taken += buf.len();
            Ok(buf.len())
        }
    }

    #[test]
    fn an_endless_line_or_header_block_is_cut_at_the_limit_not_buffered() {
        let limits = ScrapeLimits {
            max_line: 1024,
            max_headers: 10,
            ..ScrapeLimits::default()
        };
        // A request line that never ends.
        let mut r = BufReader::with_capacity(
            16,
            Endless {
                byte: b'A',
                taken: 0,
            },
        );
        assert_eq!(read_request(&mut r, &limits), Err(BadRequest::Malformed));
        assert!(r.get_ref().taken <= 1024 + 1 + 16, "{}", r.get_ref().taken);
        // Header lines that never end: a request line, then "\n"-free
        // bytes would be one long line; endless short lines instead.
        struct Lines(usize);
        impl Read for Lines {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let line = if self.0 == 0 {
                    &b"GET / HTTP/1.0\n"[..]
                } else {
                    b"a: b\n"
                };
                let n = line.len().min(buf.len());
                buf[..n].copy_from_slice(&line[..n]);
                self.0 += 1;
                Ok(n)
            }
        }
        let mut r = BufReader::with_capacity(16, Lines(0));
        assert_eq!(read_request(&mut r, &limits), Err(BadRequest::Malformed));
        assert!(r.get_ref().0 <= 1 + 11 + 1, "{} reads", r.get_ref().0);
    }

    #[test]
    fn a_line_over_the_limit_gets_400_over_the_network() {
        let addr = server(ScrapeLimits {
            max_line: 1024,
            ..ScrapeLimits::default()
        });
        // 8 KiB without a newline: answered once the first 1 KiB is in.
        let a = exchange(addr, &[b'A'; 8 * 1024]);
        assert_eq!(status_line(&a), "HTTP/1.0 400 Bad Request", "{a}");
        assert_eq!(
            status_line(&exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n")),
            "HTTP/1.0 200 OK"
        );
    }

    #[test]
    fn a_trickling_client_is_cut_off_at_the_request_deadline() {
        let addr = server(ScrapeLimits {
            request_deadline: Duration::from_millis(500),
            ..ScrapeLimits::default()
        });
        let mut s = connect(addr);
        let began = Instant::now();
        s.write_all(b"GET /metrics HTTP/1.0\r\n").expect("send");
        // One header byte every 100 ms: each read succeeds in time, the
        // request as a whole does not. Bounded: 100 bytes at most.
        let mut closed = false;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            if s.write_all(b"x").is_err() {
                closed = true;
                break;
            }
            if began.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let a = String::from_utf8_lossy(&out);
        assert!(
            closed || status_line(&a) == "HTTP/1.0 408 Request Timeout",
            "{a}"
        );
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "cut off after {:?}",
            began.elapsed()
        );
    }

    #[test]
    fn scrapes_over_the_cap_get_503_until_one_ends() {
        let addr = server(ScrapeLimits {
            max_concurrent: 2,
            ..ScrapeLimits::default()
        });
        // Two silent clients take both places (each held by its thread
        // until the request deadline).
        let a = connect(addr);
        let b = connect(addr);
        // The third is refused (503, or a reset when the refusal closes
        // before the request was read); a refusal does not take a place.
        // The first two count once the acceptor has seen them: wait for
        // the refusal (bounded), then check it repeats.
        let refused = || {
            try_exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n")
                .is_none_or(|c| status_line(&c) == "HTTP/1.0 503 Service Unavailable")
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !refused() {
            assert!(Instant::now() < deadline, "never refused");
            std::thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..5 {
            assert!(refused(), "a refusal took a place");
        }
        drop(a);
        drop(b);
        // Their threads end (EOF), the places come back.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let c = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n");
            if status_line(&c) == "HTTP/1.0 200 OK" {
                break;
            }
            assert!(Instant::now() < deadline, "places never freed: {c}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
