//! Ethernet II frames: MAC addresses, EtherTypes, and a zero-copy view that
//! understands up to two 802.1Q / 802.1ad VLAN tags.
//!
//! Does not handle 802.3 length frames (type field < 0x0600 is reported as
//! [`EtherType::Unknown`]) or the frame check sequence (NICs strip it).

use core::fmt;
use core::str::FromStr;

use crate::bytes::{array_at, set_bytes, set_u16, u16_at};
use crate::error::{clamp, clamp_mut, need, Layer, WireError};

/// A 48-bit Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// All ones.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Group bit set (includes broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Not a group address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = WireError;

    /// Parse six hex octets separated by `:` or `-` (one or two digits each).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for slot in out.iter_mut() {
            let part = parts.next().ok_or(WireError::BadMacAddr)?;
            if part.is_empty() || part.len() > 2 {
                return Err(WireError::BadMacAddr);
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| WireError::BadMacAddr)?;
        }
        if parts.next().is_some() {
            return Err(WireError::BadMacAddr);
        }
        Ok(MacAddr(out))
    }
}

/// The EtherType of a frame or of a VLAN tag's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800
    Ipv4,
    /// 0x0806
    Arp,
    /// 0x86DD
    Ipv6,
    /// 0x8100, an 802.1Q VLAN tag follows.
    Vlan,
    /// 0x88A8, an 802.1ad service tag follows.
    QinQ,
    /// Anything else.
    Unknown(u16),
}

impl EtherType {
    /// True for the two tag types ([`EtherType::Vlan`], [`EtherType::QinQ`]).
    pub fn is_vlan_tag(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", u16::from(*self))
    }
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
    pub const TAG_LEN: usize = 4;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// Most VLAN tags a frame may carry for this view (802.1ad + 802.1Q).
pub const MAX_VLAN_TAGS: usize = 2;

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wrap without checking. Getters on a too-short buffer read zeros; use
    /// this only to write a new header into a buffer of known size.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wrap after checking that the full header (including up to
    /// [`MAX_VLAN_TAGS`] tags) is present.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Check that the header, including VLAN tags, fits in the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let buf = self.buffer.as_ref();
        need(Layer::Ethernet, buf, field::HEADER_LEN)?;
        need(Layer::Ethernet, buf, self.header_len())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC.
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(array_at(self.buffer.as_ref(), field::DST.start))
    }

    /// Source MAC.
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(array_at(self.buffer.as_ref(), field::SRC.start))
    }

    /// The type field right after the source MAC (may be a VLAN tag type).
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(u16_at(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Number of VLAN tags (0..=[`MAX_VLAN_TAGS`]). A third tag is not
    /// unwrapped: it shows up as an [`EtherType::Vlan`] inner type.
    pub fn vlan_tag_count(&self) -> usize {
        let buf = self.buffer.as_ref();
        let mut n = 0;
        while n < MAX_VLAN_TAGS
            && EtherType::from(u16_at(buf, field::ETHERTYPE + n * field::TAG_LEN)).is_vlan_tag()
        {
            n += 1;
        }
        n
    }

    /// The 12-bit VLAN id of the outermost tag, if there is one.
    pub fn vlan_id(&self) -> Option<u16> {
        if self.vlan_tag_count() == 0 {
            None
        } else {
            Some(u16_at(self.buffer.as_ref(), field::ETHERTYPE + 2) & 0x0fff)
        }
    }

    /// The 12-bit VLAN id of the innermost tag, if there is one.
    pub fn inner_vlan_id(&self) -> Option<u16> {
        let n = self.vlan_tag_count();
        if n == 0 {
            None
        } else {
            let off = field::ETHERTYPE + (n - 1) * field::TAG_LEN + 2;
            Some(u16_at(self.buffer.as_ref(), off) & 0x0fff)
        }
    }

    /// The EtherType of the payload, after any VLAN tags.
    pub fn payload_ethertype(&self) -> EtherType {
        let off = field::ETHERTYPE + self.vlan_tag_count() * field::TAG_LEN;
        EtherType::from(u16_at(self.buffer.as_ref(), off))
    }

    /// Header length in bytes: 14 plus 4 per VLAN tag.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.vlan_tag_count() * field::TAG_LEN
    }

    /// Everything after the header (may include Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        clamp(buf, self.header_len(), buf.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Set the destination MAC.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        set_bytes(self.buffer.as_mut(), field::DST.start, &addr.0);
    }

    /// Set the source MAC.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        set_bytes(self.buffer.as_mut(), field::SRC.start, &addr.0);
    }

    /// Set the outer type field.
    pub fn set_ethertype(&mut self, t: EtherType) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE, t.into());
    }

    /// Mutable payload after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let buf = self.buffer.as_mut();
        let len = buf.len();
        clamp_mut(buf, start, len)
    }
}

