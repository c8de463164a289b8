//! Writers for the packets the director itself sends: IP-in-IP tunnel
//! headers (LVS TUN forwarding), ICMP errors (port unreachable, fragmentation
//! needed / packet too big), and Ethernet headers.
//!
//! Every builder writes into a caller-provided `&mut [u8]` and returns the
//! number of bytes written; [`append`] adapts any of them to a `Vec<u8>`.
//! Nothing here allocates. Deciding *whether* to send (rate limits, the
//! director's policy) is the caller's job; [`icmpv4_error_allowed`] only
//! encodes the RFC 1122 "never answer these" rules.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{need, Layer, WireError};
use crate::ethernet::{self, EtherType, MacAddr};
use crate::icmp::{self, Icmpv4Packet, Icmpv4Type, Icmpv6Packet, Icmpv6Type};
use crate::ipv4::{self, Ipv4Packet, Ipv4Repr};
use crate::ipv6::{self, Ipv6Packet};
use crate::IpProtocol;

/// Largest IPv4 datagram an ICMPv4 error may fill (RFC 1812 §4.3.2.3).
pub const ICMPV4_ERROR_MAX_LEN: usize = 576;
/// Largest IPv6 packet an ICMPv6 error may fill (RFC 4443 §2.4 (c)).
pub const ICMPV6_ERROR_MAX_LEN: usize = ipv6::MIN_MTU;
/// TTL / hop limit used for generated ICMP errors.
pub const ICMP_ERROR_TTL: u8 = 64;
/// DSCP/ECN byte of generated ICMPv4 errors: precedence "internetwork
/// control" (0xc0), as Linux sends them.
pub const ICMPV4_ERROR_TOS: u8 = 0xc0;

/// Run a slice builder on the end of `vec`: grow it by `max_len` zero bytes,
/// let `build` write, then trim to what was written. On error `vec` is left
/// as it was.
pub fn append<F>(vec: &mut Vec<u8>, max_len: usize, build: F) -> Result<usize, WireError>
where
    F: FnOnce(&mut [u8]) -> Result<usize, WireError>,
{
    let start = vec.len();
    vec.resize(start + max_len, 0);
    match vec.get_mut(start..).map(build) {
        Some(Ok(n)) => {
            vec.truncate(start + n.min(max_len));
            Ok(n)
        }
        Some(Err(e)) => {
            vec.truncate(start);
            Err(e)
        }
        None => {
            vec.truncate(start);
            Err(WireError::Truncated {
                layer: Layer::Output,
                need: max_len,
                have: 0,
            })
        }
    }
}

/// Write an untagged Ethernet II header (14 bytes) into `out`.
pub fn write_ethernet(
    out: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    ethertype: EtherType,
) -> Result<usize, WireError> {
    ethernet::write_header(out, dst, src, ethertype)
}

/// The inner packet trimmed to its IP length, its tunnel protocol number and
/// its DSCP/ECN byte.
fn inner_ip(inner: &[u8]) -> Result<(&[u8], IpProtocol, u8), WireError> {
    match inner.first().map(|b| b >> 4) {
        Some(4) => {
            let p = Ipv4Packet::new_checked(inner)?;
            let len = p.packet().len();
            Ok((
                inner.get(..len).unwrap_or(inner),
                IpProtocol::IpIp,
                p.dscp_ecn(),
            ))
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(inner)?;
            let len = p.packet().len();
            Ok((
                inner.get(..len).unwrap_or(inner),
                IpProtocol::Ipv6Encap,
                p.traffic_class(),
            ))
        }
        Some(v) => Err(WireError::Unsupported {
            layer: Layer::Output,
            field: "inner IP version",
            value: u32::from(v),
        }),
        None => Err(WireError::Truncated {
            layer: Layer::Ipv4,
            need: 1,
            have: 0,
        }),
    }
}

/// Outer DSCP/ECN from the inner one: DSCP copied, ECN copied except that CE
/// becomes ECT(0) (what Linux tunnels do on encapsulation).
fn outer_dsfield(inner: u8) -> u8 {
    if inner & 0x03 == 0x03 {
        (inner & !0x03) | 0x02
    } else {
        inner
    }
}

/// Bytes [`build_ipip`] writes for an inner packet of `inner_len` bytes.
pub fn ipip_len(inner_len: usize) -> usize {
    ipv4::HEADER_LEN + inner_len
}

