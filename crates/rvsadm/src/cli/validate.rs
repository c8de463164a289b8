//! After the option loop: ipvsadm's command x option legality table, the
//! tunnel type x tunnel option table, the semantic checks (zero port, ops,
//! DR/TUN port forcing, address families, list conflicts), and the
//! construction of the [`Invocation`].

use super::parse::{Cmd, Fwd, OptBit, State, ALL_BITS};
use super::{CliError, DaemonConfig, Invocation, ListOptions, ListTarget, ListView};
use crate::addr::strtol_full;
use rvs_core::model::{
    DestConfig, Family, FwdMethod, Netmask, Protocol, SchedFlags, ServiceConfig, ServiceKey,
    TunnelCsum, TunnelKind,
};
use rvs_core::Command;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Required,
    Optional,
    Illegal,
    /// Only one option of the group may be given.
    OneOf,
}

fn rule(cmd: Cmd, bit: OptBit) -> Rule {
    use OptBit as B;
    use Rule::{Illegal, OneOf, Optional, Required};
    match cmd {
        Cmd::Add | Cmd::Edit => match bit {
            B::Service => Required,
            B::Scheduler
            | B::Persistent
            | B::Netmask
            | B::OnePacket
            | B::PersistenceEngine
            | B::SchedFlags => Optional,
            _ => Illegal,
        },
        Cmd::Del => match bit {
            B::Service => Required,
            _ => Illegal,
        },
        Cmd::List => match bit {
            B::Connection | B::Service | B::Timeout | B::Daemon => OneOf,
            B::Numeric
            | B::Stats
            | B::Rate
            | B::Thresholds
            | B::PersistentConn
            | B::NoSort
            | B::SyncId
            | B::Exact
            | B::TunInfo
            | B::Json => Optional,
            _ => Illegal,
        },
        Cmd::AddDest | Cmd::EditDest => match bit {
            B::Service | B::Server => Required,
            B::Forward
            | B::Weight
            | B::UThreshold
            | B::LThreshold
            | B::TunType
            | B::TunPort
            | B::TunNocsum
            | B::TunCsum
            | B::TunRemcsum => Optional,
            _ => Illegal,
        },
        Cmd::DelDest => match bit {
            B::Service | B::Server => Required,
            _ => Illegal,
        },
        Cmd::StartDaemon => match bit {
            B::Mcast | B::SyncId | B::McastGroup | B::McastPort | B::McastTtl | B::SyncMaxlen => {
                Optional
            }
            _ => Illegal,
        },
        Cmd::StopDaemon => match bit {
            B::SyncId => Optional,
            _ => Illegal,
        },
        Cmd::Save => match bit {
            B::Numeric => Optional,
            _ => Illegal,
        },
        Cmd::Zero => match bit {
            B::Service => Optional,
            _ => Illegal,
        },
        Cmd::Flush | Cmd::SetTimeouts | Cmd::Restore | Cmd::Sysctl => Illegal,
    }
}