/// Write an untagged Ethernet II header into the first 14 bytes of `out`.
/// Returns the number of bytes written (14).
pub fn write_header(
    out: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    ethertype: EtherType,
) -> Result<usize, WireError> {
    need(Layer::Output, out, HEADER_LEN)?;
    let mut f = EthernetFrame::new_unchecked(out);
    f.set_dst_addr(dst);
    f.set_src_addr(src);
    f.set_ethertype(ethertype);
    Ok(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{hex, TCP_SYN_V4};

    #[test]
    fn mac_display_and_parse() {
        let m = MacAddr([0x8a, 0x32, 0x2d, 0xbd, 0xc4, 0x5d]);
        assert_eq!(m.to_string(), "8a:32:2d:bd:c4:5d");
        assert_eq!("8a:32:2d:bd:c4:5d".parse::<MacAddr>(), Ok(m));
        assert_eq!("8A-32-2D-BD-C4-5D".parse::<MacAddr>(), Ok(m));
        assert_eq!(
            "8a:32:2d:bd:c4".parse::<MacAddr>(),
            Err(WireError::BadMacAddr)
        );
        assert_eq!(
            "8a:32:2d:bd:c4:5d:00".parse::<MacAddr>(),
            Err(WireError::BadMacAddr)
        );
        assert_eq!(
            "8a:32:2d:bd:c4:5g".parse::<MacAddr>(),
            Err(WireError::BadMacAddr)
        );
        assert_eq!(
            "8a:32:2d:bd:c4:".parse::<MacAddr>(),
            Err(WireError::BadMacAddr)
        );
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(m.is_unicast());
    }

    #[test]
    fn captured_syn_frame() {
        let bytes = hex(TCP_SYN_V4);
        let f = EthernetFrame::new_checked(&bytes[..]).expect("valid frame");
        assert_eq!(f.dst_addr().to_string(), "82:63:fe:85:c8:62");
        assert_eq!(f.src_addr().to_string(), "8a:32:2d:bd:c4:5d");
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.payload_ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload().len(), 60);
        assert_eq!(f.payload()[0], 0x45);
    }

    #[test]
    fn vlan_tags() {
        // dst, src, 88a8 (S-tag vid 0x123), 8100 (C-tag vid 0x045), 0800, payload
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&[
            0x88, 0xa8, 0x01, 0x23, 0x81, 0x00, 0x20, 0x45, 0x08, 0x00, 0xaa,
        ]);
        let f = EthernetFrame::new_checked(&b[..]).expect("tagged frame");
        assert_eq!(f.ethertype(), EtherType::QinQ);
        assert_eq!(f.vlan_tag_count(), 2);
        assert_eq!(f.vlan_id(), Some(0x123));
        assert_eq!(f.inner_vlan_id(), Some(0x045));
        assert_eq!(f.payload_ethertype(), EtherType::Ipv4);
        assert_eq!(f.header_len(), 22);
        assert_eq!(f.payload(), &[0xaa]);
        // Cut inside the second tag.
        assert_eq!(
            EthernetFrame::new_checked(&b[..20]),
            Err(WireError::Truncated {
                layer: Layer::Ethernet,
                need: 22,
                have: 20
            })
        );
    }

    #[test]
    fn short_frames_are_errors() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]),
            Err(WireError::Truncated {
                layer: Layer::Ethernet,
                need: 14,
                have: 13
            })
        );
    }

    #[test]
    fn write_header_bytes() {
        let mut out = [0u8; 16];
        let n = write_header(
            &mut out,
            MacAddr::BROADCAST,
            MacAddr([1, 2, 3, 4, 5, 6]),
            EtherType::Arp,
        )
        .expect("room");
        assert_eq!(n, 14);
        assert_eq!(
            out[..14],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 0x08, 0x06]
        );
        assert!(write_header(
            &mut out[..13],
            MacAddr::ZERO,
            MacAddr::ZERO,
            EtherType::Ipv4
        )
        .is_err());
    }
}
