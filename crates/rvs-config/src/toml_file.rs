//! The rvs TOML configuration format.
//!
//! ```toml
//! [global]
//! metrics_listen = "127.0.0.1:9617"   # default; loopback only
//! notify = "/usr/local/bin/rvs-notify" # run as: CMD up|down SERVICE SERVER REASON
//!
//! [[service]]
//! vip = "10.0.0.1:80"      # or: fwmark = 8 (with family = "inet6" for IPv6)
//! protocol = "tcp"         # tcp (default), udp, sctp
//! scheduler = "wrr"        # default wlc, as ipvsadm
//! persistence_timeout = 600
//! method = "nat"           # default for its real servers: nat, as keepalived
//! delay_loop = 5           # check timing, inherited by real servers and checks
//! sorry_server = "127.0.0.1:80"
//! drain = true             # removed servers drain (rvs extension, default false)
//! drain_timeout = 300      # seconds; 0 = until the last connection ends
//!
//! [[service.real]]
//! addr = "192.168.1.2:80"
//! weight = 3
//!
//! [[service.real.check]]
//! type = "http"            # tcp, http, https, misc
//! path = "/health"
//! status_codes = [200, "300-399"]
//! ```
//!
//! Every table refuses unknown keys, and every error names its line.
//! Durations are seconds (integers or decimals).

use crate::common::{self, ConfigError, TimingOverrides};
use crate::model::{
    CheckDef, Config, DrainPolicy, Global, RealDef, ServiceDef, DEFAULT_DRAIN_TIMEOUT,
};
use rvs_core::{
    DestConfig, Family, FwdMethod, Netmask, Protocol, SchedFlags, ServiceConfig, ServiceKey,
    DEFAULT_PERSISTENT_TIMEOUT,
};
use rvs_health::{CheckKind, HttpProbe, MiscProbe, ProbeSpec, TcpProbe};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    /// Prometheus endpoint address (default 127.0.0.1:9617: loopback, so
    /// nothing is exposed unless asked for).
    metrics_listen: Option<SocketAddr>,
    /// Serve metrics at all (default true).
    metrics: Option<bool>,
    /// Command run on each transition (default none).
    notify: Option<String>,
}

