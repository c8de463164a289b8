//! ICMP for IPv4 (RFC 792) and ICMPv6 (RFC 4443): zero-copy views of the
//! 8-byte header and the message body, type enums, the MTU fields of
//! "fragmentation needed" (RFC 1191) and "packet too big", and checksum
//! verify/fill (ICMPv4 over the message, ICMPv6 with the IPv6 pseudo-header).
//!
//! For error messages the body is the quoted original packet, handed out as
//! bytes for the caller to view with `Ipv4Packet`/`Ipv6Packet` (it is often
//! truncated, so use `new_unchecked` or check only the header). Does not
//! parse neighbour-discovery options.

use std::net::Ipv6Addr;

use crate::bytes::{set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use crate::checksum;
use crate::error::{clamp, need, Layer, WireError};
use crate::IpProtocol;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const V4_NEXT_HOP_MTU: usize = 6;
}

/// Length of the ICMP header (type, code, checksum, rest-of-header).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 destination-unreachable code: fragmentation needed and DF set.
pub const CODE_FRAG_NEEDED: u8 = 4;
/// ICMPv4 destination-unreachable code: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 3;

/// ICMPv4 message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Type {
    /// 0
    EchoReply,
    /// 3
    DestUnreachable,
    /// 4
    SourceQuench,
    /// 5
    Redirect,
    /// 8
    EchoRequest,
    /// 11
    TimeExceeded,
    /// 12
    ParameterProblem,
    /// Anything else.
    Unknown(u8),
}

impl Icmpv4Type {
    /// True for the error messages that quote an IP packet (3, 4, 5, 11, 12).
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Icmpv4Type::DestUnreachable
                | Icmpv4Type::SourceQuench
                | Icmpv4Type::Redirect
                | Icmpv4Type::TimeExceeded
                | Icmpv4Type::ParameterProblem
        )
    }
}

impl From<u8> for Icmpv4Type {
    fn from(v: u8) -> Self {
        match v {
            0 => Icmpv4Type::EchoReply,
            3 => Icmpv4Type::DestUnreachable,
            4 => Icmpv4Type::SourceQuench,
            5 => Icmpv4Type::Redirect,
            8 => Icmpv4Type::EchoRequest,
            11 => Icmpv4Type::TimeExceeded,
            12 => Icmpv4Type::ParameterProblem,
            o => Icmpv4Type::Unknown(o),
        }
    }
}

impl From<Icmpv4Type> for u8 {
    fn from(t: Icmpv4Type) -> u8 {
        match t {
            Icmpv4Type::EchoReply => 0,
            Icmpv4Type::DestUnreachable => 3,
            Icmpv4Type::SourceQuench => 4,
            Icmpv4Type::Redirect => 5,
            Icmpv4Type::EchoRequest => 8,
            Icmpv4Type::TimeExceeded => 11,
            Icmpv4Type::ParameterProblem => 12,
            Icmpv4Type::Unknown(v) => v,
        }
    }
}

/// ICMPv6 message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Type {
    /// 1
    DestUnreachable,
    /// 2
    PacketTooBig,
    /// 3
    TimeExceeded,
    /// 4
    ParamProblem,
    /// 128
    EchoRequest,
    /// 129
    EchoReply,
    /// 135
    NeighborSolicit,
    /// 136
    NeighborAdvert,
    /// Anything else.
    Unknown(u8),
}