/// Encapsulate an IP packet in an IPv4 header (protocol 4 for an IPv4 inner
/// packet, 41 for IPv6), identification 0. See [`build_ipip_with_ident`].
pub fn build_ipip(
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    ttl: u8,
    df: bool,
    inner: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    build_ipip_with_ident(outer_src, outer_dst, ttl, df, 0, inner, out)
}

/// Encapsulate an IP packet in a 20-byte IPv4 header with a correct
/// checksum. The inner packet is validated and copied up to its own IP
/// length (Ethernet padding dropped); its DSCP/ECN is carried to the outer
/// header. Returns the bytes written (`20 + inner IP length`).
pub fn build_ipip_with_ident(
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    ttl: u8,
    df: bool,
    ident: u16,
    inner: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let (inner, protocol, ds) = inner_ip(inner)?;
    let total = ipip_len(inner.len());
    if total > ipv4::MAX_PACKET_LEN {
        return Err(WireError::TooLong {
            layer: Layer::Ipv4,
            len: inner.len(),
            max: ipv4::MAX_PACKET_LEN - ipv4::HEADER_LEN,
        });
    }
    need(Layer::Output, out, total)?;
    let repr = Ipv4Repr {
        src_addr: outer_src,
        dst_addr: outer_dst,
        protocol,
        ttl,
        dscp_ecn: outer_dsfield(ds),
        ident,
        dont_frag: df,
        payload_len: inner.len(),
    };
    repr.emit(out)?;
    out[ipv4::HEADER_LEN..total].copy_from_slice(inner);
    Ok(total)
}

/// Encapsulate an IP packet in a 40-byte IPv6 header (next header 41 for an
/// IPv6 inner packet, 4 for IPv4); traffic class from the inner packet.
pub fn build_ipv6_tunnel(
    outer_src: Ipv6Addr,
    outer_dst: Ipv6Addr,
    hop_limit: u8,
    inner: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let (inner, protocol, ds) = inner_ip(inner)?;
    let total = ipv6::HEADER_LEN + inner.len();
    need(Layer::Output, out, total)?;
    ipv6::write_header(
        out,
        outer_src,
        outer_dst,
        protocol,
        hop_limit,
        outer_dsfield(ds),
        inner.len(),
    )?;
    out[ipv6::HEADER_LEN..total].copy_from_slice(inner);
    Ok(total)
}

/// Strip an outer IPv4 header carrying protocol 4 or 41 and return the inner
/// protocol and packet. Fragmented outer packets are refused (they would need
/// reassembly).
pub fn decap_ipip(packet: &[u8]) -> Result<(IpProtocol, &[u8]), WireError> {
    let outer = Ipv4Packet::new_checked(packet)?;
    if outer.is_fragment() {
        return Err(WireError::Unsupported {
            layer: Layer::Ipv4,
            field: "fragmented tunnel packet",
            value: u32::from(outer.frag_offset()),
        });
    }
    match outer.protocol() {
        p @ (IpProtocol::IpIp | IpProtocol::Ipv6Encap) => Ok((p, outer.into_payload())),
        other => Err(WireError::Unsupported {
            layer: Layer::Ipv4,
            field: "tunnel protocol",
            value: u32::from(u8::from(other)),
        }),
    }
}

/// RFC 1122 §3.2.2 / RFC 1812 §4.3.2.7: may an ICMPv4 error be sent about
/// this IPv4 packet? No for ICMP errors, non-initial fragments, and
/// datagrams to or from broadcast/multicast/unspecified/loopback/reserved
/// addresses. (A link-layer broadcast is the caller's to check.)
pub fn icmpv4_error_allowed(original: &[u8]) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(original) else {
        return false;
    };
    if p.frag_offset() != 0 {
        return false;
    }
    if p.protocol() == IpProtocol::Icmp {
        match p.payload().first() {
            Some(&t) if Icmpv4Type::from(t).is_error() => return false,
            None => return false,
            _ => {}
        }
    }
    let (src, dst) = (p.src_addr(), p.dst_addr());
    let bad_src = src.is_unspecified()
        || src.is_loopback()
        || src.is_broadcast()
        || src.is_multicast()
        || src.octets()[0] >= 240;
    let bad_dst = dst.is_broadcast() || dst.is_multicast();
    !(bad_src || bad_dst)
}

