//! The option loop: applies each option in argv order to a mutable
//! command state, failing at the first bad value exactly where ipvsadm's
//! loop fails, then reads the leftover words (`--set` values, "unexpected
//! argument") and the scheduler flags.

use super::popt::{Opt, Scanner, Step};
use super::{validate, CliError, DaemonRole, Invocation};
use crate::addr::{atoi, inet_aton, inet_pton6, number_in_range};
use crate::resolve::Resolver;
use rvs_core::model::{Family, Protocol, SchedFlags, DEFAULT_PERSISTENT_TIMEOUT, MAX_TIMEOUT};
use std::net::{IpAddr, Ipv4Addr};

/// Commands, in ipvsadm's order (their index selects the legality row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    SetTimeouts,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    Sysctl,
}

impl Cmd {
    pub(super) fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::SetTimeouts => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::Sysctl => "sysctl",
        }
    }
}

/// Option bits, in ipvsadm's order (index = bit number), plus `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum OptBit {
    Numeric = 0,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Mcast,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    OnePacket,
    PersistenceEngine,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Json,
}

pub(super) const ALL_BITS: [OptBit; 35] = [
    OptBit::Numeric,
    OptBit::Connection,
    OptBit::Service,
    OptBit::Scheduler,
    OptBit::Persistent,
    OptBit::Netmask,
    OptBit::Server,
    OptBit::Forward,
    OptBit::Weight,
    OptBit::UThreshold,
    OptBit::LThreshold,
    OptBit::Mcast,
    OptBit::Timeout,
    OptBit::Daemon,
    OptBit::Stats,
    OptBit::Rate,
    OptBit::Thresholds,
    OptBit::PersistentConn,
    OptBit::NoSort,
    OptBit::SyncId,
    OptBit::Exact,
    OptBit::OnePacket,
    OptBit::PersistenceEngine,
    OptBit::SchedFlags,
    OptBit::McastGroup,
    OptBit::McastPort,
    OptBit::McastTtl,
    OptBit::SyncMaxlen,
    OptBit::TunInfo,
    OptBit::TunType,
    OptBit::TunPort,
    OptBit::TunNocsum,
    OptBit::TunCsum,
    OptBit::TunRemcsum,
    OptBit::Json,
];

impl OptBit {
    pub(super) fn name(self) -> &'static str {
        match self {
            OptBit::Numeric => "numeric",
            OptBit::Connection => "connection",
            OptBit::Service => "service-address",
            OptBit::Scheduler => "scheduler",
            OptBit::Persistent => "persistent",
            OptBit::Netmask => "netmask",
            OptBit::Server => "real-server",
            OptBit::Forward => "forwarding-method",
            OptBit::Weight => "weight",
            OptBit::UThreshold => "u-threshold",
            OptBit::LThreshold => "l-threshold",
            OptBit::Mcast => "mcast-interface",
            OptBit::Timeout => "timeout",
            OptBit::Daemon => "daemon",
            OptBit::Stats => "stats",
            OptBit::Rate => "rate",
            OptBit::Thresholds => "thresholds",
            OptBit::PersistentConn => "persistent-conn",
            OptBit::NoSort => "nosort",
            OptBit::SyncId => "syncid",
            OptBit::Exact => "exact",
            OptBit::OnePacket => "ops",
            OptBit::PersistenceEngine => "pe",
            OptBit::SchedFlags => "sched-flags",
            OptBit::McastGroup => "mcast-group",
            OptBit::McastPort => "mcast-port",
            OptBit::McastTtl => "mcast-ttl",
            OptBit::SyncMaxlen => "sync-maxlen",
            OptBit::TunInfo => "tun-info",
            OptBit::TunType => "tun-type",
            OptBit::TunPort => "tun-port",
            OptBit::TunNocsum => "tun-nocsum",
            OptBit::TunCsum => "tun-csum",
            OptBit::TunRemcsum => "tun-remcsum",
            OptBit::Json => "json",
        }
    }

    pub(super) fn mask(self) -> u64 {
        1u64 << (self as u8)
    }
}

