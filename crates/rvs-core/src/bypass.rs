//! `cache_bypass`, as the kernel's `ip_vs_leave` does it: when a firewall
//! mark service has no real server for a new connection and the packet's
//! destination is a non-local unicast address, the packet goes on to that
//! original destination through a bypass connection entry (no real server,
//! destination address unspecified, so later packets of the flow follow
//! it), TTL decremented and MTU checked like any forwarded packet.

use crate::conn::{conn_protocol, ConnFlags, Direction, EngineTime, InKey, NewConn};
use crate::engine::{Engine, FlowEvent, FlowTuple};
use crate::model::{Family, FwdMethod, Protocol};
use crate::packet::PacketInfo;
use crate::process::{drop_verdict, DropReason, PacketMeta, Route, Verdict};
use std::net::IpAddr;

impl Engine {
    /// `ip_vs_leave` with `cache_bypass`: a fwmark service with no real
    /// server sends the packet on to its original (non-local, unicast)
    /// destination through a bypass connection (no real server, daddr
    /// unspecified). `None` when the knob does not apply.
    pub(crate) fn cache_bypass(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        si: usize,
        protocol: Protocol,
        meta: PacketMeta,
        now: EngineTime,
    ) -> Option<Verdict> {
        let svc = self.table.services.get(si)?;
        if !self.table.knobs.cache_bypass
            || !svc.config.key.is_fwmark()
            || !self.is_remote_unicast(info.daddr)
        {
            return None;
        }
        let ops = svc.config.ops && protocol == Protocol::Udp;
        if !ops {
            let key = InKey {
                protocol: conn_protocol(protocol),
                caddr: info.saddr,
                cport: info.sport,
                vaddr: info.daddr,
                vport: info.dport,
            };
            let unspecified = match info.family {
                Family::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            let mut new = NewConn::connection(key, unspecified, 0, None, FwdMethod::Route)
                .with_fwmark(meta.fwmark);
            // No destination, so no NOOUTPUT: the kernel's bypass entry
            // runs the normal INPUT table.
            new.flags.set(ConnFlags::NOOUTPUT, false);
            match self.conns.insert(new, now) {
                Ok(id) => {
                    self.stats.conns_created += 1;
                    if let Some((client, reply)) = self.conns.get(id).and_then(FlowTuple::of_conn) {
                        self.push_flow_event(FlowEvent::Added { client, reply });
                    }
                    self.run_state(id, protocol, info, Direction::Input, now);
                }
                Err(_) => return Some(drop_verdict(DropReason::TableFull)),
            }
        }
        Some(self.bypass_transmit(frame, info))
    }

    /// The kernel's `ip_vs_addr_is_unicast` on the packet's destination:
    /// IPv4 unicast that is not one of the director's own addresses; IPv6
    /// unicast by address type.
    fn is_remote_unicast(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => {
                !(a.is_unspecified()
                    || a.is_loopback()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || self.table.local_addrs.contains(&addr))
            }
            IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
        }
    }

    /// `ip_vs_bypass_xmit`: route the packet, unchanged but for the TTL,
    /// to its own destination.
    pub(crate) fn bypass_transmit(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
    ) -> Verdict {
        if let Some(v) = self.ttl_and_mtu(frame, info, 0, false, false) {
            return v;
        }
        let hop = info.daddr;
        Verdict::Forward(self.route_to(frame, Route::Routed { next_hop: hop }))
    }
}
