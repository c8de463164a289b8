//! `Command`: the engine's one input language for configuration. ipvsadm
//! argv, restore files, config files, the API and the health checker all
//! become `Command`s, applied by [`crate::Engine::apply`].

use crate::model::{DestConfig, ServiceConfig, ServiceKey};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One configuration change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `-A`
    AddService(ServiceConfig),
    /// `-E`
    EditService(ServiceConfig),
    /// `-D`
    DeleteService(ServiceKey),
    /// `-C`
    Clear,
    /// `-a`
    AddDest {
        service: ServiceKey,
        dest: DestConfig,
    },
    /// `-e`
    EditDest {
        service: ServiceKey,
        dest: DestConfig,
    },
    /// `-d`
    DeleteDest {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
    /// `-Z [service]`
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp` (seconds; 0 keeps the current value).
    SetTimeouts { tcp: u32, tcpfin: u32, udp: u32 },
    /// An IPVS sysctl knob (`expire_nodest_conn`, ...).
    SetKnob { name: String, value: i64 },
}

/// Why a command was refused. Each variant maps to the errno ipvsadm's
/// `ipvs_strerror` translates, so front ends print ipvsadm's exact text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ApplyError {
    /// add_service EEXIST.
    #[error("Service already exists")]
    ServiceExists,
    /// add_service ENOENT.
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound,
    /// edit/delete/zero service ESRCH.
    #[error("No such service")]
    NoSuchService,
    /// add/edit/delete dest ESRCH.
    #[error("Service not defined")]
    ServiceNotDefined,
    /// add_dest EEXIST.
    #[error("Destination already exists")]
    DestExists,
    /// edit/delete dest ENOENT.
    #[error("No such destination")]
    NoSuchDest,
    /// ERANGE (negative weight, l_threshold > u_threshold).
    #[error("Numerical result out of range")]
    OutOfRange,
    /// EINVAL (e.g. GUE port 0, more mh dests than table slots, bad knob value).
    #[error("Invalid operation.  Possibly wrong module version, address not unicast, ...")]
    Invalid,
    /// EAFNOSUPPORT (e.g. an IPv6 real server on an IPv4 service, not tunnelled).
    #[error("Operation not supported with specified address family")]
    AddressFamily,
    /// A knob name the engine does not know.
    #[error("unknown IPVS setting `{0}'")]
    UnknownKnob(String),
}
