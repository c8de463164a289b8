//! Frames captured from a real Linux 6.18 kernel (AF_PACKET on a veth pair
//! with TX checksum offload off, so every checksum was filled in by the
//! kernel): 192.0.2.1 (8a:32:2d:bd:c4:5d) talks to 192.0.2.2
//! (82:63:fe:85:c8:62). Test-only.

/// TCP SYN 192.0.2.1:43594 -> 192.0.2.2:8080, MSS/SACK/TS/WS options.
pub(crate) const TCP_SYN_V4: &str = "8263fe85c8628a322dbdc45d08004500003cabf9400040060abfc0000201c0000202aa4a1f909bff944100000000a002faf0c18e0000020405b40402080a9b20723d000000000103030a";
/// The RST|ACK the closed port answered with.
pub(crate) const TCP_RST_V4: &str = "8a322dbdc45d8263fe85c862080045000028000040004006b6ccc0000202c00002011f90aa4a000000009bff94425014000031b00000";
/// UDP 192.0.2.1:51275 -> 192.0.2.2:5353, payload "hello rvs".
pub(crate) const UDP_V4: &str = "8263fe85c8628a322dbdc45d0800450000256b02400040114bc2c0000201c0000202c84b14e90011752a68656c6c6f20727673";
/// The kernel's ICMP port unreachable for [`UDP_V4`].
pub(crate) const ICMP_PORT_UNREACH_V4: &str = "8a322dbdc45d8263fe85c862080045c00041f096000040010562c0000202c00002010303812300000000450000256b02400040114bc2c0000201c0000202c84b14e90011752a68656c6c6f20727673";
/// ARP request who-has 192.0.2.2 tell 192.0.2.1.
pub(crate) const ARP_REQUEST: &str =
    "ffffffffffff8a322dbdc45d080600010800060400018a322dbdc45dc0000201000000000000c0000202";
/// ARP reply 192.0.2.2 is-at 82:63:fe:85:c8:62.
pub(crate) const ARP_REPLY: &str =
    "8a322dbdc45d8263fe85c862080600010800060400028263fe85c862c00002028a322dbdc45dc0000201";
/// MLDv2 report: IPv6 with a hop-by-hop (router alert) header, then ICMPv6 143.
pub(crate) const MLD_V6_HOP_BY_HOP: &str = "3333000000168a322dbdc45d86dd6000000000240001fe8000000000000088322dfffebdc45dff0200000000000000000000000000163a000502000001008f0032a10000000104000000ff0200000000000000000001ffbdc45d";
/// ICMPv6 router solicitation from fe80::8832:2dff:febd:c45d.
pub(crate) const ROUTER_SOLICIT_V6: &str = "3333000000028a322dbdc45d86dd6000000000103afffe8000000000000088322dfffebdc45dff020000000000000000000000000002850086930000000001018a322dbdc45d";
/// ICMPv6 neighbour solicitation (DAD, source ::) with a nonce option.
pub(crate) const NEIGHBOR_SOLICIT_V6: &str = "3333ff85c8628263fe85c86286dd6000000000203aff00000000000000000000000000000000ff0200000000000000000001ff85c8628700d02b00000000fe800000000000008063fefffe85c8620e0116aa5106270e";

/// Decode a hex string of the fixtures above (test-only; bad digits become 0).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .map(|c| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0,
        })
        .collect();
    digits
        .chunks(2)
        .map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0))
        .collect()
}