/// How many bytes of `original` an ICMPv4 error quotes: the original up to
/// its IP total length when it parses as IPv4, cut so the error fits in 576
/// bytes (at least the IP header + 8 bytes, since 576 - 28 leaves room).
pub fn icmpv4_quote_len(original: &[u8]) -> usize {
    let orig = Ipv4Packet::new_checked(original)
        .map(|p| p.packet().len())
        .unwrap_or(original.len());
    orig.min(ICMPV4_ERROR_MAX_LEN - ipv4::HEADER_LEN - icmp::HEADER_LEN)
}

/// Bytes [`build_icmpv4_error`] writes for `original`.
pub fn icmpv4_error_len(original: &[u8]) -> usize {
    ipv4::HEADER_LEN + icmp::HEADER_LEN + icmpv4_quote_len(original)
}

/// Write an IPv4 packet carrying an ICMPv4 error from `src` to `dst`:
/// IPv4 header (TTL 64, DSCP/ECN 0xc0, ident 0, no DF), ICMP header with
/// `icmp_type`/`code` and `rest` in bytes 4..8 (for fragmentation needed
/// pass the next-hop MTU, e.g. `u32::from(mtu)`; 0 for "unused"), then the
/// quoted original (see [`icmpv4_quote_len`]). Both checksums are filled.
pub fn build_icmpv4_error(
    icmp_type: Icmpv4Type,
    code: u8,
    rest: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    original: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let quote = original
        .get(..icmpv4_quote_len(original))
        .unwrap_or(original);
    let icmp_len = icmp::HEADER_LEN + quote.len();
    let total = ipv4::HEADER_LEN + icmp_len;
    need(Layer::Output, out, total)?;
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Icmp,
        ttl: ICMP_ERROR_TTL,
        dscp_ecn: ICMPV4_ERROR_TOS,
        ident: 0,
        dont_frag: false,
        payload_len: icmp_len,
    };
    repr.emit(out)?;
    let mut m = Icmpv4Packet::new_unchecked(&mut out[ipv4::HEADER_LEN..total]);
    m.set_msg_type(icmp_type);
    m.set_code(code);
    m.set_rest_of_header(rest);
    m.payload_mut().copy_from_slice(quote);
    m.fill_checksum();
    Ok(total)
}

/// How many bytes of `original` an ICMPv6 error quotes: the original up to
/// its IPv6 length when it parses, cut so the error fits in 1280 bytes.
pub fn icmpv6_quote_len(original: &[u8]) -> usize {
    let orig = Ipv6Packet::new_checked(original)
        .map(|p| p.packet().len())
        .unwrap_or(original.len());
    orig.min(ICMPV6_ERROR_MAX_LEN - ipv6::HEADER_LEN - icmp::HEADER_LEN)
}

/// Bytes [`build_icmpv6_error`] writes for `original`.
pub fn icmpv6_error_len(original: &[u8]) -> usize {
    ipv6::HEADER_LEN + icmp::HEADER_LEN + icmpv6_quote_len(original)
}

