//! UDP (RFC 768): a zero-copy view with a validated length field and
//! checksum verify/fill, including the IPv4 "0 = no checksum" rule.
//!
//! The payload ends at the UDP length field. Over IPv6 a zero checksum is
//! invalid (RFC 8200 §8.1) and fails verification.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::bytes::{set_u16, u16_at};
use crate::checksum;
use crate::error::{clamp, clamp_mut, need, Layer, WireError};
use crate::IpProtocol;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field inside the header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wrap without checking (getters read zeros past the end).
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wrap after [`UdpPacket::check`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Validate: 8 bytes, length field >= 8 and within the buffer.
    pub fn check(&self) -> Result<(), WireError> {
        let buf = self.buffer.as_ref();
        need(Layer::Udp, buf, HEADER_LEN)?;
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(WireError::BadLength {
                layer: Layer::Udp,
                value: len,
                min: HEADER_LEN,
            });
        }
        need(Layer::Udp, buf, len)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16_at(self.buf(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16_at(self.buf(), field::DST_PORT)
    }

    /// Length field (header + payload).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        u16_at(self.buf(), field::LENGTH)
    }

    /// Checksum field (0 over IPv4 means none was computed).
    pub fn checksum(&self) -> u16 {
        u16_at(self.buf(), field::CHECKSUM)
    }

    /// Datagram bytes up to the length field.
    pub fn datagram(&self) -> &[u8] {
        clamp(self.buf(), 0, usize::from(self.len()))
    }

    /// Payload, up to the length field.
    pub fn payload(&self) -> &[u8] {
        clamp(self.buf(), HEADER_LEN, usize::from(self.len()))
    }

    /// True when the checksum is 0 (none) or correct over IPv4.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0
            || checksum::verify_transport_v4(src, dst, IpProtocol::Udp, self.datagram())
    }

    /// True when the checksum is correct over IPv6 (0 is never correct).
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.checksum() != 0
            && checksum::verify_transport_v6(src, dst, IpProtocol::Udp, self.datagram())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn buf_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set the source port (checksum untouched).
    pub fn set_src_port(&mut self, p: u16) {
        set_u16(self.buf_mut(), field::SRC_PORT, p);
    }

    /// Set the destination port (checksum untouched).
    pub fn set_dst_port(&mut self, p: u16) {
        set_u16(self.buf_mut(), field::DST_PORT, p);
    }

    /// Set the length field.
    pub fn set_len(&mut self, len: u16) {
        set_u16(self.buf_mut(), field::LENGTH, len);
    }

    /// Set the checksum field as is.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buf_mut(), field::CHECKSUM, c);
    }

    /// Compute and store the IPv4 checksum (a computed 0 is stored as 0xFFFF).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::transport_checksum_v4(src, dst, IpProtocol::Udp, self.datagram());
        self.set_checksum(checksum::udp_finalize(c));
    }

    /// Compute and store the IPv6 checksum (a computed 0 is stored as 0xFFFF).
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::transport_checksum_v6(src, dst, IpProtocol::Udp, self.datagram());
        self.set_checksum(checksum::udp_finalize(c));
    }

    /// Mutable payload, up to the length field.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        clamp_mut(self.buf_mut(), HEADER_LEN, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{hex, UDP_V4};

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[test]
    fn captured_datagram() {
        let b = hex(UDP_V4);
        let u = UdpPacket::new_checked(&b[34..]).expect("valid");
        assert_eq!(u.src_port(), 51275);
        assert_eq!(u.dst_port(), 5353);
        assert_eq!(u.len(), 17);
        assert_eq!(u.checksum(), 0x752a);
        assert_eq!(u.payload(), b"hello rvs");
        assert!(u.verify_checksum_v4(A, B));
        assert!(!u.verify_checksum_v4(B, B));
    }

    #[test]
    fn checksum_by_hand() {
        // Pseudo: c000+0201+c000+0202+0011+0011 = 0x18425
        // Header (csum 0): c84b+14e9+0011 = 0xdd45
        // "hello rvs": 6865+6c6c+6f20+7276+7300 = 0x22967
        // 0x18425+0xdd45+0x22967 = 0x48ad1 -> 0x8ad1+4 = 0x8ad5; ~ = 0x752a,
        // the value the kernel sent.
        let b = hex(UDP_V4);
        let mut d = b[34..].to_vec();
        let mut u = UdpPacket::new_checked(&mut d[..]).expect("valid");
        u.fill_checksum_v4(A, B);
        assert_eq!(u.checksum(), 0x752a);
    }

    #[test]
    fn zero_checksum_rules() {
        let b = hex(UDP_V4);
        let mut d = b[34..].to_vec();
        let mut u = UdpPacket::new_checked(&mut d[..]).expect("valid");
        u.set_checksum(0);
        assert!(u.verify_checksum_v4(A, B));
        assert!(!u.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST));
        // A datagram whose computed checksum is 0 is sent as 0xffff: choose
        // the last payload word so the sum is all ones.
        let mut d = [0u8; 10];
        let mut u = UdpPacket::new_unchecked(&mut d[..]);
        u.set_len(10);
        let partial = checksum::transport_checksum_v4(A, B, IpProtocol::Udp, u.datagram());
        // Adding `partial` as a word makes the sum 0xffff, so the checksum is 0.
        u.payload_mut().copy_from_slice(&partial.to_be_bytes());
        u.fill_checksum_v4(A, B);
        assert_eq!(u.checksum(), 0xffff);
        assert!(u.verify_checksum_v4(A, B));
    }

    #[test]
    fn malformed() {
        let b = hex(UDP_V4);
        let d = &b[34..];
        assert_eq!(
            UdpPacket::new_checked(&d[..7]),
            Err(WireError::Truncated {
                layer: Layer::Udp,
                need: 8,
                have: 7
            })
        );
        assert_eq!(
            UdpPacket::new_checked(&d[..16]),
            Err(WireError::Truncated {
                layer: Layer::Udp,
                need: 17,
                have: 16
            })
        );
        let mut bad = d.to_vec();
        bad[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&bad[..]),
            Err(WireError::BadLength {
                layer: Layer::Udp,
                value: 7,
                min: 8
            })
        );
        // Trailing bytes beyond the length field are not payload.
        let mut padded = d.to_vec();
        padded.extend_from_slice(&[0; 5]);
        let u = UdpPacket::new_checked(&padded[..]).expect("valid");
        assert_eq!(u.payload(), b"hello rvs");
    }
}
