//! IPv6 (RFC 8200): a zero-copy view of the fixed header and a walk over the
//! extension headers a director must step over (hop-by-hop, routing,
//! destination options, fragment) to reach the upper-layer protocol.
//!
//! Does not support jumbograms (payload length 0 is read as an empty
//! payload), does not interpret option contents, and does not step over AH,
//! ESP or other headers: they are reported as the upper-layer protocol.

use std::net::Ipv6Addr;

use crate::bytes::{array_at, set_bytes, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use crate::error::{clamp, clamp_mut, need, Layer, WireError};
use crate::IpProtocol;

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// The IPv6 minimum link MTU (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;

/// What the fragment header said, when the chain had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragInfo {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More Fragments flag.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper-layer header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (the first next-header value that is not one of
    /// the four walked extension headers).
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// Fragment header contents, if one was crossed. With a non-zero offset
    /// the bytes at `offset` are the middle of the upper-layer data, not its
    /// header.
    pub fragment: Option<Ipv6FragInfo>,
}

/// A zero-copy view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap without checking (getters read zeros past the end, slices are
    /// clamped).
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wrap after [`Ipv6Packet::check`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Validate: 40 bytes, version 6, 40 + payload length within the buffer.
    pub fn check(&self) -> Result<(), WireError> {
        let buf = self.buffer.as_ref();
        need(Layer::Ipv6, buf, HEADER_LEN)?;
        if self.version() != 6 {
            return Err(WireError::BadVersion {
                layer: Layer::Ipv6,
                version: self.version(),
            });
        }
        need(
            Layer::Ipv6,
            buf,
            HEADER_LEN + usize::from(self.payload_len()),
        )
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version nibble (6 for a valid packet).
    pub fn version(&self) -> u8 {
        u8_at(self.buf(), field::VER_TC_FLOW) >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        ((u32_at(self.buf(), field::VER_TC_FLOW) >> 20) & 0xff) as u8
    }

    /// 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        u32_at(self.buf(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length field (everything after the fixed header).
    pub fn payload_len(&self) -> u16 {
        u16_at(self.buf(), field::PAYLOAD_LEN)
    }

    /// Next header of the fixed header (may be an extension header).
    pub fn next_header(&self) -> IpProtocol {
        u8_at(self.buf(), field::NEXT_HEADER).into()
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        u8_at(self.buf(), field::HOP_LIMIT)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array_at::<16>(self.buf(), field::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array_at::<16>(self.buf(), field::DST))
    }

    /// Everything after the fixed header, up to the payload length (trailing
    /// padding excluded).
    pub fn payload(&self) -> &[u8] {
        clamp(
            self.buf(),
            HEADER_LEN,
            HEADER_LEN + usize::from(self.payload_len()),
        )
    }

    /// The packet bytes up to 40 + payload length.
    pub fn packet(&self) -> &[u8] {
        clamp(self.buf(), 0, HEADER_LEN + usize::from(self.payload_len()))
    }

    /// Walk hop-by-hop, routing, destination-options and fragment headers to
    /// the upper layer. Errors if an extension header runs past the payload.
    pub fn walk_extensions(&self) -> Result<UpperLayer, WireError> {
        let pkt = self.packet();
        let mut next = u8_at(pkt, field::NEXT_HEADER);
        let mut off = HEADER_LEN;
        let mut fragment = None;
        loop {
            let len = match next {
                IpProtocol::HOP_BY_HOP | IpProtocol::IPV6_ROUTING | IpProtocol::IPV6_DEST_OPTS => {
                    need(Layer::Ipv6Ext, clamp(pkt, off, pkt.len()), 2)?;
                    (usize::from(u8_at(pkt, off + 1)) + 1) * 8
                }
                IpProtocol::IPV6_FRAGMENT => {
                    need(Layer::Ipv6Ext, clamp(pkt, off, pkt.len()), 8)?;
                    let off_flags = u16_at(pkt, off + 2);
                    fragment = Some(Ipv6FragInfo {
                        offset: off_flags & 0xfff8,
                        more_frags: off_flags & 1 != 0,
                        ident: u32_at(pkt, off + 4),
                    });
                    8
                }
                _ => {
                    return Ok(UpperLayer {
                        protocol: next.into(),
                        offset: off,
                        fragment,
                    })
                }
            };
            need(Layer::Ipv6Ext, clamp(pkt, off, pkt.len()), len)?;
            next = u8_at(pkt, off);
            off += len;
        }
    }

    /// The upper-layer protocol and its offset from the start of the IPv6
    /// header (see [`Ipv6Packet::walk_extensions`]).
    pub fn upper_layer(&self) -> Result<(IpProtocol, usize), WireError> {
        self.walk_extensions().map(|u| (u.protocol, u.offset))
    }

    /// The upper-layer protocol and its bytes (up to the payload length).
    pub fn upper_layer_payload(&self) -> Result<(IpProtocol, &[u8]), WireError> {
        let u = self.walk_extensions()?;
        let pkt = self.packet();
        Ok((u.protocol, clamp(pkt, u.offset, pkt.len())))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn buf_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set version 6, traffic class and flow label (the first 4 bytes).
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        set_u32(self.buf_mut(), field::VER_TC_FLOW, v);
    }

    /// Set the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        set_u16(self.buf_mut(), field::PAYLOAD_LEN, len);
    }

    /// Set the next header of the fixed header.
    pub fn set_next_header(&mut self, p: IpProtocol) {
        set_u8(self.buf_mut(), field::NEXT_HEADER, p.into());
    }

    /// Set the hop limit.
    pub fn set_hop_limit(&mut self, h: u8) {
        set_u8(self.buf_mut(), field::HOP_LIMIT, h);
    }

    /// Set the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        set_bytes(self.buf_mut(), field::SRC, &a.octets());
    }

    /// Set the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        set_bytes(self.buf_mut(), field::DST, &a.octets());
    }

    /// Mutable payload (after the fixed header, up to the payload length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        clamp_mut(self.buf_mut(), HEADER_LEN, end)
    }
}