fn generic_opt_check(st: &State) -> Result<(), CliError> {
    let cmd = st.cmd.name();
    let mut first_of_group: Option<OptBit> = None;
    for bit in ALL_BITS {
        let given = st.has(bit);
        match (rule(st.cmd, bit), given) {
            (Rule::Required, false) => {
                return Err(CliError::usage(format!(
                    "You need to supply the '{}' option for the '{cmd}' command",
                    bit.name()
                )))
            }
            (Rule::Illegal, true) => {
                return Err(CliError::usage(format!(
                    "Illegal '{}' option with the '{cmd}' command",
                    bit.name()
                )))
            }
            (Rule::OneOf, true) => match first_of_group {
                None => first_of_group = Some(bit),
                Some(first) => {
                    return Err(CliError::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{cmd}' command",
                        bit.name(),
                        first.name()
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

const TUN_NAMES: [&str; 3] = ["ipip", "gue", "gre"];

fn tunnel_rule(tun_type: u8, bit: OptBit) -> Rule {
    match (tun_type, bit) {
        (1, OptBit::TunPort) => Rule::Required,
        (1, _) => Rule::OneOf,
        (2, OptBit::TunNocsum | OptBit::TunCsum) => Rule::OneOf,
        _ => Rule::Illegal,
    }
}

fn tunnel_opt_check(st: &State) -> Result<(), CliError> {
    let tun = TUN_NAMES
        .get(usize::from(st.dest.tun_type))
        .copied()
        .unwrap_or("ipip");
    let mut first: Option<OptBit> = None;
    for bit in [
        OptBit::TunPort,
        OptBit::TunNocsum,
        OptBit::TunCsum,
        OptBit::TunRemcsum,
    ] {
        match (tunnel_rule(st.dest.tun_type, bit), st.has(bit)) {
            (Rule::Required, false) => {
                return Err(CliError::usage(format!(
                    "You need to supply the '{}' option for the '{tun}' tunnel type",
                    bit.name()
                )))
            }
            (Rule::Illegal, true) => {
                return Err(CliError::usage(format!(
                    "Illegal '{}' option with the '{tun}' tunnel type",
                    bit.name()
                )))
            }
            (Rule::OneOf, true) => match first {
                None => first = Some(bit),
                Some(f) => {
                    return Err(CliError::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{tun}' tunnel type",
                        bit.name(),
                        f.name()
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn service_key(st: &State) -> Result<ServiceKey, CliError> {
    if st.svc.fwmark != 0 {
        return Ok(ServiceKey::Fwmark {
            mark: st.svc.fwmark,
            family: st.svc.af.unwrap_or(Family::V4),
        });
    }
    let protocol = Protocol::from_number(st.svc.protocol)
        .ok_or_else(|| CliError::usage("illegal virtual server address[:port] specified"))?;
    Ok(ServiceKey::Addr {
        protocol,
        addr: st.svc.addr,
        port: st.svc.port,
    })
}

fn service_config(st: &State) -> Result<ServiceConfig, CliError> {
    let key = service_key(st)?;
    let netmask = if st.svc.af == Some(Family::V6) {
        Netmask::V6(st.svc.netmask.min(128) as u8)
    } else {
        Netmask::V4(Ipv4Addr::from(st.svc.netmask))
    };
    Ok(ServiceConfig {
        key,
        scheduler: if st.svc.sched.is_empty() {
            "wlc".to_string()
        } else {
            st.svc.sched.clone()
        },
        flags: SchedFlags(st.svc.flags),
        persistent: st.svc.persistent,
        netmask,
        pe: (!st.svc.pe.is_empty()).then(|| st.svc.pe.clone()),
        ops: st.svc.ops,
    })
}

fn dest_config(st: &State) -> DestConfig {
    let fwd = match st.dest.fwd {
        Fwd::Masq => FwdMethod::Masq,
        Fwd::Route => FwdMethod::Route,
        Fwd::Tunnel => FwdMethod::Tunnel {
            kind: match st.dest.tun_type {
                1 => TunnelKind::Gue {
                    port: st.dest.tun_port,
                },
                2 => TunnelKind::Gre,
                _ => TunnelKind::Ipip,
            },
            csum: if st.has(OptBit::TunRemcsum) {
                TunnelCsum::RemCsum
            } else if st.has(OptBit::TunCsum) {
                TunnelCsum::Csum
            } else {
                TunnelCsum::NoCsum
            },
        },
    };
    DestConfig {
        addr: st.dest.addr,
        port: st.dest.port,
        fwd,
        weight: st.dest.weight,
        u_threshold: st.dest.u_threshold,
        l_threshold: st.dest.l_threshold,
    }
}

fn list_options(st: &State) -> Result<ListOptions, CliError> {
    let any = |bits: &[OptBit]| bits.iter().any(|b| st.has(*b));
    if (any(&[OptBit::Connection, OptBit::Timeout, OptBit::Daemon])
        && any(&[OptBit::Stats, OptBit::Rate, OptBit::Thresholds]))
        || (any(&[OptBit::Timeout, OptBit::Daemon]) && st.has(OptBit::PersistentConn))
    {
        return Err(CliError::usage("options conflicts in the list command"));
    }
    let target = if st.has(OptBit::Connection) {
        ListTarget::Connections
    } else if st.has(OptBit::Service) {
        ListTarget::Service(service_key(st)?)
    } else if st.has(OptBit::Timeout) {
        ListTarget::Timeouts
    } else if st.has(OptBit::Daemon) {
        ListTarget::Daemons
    } else {
        ListTarget::All
    };
    let view = if st.has(OptBit::Stats) {
        ListView::Stats
    } else if st.has(OptBit::Rate) {
        ListView::Rate
    } else if st.has(OptBit::Thresholds) {
        ListView::Thresholds
    } else if st.has(OptBit::PersistentConn) {
        ListView::PersistentConn
    } else if st.has(OptBit::TunInfo) {
        ListView::TunInfo
    } else {
        ListView::Normal
    };
    Ok(ListOptions {
        target,
        view,
        numeric: st.has(OptBit::Numeric),
        exact: st.has(OptBit::Exact),
        nosort: st.has(OptBit::NoSort),
        json: st.has(OptBit::Json),
    })
}

/// `--sysctl name=value` / `--sysctl name` / `--sysctl`.
fn sysctl(arg: Option<&str>) -> Result<Invocation, CliError> {
    let Some(arg) = arg else {
        return Ok(Invocation::ShowSysctl { name: None });
    };
    let bad = || CliError::usage(format!("invalid sysctl `{arg}' specified"));
    let (name, value) = match arg.split_once('=') {
        Some((n, v)) => (n, Some(strtol_full(v).ok_or_else(bad)?)),
        None => (arg, None),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(bad());
    }
    Ok(match value {
        Some(value) => Invocation::Apply(vec![Command::SetKnob {
            name: name.to_string(),
            value,
        }]),
        None => Invocation::ShowSysctl {
            name: Some(name.to_string()),
        },
    })
}

/// Runs the checks ipvsadm's `process_options` does after parsing and
/// builds the invocation.
pub(super) fn finish(
    mut st: State,
    program: &str,
    reading_stdin: bool,
) -> Result<Invocation, CliError> {
    generic_opt_check(&st)?;

    if matches!(st.cmd, Cmd::Add | Cmd::Edit) {
        if st.svc.fwmark == 0 && st.svc.port == 0 && st.svc.persistent.is_none() {
            return Err(CliError::usage(
                "Zero port specified for non-persistent service",
            ));
        }
        if st.svc.ops && st.svc.fwmark == 0 && st.svc.protocol != Protocol::Udp.number() {
            return Err(CliError::usage(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
    }

    if matches!(st.cmd, Cmd::AddDest | Cmd::EditDest) {
        if st.svc.fwmark == 0 && matches!(st.dest.fwd, Fwd::Tunnel | Fwd::Route) {
            st.dest.port = st.svc.port;
        }
        if st.dest.af != st.svc.af && st.dest.fwd != Fwd::Tunnel {
            return Err(CliError::usage(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tunnel_opts = [
            OptBit::TunType,
            OptBit::TunPort,
            OptBit::TunNocsum,
            OptBit::TunCsum,
            OptBit::TunRemcsum,
        ];
        if tunnel_opts.iter().any(|b| st.has(*b)) && st.dest.fwd != Fwd::Tunnel {
            return Err(CliError::usage(
                "Tunnel options conflict with forward method",
            ));
        }
        tunnel_opt_check(&st)?;
    }

    let invocation = match st.cmd {
        Cmd::List => Invocation::List(list_options(&st)?),
        Cmd::Restore => {
            if reading_stdin {
                return Err(CliError::try_help(program));
            }
            Invocation::Restore
        }
        Cmd::Save => Invocation::Save {
            numeric: st.has(OptBit::Numeric),
        },
        Cmd::Flush => Invocation::Apply(vec![Command::Clear]),
        Cmd::Add => Invocation::Apply(vec![Command::AddService(service_config(&st)?)]),
        Cmd::Edit => Invocation::Apply(vec![Command::EditService(service_config(&st)?)]),
        Cmd::Del => Invocation::Apply(vec![Command::DeleteService(service_key(&st)?)]),
        Cmd::Zero => {
            let key = if st.has(OptBit::Service) {
                Some(service_key(&st)?)
            } else {
                None
            };
            Invocation::Apply(vec![Command::Zero(key)])
        }
        Cmd::AddDest => Invocation::Apply(vec![Command::AddDest {
            service: service_key(&st)?,
            dest: dest_config(&st),
        }]),
        Cmd::EditDest => Invocation::Apply(vec![Command::EditDest {
            service: service_key(&st)?,
            dest: dest_config(&st),
        }]),
        Cmd::DelDest => Invocation::Apply(vec![Command::DeleteDest {
            service: service_key(&st)?,
            addr: st.dest.addr,
            port: st.dest.port,
        }]),
        Cmd::SetTimeouts => {
            let (tcp, tcpfin, udp) = st.timeouts.unwrap_or((0, 0, 0));
            Invocation::Apply(vec![Command::SetTimeouts { tcp, tcpfin, udp }])
        }
        Cmd::StartDaemon => Invocation::StartDaemon(DaemonConfig {
            role: st.role,
            mcast_interface: if st.mcast_interface.is_empty() {
                "eth0".to_string()
            } else {
                st.mcast_interface.clone()
            },
            syncid: st.syncid,
            sync_maxlen: st.sync_maxlen,
            mcast_group: st.mcast_group,
            mcast_port: st.mcast_port,
            mcast_ttl: st.mcast_ttl,
        }),
        Cmd::StopDaemon => Invocation::StopDaemon {
            role: st.role,
            syncid: st.has(OptBit::SyncId).then_some(st.syncid),
        },
        Cmd::Sysctl => sysctl(st.sysctl.as_deref())?,
    };
    Ok(invocation)
}