/// Forwarding method as ipvsadm's `conn_flags` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fwd {
    Masq,
    Tunnel,
    Route,
}

/// The virtual service being described (ipvsadm's `ce.svc`).
#[derive(Debug, Clone)]
pub(super) struct SvcState {
    pub af: Option<Family>,
    /// IANA number; 0 until a service option sets it.
    pub protocol: u8,
    pub addr: IpAddr,
    pub port: u16,
    pub fwmark: u32,
    pub sched: String,
    pub persistent: Option<u32>,
    /// v4: the mask as a host-order number; v6: the prefix length.
    pub netmask: u32,
    pub pe: String,
    pub ops: bool,
    pub flags: u32,
}

/// The real server being described (ipvsadm's `ce.dest`).
#[derive(Debug, Clone)]
pub(super) struct DestState {
    pub af: Option<Family>,
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: Fwd,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// 0 ipip, 1 gue, 2 gre.
    pub tun_type: u8,
    pub tun_port: u16,
}

/// Everything the option loop collected.
#[derive(Debug, Clone)]
pub(super) struct State {
    pub cmd: Cmd,
    pub options: u64,
    pub svc: SvcState,
    pub dest: DestState,
    pub role: DaemonRole,
    pub mcast_interface: String,
    pub syncid: u8,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
    pub timeouts: Option<(u32, u32, u32)>,
    pub sysctl: Option<String>,
}

impl State {
    pub(super) fn has(&self, bit: OptBit) -> bool {
        self.options & bit.mask() != 0
    }

    fn set_option(&mut self, bit: OptBit) -> Result<(), CliError> {
        if self.has(bit) {
            return Err(CliError::usage(format!(
                "multiple '{}' options specified",
                bit.name()
            )));
        }
        self.options |= bit.mask();
        Ok(())
    }
}

const SCHED_NAME_MAX: usize = 15;
const PE_NAME_MAX: usize = 15;
const IFNAME_MAX: usize = 15;
const SCHED_FLAGS_ARG_MAX: usize = 127;

/// The first `max` bytes of `s` (C's fixed-size name buffers).
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

const SERVICE_ADDR: u8 = 1;
const SERVICE_PORT: u8 = 2;

/// Where `parse_service` writes: an address family, address, port and the
/// service's persistence mask (set to 128 for IPv6).
struct Target<'a> {
    af: &'a mut Option<Family>,
    addr: &'a mut IpAddr,
    port: &'a mut u16,
    netmask: &'a mut u32,
}

/// ipvsadm's `parse_service`: `host[:port]` or `[v6addr]:port`; returns
/// the SERVICE_ADDR/SERVICE_PORT bits (0 = unusable).
fn parse_service(buf: &str, protocol: u8, t: Target<'_>, resolver: &dyn Resolver) -> u8 {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut host = buf;
    let mut port_text: Option<&str> = None;
    if let Some(inner) = buf.strip_prefix('[') {
        let Some((h, after)) = inner.split_once(']') else {
            return 0;
        };
        let Some(p) = after.strip_prefix(':') else {
            return 0;
        };
        host = h;
        port_text = Some(p);
    }
    if let Some(a6) = inet_pton6(host) {
        *t.af = Some(Family::V6);
        *t.addr = IpAddr::V6(a6);
        *t.netmask = 128;
    } else {
        // The IPv4 branch looks for the port itself (after the last ':').
        port_text = None;
        if let Some((h, p)) = host.rsplit_once(':') {
            host = h;
            port_text = Some(p);
        }
        let a4 = inet_aton(host).or_else(|| resolver.host_to_ipv4(host));
        let Some(a4) = a4 else {
            return 0;
        };
        *t.af = Some(Family::V4);
        *t.addr = IpAddr::V4(a4);
    }
    let mut result = SERVICE_ADDR;
    if let Some(p) = port_text {
        result |= SERVICE_PORT;
        if let Some(n) = number_in_range(p, 0, 65535) {
            *t.port = n as u16;
        } else if let Some(n) =
            Protocol::from_number(protocol).and_then(|proto| resolver.service_to_port(p, proto))
        {
            *t.port = n;
        } else {
            return 0;
        }
    }
    result
}

