//! rvs-core: the sans-IO LVS engine.
//!
//! It holds virtual services and real servers, schedules new connections
//! (14 kernel schedulers), tracks connections and persistence templates with
//! the kernel's state machines and timeouts, and rewrites packets for NAT,
//! DR and TUN. It does no I/O: time comes in as an argument, frames come in
//! as bytes, and decisions go out as return values. It never reads a clock,
//! a socket, `/proc` or an OS random source.

#![forbid(unsafe_code)]

pub mod command;
pub mod conn;
pub mod model;
pub mod sched;
pub mod snapshot;

pub use command::{ApplyError, Command};
pub use model::*;
pub mod engine;
pub mod estimator;
pub mod knobs;
pub mod service;
pub mod table;
pub use engine::{Engine, EngineConfig, EngineStats, FlowEvent, FlowTuple};
mod bypass;
mod icmp;
pub mod packet;
pub mod process;
pub use process::{DropReason, PacketMeta, Route, Transmit, Verdict};
