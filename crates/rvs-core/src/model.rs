//! The vocabulary of the engine: protocols, service keys, forwarding methods,
//! service and real-server configuration. Plain data, no behaviour beyond
//! small helpers; every other module of the engine speaks in these types.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Transport protocol of a virtual service or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// Name as ipvsadm prints it in `-L` (`TCP`, `UDP`, `SCTP`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The unspecified address of this family.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// What identifies a virtual service: (protocol, VIP, port) or (fwmark, family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: Family,
    },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    pub fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark { .. })
    }

    /// Port of the service (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }
}

/// Scheduler flag bits as the kernel defines them (`IP_VS_SVC_F_SCHED1..3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SchedFlags(pub u32);

impl SchedFlags {
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
    /// `sh-fallback` / `mh-fallback` (SCHED1).
    pub fn fallback(self) -> bool {
        self.0 & Self::SCHED1 != 0
    }
    /// `sh-port` / `mh-port` (SCHED2).
    pub fn port(self) -> bool {
        self.0 & Self::SCHED2 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 & (Self::SCHED1 | Self::SCHED2 | Self::SCHED3) == 0
    }
}

/// Persistence granularity: an IPv4 netmask or an IPv6 prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Netmask {
    V4(Ipv4Addr),
    V6(u8),
}

impl Netmask {
    pub fn full(family: Family) -> Netmask {
        match family {
            Family::V4 => Netmask::V4(Ipv4Addr::BROADCAST),
            Family::V6 => Netmask::V6(128),
        }
    }

    pub fn is_full(&self) -> bool {
        match self {
            Netmask::V4(m) => *m == Ipv4Addr::BROADCAST,
            Netmask::V6(p) => *p >= 128,
        }
    }

    /// `addr & mask`; an address of the other family is returned unchanged.
    pub fn apply(&self, addr: IpAddr) -> IpAddr {
        match (self, addr) {
            (Netmask::V4(m), IpAddr::V4(a)) => {
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(*m)))
            }
            (Netmask::V6(p), IpAddr::V6(a)) => {
                let p = u32::from((*p).min(128));
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            _ => addr,
        }
    }
}

/// Tunnel encapsulation of a `Tunnel` real server (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TunnelKind {
    #[default]
    Ipip,
    Gue {
        port: u16,
    },
    Gre,
}

/// Tunnel checksum option (`--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TunnelCsum {
    #[default]
    NoCsum,
    Csum,
    RemCsum,
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FwdMethod {
    /// NAT (`-m`).
    Masq,
    /// The real server is an address of the director itself.
    Local,
    /// IP tunnelling (`-i`).
    Tunnel { kind: TunnelKind, csum: TunnelCsum },
    /// Direct routing (`-g`, the default).
    Route,
}

impl FwdMethod {
    /// Column text in `ipvsadm -L` (`Masq`, `Local`, `Tunnel`, `Route`).
    pub fn name(&self) -> &'static str {
        match self {
            FwdMethod::Masq => "Masq",
            FwdMethod::Local => "Local",
            FwdMethod::Tunnel { .. } => "Tunnel",
            FwdMethod::Route => "Route",
        }
    }

    /// True for methods where the real server answers the client directly
    /// (the director sees only the input direction).
    pub fn is_input_only(&self) -> bool {
        matches!(self, FwdMethod::Route | FwdMethod::Tunnel { .. })
    }
}

/// Default persistence timeout when `-p` is given without a value (seconds).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Largest timeout ipvsadm accepts (31 days, seconds).
pub const MAX_TIMEOUT: u32 = 2_678_400;

/// Configuration of a virtual service (what `-A`/`-E` set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wlc`, ...).
    pub scheduler: String,
    pub flags: SchedFlags,
    /// Persistence timeout in seconds; `None` = not persistent.
    pub persistent: Option<u32>,
    pub netmask: Netmask,
    /// Persistence engine name (`sip`), only meaningful when persistent.
    pub pe: Option<String>,
    /// One-packet scheduling (`-o`).
    pub ops: bool,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults (wlc, not persistent, full mask).
    pub fn new(key: ServiceKey) -> ServiceConfig {
        ServiceConfig {
            netmask: Netmask::full(key.family()),
            key,
            scheduler: "wlc".to_string(),
            flags: SchedFlags::default(),
            persistent: None,
            pe: None,
            ops: false,
        }
    }
}

/// Configuration of a real server (what `-a`/`-e` set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestConfig {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: FwdMethod,
    /// 0 = quiesced. The kernel rejects negative weights.
    pub weight: i32,
    /// Upper connection threshold, 0 = off.
    pub u_threshold: u32,
    /// Lower connection threshold, 0 = off.
    pub l_threshold: u32,
}

impl DestConfig {
    pub fn new(addr: IpAddr, port: u16) -> DestConfig {
        DestConfig {
            addr,
            port,
            fwd: FwdMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }
}

/// Stable identity of a real server inside the engine, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DestId(pub u64);

impl fmt::Display for DestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dest#{}", self.0)
    }
}

/// Traffic counters (`--stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// Rate estimates (`--rate`): per second, as the kernel's estimator reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}
