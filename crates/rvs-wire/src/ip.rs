//! IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared by
//! IPv4's protocol field and IPv6's next-header field.

use core::fmt;

/// An IP protocol / next-header value. Values without a variant are kept in
/// [`IpProtocol::Unknown`], so `u8 -> IpProtocol -> u8` is lossless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProtocol {
    /// 1, ICMP for IPv4.
    Icmp,
    /// 4, IPv4 encapsulated in IP (IPIP).
    IpIp,
    /// 6, TCP.
    Tcp,
    /// 17, UDP.
    Udp,
    /// 41, IPv6 encapsulated in IP.
    Ipv6Encap,
    /// 47, GRE.
    Gre,
    /// 58, ICMPv6.
    Icmpv6,
    /// 132, SCTP.
    Sctp,
    /// Any other value (including IPv6 extension header numbers).
    Unknown(u8),
}

impl IpProtocol {
    /// IPv6 hop-by-hop options header number.
    pub const HOP_BY_HOP: u8 = 0;
    /// IPv6 routing header number.
    pub const IPV6_ROUTING: u8 = 43;
    /// IPv6 fragment header number.
    pub const IPV6_FRAGMENT: u8 = 44;
    /// IPv6 "no next header".
    pub const IPV6_NO_NEXT: u8 = 59;
    /// IPv6 destination options header number.
    pub const IPV6_DEST_OPTS: u8 = 60;
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            4 => IpProtocol::IpIp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            41 => IpProtocol::Ipv6Encap,
            47 => IpProtocol::Gre,
            58 => IpProtocol::Icmpv6,
            132 => IpProtocol::Sctp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6Encap => 41,
            IpProtocol::Gre => 47,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Sctp => 132,
            IpProtocol::Unknown(v) => v,
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Icmp => f.write_str("icmp"),
            IpProtocol::IpIp => f.write_str("ipip"),
            IpProtocol::Tcp => f.write_str("tcp"),
            IpProtocol::Udp => f.write_str("udp"),
            IpProtocol::Ipv6Encap => f.write_str("ipv6-in-ip"),
            IpProtocol::Gre => f.write_str("gre"),
            IpProtocol::Icmpv6 => f.write_str("icmpv6"),
            IpProtocol::Sctp => f.write_str("sctp"),
            IpProtocol::Unknown(v) => write!(f, "proto-{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(132), IpProtocol::Sctp);
        assert_eq!(IpProtocol::from(41), IpProtocol::Ipv6Encap);
        assert_eq!(IpProtocol::from(0), IpProtocol::Unknown(0));
    }
}