impl Icmpv6Type {
    /// True for error messages (types 0..=127, RFC 4443 §2.1).
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

impl From<u8> for Icmpv6Type {
    fn from(v: u8) -> Self {
        match v {
            1 => Icmpv6Type::DestUnreachable,
            2 => Icmpv6Type::PacketTooBig,
            3 => Icmpv6Type::TimeExceeded,
            4 => Icmpv6Type::ParamProblem,
            128 => Icmpv6Type::EchoRequest,
            129 => Icmpv6Type::EchoReply,
            135 => Icmpv6Type::NeighborSolicit,
            136 => Icmpv6Type::NeighborAdvert,
            o => Icmpv6Type::Unknown(o),
        }
    }
}

impl From<Icmpv6Type> for u8 {
    fn from(t: Icmpv6Type) -> u8 {
        match t {
            Icmpv6Type::DestUnreachable => 1,
            Icmpv6Type::PacketTooBig => 2,
            Icmpv6Type::TimeExceeded => 3,
            Icmpv6Type::ParamProblem => 4,
            Icmpv6Type::EchoRequest => 128,
            Icmpv6Type::EchoReply => 129,
            Icmpv6Type::NeighborSolicit => 135,
            Icmpv6Type::NeighborAdvert => 136,
            Icmpv6Type::Unknown(v) => v,
        }
    }
}

/// A zero-copy view of an ICMPv4 message (the whole IPv4 payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wrap without checking (getters read zeros past the end).
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wrap after checking that the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        need(Layer::Icmpv4, p.buffer.as_ref(), HEADER_LEN)?;
        Ok(p)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv4Type {
        u8_at(self.buf(), field::TYPE).into()
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        u8_at(self.buf(), field::CODE)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buf(), field::CHECKSUM)
    }

    /// Bytes 4..8 as one number (identifier/sequence, unused, MTU, pointer,
    /// gateway address, depending on type).
    pub fn rest_of_header(&self) -> u32 {
        u32_at(self.buf(), field::REST)
    }

    /// Echo identifier (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        u16_at(self.buf(), field::ECHO_IDENT)
    }

    /// Echo sequence number (bytes 6..8).
    pub fn echo_seq(&self) -> u16 {
        u16_at(self.buf(), field::ECHO_SEQ)
    }

    /// Next-hop MTU of a "fragmentation needed" message (type 3 code 4);
    /// `None` for other messages.
    pub fn mtu(&self) -> Option<u16> {
        if self.msg_type() == Icmpv4Type::DestUnreachable && self.code() == CODE_FRAG_NEEDED {
            Some(u16_at(self.buf(), field::V4_NEXT_HOP_MTU))
        } else {
            None
        }
    }

    /// Everything after the 8-byte header.
    pub fn payload(&self) -> &[u8] {
        let buf = self.buf();
        clamp(buf, HEADER_LEN, buf.len())
    }

    /// For error types, the quoted original IP packet (often cut short).
    pub fn quoted_packet(&self) -> Option<&[u8]> {
        self.msg_type().is_error().then(|| self.payload())
    }

    /// True when the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buf()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Set the message type.
    pub fn set_msg_type(&mut self, t: Icmpv4Type) {
        set_u8(self.buffer.as_mut(), field::TYPE, t.into());
    }

    /// Set the code.
    pub fn set_code(&mut self, c: u8) {
        set_u8(self.buffer.as_mut(), field::CODE, c);
    }

    /// Set the checksum field as is.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Set bytes 4..8.
    pub fn set_rest_of_header(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::REST, v);
    }

    /// Set the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    /// Set the echo sequence number.
    pub fn set_echo_seq(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_SEQ, v);
    }

    /// Compute and store the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Mutable body after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let buf = self.buffer.as_mut();
        let len = buf.len();
        crate::error::clamp_mut(buf, HEADER_LEN, len)
    }
}