/// Write a 40-byte IPv6 header (traffic class, flow label 0) into `out`.
pub fn write_header(
    out: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: IpProtocol,
    hop_limit: u8,
    traffic_class: u8,
    payload_len: usize,
) -> Result<usize, WireError> {
    need(Layer::Output, out, HEADER_LEN)?;
    let len = u16::try_from(payload_len).map_err(|_| WireError::TooLong {
        layer: Layer::Ipv6,
        len: payload_len,
        max: usize::from(u16::MAX),
    })?;
    let mut p = Ipv6Packet::new_unchecked(&mut out[..HEADER_LEN]);
    p.set_version_tc_flow(traffic_class, 0);
    p.set_payload_len(len);
    p.set_next_header(next_header);
    p.set_hop_limit(hop_limit);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    Ok(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{hex, MLD_V6_HOP_BY_HOP, ROUTER_SOLICIT_V6};

    #[test]
    fn captured_router_solicit() {
        let b = hex(ROUTER_SOLICIT_V6);
        let p = Ipv6Packet::new_checked(&b[14..]).expect("valid");
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0);
        assert_eq!(p.payload_len(), 16);
        assert_eq!(p.next_header(), IpProtocol::Icmpv6);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.src_addr().to_string(), "fe80::8832:2dff:febd:c45d");
        assert_eq!(p.dst_addr().to_string(), "ff02::2");
        assert_eq!(p.upper_layer(), Ok((IpProtocol::Icmpv6, 40)));
    }

    #[test]
    fn captured_hop_by_hop_is_walked() {
        let b = hex(MLD_V6_HOP_BY_HOP);
        let p = Ipv6Packet::new_checked(&b[14..]).expect("valid");
        assert_eq!(p.next_header(), IpProtocol::Unknown(0));
        assert_eq!(p.payload_len(), 36);
        let (proto, off) = p.upper_layer().expect("walk");
        assert_eq!(proto, IpProtocol::Icmpv6);
        assert_eq!(off, 48);
        let (_, upper) = p.upper_layer_payload().expect("walk");
        assert_eq!(upper.len(), 28);
        assert_eq!(upper[0], 143); // MLDv2 report
    }

    fn with_chain(chain: &[u8], first: u8) -> Vec<u8> {
        let mut b = vec![0u8; 40];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&u16::try_from(chain.len()).unwrap_or(0).to_be_bytes());
        b[6] = first;
        b.extend_from_slice(chain);
        b
    }

    #[test]
    fn chain_of_routing_dest_fragment() {
        let mut chain = Vec::new();
        // routing header, hdr ext len 1 -> 16 bytes, next = dest opts
        chain.extend_from_slice(&[60, 1]);
        chain.extend_from_slice(&[0; 14]);
        // dest opts, 8 bytes, next = fragment
        chain.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
        // fragment: next = UDP, offset 185*8 with M set, ident 0xdeadbeef
        chain.extend_from_slice(&[17, 0, 0x05, 0xc9, 0xde, 0xad, 0xbe, 0xef]);
        chain.extend_from_slice(&[1, 2, 3, 4]);
        let b = with_chain(&chain, 43);
        let p = Ipv6Packet::new_checked(&b[..]).expect("valid");
        let u = p.walk_extensions().expect("walk");
        assert_eq!(u.protocol, IpProtocol::Udp);
        assert_eq!(u.offset, 40 + 16 + 8 + 8);
        assert_eq!(
            u.fragment,
            Some(Ipv6FragInfo {
                offset: 0x05c8,
                more_frags: true,
                ident: 0xdead_beef
            })
        );
    }

    #[test]
    fn other_headers_are_upper_layer() {
        // ESP (50) is not walked.
        let b = with_chain(&[0; 8], 50);
        let p = Ipv6Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.upper_layer(), Ok((IpProtocol::Unknown(50), 40)));
        let b = with_chain(&[], 59);
        let p = Ipv6Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.upper_layer(), Ok((IpProtocol::Unknown(59), 40)));
    }

    #[test]
    fn truncated_chains() {
        // Hop-by-hop claiming 16 bytes with only 8 in the payload.
        let b = with_chain(&[6, 1, 0, 0, 0, 0, 0, 0], 0);
        let p = Ipv6Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(
            p.upper_layer(),
            Err(WireError::Truncated {
                layer: Layer::Ipv6Ext,
                need: 16,
                have: 8
            })
        );
        // Fragment header cut short.
        let b = with_chain(&[6, 0, 0, 0], 44);
        let p = Ipv6Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(
            p.upper_layer(),
            Err(WireError::Truncated {
                layer: Layer::Ipv6Ext,
                need: 8,
                have: 4
            })
        );
        // Extension header chain that ends exactly at the payload end.
        let b = with_chain(&[0, 0, 0, 0, 0, 0, 0, 0], 0);
        let p = Ipv6Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(
            p.upper_layer(),
            Err(WireError::Truncated {
                layer: Layer::Ipv6Ext,
                need: 2,
                have: 0
            })
        );
    }

    #[test]
    fn malformed_fixed_header() {
        let b = with_chain(&[1, 2, 3], 6);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..42]),
            Err(WireError::Truncated {
                layer: Layer::Ipv6,
                need: 43,
                have: 42
            })
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]),
            Err(WireError::Truncated {
                layer: Layer::Ipv6,
                need: 40,
                have: 39
            })
        );
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&v4[..]),
            Err(WireError::BadVersion {
                layer: Layer::Ipv6,
                version: 4
            })
        );
    }

    #[test]
    fn write_header_round_trip() {
        let b = hex(ROUTER_SOLICIT_V6);
        let p = Ipv6Packet::new_checked(&b[14..]).expect("valid");
        let mut out = [0u8; 40];
        write_header(
            &mut out,
            p.src_addr(),
            p.dst_addr(),
            IpProtocol::Icmpv6,
            255,
            0,
            16,
        )
        .expect("room");
        assert_eq!(&out[..], &b[14..54]);
        let mut q = Ipv6Packet::new_unchecked(&mut out[..]);
        q.set_version_tc_flow(0xb8, 0x12345);
        assert_eq!(q.traffic_class(), 0xb8);
        assert_eq!(q.flow_label(), 0x12345);
        assert_eq!(q.version(), 6);
    }
}
