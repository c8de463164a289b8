//! Completing partial TCP/UDP checksums of frames read from AF_XDP.
//!
//! A sender on this host that offloads checksums (any local socket
//! behind a veth with `tx` on, the default) leaves `CHECKSUM_PARTIAL`
//! packets: the checksum field holds only the folded, uncomplemented sum
//! of the pseudo-header, and the device (or the kernel, before a real
//! wire) is expected to finish it. A frame that XDP hands to an AF_XDP
//! socket has lost that flag, so the engine would forward a packet whose
//! receiver drops it. [`complete_partial`] recognises the pattern (field
//! equal to the pseudo-header sum) and writes the full checksum.
//!
//! The test is cheap (a pseudo-header sum per packet; the payload is
//! summed only when the field matches). A complete checksum that happens
//! to equal the pseudo-header sum is recomputed to the same value, so a
//! correct packet is never made wrong; a corrupt one is never "repaired"
//! unless its field is exactly that sum.
//!
//! Pure functions over byte slices, no allocation; unit tested with
//! checksums worked out independently of this code.

/// What [`complete_partial`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Not TCP/UDP over IP, a fragment, or too short to tell.
    NotApplicable,
    /// The checksum was not a partial one; the frame is unchanged.
    Untouched,
    /// The partial checksum was completed in place.
    Completed,
}

const ETH_HLEN: usize = 14;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Add `bytes` as big-endian 16-bit words (an odd last byte is padded).
fn sum_words(bytes: &[u8], mut acc: u64) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    for w in &mut chunks {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Fold a sum to 16 bits (end-around carry), uncomplemented.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Where the IP header starts and which ethertype follows (one VLAN tag
/// at most, as the XDP program parses).
fn l3(frame: &[u8]) -> Option<(usize, u16)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        let inner = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        return Some((ETH_HLEN + 4, inner));
    }
    Some((ETH_HLEN, ethertype))
}

