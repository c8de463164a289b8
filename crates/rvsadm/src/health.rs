//! rvs extensions for health checking and draining, handled before
//! ipvsadm's parser sees the arguments (like `--save-rules`):
//!
//! ```text
//! rvsadm --reload [--clear-overrides]
//! rvsadm --health [--json]
//! rvsadm --drain -t|-u|--sctp-service VIP:port | -f MARK -r RIP[:port] [--timeout S] [--wait]
//! rvsadm --clear-override -t|-u|--sctp-service VIP:port | -f MARK -r RIP[:port]
//! ```
//!
//! The service and server options are read by ipvsadm's own parser (as
//! for `-d`), so addresses, names and ports mean what they mean there.

use crate::cli::{parse_args, Invocation};
use crate::resolve::Resolver;
use rvs_api::{Director, DirectorError, DrainReason, DrainStatus, HealthReport, ServerHealthState};
use rvs_core::{Command, ServiceKey};
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

/// One extension command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthOp {
    Reload {
        clear_overrides: bool,
    },
    Health {
        json: bool,
    },
    Drain {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        timeout_secs: Option<u64>,
        wait: bool,
    },
    ClearOverride {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
}

/// The extension this argv asks for, if its first word is one; `Err`
/// holds the message for a bad one (exit code 2).
pub fn parse_health_op(
    args: &[String],
    program: &str,
    resolver: &dyn Resolver,
) -> Option<Result<HealthOp, String>> {
    let first = args.first()?.as_str();
    let rest = args.get(1..).unwrap_or_default();
    Some(match first {
        "--reload" => match rest {
            [] => Ok(HealthOp::Reload {
                clear_overrides: false,
            }),
            [flag] if flag == "--clear-overrides" => Ok(HealthOp::Reload {
                clear_overrides: true,
            }),
            _ => Err(format!("usage: {program} --reload [--clear-overrides]")),
        },
        "--health" => match rest {
            [] => Ok(HealthOp::Health { json: false }),
            [flag] if flag == "--json" => Ok(HealthOp::Health { json: true }),
            _ => Err(format!("usage: {program} --health [--json]")),
        },
        "--drain" => parse_drain(rest, program, resolver),
        "--clear-override" => {
            target(rest, program, resolver).map(|(service, addr, port)| HealthOp::ClearOverride {
                service,
                addr,
                port,
            })
        }
        _ => return None,
    })
}

fn parse_drain(
    args: &[String],
    program: &str,
    resolver: &dyn Resolver,
) -> Result<HealthOp, String> {
    let mut timeout_secs = None;
    let mut wait = false;
    let mut rest = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "--wait" => wait = true,
            "--timeout" => {
                i += 1;
                let v = args
                    .get(i)
                    .ok_or_else(|| "--timeout needs a number of seconds".to_string())?;
                timeout_secs = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("illegal drain timeout `{v}'"))?,
                );
            }
            _ => rest.push(a.clone()),
        }
        i += 1;
    }
    let (service, addr, port) = target(&rest, program, resolver)?;
    Ok(HealthOp::Drain {
        service,
        addr,
        port,
        timeout_secs,
        wait,
    })
}

/// Service and real server, read as `ipvsadm -d` reads them.
fn target(
    args: &[String],
    program: &str,
    resolver: &dyn Resolver,
) -> Result<(ServiceKey, IpAddr, u16), String> {
    let mut argv = vec!["-d".to_string()];
    argv.extend_from_slice(args);
    match parse_args(&argv, program, resolver) {
        Ok(Invocation::Apply(cmds)) => match cmds.as_slice() {
            [Command::DeleteDest {
                service,
                addr,
                port,
            }] => Ok((*service, *addr, *port)),
            _ => {
                Err("a service (-t/-u/--sctp-service/-f) and a real server (-r) are needed".into())
            }
        },
        Ok(_) => {
            Err("a service (-t/-u/--sctp-service/-f) and a real server (-r) are needed".into())
        }
        Err(e) => Err(e.message),
    }
}

