//! A small HTTP endpoint (loopback by default) serving Prometheus text at
//! `/metrics` and the health status listing at `/status`: per service and
//! per real server counters, active/inactive connections, weights, health
//! state, plus engine drop counters and the connection-table size.

use crate::health::HealthHandle;
use crate::server::Shared;
use anyhow::Context;
use rvs_core::ServiceKey;
use rvs_health::{ServerState, ServiceStatus};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

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

fn serve(
    mut stream: TcpStream,
    shared: &Shared,
    health: Option<&HealthHandle>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Skip the headers.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (code, body, kind) = match path {
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
    write!(
        stream,
        "HTTP/1.0 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Listen on `addr` and serve scrapes on a thread each.
pub fn start(
    addr: SocketAddr,
    shared: Arc<Shared>,
    health: Option<HealthHandle>,
) -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("rvsd-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&shared);
                let health = health.clone();
                let _ = std::thread::Builder::new()
                    .name("rvsd-scrape".into())
                    .spawn(move || serve(stream, &shared, health.as_ref()));
            }
        })?;
    Ok(local)
}
