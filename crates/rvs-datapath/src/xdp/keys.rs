//! The byte layout of the XDP program's map keys (`struct service_key`
//! and `struct flow_key` in `bpf/rvs_xdp.c`), built from engine types.
//! Pure functions; the unit tests pin every byte.
//!
//! Both keys: protocol number, family tag (4 or 6), ports in network
//! byte order, addresses in 16 bytes (IPv4 in the first 4, rest zero).

use rvs_core::{FlowTuple, Protocol};
use std::net::IpAddr;

/// `struct service_key`: proto, family, port, addr[16].
pub type ServiceKeyBytes = [u8; 20];
/// `struct flow_key`: proto, family, sport, dport, pad, saddr[16], daddr[16].
pub type FlowKeyBytes = [u8; 40];

/// The IP protocol number of an engine protocol.
pub fn protocol_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

fn family_tag(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

fn addr16(a: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match a {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

/// Key of a virtual service (port 0: every port of the VIP).
pub fn service_key(protocol: Protocol, vip: IpAddr, port: u16) -> ServiceKeyBytes {
    let mut k = [0u8; 20];
    k[0] = protocol_number(protocol);
    k[1] = family_tag(&vip);
    k[2..4].copy_from_slice(&port.to_be_bytes());
    k[4..20].copy_from_slice(&addr16(&vip));
    k
}

/// Key of one direction of a flow. `None` for a tuple mixing families.
pub fn flow_key(t: &FlowTuple) -> Option<FlowKeyBytes> {
    if family_tag(&t.saddr) != family_tag(&t.daddr) {
        return None;
    }
    let mut k = [0u8; 40];
    k[0] = protocol_number(t.protocol);
    k[1] = family_tag(&t.saddr);
    k[2..4].copy_from_slice(&t.sport.to_be_bytes());
    k[4..6].copy_from_slice(&t.dport.to_be_bytes());
    k[8..24].copy_from_slice(&addr16(&t.saddr));
    k[24..40].copy_from_slice(&addr16(&t.daddr));
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn service_key_v4_layout() {
        let k = service_key(Protocol::Tcp, Ipv4Addr::new(198, 51, 100, 10).into(), 80);
        let mut want = [0u8; 20];
        want[..8].copy_from_slice(&[6, 4, 0, 80, 198, 51, 100, 10]);
        assert_eq!(k, want);
    }

    #[test]
    fn service_key_v6_port0() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let k = service_key(Protocol::Udp, vip.into(), 0);
        assert_eq!(&k[..4], &[17, 6, 0, 0]);
        assert_eq!(&k[4..6], &[0x20, 0x01]);
        assert_eq!(&k[6..8], &[0x0d, 0xb8]);
        assert_eq!(k[19], 0x10);
    }

    #[test]
    fn flow_key_layout() {
        let t = FlowTuple {
            protocol: Protocol::Tcp,
            saddr: Ipv4Addr::new(203, 0, 113, 11).into(),
            sport: 80,
            daddr: Ipv4Addr::new(198, 51, 100, 2).into(),
            dport: 0xc001,
        };
        let k = flow_key(&t).unwrap_or([0xff; 40]);
        let mut want = [0u8; 40];
        want[..6].copy_from_slice(&[6, 4, 0, 80, 0xc0, 0x01]);
        want[8..12].copy_from_slice(&[203, 0, 113, 11]);
        want[24..28].copy_from_slice(&[198, 51, 100, 2]);
        assert_eq!(k, want);
    }

    #[test]
    fn flow_key_mixed_families_is_none() {
        let t = FlowTuple {
            protocol: Protocol::Udp,
            saddr: Ipv4Addr::new(203, 0, 113, 11).into(),
            sport: 53,
            daddr: Ipv6Addr::LOCALHOST.into(),
            dport: 53,
        };
        assert_eq!(flow_key(&t), None);
    }
}