fn parse_timeout(arg: Option<&str>, min: i64, max: i64) -> Result<u32, CliError> {
    let Some(arg) = arg else {
        return Ok(DEFAULT_PERSISTENT_TIMEOUT);
    };
    number_in_range(arg, min, max)
        .map(|n| n as u32)
        .ok_or_else(|| CliError::usage(format!("invalid timeout value `{arg}' specified")))
}

fn parse_fwmark(arg: &str) -> Result<u32, CliError> {
    number_in_range(arg, 1, i64::from(u32::MAX))
        .map(|n| n as u32)
        .ok_or_else(|| CliError::usage(format!("invalid fwmark value `{arg}' specified")))
}

/// ipvsadm's `parse_sched_flags` for scheduler `sched`.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, CliError> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    // ipvsadm crashes on a list of only commas; rvsadm reads it as no flags.
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        let (bit, only_for) = match flag {
            "flag-1" => (SchedFlags::SCHED1, None),
            "flag-2" => (SchedFlags::SCHED2, None),
            "flag-3" => (SchedFlags::SCHED3, None),
            "sh-fallback" => (SchedFlags::SCHED1, Some("sh")),
            "sh-port" => (SchedFlags::SCHED2, Some("sh")),
            "mh-fallback" => (SchedFlags::SCHED1, Some("mh")),
            "mh-port" => (SchedFlags::SCHED2, Some("mh")),
            _ => return Err(CliError::usage(format!("invalid scheduler flag `{flag}'"))),
        };
        if only_for.is_some_and(|s| s != sched) {
            return Err(CliError::usage(format!(
                "incompatible scheduler flag `{flag}'"
            )));
        }
        flags |= bit;
    }
    Ok(flags)
}

fn required(arg: Option<String>) -> String {
    // The scanner always supplies an argument for required-argument options.
    arg.unwrap_or_default()
}