/// Complete the TCP or UDP checksum of an Ethernet `frame` if it is a
/// partial one (see the module doc).
pub fn complete_partial(frame: &mut [u8]) -> Completion {
    let Some((ip_off, ethertype)) = l3(frame) else {
        return Completion::NotApplicable;
    };
    // (offset of the L4 header, its length, protocol, pseudo-header sum
    // without the length and protocol words)
    let (l4_off, l4_len, proto, addr_sum) = match ethertype {
        0x0800 => {
            let Some(ip) = frame.get(ip_off..ip_off + 20) else {
                return Completion::NotApplicable;
            };
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            // MF set or a non-zero offset: the checksum spans fragments.
            if ip[0] >> 4 != 4 || ihl < 20 || frag & 0x3fff != 0 || total < ihl {
                return Completion::NotApplicable;
            }
            (ip_off + ihl, total - ihl, ip[9], sum_words(&ip[12..20], 0))
        }
        0x86dd => {
            let Some(ip) = frame.get(ip_off..ip_off + 40) else {
                return Completion::NotApplicable;
            };
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            (ip_off + 40, payload, ip[6], sum_words(&ip[8..40], 0))
        }
        _ => return Completion::NotApplicable,
    };
    let field = match proto {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => return Completion::NotApplicable,
    };
    let Some(l4) = l4_off
        .checked_add(l4_len)
        .and_then(|end| frame.get_mut(l4_off..end))
    else {
        return Completion::NotApplicable;
    };
    if l4.len() < field + 2 {
        return Completion::NotApplicable;
    }
    let pseudo = addr_sum + u64::from(proto) + l4_len as u64;
    let stored = u16::from_be_bytes([l4[field], l4[field + 1]]);
    if stored != fold(pseudo) {
        return Completion::Untouched;
    }
    l4[field] = 0;
    l4[field + 1] = 0;
    let mut check = !fold(sum_words(l4, pseudo));
    if proto == PROTO_UDP && check == 0 {
        // 0 means "no checksum" in UDP.
        check = 0xffff;
    }
    l4[field..field + 2].copy_from_slice(&check.to_be_bytes());
    Completion::Completed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (198.51.100.2 -> 198.51.100.10) + `l4`.
    fn v4_frame(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0]);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[198, 51, 100, 2, 198, 51, 100, 10]);
        f.extend_from_slice(l4);
        f
    }

    // A UDP datagram 40000 -> 53 with payload "hi".
    // Pseudo-header sum, by hand: 0xc633 + 0x6402 + 0xc633 + 0x640a
    // + 0x0011 (protocol) + 0x000a (length) = 0x2548d -> folded 0x548f.
    // Full sum adds the header words 0x9c40 + 0x0035 + 0x000a and the
    // payload 0x6869: 0x548f + 0x104e8 = 0x15977 -> 0x5978; the
    // checksum is !0x5978 = 0xa687.
    const UDP_PARTIAL: [u8; 10] = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x0a, 0x54, 0x8f, b'h', b'i'];

    #[test]
    fn completes_partial_udp_v4() {
        let mut f = v4_frame(17, &UDP_PARTIAL);
        assert_eq!(complete_partial(&mut f), Completion::Completed);
        assert_eq!(&f[34 + 6..34 + 8], &[0xa6, 0x87]);
    }

    #[test]
    fn leaves_a_complete_checksum_alone() {
        let mut l4 = UDP_PARTIAL;
        l4[6..8].copy_from_slice(&[0xa6, 0x87]);
        let mut f = v4_frame(17, &l4);
        let before = f.clone();
        assert_eq!(complete_partial(&mut f), Completion::Untouched);
        assert_eq!(f, before);
    }

    #[test]
    fn leaves_a_wrong_checksum_alone() {
        let mut l4 = UDP_PARTIAL;
        l4[6..8].copy_from_slice(&[0x12, 0x34]);
        let mut f = v4_frame(17, &l4);
        let before = f.clone();
        assert_eq!(complete_partial(&mut f), Completion::Untouched);
        assert_eq!(f, before);
    }

    #[test]
    fn completes_partial_tcp_v4_and_ignores_ethernet_padding() {
        // TCP SYN 40000 -> 80, seq 1, no options, window 0x1000.
        // Pseudo: 0xc633 + 0x6402 + 0xc633 + 0x640a + 0x0006 + 0x0014
        // = 0x2548c -> 0x548e (the partial field).
        // Header words: 0x9c40 0x0050 0x0000 0x0001 0x0000 0x0000 0x5002
        // 0x1000 0x0000 0x0000 = 0xfc93; 0x548e + 0xfc93 = 0x15121
        // -> 0x5122; checksum !0x5122 = 0xaedd.
        let tcp = [
            0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x10, 0x00, 0x54, 0x8e, 0,
            0,
        ];
        let mut f = v4_frame(6, &tcp);
        // Ethernet minimum-size padding after the IP packet.
        f.extend_from_slice(&[0xee; 6]);
        assert_eq!(complete_partial(&mut f), Completion::Completed);
        assert_eq!(&f[34 + 16..34 + 18], &[0xae, 0xdd]);
        assert_eq!(&f[f.len() - 6..], &[0xee; 6]);
    }

    #[test]
    fn completes_partial_udp_v6() {
        // 2001:db8::2 -> 2001:db8::10, UDP 40000 -> 53, payload "hi".
        // Address words: 0x2001 0x0db8 0x0002 + 0x2001 0x0db8 0x0010
        // = 0x5b84; + 0x11 + 0x0a = 0x5b9f (partial field).
        // + 0x9c40 + 0x0035 + 0x000a + 0x6869 = 0x5b9f + 0x104e8
        // = 0x16087 -> 0x6088; checksum !0x6088 = 0x9f77.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 10, 17, 64]);
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        let mut dst = src;
        src[15] = 2;
        dst[15] = 0x10;
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x35, 0x00, 0x0a, 0x5b, 0x9f, b'h', b'i']);
        assert_eq!(complete_partial(&mut f), Completion::Completed);
        assert_eq!(&f[54 + 6..54 + 8], &[0x9f, 0x77]);
    }

    #[test]
    fn fragments_short_frames_and_other_protocols_are_not_applicable() {
        let mut frag = v4_frame(17, &UDP_PARTIAL);
        frag[20] = 0x20; // MF
        assert_eq!(complete_partial(&mut frag), Completion::NotApplicable);
        let mut icmp = v4_frame(1, &[8, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(complete_partial(&mut icmp), Completion::NotApplicable);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        assert_eq!(complete_partial(&mut arp), Completion::NotApplicable);
        let mut short = v4_frame(17, &UDP_PARTIAL);
        short.truncate(40);
        assert_eq!(complete_partial(&mut short), Completion::NotApplicable);
        assert_eq!(complete_partial(&mut []), Completion::NotApplicable);
    }
}
