//! Pieces both readers share: the error type, scheduler and forwarding
//! method names, status-code ranges, and check-timing inheritance
//! (service -> real server -> checker, then keepalived's defaults).

use rvs_core::{FwdMethod, TunnelCsum, TunnelKind};
use rvs_health::{CheckKind, CheckTiming};
use std::time::Duration;

/// A configuration the reader refused, with the 1-based line it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

impl ConfigError {
    pub fn new(line: usize, message: impl Into<String>) -> ConfigError {
        ConfigError {
            line,
            message: message.into(),
        }
    }
}

/// Something the reader accepted but did not act on (unsupported keyword,
/// `vrrp_*` block), with its line. Never dropped silently: the daemon logs
/// every notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Schedulers the engine implements (the kernel's 14).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// Check a scheduler name.
pub fn scheduler(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    if SCHEDULERS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "unknown scheduler `{name}' (one of {})",
            SCHEDULERS.join(", ")
        ))
    }
}

/// A forwarding method by name: `nat`/`masq`, `dr`/`route`/`gate`,
/// `tun`/`ipip`/`tunnel`, `local` (any case).
pub fn method(name: &str) -> Result<FwdMethod, String> {
    match name.to_ascii_lowercase().as_str() {
        "nat" | "masq" | "masquerade" => Ok(FwdMethod::Masq),
        "dr" | "route" | "gate" | "direct" => Ok(FwdMethod::Route),
        "tun" | "ipip" | "tunnel" => Ok(FwdMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        }),
        "local" => Ok(FwdMethod::Local),
        _ => Err(format!(
            "unknown forwarding method `{name}' (nat, dr, tun or local)"
        )),
    }
}

/// `200`, `200-299`.
pub fn status_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("bad status code `{text}' (N or N-M, 100..599)");
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>(), b.trim().parse::<u16>()),
        None => (text.trim().parse::<u16>(), text.trim().parse::<u16>()),
    };
    let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
    if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// Seconds as a duration; negative or non-finite values are refused.
pub fn seconds(v: f64) -> Result<Duration, String> {
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("bad duration {v} (seconds, >= 0)"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Timing settings as written at one level; unset fields inherit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimingOverrides {
    pub delay_loop: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

impl TimingOverrides {
    /// `self` where set, else `outer`.
    pub fn over(self, outer: TimingOverrides) -> TimingOverrides {
        TimingOverrides {
            delay_loop: self.delay_loop.or(outer.delay_loop),
            connect_timeout: self.connect_timeout.or(outer.connect_timeout),
            retry: self.retry.or(outer.retry),
            delay_before_retry: self.delay_before_retry.or(outer.delay_before_retry),
            rise: self.rise.or(outer.rise),
            fall: self.fall.or(outer.fall),
        }
    }

    /// Fill what is unset from keepalived's defaults for `kind`. rise and
    /// fall below 1 mean 1.
    pub fn resolve(self, kind: CheckKind) -> CheckTiming {
        let d = CheckTiming::defaults(kind);
        CheckTiming {
            delay_loop: self.delay_loop.unwrap_or(d.delay_loop),
            connect_timeout: self.connect_timeout.unwrap_or(d.connect_timeout),
            retry: self.retry.unwrap_or(d.retry),
            delay_before_retry: self.delay_before_retry.unwrap_or(d.delay_before_retry),
            rise: self.rise.unwrap_or(d.rise).max(1),
            fall: self.fall.unwrap_or(d.fall).max(1),
        }
    }
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
        + 1
}