fn service_text(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("{}  {}", protocol.name(), server_text(*addr, *port)),
        ServiceKey::Fwmark { mark, .. } => format!("FWM  {mark}"),
    }
}

fn server_text(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn reason(r: DrainReason) -> &'static str {
    match r {
        DrainReason::Operator => "operator",
        DrainReason::Reload => "reload",
        DrainReason::Health => "health",
    }
}

/// One drain line.
pub fn drain_line(d: &DrainStatus) -> String {
    format!(
        "{} -> {}  {}  active {}  inactive {}  for {}{}",
        service_text(&d.service),
        server_text(d.addr, d.port),
        reason(d.reason),
        d.active,
        d.inactive,
        secs(d.elapsed_ms),
        match d.timeout_ms {
            Some(t) => format!(" (timeout {})", secs(t)),
            None => String::new(),
        }
    )
}

/// The status listing as text.
pub fn render_health(report: &HealthReport) -> String {
    let mut out = String::new();
    if !report.checking {
        out.push_str("no health checking (rvsd runs without --config)\n");
    }
    for s in &report.services {
        out.push_str(&format!(
            "{}  quorum {}  live weight {}{}\n",
            service_text(&s.service),
            if s.quorum_up { "up" } else { "lost" },
            s.live_weight,
            if s.sorry_active {
                "  sorry server serving"
            } else {
                ""
            }
        ));
        for r in &s.servers {
            let state = match r.state {
                ServerHealthState::Up => "UP",
                ServerHealthState::Down => "DOWN",
            };
            let last = match (&r.last_result, r.last_check_ago_ms) {
                (Some(text), Some(ago)) => format!(
                    "{text} ({} ago{})",
                    secs(ago),
                    match r.last_latency_us {
                        Some(us) => format!(", took {:.1}ms", us as f64 / 1000.0),
                        None => String::new(),
                    }
                ),
                _ => "-".to_string(),
            };
            let since = match r.last_transition_ago_ms {
                Some(ms) => format!("{} ago", secs(ms)),
                None => "start".to_string(),
            };
            out.push_str(&format!(
                "  -> {}  {state}{}  weight {}  last: {last}  since: {since}\n",
                server_text(r.addr, r.port),
                if r.overridden { "  OVERRIDE" } else { "" },
                r.effective_weight,
            ));
        }
    }
    if !report.drains.is_empty() {
        out.push_str("Draining:\n");
        for d in &report.drains {
            out.push_str(&format!("  {}\n", drain_line(d)));
        }
    }
    out
}

fn fail(stderr: &mut dyn Write, e: &DirectorError) -> i32 {
    let (text, code) = match e {
        DirectorError::Transport(m) => (m.clone(), 2),
        other => crate::run::director_error_text(other),
    };
    let _ = writeln!(stderr, "{text}");
    code
}

