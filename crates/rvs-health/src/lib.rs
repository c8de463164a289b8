//! rvs-health: health checking for rvs real servers.
//!
//! Two layers:
//! * sans-IO state machines with injected time ([`Checker`] for one
//!   checker's timing, [`Pool`] for one virtual service's real servers,
//!   quorum, sorry server and operator overrides). They never read a clock
//!   or touch a socket: the caller passes `now` (a [`Duration`] since an
//!   origin of its choosing) and probe outcomes, and reads back events and
//!   engine [`rvs_core::Command`]s.
//! * blocking probes ([`probe`]): TCP connect, HTTP GET and HTTPS GET
//!   ([`tls`], rustls with ring) with status codes
//!   and a keepalived `genhash`-style MD5 body digest, and external
//!   commands (`MISC_CHECK`, with `misc_dynamic`). Each is bounded by its
//!   timeout; the daemon runs them on threads.
//!
//! This crate does not touch the datapath or the engine; it only says what
//! the engine's real-server table should become.
//!
//! [`Duration`]: std::time::Duration

#![forbid(unsafe_code)]

pub mod checker;
pub mod latency;
pub mod pool;
pub mod probe;
pub mod timing;
pub mod tls;

pub use checker::{CheckUpdate, Checker, ProbeOutcome};
pub use latency::LatencyHistogram;
pub use pool::{
    HealthEvent, Pool, PoolConfig, ProbeId, ServerKey, ServerSpec, ServerState, ServerStatus,
    ServiceStatus,
};
pub use probe::{HttpProbe, MiscProbe, ProbeSpec, TcpProbe};
pub use timing::{CheckKind, CheckTiming};