/// Timing keys, accepted on services, real servers and checks; the
/// nearest level wins, then keepalived's defaults for the check's kind
/// (delay_loop 60, connect_timeout 5, retry 1 (misc 0), delay_before_retry
/// 1 (http/https 3), rise 1, fall 1).
#[derive(Debug, Default, Clone, Copy)]
struct RawTiming {
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    rise: Option<u32>,
    fall: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    /// `IP:PORT` of the virtual service (exclusive with `fwmark`).
    vip: Option<SocketAddr>,
    /// Firewall-mark service (exclusive with `vip`).
    fwmark: Option<u32>,
    /// `inet` (default) or `inet6`, for fwmark services.
    family: Option<String>,
    /// tcp (default), udp or sctp.
    protocol: Option<String>,
    /// Scheduler (default wlc, as ipvsadm).
    scheduler: Option<String>,
    /// Scheduler flags: `flag-1..3`, `sh-port`, `sh-fallback`, `mh-port`,
    /// `mh-fallback` (default none).
    #[serde(default)]
    sched_flags: Vec<String>,
    /// Persistence in seconds (default: not persistent; 0 means 360 as
    /// with `ipvsadm -p`).
    persistence_timeout: Option<u32>,
    /// Persistence netmask (IPv4 mask, or prefix length for IPv6).
    persistence_granularity: Option<String>,
    persistence_engine: Option<String>,
    /// One-packet scheduling (default false).
    #[serde(default)]
    ops: bool,
    /// Default forwarding method of the real servers (default nat, like
    /// keepalived; ipvsadm's default would be dr).
    method: Option<String>,
    /// keepalived quorum (default 1).
    quorum: Option<u32>,
    /// keepalived hysteresis (default 0).
    hysteresis: Option<u32>,
    /// Start with checked servers down (default false).
    #[serde(default)]
    alpha: bool,
    /// Default for the real servers (default false: remove on failure).
    #[serde(default)]
    inhibit_on_failure: bool,
    /// `IP:PORT` served when quorum is lost (default none).
    sorry_server: Option<SocketAddr>,
    #[serde(default)]
    sorry_server_inhibit: bool,
    /// Forwarding method of the sorry server (default: the service's).
    sorry_server_method: Option<String>,
    /// rvs extension: real servers removed by a reload or a failed check
    /// stay listed with weight 0 until their connections end (default
    /// false: removed at once, as keepalived does).
    drain: Option<bool>,
    /// Seconds a drain may last before the server is removed anyway
    /// (default 300; 0: no bound). Setting it turns `drain` on.
    drain_timeout: Option<f64>,
    /// Check timing (see [`RawTiming`]).
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    rise: Option<u32>,
    fall: Option<u32>,
    #[serde(default)]
    real: Vec<Spanned<RawReal>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReal {
    /// `IP:PORT` (port 0 or the service's port for DR/TUN).
    addr: SocketAddr,
    /// Weight (default 1, as ipvsadm and keepalived).
    weight: Option<i32>,
    /// Forwarding method (default: the service's `method`).
    method: Option<String>,
    #[serde(default)]
    u_threshold: u32,
    #[serde(default)]
    l_threshold: u32,
    /// Default: the service's.
    inhibit_on_failure: Option<bool>,
    notify_up: Option<String>,
    notify_down: Option<String>,
    /// Check timing (see [`RawTiming`]).
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    rise: Option<u32>,
    fall: Option<u32>,
    #[serde(default)]
    check: Vec<Spanned<RawCheck>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
enum RawStatus {
    Code(u16),
    Range(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    /// tcp, http, https or misc.
    #[serde(rename = "type")]
    kind: String,
    /// Probe this address instead of the real server's.
    connect_ip: Option<IpAddr>,
    /// Probe this port instead of the real server's.
    connect_port: Option<u16>,
    /// HTTP path (default `/`).
    path: Option<String>,
    /// Accepted codes (default 200-299).
    #[serde(default)]
    status_codes: Vec<RawStatus>,
    /// genhash MD5 of the body (default: not checked).
    digest: Option<String>,
    /// Host header (default: the target address).
    virtualhost: Option<String>,
    /// `1.0` (default) or `1.1`.
    http_version: Option<String>,
    /// https: server name sent as SNI and checked against `ca_file`
    /// (default: no SNI).
    sni: Option<String>,
    /// https: accept only certificates chaining to these PEM CA
    /// certificates (default: any certificate, as keepalived).
    ca_file: Option<std::path::PathBuf>,
    /// misc: the command line.
    command: Option<String>,
    /// misc: exit 2..255 sets weight status - 2 (default false).
    #[serde(default)]
    misc_dynamic: bool,
    /// Check timing (see [`RawTiming`]).
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    rise: Option<u32>,
    fall: Option<u32>,
}

/// The timing fields of a raw service, real server or check.
macro_rules! raw_timing {
    ($r:expr) => {
        RawTiming {
            delay_loop: $r.delay_loop,
            connect_timeout: $r.connect_timeout,
            retry: $r.retry,
            delay_before_retry: $r.delay_before_retry,
            rise: $r.rise,
            fall: $r.fall,
        }
    };
}

fn timing(raw: &RawTiming, line: usize) -> Result<TimingOverrides, ConfigError> {
    let secs = |v: Option<f64>| -> Result<_, ConfigError> {
        v.map(common::seconds)
            .transpose()
            .map_err(|e| ConfigError::new(line, e))
    };
    Ok(TimingOverrides {
        delay_loop: secs(raw.delay_loop)?,
        connect_timeout: secs(raw.connect_timeout)?,
        retry: raw.retry,
        delay_before_retry: secs(raw.delay_before_retry)?,
        rise: raw.rise,
        fall: raw.fall,
    })
}

/// Parse a TOML configuration.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| common::line_of(text, s.start));
        ConfigError::new(line, e.message().to_string())
    })?;
    let global = Global {
        metrics_listen: raw.global.metrics_listen,
        metrics_disabled: raw.global.metrics == Some(false),
        notify: raw.global.notify,
    };
    let mut services: Vec<ServiceDef> = Vec::new();
    for s in raw.service {
        let line = common::line_of(text, s.span().start);
        let def = service(text, s.into_inner(), line)?;
        if let Some(prev) = services.iter().find(|p| p.key() == def.key()) {
            return Err(ConfigError::new(
                line,
                format!("service declared twice (first at line {})", prev.line),
            ));
        }
        services.push(def);
    }
    Ok(Config { global, services })
}

fn err<T>(line: usize, e: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::new(line, e))
}

