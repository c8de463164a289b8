//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are kept as `u32` accumulators of big-endian 16-bit words and folded
//! with end-around carry only at the end. Functions named `*_sum` return a
//! folded, *uncomplemented* partial sum suitable for adding into another sum;
//! [`checksum`] and the transport helpers return the final complemented value
//! that goes on the wire.
//!
//! Incremental update uses RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, which
//! never turns a valid checksum into the wrong zero. UDP over IPv4 has its own
//! rule (0 means "no checksum"): see [`udp_v4_incremental`] and
//! [`udp_finalize`].

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::IpProtocol;

/// Add the big-endian 16-bit words of `data` to `acc` (an odd trailing byte is
/// padded with zero on the right, as RFC 1071 says). The result is not folded.
pub fn accumulate(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([pair[0], pair[1]])));
        // Fold early now and then so huge buffers cannot overflow `acc`.
        if acc & 0x8000_0000 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Fold a 32-bit accumulator to 16 bits with end-around carry (not
/// complemented).
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 0xffff.
    acc as u16
}

/// Folded, uncomplemented ones'-complement sum of `data`.
pub fn sum(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// Internet checksum of `data`: the complement of its ones'-complement sum.
/// Over a header whose checksum field is zero this is the value to store;
/// over a header with a correct checksum in place it is 0.
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Ones'-complement sum of the IPv4 pseudo-header (RFC 793 / RFC 768):
/// source, destination, zero byte + protocol, and the upper-layer length.
/// Folded, not complemented.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, len: u16) -> u16 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc += u32::from(u8::from(proto));
    acc += u32::from(len);
    fold(acc)
}

/// Ones'-complement sum of the IPv6 pseudo-header (RFC 8200 §8.1): source,
/// destination, 32-bit upper-layer length, next header. Folded, not
/// complemented.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: IpProtocol, len: u32) -> u16 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc = accumulate(acc, &len.to_be_bytes());
    acc += u32::from(u8::from(proto));
    fold(acc)
}

/// Checksum of an upper-layer segment (`segment` with its checksum field
/// zeroed) over IPv4. The length in the pseudo-header is `segment.len()`
/// (saturated at 65535).
pub fn transport_checksum_v4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    segment: &[u8],
) -> u16 {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    let acc = accumulate(u32::from(pseudo_header_v4(src, dst, proto, len)), segment);
    !fold(acc)
}

/// Checksum of an upper-layer segment (checksum field zeroed) over IPv6.
pub fn transport_checksum_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    proto: IpProtocol,
    segment: &[u8],
) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    let acc = accumulate(u32::from(pseudo_header_v6(src, dst, proto, len)), segment);
    !fold(acc)
}

/// True when `segment`, with its checksum in place, sums to all ones together
/// with the IPv4 pseudo-header.
pub fn verify_transport_v4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    segment: &[u8],
) -> bool {
    transport_checksum_v4(src, dst, proto, segment) == 0
}

