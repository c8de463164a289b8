//! TCP (RFC 9293): a zero-copy view of a segment, the [`TcpFlags`] bitset, and
//! checksum verify/fill over the IPv4 or IPv6 pseudo-header.
//!
//! A TCP header has no length of its own: build the view over exactly the IP
//! payload (`Ipv4Packet::payload`), since the checksum covers the whole
//! segment. Options are handed out as bytes; no option parsing, no state.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::bytes::{set_u16, set_u32, u16_at, u32_at, u8_at};
use crate::checksum;
use crate::error::{clamp, clamp_mut, need, Layer, WireError};
use crate::IpProtocol;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const OFF_FLAGS: usize = 12;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Offset of the checksum field inside the header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// The TCP control bits (the low 9 bits of header bytes 12..14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// Acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// Urgent pointer field significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// ECN nonce (historic, RFC 3540).
    pub const NS: TcpFlags = TcpFlags(0x100);
    /// No bits.
    pub const EMPTY: TcpFlags = TcpFlags(0);

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Build from raw bits, keeping only the 9 flag bits.
    pub const fn from_bits_truncate(bits: u16) -> Self {
        TcpFlags(bits & 0x01ff)
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// True when no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Set the bits of `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clear the bits of `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    /// Names joined by `|` in tcpdump's order (`SYN|ACK`), `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(TcpFlags, &str); 9] = [
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::NS, "NS"),
        ];
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// A zero-copy view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap without checking (getters read zeros past the end).
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wrap after [`TcpPacket::check`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Validate: 20 bytes, data offset >= 5, header within the buffer.
    pub fn check(&self) -> Result<(), WireError> {
        let buf = self.buffer.as_ref();
        need(Layer::Tcp, buf, HEADER_LEN)?;
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::BadHeaderLength {
                layer: Layer::Tcp,
                value: hl,
            });
        }
        need(Layer::Tcp, buf, hl)
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        u32_at(self.buf(), field::SEQ)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        u32_at(self.buf(), field::ACK)
    }

    /// Data offset in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        u8_at(self.buf(), field::OFF_FLAGS) >> 4
    }

    /// Header length in bytes (`data_offset * 4`).
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    /// Control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_truncate(u16_at(self.buf(), field::OFF_FLAGS))
    }

    /// SYN set.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// ACK set.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// FIN set.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// RST set.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// Window size (unscaled).
    pub fn window(&self) -> u16 {
        u16_at(self.buf(), field::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buf(), field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        u16_at(self.buf(), field::URGENT)
    }

    /// Option bytes (between the 20-byte header and the data offset).
    pub fn options(&self) -> &[u8] {
        clamp(self.buf(), HEADER_LEN, self.header_len())
    }

    /// Data after the header, to the end of the buffer.
    pub fn payload(&self) -> &[u8] {
        let buf = self.buf();
        clamp(buf, self.header_len(), buf.len())
    }

    /// True when the checksum over the IPv4 pseudo-header and the whole
    /// buffer is correct.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::verify_transport_v4(src, dst, IpProtocol::Tcp, self.buf())
    }

    /// IPv6 counterpart of [`TcpPacket::verify_checksum_v4`].
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::verify_transport_v6(src, dst, IpProtocol::Tcp, self.buf())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Set the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        set_u32(self.buf_mut(), field::SEQ, v);
    }

    /// Set the acknowledgment number.
    pub fn set_ack_number(&mut self, v: u32) {
        set_u32(self.buf_mut(), field::ACK, v);
    }

    /// Set the header length in bytes (rounded down to words, max 60) and the
    /// flags, which share bytes 12..14.
    pub fn set_header_len_and_flags(&mut self, header_len: usize, flags: TcpFlags) {
        let words = u16::try_from((header_len / 4).min(15)).unwrap_or(15);
        set_u16(
            self.buf_mut(),
            field::OFF_FLAGS,
            (words << 12) | flags.bits(),
        );
    }

    /// Set the flags, keeping the data offset.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let hl = self.header_len();
        self.set_header_len_and_flags(hl, flags);
    }

    /// Set the window.
    pub fn set_window(&mut self, w: u16) {
        set_u16(self.buf_mut(), field::WINDOW, w);
    }

    /// Set the checksum field as is.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buf_mut(), field::CHECKSUM, c);
    }

    /// Set the urgent pointer.
    pub fn set_urgent(&mut self, u: u16) {
        set_u16(self.buf_mut(), field::URGENT, u);
    }

    /// Compute and store the checksum over the IPv4 pseudo-header.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::transport_checksum_v4(src, dst, IpProtocol::Tcp, self.buf());
        self.set_checksum(c);
    }

    /// Compute and store the checksum over the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::transport_checksum_v6(src, dst, IpProtocol::Tcp, self.buf());
        self.set_checksum(c);
    }

    /// Mutable data after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let buf = self.buf_mut();
        let len = buf.len();
        clamp_mut(buf, hl, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{hex, TCP_RST_V4, TCP_SYN_V4};

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[test]
    fn captured_syn() {
        let b = hex(TCP_SYN_V4);
        let t = TcpPacket::new_checked(&b[34..]).expect("valid");
        assert_eq!(t.src_port(), 43594);
        assert_eq!(t.dst_port(), 8080);
        assert_eq!(t.seq_number(), 0x9bff_9441);
        assert_eq!(t.ack_number(), 0);
        assert_eq!(t.data_offset(), 10);
        assert_eq!(t.header_len(), 40);
        assert_eq!(t.flags(), TcpFlags::SYN);
        assert!(t.syn() && !t.ack() && !t.fin() && !t.rst());
        assert_eq!(t.window(), 64240);
        assert_eq!(t.checksum(), 0xc18e);
        assert_eq!(t.urgent(), 0);
        // MSS 1460, SACK permitted, timestamps, NOP, window scale 10.
        assert_eq!(&t.options()[..4], &[0x02, 0x04, 0x05, 0xb4]);
        assert_eq!(t.options().len(), 20);
        assert!(t.payload().is_empty());
        assert!(t.verify_checksum_v4(A, B));
        assert!(!t.verify_checksum_v4(A, Ipv4Addr::new(192, 0, 2, 3)));
    }

    #[test]
    fn captured_rst_checksum_by_hand() {
        // RST|ACK 192.0.2.2:8080 -> 192.0.2.1:43594, 20-byte header.
        // Pseudo header: c000+0202+c000+0201+0006+0014 = 0x1841d
        // Header words (csum 0): 1f90+aa4a+0000+0000+9bff+9442+5014+0000+0000+0000
        //   = 0x1f90+0xaa4a = 0xc9da; +0x9bff = 0x165d9; +0x9442 = 0x1fa1b;
        //   +0x5014 = 0x24a2f
        // Total 0x1841d + 0x24a2f = 0x3ce4c -> 0xce4c + 3 = 0xce4f; ~ = 0x31b0.
        let b = hex(TCP_RST_V4);
        let mut seg = b[34..].to_vec();
        let mut t = TcpPacket::new_checked(&mut seg[..]).expect("valid");
        assert_eq!(t.flags(), TcpFlags::RST | TcpFlags::ACK);
        assert_eq!(t.flags().to_string(), "RST|ACK");
        assert_eq!(t.checksum(), 0x31b0);
        t.fill_checksum_v4(B, A);
        assert_eq!(t.checksum(), 0x31b0);
    }

    #[test]
    fn setters() {
        let b = hex(TCP_SYN_V4);
        let mut seg = b[34..].to_vec();
        let mut t = TcpPacket::new_checked(&mut seg[..]).expect("valid");
        t.set_src_port(1);
        t.set_dst_port(2);
        t.set_seq_number(3);
        t.set_ack_number(4);
        t.set_flags(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE);
        t.set_window(5);
        t.set_urgent(6);
        t.fill_checksum_v4(B, A);
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq_number(), t.ack_number()),
            (1, 2, 3, 4)
        );
        assert_eq!(t.header_len(), 40);
        assert_eq!(t.flags().to_string(), "SYN|ACK|ECE");
        assert_eq!((t.window(), t.urgent()), (5, 6));
        assert!(t.verify_checksum_v4(B, A));
    }

    #[test]
    fn malformed() {
        let b = hex(TCP_SYN_V4);
        let seg = &b[34..];
        assert_eq!(
            TcpPacket::new_checked(&seg[..19]),
            Err(WireError::Truncated {
                layer: Layer::Tcp,
                need: 20,
                have: 19
            })
        );
        assert_eq!(
            TcpPacket::new_checked(&seg[..39]),
            Err(WireError::Truncated {
                layer: Layer::Tcp,
                need: 40,
                have: 39
            })
        );
        let mut bad = seg.to_vec();
        bad[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&bad[..]),
            Err(WireError::BadHeaderLength {
                layer: Layer::Tcp,
                value: 16
            })
        );
    }

    #[test]
    fn flag_ops() {
        let mut f = TcpFlags::EMPTY;
        assert_eq!(f.to_string(), "-");
        f.insert(TcpFlags::FIN | TcpFlags::ACK);
        assert!(f.contains(TcpFlags::FIN));
        assert!(f.intersects(TcpFlags::SYN | TcpFlags::ACK));
        assert!(!f.contains(TcpFlags::SYN | TcpFlags::ACK));
        f.remove(TcpFlags::FIN);
        assert_eq!(f, TcpFlags::ACK);
        assert_eq!(TcpFlags::from_bits_truncate(0xffff).bits(), 0x01ff);
    }
}