fn service(text: &str, raw: RawService, line: usize) -> Result<ServiceDef, ConfigError> {
    let protocol = match raw
        .protocol
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some("sctp") => Protocol::Sctp,
        Some(p) => return err(line, format!("unknown protocol `{p}' (tcp, udp or sctp)")),
    };
    let key = match (raw.vip, raw.fwmark) {
        (Some(vip), None) => {
            if raw.family.is_some() {
                return err(line, "`family' is only for fwmark services");
            }
            ServiceKey::Addr {
                protocol,
                addr: vip.ip(),
                port: vip.port(),
            }
        }
        (None, Some(mark)) => {
            let family = match raw.family.as_deref() {
                None | Some("inet") => Family::V4,
                Some("inet6") => Family::V6,
                Some(f) => return err(line, format!("unknown family `{f}' (inet or inet6)")),
            };
            if mark == 0 {
                return err(line, "fwmark must not be 0");
            }
            ServiceKey::Fwmark { mark, family }
        }
        (Some(_), Some(_)) => return err(line, "a service has either `vip' or `fwmark', not both"),
        (None, None) => return err(line, "a service needs `vip' or `fwmark'"),
    };
    let mut config = ServiceConfig::new(key);
    if let Some(s) = &raw.scheduler {
        config.scheduler = common::scheduler(s).map_err(|e| ConfigError::new(line, e))?;
    }
    for flag in &raw.sched_flags {
        config.flags.0 |= sched_flag(flag).map_err(|e| ConfigError::new(line, e))?;
    }
    if let Some(t) = raw.persistence_timeout {
        config.persistent = Some(if t == 0 {
            DEFAULT_PERSISTENT_TIMEOUT
        } else {
            t
        });
    }
    if let Some(g) = &raw.persistence_granularity {
        config.netmask = netmask(g, key.family()).map_err(|e| ConfigError::new(line, e))?;
    }
    config.pe = raw.persistence_engine.clone();
    config.ops = raw.ops;
    let method = match &raw.method {
        Some(m) => common::method(m).map_err(|e| ConfigError::new(line, e))?,
        None => FwdMethod::Masq,
    };
    let service_timing = timing(&raw_timing!(raw), line)?;
    let sorry = match raw.sorry_server {
        Some(a) => {
            let mut d = DestConfig::new(a.ip(), a.port());
            d.fwd = match &raw.sorry_server_method {
                Some(m) => common::method(m).map_err(|e| ConfigError::new(line, e))?,
                None => method,
            };
            Some(d)
        }
        None => None,
    };
    let mut reals: Vec<RealDef> = Vec::new();
    for r in raw.real {
        let rline = common::line_of(text, r.span().start);
        let real = real(
            text,
            r.into_inner(),
            rline,
            method,
            raw.inhibit_on_failure,
            service_timing,
        )?;
        if reals
            .iter()
            .any(|p| p.dest.addr == real.dest.addr && p.dest.port == real.dest.port)
        {
            return err(rline, "real server declared twice in this service");
        }
        reals.push(real);
    }
    Ok(ServiceDef {
        service: config,
        quorum: raw.quorum.unwrap_or(1),
        hysteresis: raw.hysteresis.unwrap_or(0),
        sorry,
        sorry_inhibit: raw.sorry_server_inhibit,
        alpha: raw.alpha,
        reals,
        line,
        drain: drain_policy(raw.drain, raw.drain_timeout, line)?,
    })
}

fn drain_policy(
    on: Option<bool>,
    timeout: Option<f64>,
    line: usize,
) -> Result<Option<DrainPolicy>, ConfigError> {
    let timeout = timeout
        .map(common::seconds)
        .transpose()
        .map_err(|e| ConfigError::new(line, e))?;
    Ok(match (on, timeout) {
        (Some(false), Some(_)) => return err(line, "`drain_timeout' with `drain = false'"),
        (Some(false), None) | (None, None) => None,
        (_, Some(t)) => Some(DrainPolicy {
            timeout: (!t.is_zero()).then_some(t),
        }),
        (Some(true), None) => Some(DrainPolicy {
            timeout: Some(DEFAULT_DRAIN_TIMEOUT),
        }),
    })
}

/// A scheduler flag name to its bit.
pub fn sched_flag(name: &str) -> Result<u32, String> {
    match name {
        "flag-1" | "sh-fallback" | "mh-fallback" => Ok(SchedFlags::SCHED1),
        "flag-2" | "sh-port" | "mh-port" => Ok(SchedFlags::SCHED2),
        "flag-3" => Ok(SchedFlags::SCHED3),
        _ => Err(format!("unknown scheduler flag `{name}'")),
    }
}