/// Parses `args` (without the program name) into an invocation.
pub(super) fn parse(
    args: &[String],
    program: &str,
    resolver: &dyn Resolver,
    reading_stdin: bool,
) -> Result<Invocation, CliError> {
    let mut scanner = Scanner::new(args);
    let mut st = State {
        cmd: Cmd::List,
        options: 0,
        svc: SvcState {
            af: None,
            protocol: 0,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: 0,
            sched: String::new(),
            persistent: None,
            netmask: 0xffff_ffff,
            pe: String::new(),
            ops: false,
            flags: 0,
        },
        dest: DestState {
            af: None,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwd: Fwd::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
        },
        role: DaemonRole::Master,
        mcast_interface: String::new(),
        syncid: 0,
        sync_maxlen: None,
        mcast_group: None,
        mcast_port: None,
        mcast_ttl: None,
        timeouts: None,
        sysctl: None,
    };

    // The first option must be a command.
    let Ok(Step::Opt { opt, arg }) = scanner.next_opt() else {
        return Err(CliError::try_help(program));
    };
    st.cmd = match opt {
        Opt::AddService => Cmd::Add,
        Opt::EditService => Cmd::Edit,
        Opt::DeleteService => Cmd::Del,
        Opt::AddServer => Cmd::AddDest,
        Opt::EditServer => Cmd::EditDest,
        Opt::DeleteServer => Cmd::DelDest,
        Opt::Clear => Cmd::Flush,
        Opt::List => Cmd::List,
        Opt::Zero => Cmd::Zero,
        Opt::Set => Cmd::SetTimeouts,
        Opt::Restore => Cmd::Restore,
        Opt::Save => Cmd::Save,
        Opt::StartDaemon | Opt::StopDaemon => {
            let start = opt == Opt::StartDaemon;
            st.role = match arg.as_deref() {
                Some("master") => DaemonRole::Master,
                Some("backup") => DaemonRole::Backup,
                _ if start => {
                    return Err(CliError::usage("illegal start-daemon parameter specified"))
                }
                _ => return Err(CliError::usage("illegal start_daemon specified")),
            };
            if start {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            }
        }
        Opt::Sysctl => {
            st.sysctl = arg;
            Cmd::Sysctl
        }
        Opt::Help => return Ok(Invocation::Help),
        Opt::Version => return Ok(Invocation::Version),
        _ => return Err(CliError::try_help(program)),
    };

    let mut sched_flags_arg = String::new();
    loop {
        let (opt, arg) = match scanner.next_opt() {
            Ok(Step::Opt { opt, arg }) => (opt, arg),
            Ok(Step::End) => break,
            Err(e) => {
                return Err(CliError {
                    message: e.to_string(),
                    exit_code: 255,
                })
            }
        };
        apply_option(&mut st, opt, arg, &mut sched_flags_arg, &scanner, resolver)?;
    }

    let mut leftovers = scanner.take_leftovers().into_iter();
    if st.cmd == Cmd::SetTimeouts {
        match (leftovers.next(), leftovers.next(), leftovers.next()) {
            (Some(a), Some(b), Some(c)) => {
                let max = i64::from(MAX_TIMEOUT);
                let tcp = parse_timeout(Some(&a), 0, max)?;
                let tcpfin = parse_timeout(Some(&b), 0, max)?;
                let udp = parse_timeout(Some(&c), 0, max)?;
                st.timeouts = Some((tcp, tcpfin, udp));
            }
            _ => return Err(CliError::usage("--set option requires 3 timeout values")),
        }
    }
    if let Some(extra) = leftovers.next() {
        return Err(CliError::usage(format!("unexpected argument {extra}")));
    }
    if !sched_flags_arg.is_empty() {
        st.svc.flags &= !(SchedFlags::SCHED1 | SchedFlags::SCHED2 | SchedFlags::SCHED3);
        st.svc.flags |= parse_sched_flags(&st.svc.sched, &sched_flags_arg)?;
    }
    validate::finish(st, program, reading_stdin)
}