/// A zero-copy view of an ICMPv6 message (the whole upper-layer payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wrap without checking (getters read zeros past the end).
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wrap after checking that the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        need(Layer::Icmpv6, p.buffer.as_ref(), HEADER_LEN)?;
        Ok(p)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv6Type {
        u8_at(self.buf(), field::TYPE).into()
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        u8_at(self.buf(), field::CODE)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buf(), field::CHECKSUM)
    }

    /// Bytes 4..8 as one number.
    pub fn rest_of_header(&self) -> u32 {
        u32_at(self.buf(), field::REST)
    }

    /// Echo identifier (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        u16_at(self.buf(), field::ECHO_IDENT)
    }

    /// Echo sequence number (bytes 6..8).
    pub fn echo_seq(&self) -> u16 {
        u16_at(self.buf(), field::ECHO_SEQ)
    }

    /// MTU of a Packet Too Big message; `None` for other types.
    pub fn mtu(&self) -> Option<u32> {
        (self.msg_type() == Icmpv6Type::PacketTooBig).then(|| self.rest_of_header())
    }

    /// Everything after the 8-byte header.
    pub fn payload(&self) -> &[u8] {
        let buf = self.buf();
        clamp(buf, HEADER_LEN, buf.len())
    }

    /// For error types, the quoted original IPv6 packet (often cut short).
    pub fn quoted_packet(&self) -> Option<&[u8]> {
        self.msg_type().is_error().then(|| self.payload())
    }

    /// Target address of a neighbour solicitation or advertisement.
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        match self.msg_type() {
            Icmpv6Type::NeighborSolicit | Icmpv6Type::NeighborAdvert => {
                let b = self.buf().get(8..24)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Some(Ipv6Addr::from(a))
            }
            _ => None,
        }
    }

    /// True when the checksum over the pseudo-header and message is correct.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::verify_transport_v6(src, dst, IpProtocol::Icmpv6, self.buf())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Set the message type.
    pub fn set_msg_type(&mut self, t: Icmpv6Type) {
        set_u8(self.buffer.as_mut(), field::TYPE, t.into());
    }

    /// Set the code.
    pub fn set_code(&mut self, c: u8) {
        set_u8(self.buffer.as_mut(), field::CODE, c);
    }

    /// Set the checksum field as is.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Set bytes 4..8 (MTU, pointer, identifier/sequence, unused).
    pub fn set_rest_of_header(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::REST, v);
    }

    /// Compute and store the checksum over the pseudo-header and buffer.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::transport_checksum_v6(src, dst, IpProtocol::Icmpv6, self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Mutable body after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let buf = self.buffer.as_mut();
        let len = buf.len();
        crate::error::clamp_mut(buf, HEADER_LEN, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{
        hex, ICMP_PORT_UNREACH_V4, MLD_V6_HOP_BY_HOP, NEIGHBOR_SOLICIT_V6, ROUTER_SOLICIT_V6,
    };
    use crate::ipv4::Ipv4Packet;
    use crate::ipv6::Ipv6Packet;
    use crate::udp::UdpPacket;

    #[test]
    fn captured_port_unreachable() {
        let b = hex(ICMP_PORT_UNREACH_V4);
        let ip = Ipv4Packet::new_checked(&b[14..]).expect("ip");
        assert!(ip.verify_checksum());
        assert_eq!(ip.protocol(), IpProtocol::Icmp);
        let m = Icmpv4Packet::new_checked(ip.payload()).expect("icmp");
        assert_eq!(m.msg_type(), Icmpv4Type::DestUnreachable);
        assert_eq!(m.code(), CODE_PORT_UNREACHABLE);
        assert_eq!(m.checksum(), 0x8123);
        assert_eq!(m.rest_of_header(), 0);
        assert_eq!(m.mtu(), None);
        assert!(m.verify_checksum());
        let q = m.quoted_packet().expect("error type quotes");
        let inner = Ipv4Packet::new_checked(q).expect("quoted ip");
        assert_eq!(inner.dst_addr(), std::net::Ipv4Addr::new(192, 0, 2, 2));
        let udp = UdpPacket::new_checked(inner.payload()).expect("quoted udp");
        assert_eq!(udp.dst_port(), 5353);
    }

    #[test]
    fn icmpv4_checksum_by_hand() {
        // Header words 0303+0000(csum)+0000+0000 = 0x0303; the 37 quoted
        // bytes as words (last byte 0x73 padded to 0x7300) sum to 0x67bd3.
        // 0x0303 + 0x67bd3 = 0x67ed6 -> 0x7ed6 + 6 = 0x7edc; ~ = 0x8123, the
        // value the kernel sent.
        let b = hex(ICMP_PORT_UNREACH_V4);
        let mut msg = b[34..].to_vec();
        let mut m = Icmpv4Packet::new_checked(&mut msg[..]).expect("icmp");
        m.fill_checksum();
        assert_eq!(m.checksum(), 0x8123);
    }

    #[test]
    fn frag_needed_mtu_and_echo() {
        let mut b = [3u8, 4, 0, 0, 0, 0, 0x05, 0xdc];
        let m = Icmpv4Packet::new_checked(&b[..]).expect("icmp");
        assert_eq!(m.mtu(), Some(1500));
        b[1] = 1;
        assert_eq!(Icmpv4Packet::new_checked(&b[..]).expect("icmp").mtu(), None);
        let mut e = [0u8; 12];
        let mut m = Icmpv4Packet::new_unchecked(&mut e[..]);
        m.set_msg_type(Icmpv4Type::EchoRequest);
        m.set_echo_ident(0x1234);
        m.set_echo_seq(7);
        m.payload_mut().copy_from_slice(b"ping");
        m.fill_checksum();
        assert!(m.verify_checksum());
        assert_eq!(m.quoted_packet(), None);
        // 0800+0000+1234+0007+7069+6e67 = 0xf90b; ~ = 0x06f4
        assert_eq!(m.checksum(), 0x06f4);
        assert_eq!(
            Icmpv4Packet::new_checked(&e[..7]),
            Err(WireError::Truncated {
                layer: Layer::Icmpv4,
                need: 8,
                have: 7
            })
        );
    }

    #[test]
    fn captured_icmpv6() {
        let b = hex(ROUTER_SOLICIT_V6);
        let ip = Ipv6Packet::new_checked(&b[14..]).expect("ip");
        let m = Icmpv6Packet::new_checked(ip.payload()).expect("icmpv6");
        assert_eq!(m.msg_type(), Icmpv6Type::Unknown(133));
        assert!(!m.msg_type().is_error());
        assert_eq!(m.checksum(), 0x8693);
        assert!(m.verify_checksum(ip.src_addr(), ip.dst_addr()));

        let b = hex(NEIGHBOR_SOLICIT_V6);
        let ip = Ipv6Packet::new_checked(&b[14..]).expect("ip");
        let m = Icmpv6Packet::new_checked(ip.payload()).expect("icmpv6");
        assert_eq!(m.msg_type(), Icmpv6Type::NeighborSolicit);
        assert_eq!(
            m.target_addr().map(|a| a.to_string()).as_deref(),
            Some("fe80::8063:feff:fe85:c862")
        );
        assert!(m.verify_checksum(ip.src_addr(), ip.dst_addr()));

        // Through a hop-by-hop header.
        let b = hex(MLD_V6_HOP_BY_HOP);
        let ip = Ipv6Packet::new_checked(&b[14..]).expect("ip");
        let (proto, body) = ip.upper_layer_payload().expect("walk");
        assert_eq!(proto, IpProtocol::Icmpv6);
        let mut body = body.to_vec();
        let mut m = Icmpv6Packet::new_checked(&mut body[..]).expect("icmpv6");
        assert!(m.verify_checksum(ip.src_addr(), ip.dst_addr()));
        let captured = m.checksum();
        m.fill_checksum(ip.src_addr(), ip.dst_addr());
        assert_eq!(m.checksum(), captured);
    }

    #[test]
    fn packet_too_big() {
        let b = [2u8, 0, 0, 0, 0, 0, 0x05, 0x00];
        let m = Icmpv6Packet::new_checked(&b[..]).expect("icmpv6");
        assert_eq!(m.mtu(), Some(1280));
        assert!(m.msg_type().is_error());
        assert_eq!(m.quoted_packet(), Some(&[][..]));
    }

    #[test]
    fn type_numbers() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Icmpv4Type::from(v)), v);
            assert_eq!(u8::from(Icmpv6Type::from(v)), v);
        }
    }
}
