//! IPIP decapsulation, pure: from an IPv4 packet carrying protocol 4
//! (what a raw `IPPROTO_IPIP` socket receives, outer header included) to
//! the inner IPv4 packet, accepted only when it is addressed to one of
//! the real server's VIPs (so the host does not become an open relay).

use std::net::Ipv4Addr;

/// IP protocol number of IPv4-in-IPv4.
pub const IPPROTO_IPIP: u8 = 4;

/// Why a received packet was not decapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecapError {
    #[error("outer packet too short or not IPv4 ({0} bytes)")]
    BadOuter(usize),
    #[error("outer protocol {0} is not IPIP")]
    NotIpip(u8),
    #[error("inner packet too short or not IPv4 ({0} bytes)")]
    BadInner(usize),
    #[error("inner destination {0} is not a VIP of this real server")]
    NotOurVip(Ipv4Addr),
}

/// Counters of the decapsulator. Every field moves in a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecapStats {
    pub received: u64,
    pub delivered: u64,
    pub malformed: u64,
    pub foreign: u64,
}

impl DecapStats {
    /// Count one packet's fate.
    pub fn count(&mut self, r: &Result<&[u8], DecapError>) {
        self.received += 1;
        match r {
            Ok(_) => self.delivered += 1,
            Err(DecapError::NotOurVip(_)) => self.foreign += 1,
            Err(_) => self.malformed += 1,
        }
    }
}

/// Length of a well-formed IPv4 header at the start of `p` whose total
/// length fits in `p`, and that total length.
fn ipv4_lengths(p: &[u8]) -> Option<(usize, usize)> {
    let first = *p.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
    (ihl >= 20 && total >= ihl && total <= p.len()).then_some((ihl, total))
}

/// The inner packet of `outer`, if it is IPIP to one of `vips`.
pub fn decapsulate<'a>(outer: &'a [u8], vips: &[Ipv4Addr]) -> Result<&'a [u8], DecapError> {
    let (ihl, total) = ipv4_lengths(outer).ok_or(DecapError::BadOuter(outer.len()))?;
    let proto = outer.get(9).copied().unwrap_or_default();
    if proto != IPPROTO_IPIP {
        return Err(DecapError::NotIpip(proto));
    }
    let inner = outer.get(ihl..total).unwrap_or_default();
    let (_, inner_total) = ipv4_lengths(inner).ok_or(DecapError::BadInner(inner.len()))?;
    let inner = inner.get(..inner_total).unwrap_or_default();
    let dst = match inner.get(16..20) {
        Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d),
        _ => return Err(DecapError::BadInner(inner.len())),
    };
    if !vips.contains(&dst) {
        return Err(DecapError::NotOurVip(dst));
    }
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

    /// A 20-byte IPv4 header (checksum left 0: the decapsulator does not
    /// check it, the kernel already did for the outer one and will for
    /// the inner one).
    fn header(total: u16, proto: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let t = total.to_be_bytes();
        let mut h = vec![0x45, 0, t[0], t[1], 0, 0, 0x40, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    fn inner_syn() -> Vec<u8> {
        // IPv4 + 20 bytes of TCP (content irrelevant here): 40 bytes.
        let mut p = header(40, 6, [198, 51, 100, 2], [198, 51, 100, 10]);
        p.extend_from_slice(&[0xab; 20]);
        p
    }

    fn ipip(inner: &[u8], dst_inner_len_pad: usize) -> Vec<u8> {
        let total = u16::try_from(20 + inner.len()).unwrap_or(u16::MAX);
        let mut p = header(total, 4, [198, 51, 100, 1], [203, 0, 113, 11]);
        p.extend_from_slice(inner);
        p.extend(std::iter::repeat_n(0u8, dst_inner_len_pad));
        p
    }

    #[test]
    fn strips_the_outer_header() {
        let inner = inner_syn();
        let outer = ipip(&inner, 0);
        assert_eq!(outer.len(), 60);
        assert_eq!(decapsulate(&outer, &[VIP]), Ok(&inner[..]));
    }

    #[test]
    fn ignores_link_padding_after_the_outer_total_length() {
        let inner = inner_syn();
        let outer = ipip(&inner, 6);
        assert_eq!(decapsulate(&outer, &[VIP]), Ok(&inner[..]));
    }

    #[test]
    fn refuses_inner_packets_for_other_addresses() {
        let outer = ipip(&inner_syn(), 0);
        let other = Ipv4Addr::new(198, 51, 100, 99);
        assert_eq!(
            decapsulate(&outer, &[other]),
            Err(DecapError::NotOurVip(VIP))
        );
    }

    #[test]
    fn refuses_malformed_packets() {
        assert_eq!(decapsulate(&[], &[VIP]), Err(DecapError::BadOuter(0)));
        let mut not_ipip = ipip(&inner_syn(), 0);
        not_ipip[9] = 17;
        assert_eq!(decapsulate(&not_ipip, &[VIP]), Err(DecapError::NotIpip(17)));
        // Outer total length beyond the buffer.
        let mut long = ipip(&inner_syn(), 0);
        long[3] = 200;
        assert_eq!(decapsulate(&long, &[VIP]), Err(DecapError::BadOuter(60)));
        // Inner is IPv6-looking.
        let mut v6 = ipip(&inner_syn(), 0);
        v6[20] = 0x60;
        assert_eq!(decapsulate(&v6, &[VIP]), Err(DecapError::BadInner(40)));
        // Inner total length larger than what the outer carries.
        let mut cut = ipip(&inner_syn(), 0);
        cut[23] = 41;
        assert_eq!(decapsulate(&cut, &[VIP]), Err(DecapError::BadInner(40)));
        // Inner header length below 20.
        let mut ihl = ipip(&inner_syn(), 0);
        ihl[20] = 0x44;
        assert_eq!(decapsulate(&ihl, &[VIP]), Err(DecapError::BadInner(40)));
    }

    #[test]
    fn stats_count_each_fate() {
        let good = ipip(&inner_syn(), 0);
        let mut s = DecapStats::default();
        s.count(&decapsulate(&good, &[VIP]));
        s.count(&decapsulate(&good, &[]));
        s.count(&decapsulate(&[1, 2, 3], &[VIP]));
        assert_eq!(
            s,
            DecapStats {
                received: 3,
                delivered: 1,
                malformed: 1,
                foreign: 1
            }
        );
    }
}