fn apply_option(
    st: &mut State,
    opt: Opt,
    arg: Option<String>,
    sched_flags_arg: &mut String,
    scanner: &Scanner<'_>,
    resolver: &dyn Resolver,
) -> Result<(), CliError> {
    match opt {
        Opt::TcpService | Opt::UdpService | Opt::SctpService => {
            st.set_option(OptBit::Service)?;
            st.svc.protocol = match opt {
                Opt::TcpService => Protocol::Tcp.number(),
                Opt::UdpService => Protocol::Udp.number(),
                _ => Protocol::Sctp.number(),
            };
            let text = required(arg);
            let svc = &mut st.svc;
            let target = Target {
                af: &mut svc.af,
                addr: &mut svc.addr,
                port: &mut svc.port,
                netmask: &mut svc.netmask,
            };
            if parse_service(&text, svc.protocol, target, resolver) & SERVICE_ADDR == 0 {
                return Err(CliError::usage(
                    "illegal virtual server address[:port] specified",
                ));
            }
        }
        Opt::FwmarkService => {
            st.set_option(OptBit::Service)?;
            st.svc.af = Some(Family::V4);
            st.svc.protocol = Protocol::Tcp.number();
            st.svc.fwmark = parse_fwmark(&required(arg))?;
        }
        Opt::Scheduler => {
            st.set_option(OptBit::Scheduler)?;
            st.svc.sched = truncate(&required(arg), SCHED_NAME_MAX);
        }
        Opt::Persistent => {
            st.set_option(OptBit::Persistent)?;
            st.svc.persistent = Some(parse_timeout(arg.as_deref(), 1, i64::from(MAX_TIMEOUT))?);
        }
        Opt::Netmask => {
            st.set_option(OptBit::Netmask)?;
            let text = required(arg);
            if st.svc.af != Some(Family::V6) {
                let mask = inet_aton(&text).or_else(|| resolver.host_to_ipv4(&text));
                let Some(mask) = mask else {
                    return Err(CliError::usage(
                        "illegal virtual server persistent mask specified",
                    ));
                };
                st.svc.netmask = u32::from(mask);
            } else {
                let prefix = atoi(&text);
                if !(1..=128).contains(&prefix) {
                    return Err(CliError::usage("illegal ipv6 netmask specified"));
                }
                st.svc.netmask = prefix as u32;
            }
        }
        Opt::RealServer => {
            st.set_option(OptBit::Server)?;
            let text = required(arg);
            let mut af = st.svc.af;
            let mut addr = st.svc.addr;
            let mut port = st.svc.port;
            let mut netmask = st.svc.netmask;
            let target = Target {
                af: &mut af,
                addr: &mut addr,
                port: &mut port,
                netmask: &mut netmask,
            };
            let parsed = parse_service(&text, st.svc.protocol, target, resolver);
            st.dest.af = af;
            st.dest.addr = addr;
            st.dest.port = port;
            if parsed & SERVICE_ADDR == 0 {
                return Err(CliError::usage(
                    "illegal real server address[:port] specified",
                ));
            }
            if parsed == SERVICE_ADDR {
                st.dest.port = st.svc.port;
            }
        }
        Opt::Ipip | Opt::Gatewaying | Opt::Masquerading => {
            st.set_option(OptBit::Forward)?;
            st.dest.fwd = match opt {
                Opt::Ipip => Fwd::Tunnel,
                Opt::Gatewaying => Fwd::Route,
                _ => Fwd::Masq,
            };
        }
        Opt::Weight => {
            st.set_option(OptBit::Weight)?;
            // ipvsadm 1.31 as shipped by Debian accepts 0..INT_MAX (the
            // refvm captures show `-w 65536` accepted).
            st.dest.weight = number_in_range(&required(arg), 0, i64::from(i32::MAX))
                .ok_or_else(|| CliError::usage("illegal weight specified"))?
                as i32;
        }
        Opt::UThreshold => {
            st.set_option(OptBit::UThreshold)?;
            st.dest.u_threshold = number_in_range(&required(arg), 0, i64::from(i32::MAX))
                .ok_or_else(|| CliError::usage("illegal u_threshold specified"))?
                as u32;
        }
        Opt::LThreshold => {
            st.set_option(OptBit::LThreshold)?;
            st.dest.l_threshold = number_in_range(&required(arg), 0, i64::from(i32::MAX))
                .ok_or_else(|| CliError::usage("illegal l_threshold specified"))?
                as u32;
        }
        Opt::Connection => st.set_option(OptBit::Connection)?,
        Opt::Numeric => st.set_option(OptBit::Numeric)?,
        Opt::McastInterface => {
            st.set_option(OptBit::Mcast)?;
            st.mcast_interface = truncate(&required(arg), IFNAME_MAX);
        }
        Opt::SyncId => {
            st.set_option(OptBit::SyncId)?;
            st.syncid = number_in_range(&required(arg), 0, 255)
                .ok_or_else(|| CliError::usage("illegal syncid specified"))?
                as u8;
        }
        Opt::Timeout => st.set_option(OptBit::Timeout)?,
        Opt::Daemon => st.set_option(OptBit::Daemon)?,
        Opt::Stats => st.set_option(OptBit::Stats)?,
        Opt::Rate => st.set_option(OptBit::Rate)?,
        Opt::Thresholds => st.set_option(OptBit::Thresholds)?,
        Opt::PersistentConn => st.set_option(OptBit::PersistentConn)?,
        Opt::NoSort => st.set_option(OptBit::NoSort)?,
        Opt::Sort => {}
        Opt::Exact => st.set_option(OptBit::Exact)?,
        Opt::Ipv6 => {
            if st.svc.fwmark == 0 {
                return Err(CliError::usage("-6 used before -f\n"));
            }
            st.svc.af = Some(Family::V6);
            st.svc.netmask = 128;
        }
        Opt::Ops => {
            st.set_option(OptBit::OnePacket)?;
            st.svc.ops = true;
        }
        Opt::Pe => {
            st.set_option(OptBit::PersistenceEngine)?;
            st.svc.pe = truncate(&required(arg), PE_NAME_MAX);
        }
        Opt::SchedFlags => {
            st.set_option(OptBit::SchedFlags)?;
            *sched_flags_arg = truncate(&required(arg), SCHED_FLAGS_ARG_MAX);
        }
        Opt::McastGroup => {
            st.set_option(OptBit::McastGroup)?;
            let text = required(arg);
            if text.contains(':') {
                match inet_pton6(&text) {
                    Some(a) if a.is_multicast() => st.mcast_group = Some(IpAddr::V6(a)),
                    _ => {
                        return Err(CliError::usage(format!(
                            "invalid IPv6 mcast-group `{text}'"
                        )))
                    }
                }
            } else {
                // inet_pton(AF_INET): strict dotted quad.
                match text.parse::<Ipv4Addr>() {
                    Ok(a) if a.is_multicast() => st.mcast_group = Some(IpAddr::V4(a)),
                    _ => {
                        return Err(CliError::usage(format!(
                            "invalid IPv4 mcast-group `{text}'"
                        )))
                    }
                }
            }
        }
        Opt::McastPort => {
            st.set_option(OptBit::McastPort)?;
            st.mcast_port = Some(
                number_in_range(&required(arg), 1, 65535)
                    .ok_or_else(|| CliError::usage("illegal mcast-port specified"))?
                    as u16,
            );
        }
        Opt::McastTtl => {
            st.set_option(OptBit::McastTtl)?;
            st.mcast_ttl = Some(
                number_in_range(&required(arg), 1, 255)
                    .ok_or_else(|| CliError::usage("illegal mcast-ttl specified"))?
                    as u8,
            );
        }
        Opt::SyncMaxlen => {
            st.set_option(OptBit::SyncMaxlen)?;
            st.sync_maxlen = Some(
                number_in_range(&required(arg), 1, 65535 - 20 - 8)
                    .ok_or_else(|| CliError::usage("illegal sync-maxlen specified"))?
                    as u16,
            );
        }
        Opt::TunInfo => st.set_option(OptBit::TunInfo)?,
        Opt::TunType => {
            st.set_option(OptBit::TunType)?;
            st.dest.tun_type = match required(arg).as_str() {
                "ipip" => 0,
                "gue" => 1,
                "gre" => 2,
                _ => return Err(CliError::usage("illegal tunnel type specified")),
            };
        }
        Opt::TunPort => {
            st.set_option(OptBit::TunPort)?;
            st.dest.tun_port = number_in_range(&required(arg), 1, 65535)
                .ok_or_else(|| CliError::usage("illegal tunnel port specified"))?
                as u16;
        }
        Opt::TunNocsum => st.set_option(OptBit::TunNocsum)?,
        Opt::TunCsum => st.set_option(OptBit::TunCsum)?,
        Opt::TunRemcsum => st.set_option(OptBit::TunRemcsum)?,
        Opt::Json => st.set_option(OptBit::Json)?,
        // A second command, -h or -v after the command.
        _ => {
            return Err(CliError::usage(format!(
                "invalid option `{}'",
                scanner.last_word()
            )));
        }
    }
    Ok(())
}