/// A persistence netmask: dotted IPv4 mask or IPv6 prefix length.
pub fn netmask(text: &str, family: Family) -> Result<Netmask, String> {
    match family {
        Family::V4 => text
            .parse()
            .map(Netmask::V4)
            .map_err(|_| format!("bad IPv4 netmask `{text}'")),
        Family::V6 => match text.trim_start_matches('/').parse::<u8>() {
            Ok(p) if p <= 128 => Ok(Netmask::V6(p)),
            _ => Err(format!("bad IPv6 prefix length `{text}'")),
        },
    }
}

fn real(
    text: &str,
    raw: RawReal,
    line: usize,
    method: FwdMethod,
    inhibit: bool,
    outer: TimingOverrides,
) -> Result<RealDef, ConfigError> {
    let mut dest = DestConfig::new(raw.addr.ip(), raw.addr.port());
    dest.fwd = match &raw.method {
        Some(m) => common::method(m).map_err(|e| ConfigError::new(line, e))?,
        None => method,
    };
    dest.weight = raw.weight.unwrap_or(1);
    if dest.weight < 0 {
        return err(line, "weight must not be negative");
    }
    dest.u_threshold = raw.u_threshold;
    dest.l_threshold = raw.l_threshold;
    let real_timing = timing(&raw_timing!(raw), line)?.over(outer);
    let mut checks = Vec::new();
    for c in raw.check {
        let cline = common::line_of(text, c.span().start);
        checks.push(check(c.into_inner(), cline, raw.addr, real_timing)?);
    }
    Ok(RealDef {
        dest,
        inhibit_on_failure: raw.inhibit_on_failure.unwrap_or(inhibit),
        notify_up: raw.notify_up,
        notify_down: raw.notify_down,
        checks,
    })
}

fn check(
    raw: RawCheck,
    line: usize,
    server: SocketAddr,
    outer: TimingOverrides,
) -> Result<CheckDef, ConfigError> {
    let target = SocketAddr::new(
        raw.connect_ip.unwrap_or(server.ip()),
        raw.connect_port.unwrap_or(server.port()),
    );
    let overrides = timing(&raw_timing!(raw), line)?.over(outer);
    let not_for = |key: &str, kind: &str| {
        ConfigError::new(line, format!("`{key}' does not apply to {kind} checks"))
    };
    let (kind, probe) = match raw.kind.as_str() {
        "tcp" => {
            if raw.path.is_some() || raw.command.is_some() || raw.digest.is_some() {
                return Err(not_for("path/command/digest", "tcp"));
            }
            (CheckKind::Tcp, ProbeSpec::Tcp(TcpProbe { target }))
        }
        "http" | "https" => {
            if raw.command.is_some() {
                return Err(not_for("command", "http"));
            }
            let mut status_codes = Vec::new();
            for s in &raw.status_codes {
                status_codes.push(
                    match s {
                        RawStatus::Code(c) => common::status_range(&c.to_string()),
                        RawStatus::Range(r) => common::status_range(r),
                    }
                    .map_err(|e| ConfigError::new(line, e))?,
                );
            }
            if let Some(d) = &raw.digest {
                if d.len() != 32 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                    return err(line, format!("digest `{d}' is not 32 hex digits"));
                }
            }
            let http11 = match raw.http_version.as_deref() {
                None | Some("1.0") => false,
                Some("1.1") => true,
                Some(v) => return err(line, format!("unknown http_version `{v}' (1.0 or 1.1)")),
            };
            let tls = raw.kind == "https";
            if !tls && (raw.sni.is_some() || raw.ca_file.is_some()) {
                return Err(not_for("sni/ca_file", "http"));
            }
            (
                if tls {
                    CheckKind::Https
                } else {
                    CheckKind::Http
                },
                ProbeSpec::Http(HttpProbe {
                    target,
                    tls,
                    path: raw.path.unwrap_or_else(|| "/".to_string()),
                    virtualhost: raw.virtualhost,
                    status_codes,
                    digest: raw.digest.map(|d| d.to_ascii_lowercase()),
                    http11,
                    sni: raw.sni,
                    ca_file: raw.ca_file,
                }),
            )
        }
        "misc" => {
            let Some(command) = raw.command else {
                return err(line, "misc checks need `command'");
            };
            (
                CheckKind::Misc,
                ProbeSpec::Misc(MiscProbe {
                    command,
                    dynamic: raw.misc_dynamic,
                }),
            )
        }
        other => {
            return err(
                line,
                format!("unknown check type `{other}' (tcp, http, https or misc)"),
            )
        }
    };
    Ok(CheckDef {
        timing: overrides.resolve(kind),
        probe,
    })
}
