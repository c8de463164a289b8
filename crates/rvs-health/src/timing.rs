//! Check timing: keepalived's `delay_loop`, `connect_timeout`, `retry`,
//! `delay_before_retry`, plus HAProxy-style `rise`/`fall` on top.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What kind of checker a timing belongs to; keepalived's defaults for
/// `retry` and `delay_before_retry` depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckKind {
    Tcp,
    Http,
    Https,
    Misc,
}

/// When and how often one checker probes.
///
/// A *check* runs every `delay_loop`; it is `1 + retry` *attempts*,
/// `delay_before_retry` apart, each bounded by `connect_timeout`. Retries
/// happen only while the checker considers the server up (keepalived does
/// the same: a down server is probed once per loop). A server goes down
/// after `fall` consecutive failed checks and up after `rise` consecutive
/// passed checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckTiming {
    /// Time between the end of one check and the start of the next
    /// (keepalived default 60 s).
    pub delay_loop: Duration,
    /// Bound on one attempt (keepalived default 5 s).
    pub connect_timeout: Duration,
    /// Extra attempts after a failed one while the server is up
    /// (keepalived default 1; 0 for MISC_CHECK).
    pub retry: u32,
    /// Pause between a failed attempt and its retry (keepalived default
    /// 1 s; 3 s for HTTP_GET/SSL_GET).
    pub delay_before_retry: Duration,
    /// Consecutive passed checks needed to come up (default 1, so
    /// keepalived configurations behave as they did under keepalived).
    pub rise: u32,
    /// Consecutive failed checks needed to go down (default 1, as above).
    pub fall: u32,
}

impl CheckTiming {
    /// keepalived's defaults for this kind of checker, rise = fall = 1.
    pub fn defaults(kind: CheckKind) -> CheckTiming {
        let (retry, delay_before_retry) = match kind {
            CheckKind::Tcp => (1, Duration::from_secs(1)),
            CheckKind::Http | CheckKind::Https => (1, Duration::from_secs(3)),
            CheckKind::Misc => (0, Duration::from_secs(1)),
        };
        CheckTiming {
            delay_loop: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            retry,
            delay_before_retry,
            rise: 1,
            fall: 1,
        }
    }
}