/// Run an extension against `director`. `poll` is the pause between
/// `--drain --wait` polls.
pub fn run_health_op(
    op: HealthOp,
    director: &mut dyn Director,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    poll: Duration,
) -> i32 {
    match op {
        HealthOp::Reload { clear_overrides } => match director.reload(clear_overrides) {
            Ok(s) => {
                for n in &s.notices {
                    let _ = writeln!(stderr, "{}: {n}", s.file);
                }
                let _ = writeln!(
                    stdout,
                    "reloaded {}: {} command(s) applied, {} override(s) cleared",
                    s.file, s.commands, s.overrides_cleared
                );
                0
            }
            Err(e) => fail(stderr, &e),
        },
        HealthOp::Health { json } => match director.health() {
            Ok(report) => {
                let text = if json {
                    serde_json::to_string_pretty(&report)
                        .map(|t| t + "\n")
                        .unwrap_or_default()
                } else {
                    render_health(&report)
                };
                let _ = stdout.write_all(text.as_bytes());
                0
            }
            Err(e) => fail(stderr, &e),
        },
        HealthOp::ClearOverride {
            service,
            addr,
            port,
        } => match director.clear_override(service, addr, port) {
            Ok(()) => 0,
            Err(e) => fail(stderr, &e),
        },
        HealthOp::Drain {
            service,
            addr,
            port,
            timeout_secs,
            wait,
        } => {
            let status = match director.drain(service, addr, port, timeout_secs) {
                Ok(s) => s,
                Err(e) => return fail(stderr, &e),
            };
            let _ = writeln!(stdout, "draining {}", drain_line(&status));
            if !wait {
                return 0;
            }
            let mut last = (status.active, status.inactive);
            loop {
                std::thread::sleep(poll);
                let report = match director.health() {
                    Ok(r) => r,
                    Err(e) => return fail(stderr, &e),
                };
                let now = report
                    .drains
                    .iter()
                    .find(|d| d.service == service && d.addr == addr && d.port == port);
                match now {
                    None => {
                        let _ = writeln!(
                            stdout,
                            "drained {} -> {}",
                            service_text(&service),
                            server_text(addr, port)
                        );
                        return 0;
                    }
                    Some(d) if (d.active, d.inactive) != last => {
                        last = (d.active, d.inactive);
                        let _ = writeln!(stdout, "draining {}", drain_line(d));
                    }
                    Some(_) => {}
                }
                let _ = stdout.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NumericResolver;
    use rvs_core::Protocol;
    use std::net::Ipv4Addr;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn parse(s: &str) -> Option<Result<HealthOp, String>> {
        parse_health_op(&argv(s), "rvsadm", &NumericResolver)
    }

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 80,
        }
    }

    #[test]
    fn extension_words_are_recognised_and_others_left_to_ipvsadm() {
        assert_eq!(parse("-L -n"), None);
        assert_eq!(parse(""), None);
        assert_eq!(
            parse("--reload"),
            Some(Ok(HealthOp::Reload {
                clear_overrides: false
            }))
        );
        assert_eq!(
            parse("--reload --clear-overrides"),
            Some(Ok(HealthOp::Reload {
                clear_overrides: true
            }))
        );
        assert_eq!(
            parse("--health --json"),
            Some(Ok(HealthOp::Health { json: true }))
        );
        assert!(matches!(parse("--health -x"), Some(Err(_))));
    }

    #[test]
    fn drain_reads_service_and_server_like_ipvsadm_d() {
        assert_eq!(
            parse("--drain -t 10.0.0.1:80 -r 192.168.1.2:8080 --timeout 30 --wait"),
            Some(Ok(HealthOp::Drain {
                service: key(),
                addr: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
                port: 8080,
                timeout_secs: Some(30),
                wait: true
            }))
        );
        // No port on the real server: the service's, as ipvsadm does.
        assert_eq!(
            parse("--clear-override -t 10.0.0.1:80 -r 192.168.1.2"),
            Some(Ok(HealthOp::ClearOverride {
                service: key(),
                addr: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
                port: 80,
            }))
        );
        // ipvsadm's own message for a missing -r.
        assert_eq!(
            parse("--drain -t 10.0.0.1:80"),
            Some(Err(
                "You need to supply the 'real-server' option for the 'delete-server' command"
                    .into()
            ))
        );
        assert_eq!(
            parse("--drain -t 10.0.0.1:80 -r 1.2.3.4 --timeout x"),
            Some(Err("illegal drain timeout `x'".into()))
        );
    }

    #[test]
    fn a_director_without_health_says_so() {
        let mut d = rvs_api::LocalDirector::new();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run_health_op(
            HealthOp::Health { json: false },
            &mut d,
            &mut out,
            &mut err,
            Duration::from_millis(1),
        );
        assert_eq!(code, 2);
        assert_eq!(
            String::from_utf8_lossy(&err),
            "this director cannot report health\n"
        );
    }
}