/// IPv6 counterpart of [`verify_transport_v4`].
pub fn verify_transport_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    proto: IpProtocol,
    segment: &[u8],
) -> bool {
    transport_checksum_v6(src, dst, proto, segment) == 0
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered
/// data changed from `old_word` to `new_word`.
pub fn update_u16(old_csum: u16, old_word: u16, new_word: u16) -> u16 {
    let acc = u32::from(!old_csum) + u32::from(!old_word) + u32::from(new_word);
    !fold(acc)
}

/// [`update_u16`] for a 32-bit field (two adjacent words, aligned on an even
/// offset of the covered data), e.g. a TCP sequence number.
pub fn update_u32(old_csum: u16, old: u32, new: u32) -> u16 {
    update_bytes(old_csum, &old.to_be_bytes(), &new.to_be_bytes())
}

/// RFC 1624 update for a run of bytes that changed from `old` to `new`. Both
/// slices must describe the same bytes, starting at an even offset of the
/// checksummed data; if their lengths differ only the common prefix is used.
pub fn update_bytes(old_csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let n = old.len().min(new.len());
    let (old, new) = (&old[..n], &new[..n]);
    // ~HC + ~m + m', where ~m over a run is the complement of its sum.
    let acc = u32::from(!old_csum) + u32::from(!sum(old)) + u32::from(sum(new));
    !fold(acc)
}

/// RFC 1624 update for an address change: 4 bytes (IPv4) or 16 bytes (IPv6).
/// Works for the IP header checksum and, since addresses are in the
/// pseudo-header, for TCP/UDP/ICMPv6 checksums too.
pub fn update_addr(old_csum: u16, old: &[u8], new: &[u8]) -> u16 {
    update_bytes(old_csum, old, new)
}

/// [`update_addr`] for IPv4 addresses.
pub fn update_addr_v4(old_csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_bytes(old_csum, &old.octets(), &new.octets())
}

/// [`update_addr`] for IPv6 addresses.
pub fn update_addr_v6(old_csum: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    update_bytes(old_csum, &old.octets(), &new.octets())
}

/// Incremental update of a UDP-over-IPv4 checksum. A checksum of 0 means the
/// sender computed none (RFC 768), so it stays 0; otherwise `update` is
/// applied and a result of 0 is sent as 0xFFFF.
///
/// ```
/// use rvs_wire::checksum::{udp_v4_incremental, update_u16};
/// assert_eq!(udp_v4_incremental(0, |c| update_u16(c, 1000, 2000)), 0);
/// ```
pub fn udp_v4_incremental(old_csum: u16, update: impl FnOnce(u16) -> u16) -> u16 {
    if old_csum == 0 {
        0
    } else {
        udp_finalize(update(old_csum))
    }
}

/// Map a computed UDP checksum of 0 to 0xFFFF (RFC 768; mandatory for IPv6
/// where 0 is never valid).
pub fn udp_finalize(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        // 0x0102 + 0x0300 = 0x0402
        assert_eq!(sum(&[1, 2, 3]), 0x0402);
    }

    #[test]
    fn carries_wrap_around() {
        // 0xffff + 0x0001 = 0x1_0000 -> 0x0001
        assert_eq!(sum(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
        assert_eq!(fold(0x0002_fffe), 0x0001);
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn pseudo_header_v4_by_hand() {
        // 192.0.2.1 -> 192.0.2.2, TCP, len 40:
        // c000 + 0201 + c000 + 0202 + 0006 + 0028 = 0x18431 -> 0x8432
        let s = pseudo_header_v4(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            IpProtocol::Tcp,
            40,
        );
        assert_eq!(s, 0x8432);
    }

    #[test]
    fn pseudo_header_v6_by_hand() {
        // 2001:db8::1 -> 2001:db8::2, UDP(17), len 0x0001_0010:
        // (2001+0db8+0001) + (2001+0db8+0002) + (0001+0010) + 0011
        // = 0x2dba + 0x2dbb + 0x11 + 0x11 = 0x5b97
        let s = pseudo_header_v6(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            IpProtocol::Udp,
            0x0001_0010,
        );
        assert_eq!(s, 0x5b97);
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(udp_finalize(0), 0xffff);
        assert_eq!(udp_finalize(0x1234), 0x1234);
        assert_eq!(udp_v4_incremental(0, |_| 0x1111), 0);
        // An update that lands on 0 is sent as 0xffff.
        assert_eq!(udp_v4_incremental(0x1234, |_| 0), 0xffff);
    }

    #[test]
    fn update_addr_matches_recompute_on_header() {
        // Real IPv4 header (kernel-sent SYN), checksum 0x0abf.
        let mut h = [
            0x45, 0x00, 0x00, 0x3c, 0xab, 0xf9, 0x40, 0x00, 0x40, 0x06, 0x0a, 0xbf, 0xc0, 0x00,
            0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
        ];
        assert_eq!(checksum(&h), 0);
        let new = Ipv4Addr::new(10, 9, 8, 7);
        let inc = update_addr_v4(0x0abf, Ipv4Addr::new(192, 0, 2, 2), new);
        h[16..20].copy_from_slice(&new.octets());
        h[10] = 0;
        h[11] = 0;
        assert_eq!(inc, checksum(&h));
    }
}