/// Write an IPv6 packet carrying an ICMPv6 error from `src` to `dst`: IPv6
/// header (hop limit 64, traffic class 0), ICMPv6 header with `rest` in bytes
/// 4..8 (the MTU for Packet Too Big, the pointer for Parameter Problem),
/// then as much of the original as fits in 1280 bytes. Checksum filled.
pub fn build_icmpv6_error(
    icmp_type: Icmpv6Type,
    code: u8,
    rest: u32,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    original: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let quote = original
        .get(..icmpv6_quote_len(original))
        .unwrap_or(original);
    let icmp_len = icmp::HEADER_LEN + quote.len();
    let total = ipv6::HEADER_LEN + icmp_len;
    need(Layer::Output, out, total)?;
    ipv6::write_header(
        out,
        src,
        dst,
        IpProtocol::Icmpv6,
        ICMP_ERROR_TTL,
        0,
        icmp_len,
    )?;
    let mut m = Icmpv6Packet::new_unchecked(&mut out[ipv6::HEADER_LEN..total]);
    m.set_msg_type(icmp_type);
    m.set_code(code);
    m.set_rest_of_header(rest);
    m.payload_mut().copy_from_slice(quote);
    m.fill_checksum(src, dst);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{hex, ICMP_PORT_UNREACH_V4, TCP_SYN_V4, UDP_V4};
    use crate::tcp::TcpPacket;

    #[test]
    fn icmp_port_unreachable_matches_kernel() {
        let udp = hex(UDP_V4);
        let want = hex(ICMP_PORT_UNREACH_V4);
        let mut out = [0u8; 600];
        let n = build_icmpv4_error(
            Icmpv4Type::DestUnreachable,
            icmp::CODE_PORT_UNREACHABLE,
            0,
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(192, 0, 2, 1),
            &udp[14..],
            &mut out,
        )
        .expect("room");
        assert_eq!(n, want.len() - 14);
        // The kernel chose ident 0xf096; with that ident the bytes match.
        let mut ip = Ipv4Packet::new_checked(&mut out[..n]).expect("ip");
        ip.set_ident(0xf096);
        ip.fill_checksum();
        assert_eq!(&out[..n], &want[14..]);
    }

    #[test]
    fn icmpv4_quote_is_capped_at_576() {
        let mut big = vec![0u8; 1500];
        Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 51, 100, 7),
            dst_addr: Ipv4Addr::new(203, 0, 113, 1),
            protocol: IpProtocol::Tcp,
            ttl: 60,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: true,
            payload_len: 1480,
        }
        .emit(&mut big)
        .expect("room");
        let mut out = Vec::new();
        let n = append(&mut out, icmpv4_error_len(&big), |o| {
            build_icmpv4_error(
                Icmpv4Type::DestUnreachable,
                icmp::CODE_FRAG_NEEDED,
                1400,
                Ipv4Addr::new(203, 0, 113, 1),
                Ipv4Addr::new(198, 51, 100, 7),
                &big,
                o,
            )
        })
        .expect("built");
        assert_eq!(n, 576);
        assert_eq!(out.len(), 576);
        let ip = Ipv4Packet::new_checked(&out[..]).expect("ip");
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 576);
        assert_eq!((ip.ttl(), ip.dscp_ecn(), ip.dont_frag()), (64, 0xc0, false));
        let m = Icmpv4Packet::new_checked(ip.payload()).expect("icmp");
        assert!(m.verify_checksum());
        assert_eq!(m.mtu(), Some(1400));
        assert_eq!(m.payload(), &big[..548]);
    }

    #[test]
    fn short_original_is_quoted_whole() {
        let syn = hex(TCP_SYN_V4);
        let mut padded = syn[14..].to_vec();
        padded.extend_from_slice(&[0xee; 6]); // padding must not be quoted
        assert_eq!(icmpv4_quote_len(&padded), 60);
        let garbage = [1u8, 2, 3];
        assert_eq!(icmpv4_quote_len(&garbage), 3);
        let mut out = [0u8; 10];
        assert!(matches!(
            build_icmpv4_error(
                Icmpv4Type::TimeExceeded,
                0,
                0,
                Ipv4Addr::LOCALHOST,
                Ipv4Addr::LOCALHOST,
                &padded,
                &mut out
            ),
            Err(WireError::Truncated {
                layer: Layer::Output,
                need: 88,
                have: 10
            })
        ));
    }

    #[test]
    fn icmpv6_packet_too_big_capped_at_1280() {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let mut orig = vec![0u8; 1500];
        ipv6::write_header(&mut orig, dst, src, IpProtocol::Tcp, 60, 0, 1460).expect("room");
        let mut out = vec![0u8; 2000];
        let n = build_icmpv6_error(Icmpv6Type::PacketTooBig, 0, 1400, src, dst, &orig, &mut out)
            .expect("room");
        assert_eq!(n, 1280);
        assert_eq!(icmpv6_error_len(&orig), 1280);
        let ip = Ipv6Packet::new_checked(&out[..n]).expect("ip");
        assert_eq!(ip.payload_len(), 1240);
        assert_eq!(ip.next_header(), IpProtocol::Icmpv6);
        assert_eq!(ip.hop_limit(), 64);
        let m = Icmpv6Packet::new_checked(ip.payload()).expect("icmpv6");
        assert_eq!(m.mtu(), Some(1400));
        assert!(m.verify_checksum(src, dst));
        assert_eq!(m.payload(), &orig[..1232]);
    }

    #[test]
    fn ipip_round_trip() {
        let syn = hex(TCP_SYN_V4);
        let mut inner = syn[14..].to_vec();
        inner[1] = 0xbb; // DSCP 46, ECN CE -> outer ECT(0)
        let mut fixed = Ipv4Packet::new_checked(&mut inner[..]).expect("ip");
        fixed.fill_checksum();
        inner.extend_from_slice(&[0; 4]); // padding is dropped
        let mut out = [0u8; 100];
        let n = build_ipip_with_ident(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            64,
            true,
            0x1234,
            &inner,
            &mut out,
        )
        .expect("room");
        assert_eq!(n, 80);
        let outer = Ipv4Packet::new_checked(&out[..n]).expect("outer");
        assert!(outer.verify_checksum());
        assert_eq!(outer.protocol(), IpProtocol::IpIp);
        assert_eq!(outer.total_len(), 80);
        assert_eq!(outer.ident(), 0x1234);
        assert!(outer.dont_frag());
        assert_eq!(outer.dscp_ecn(), 0xba);
        assert_eq!(outer.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        let (proto, got) = decap_ipip(&out[..n]).expect("decap");
        assert_eq!(proto, IpProtocol::IpIp);
        assert_eq!(got, &inner[..60]);
        let t = TcpPacket::new_checked(&got[20..]).expect("tcp");
        assert!(t.verify_checksum_v4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)));

        // The default builder uses ident 0; too small an output is an error.
        let n0 = build_ipip(
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            1,
            false,
            &inner,
            &mut out,
        )
        .expect("room");
        assert_eq!(
            Ipv4Packet::new_checked(&out[..n0]).expect("outer").ident(),
            0
        );
        assert!(matches!(
            build_ipip(
                Ipv4Addr::LOCALHOST,
                Ipv4Addr::LOCALHOST,
                1,
                false,
                &inner,
                &mut out[..79]
            ),
            Err(WireError::Truncated {
                layer: Layer::Output,
                need: 80,
                have: 79
            })
        ));
        assert!(matches!(
            build_ipip(
                Ipv4Addr::LOCALHOST,
                Ipv4Addr::LOCALHOST,
                1,
                false,
                &[0x55; 30],
                &mut out
            ),
            Err(WireError::Unsupported { .. })
        ));
        // Not a tunnel packet.
        assert!(decap_ipip(&syn[14..]).is_err());
    }

    #[test]
    fn ipv6_tunnel_carries_v4_and_v6() {
        let syn = hex(TCP_SYN_V4);
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let mut out = [0u8; 200];
        let n = build_ipv6_tunnel(src, dst, 64, &syn[14..], &mut out).expect("room");
        assert_eq!(n, 100);
        let outer = Ipv6Packet::new_checked(&out[..n]).expect("outer");
        assert_eq!(outer.next_header(), IpProtocol::IpIp);
        assert_eq!(outer.payload(), &syn[14..]);
        let mut out2 = [0u8; 200];
        let n2 = build_ipv6_tunnel(dst, src, 64, &out[..n], &mut out2).expect("room");
        assert_eq!(n2, 140);
        assert_eq!(
            Ipv6Packet::new_checked(&out2[..n2])
                .expect("outer")
                .next_header(),
            IpProtocol::Ipv6Encap
        );
    }

    #[test]
    fn icmp_error_policy() {
        let udp = hex(UDP_V4);
        let ip = &udp[14..];
        assert!(icmpv4_error_allowed(ip));
        let icmp = hex(ICMP_PORT_UNREACH_V4);
        assert!(!icmpv4_error_allowed(&icmp[14..]));
        let mut frag = ip.to_vec();
        frag[6] = 0x00;
        frag[7] = 0x01; // offset 8 bytes
        assert!(!icmpv4_error_allowed(&frag));
        let mut bcast = ip.to_vec();
        bcast[16..20].copy_from_slice(&[255, 255, 255, 255]);
        assert!(!icmpv4_error_allowed(&bcast));
        let mut mcast_src = ip.to_vec();
        mcast_src[12] = 224;
        assert!(!icmpv4_error_allowed(&mcast_src));
        assert!(!icmpv4_error_allowed(&[0x45]));
    }

    #[test]
    fn append_leaves_vec_alone_on_error() {
        let mut v = vec![9u8];
        let r = append(&mut v, 4, |_| Err(WireError::BadMacAddr));
        assert_eq!(r, Err(WireError::BadMacAddr));
        assert_eq!(v, [9]);
        let n = append(&mut v, 20, |o| {
            write_ethernet(o, MacAddr::BROADCAST, MacAddr::ZERO, EtherType::Ipv4)
        });
        assert_eq!(n, Ok(14));
        assert_eq!(v.len(), 15);
    }
}
