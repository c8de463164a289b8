//! IPv4 (RFC 791): a zero-copy view with validated lengths, header checksum
//! verify/fill, and a small [`Ipv4Repr`] to emit an option-less header.
//!
//! The payload ends at the header's total length, not at the end of the
//! buffer, because Ethernet padding may follow. Does not reassemble
//! fragments or interpret options (they are handed out as bytes).

use std::net::Ipv4Addr;

use crate::bytes::{array_at, set_bytes, set_u16, set_u8, u16_at, u8_at};
use crate::checksum;
use crate::error::{clamp, clamp_mut, need, Layer, WireError};
use crate::IpProtocol;

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Largest IPv4 total length.
pub const MAX_PACKET_LEN: usize = 65535;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap without checking (getters read zeros past the end, slices are
    /// clamped). For writing a new header into a buffer of known size.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wrap after [`Ipv4Packet::check`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Validate: at least 20 bytes, version 4, IHL >= 5, header within the
    /// total length, total length within the buffer. The checksum is not
    /// checked here (see [`Ipv4Packet::verify_checksum`]).
    pub fn check(&self) -> Result<(), WireError> {
        let buf = self.buffer.as_ref();
        need(Layer::Ipv4, buf, HEADER_LEN)?;
        if self.version() != 4 {
            return Err(WireError::BadVersion {
                layer: Layer::Ipv4,
                version: self.version(),
            });
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(WireError::BadHeaderLength {
                layer: Layer::Ipv4,
                value: hl,
            });
        }
        need(Layer::Ipv4, buf, hl)?;
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(WireError::BadTotalLength {
                layer: Layer::Ipv4,
                value: tl,
                header_len: hl,
            });
        }
        need(Layer::Ipv4, buf, tl)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version nibble (4 for a valid packet).
    pub fn version(&self) -> u8 {
        u8_at(self.buf(), field::VER_IHL) >> 4
    }

    /// Internet header length in 32-bit words.
    pub fn ihl(&self) -> u8 {
        u8_at(self.buf(), field::VER_IHL) & 0x0f
    }

    /// Header length in bytes (`ihl * 4`).
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// The whole second byte (DSCP << 2 | ECN), the old TOS byte.
    pub fn dscp_ecn(&self) -> u8 {
        u8_at(self.buf(), field::DSCP_ECN)
    }

    /// Differentiated services code point (6 bits).
    pub fn dscp(&self) -> u8 {
        self.dscp_ecn() >> 2
    }

    /// Explicit congestion notification (2 bits).
    pub fn ecn(&self) -> u8 {
        self.dscp_ecn() & 0x03
    }

    /// Total length field (header + payload).
    pub fn total_len(&self) -> u16 {
        u16_at(self.buf(), field::LENGTH)
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        u16_at(self.buf(), field::IDENT)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        u16_at(self.buf(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        u16_at(self.buf(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field times 8).
    pub fn frag_offset(&self) -> u16 {
        (u16_at(self.buf(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// True for any fragment (MF set or offset non-zero).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        u8_at(self.buf(), field::TTL)
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        u8_at(self.buf(), field::PROTOCOL).into()
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buf(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array_at::<4>(self.buf(), field::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array_at::<4>(self.buf(), field::DST))
    }

    /// The header bytes, options included.
    pub fn header(&self) -> &[u8] {
        clamp(self.buf(), 0, self.header_len())
    }

    /// Option bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        clamp(self.buf(), HEADER_LEN, self.header_len())
    }

    /// True when the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }

    /// Payload: from the end of the header to the total length (clamped to the
    /// buffer), so trailing Ethernet padding is excluded.
    pub fn payload(&self) -> &[u8] {
        clamp(self.buf(), self.header_len(), usize::from(self.total_len()))
    }

    /// The packet bytes up to the total length (header + payload, no padding).
    pub fn packet(&self) -> &[u8] {
        clamp(self.buf(), 0, usize::from(self.total_len()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn buf_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set version 4 and the header length in bytes (rounded down to words).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        let ihl = u8::try_from((header_len / 4).min(15)).unwrap_or(15);
        set_u8(self.buf_mut(), field::VER_IHL, 0x40 | ihl);
    }

    /// Set the DSCP/ECN byte.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        set_u8(self.buf_mut(), field::DSCP_ECN, v);
    }

    /// Set the total length field.
    pub fn set_total_len(&mut self, len: u16) {
        set_u16(self.buf_mut(), field::LENGTH, len);
    }

    /// Set the identification field.
    pub fn set_ident(&mut self, ident: u16) {
        set_u16(self.buf_mut(), field::IDENT, ident);
    }

    /// Set DF, MF and the fragment offset (in bytes; must be a multiple of 8).
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset_bytes: u16) {
        let mut v = (offset_bytes >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        set_u16(self.buf_mut(), field::FLG_OFF, v);
    }

    /// Set the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        set_u8(self.buf_mut(), field::TTL, ttl);
    }

    /// Set the protocol field.
    pub fn set_protocol(&mut self, p: IpProtocol) {
        set_u8(self.buf_mut(), field::PROTOCOL, p.into());
    }

    /// Set the checksum field as is.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buf_mut(), field::CHECKSUM, c);
    }

    /// Set the source address (checksum untouched).
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        set_bytes(self.buf_mut(), field::SRC, &a.octets());
    }

    /// Set the destination address (checksum untouched).
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        set_bytes(self.buf_mut(), field::DST, &a.octets());
    }

    /// Recompute and store the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// Decrement the TTL by one and patch the checksum incrementally, as a
    /// router does. Returns the new TTL; a TTL of 0 is left alone (returns 0).
    pub fn decrement_ttl(&mut self) -> u8 {
        let old = self.ttl();
        if old == 0 {
            return 0;
        }
        let proto = u8::from(self.protocol());
        let old_word = u16::from_be_bytes([old, proto]);
        let new_word = u16::from_be_bytes([old - 1, proto]);
        let c = checksum::update_u16(self.checksum(), old_word, new_word);
        self.set_ttl(old - 1);
        self.set_checksum(c);
        old - 1
    }

    /// Mutable payload (header end to total length, clamped).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        clamp_mut(self.buf_mut(), start, end)
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// The payload with the buffer's lifetime rather than the view's.
    pub fn into_payload(self) -> &'a [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        clamp(self.buffer, start, end)
    }
}

/// The fields of an option-less IPv4 header, for emitting one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Time to live.
    pub ttl: u8,
    /// DSCP/ECN byte.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// Payload length in bytes (total length minus 20).
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Read the fields of a (checked) packet; options are dropped.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Self {
        Ipv4Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            payload_len: p.payload().len(),
        }
    }

    /// Write the 20-byte header, checksum included, into `out[..20]`.
    /// Returns 20. Fails if `out` is short or the payload too long.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        need(Layer::Output, out, HEADER_LEN)?;
        let total = HEADER_LEN + self.payload_len;
        let total = u16::try_from(total).map_err(|_| WireError::TooLong {
            layer: Layer::Ipv4,
            len: self.payload_len,
            max: MAX_PACKET_LEN - HEADER_LEN,
        })?;
        let mut p = Ipv4Packet::new_unchecked(&mut out[..HEADER_LEN]);
        p.set_version_and_header_len(HEADER_LEN);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_frag(self.dont_frag, false, 0);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{hex, TCP_SYN_V4, UDP_V4};

    fn syn_ip() -> Vec<u8> {
        hex(TCP_SYN_V4)[14..].to_vec()
    }

    #[test]
    fn captured_syn_header() {
        let b = syn_ip();
        let p = Ipv4Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ident(), 0xabf9);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Tcp);
        assert_eq!(p.checksum(), 0x0abf);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 40);
        assert!(p.verify_checksum());
    }

    #[test]
    fn checksum_by_hand() {
        // Sum of the captured header words with checksum zeroed:
        // 4500+003c+abf9+4000+4006+0000+c000+0201+c000+0202 = 0x2f53e
        // fold: 0xf53e + 0x2 = 0xf540; complement = 0x0abf (as captured).
        let mut b = syn_ip();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).expect("valid");
        p.set_checksum(0xdead);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert_eq!(p.checksum(), 0x0abf);
    }

    #[test]
    fn padding_is_not_payload() {
        let mut b = hex(UDP_V4)[14..].to_vec();
        b.extend_from_slice(&[0u8; 9]); // Ethernet minimum-size padding
        let p = Ipv4Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.total_len(), 37);
        assert_eq!(p.payload().len(), 17);
        assert_eq!(p.packet().len(), 37);
    }

    #[test]
    fn malformed_headers() {
        let b = syn_ip();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]),
            Err(WireError::Truncated {
                layer: Layer::Ipv4,
                need: 20,
                have: 19
            })
        );
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]),
            Err(WireError::BadVersion {
                layer: Layer::Ipv4,
                version: 6
            })
        );
        let mut short_ihl = b.clone();
        short_ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&short_ihl[..]),
            Err(WireError::BadHeaderLength {
                layer: Layer::Ipv4,
                value: 16
            })
        );
        let mut long_ihl = b.clone();
        long_ihl[0] = 0x4f; // 60-byte header, but total length is 60: fits.
        assert!(Ipv4Packet::new_checked(&long_ihl[..]).is_ok());
        long_ihl[3] = 59;
        assert_eq!(
            Ipv4Packet::new_checked(&long_ihl[..]),
            Err(WireError::BadTotalLength {
                layer: Layer::Ipv4,
                value: 59,
                header_len: 60
            })
        );
        assert_eq!(
            Ipv4Packet::new_checked(&b[..59]),
            Err(WireError::Truncated {
                layer: Layer::Ipv4,
                need: 60,
                have: 59
            })
        );
        let mut ihl_past_buffer = b[..24].to_vec();
        ihl_past_buffer[0] = 0x47;
        assert_eq!(
            Ipv4Packet::new_checked(&ihl_past_buffer[..]),
            Err(WireError::Truncated {
                layer: Layer::Ipv4,
                need: 28,
                have: 24
            })
        );
    }

    #[test]
    fn fragments_and_options() {
        let mut b = [0u8; 28];
        b[0] = 0x46; // 24-byte header
        b[3] = 28;
        b[6] = 0x20 | 0x01; // MF, offset 0x100 words
        b[7] = 0x00;
        b[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // router alert
        let p = Ipv4Packet::new_checked(&b[..]).expect("valid");
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 0x100 * 8);
        assert!(p.is_fragment());
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn setters_and_decrement_ttl() {
        let mut b = syn_ip();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).expect("valid");
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        // 0x0abf + 0x0100 (TTL word dropped by 0x0100) = 0x0bbf
        assert_eq!(p.checksum(), 0x0bbf);
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 9));
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_total_len(40);
        p.set_frag(false, true, 16);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 9));
        assert_eq!(p.payload().len(), 20);
        assert!(p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 16);
    }

    #[test]
    fn repr_emit_matches_capture() {
        let b = syn_ip();
        let p = Ipv4Packet::new_checked(&b[..]).expect("valid");
        let r = Ipv4Repr::parse(&p);
        let mut out = [0u8; 20];
        assert_eq!(r.emit(&mut out), Ok(20));
        assert_eq!(&out[..], &b[..20]);
        let big = Ipv4Repr {
            payload_len: 65516,
            ..r
        };
        assert!(matches!(big.emit(&mut out), Err(WireError::TooLong { .. })));
    }
}
