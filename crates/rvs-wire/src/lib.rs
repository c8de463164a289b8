//! rvs-wire: zero-copy packet views, builders and checksums for the rvs
//! datapath.
//!
//! What it does:
//! - Views in the smoltcp style: `Packet<T: AsRef<[u8]>>` over a byte buffer,
//!   `new_checked` validates every length the view relies on, getters work on
//!   any `AsRef<[u8]>`, setters on `AsMut<[u8]>`. Layers: [`ethernet`]
//!   (with 802.1Q/802.1ad tags), [`arp`], [`ipv4`], [`ipv6`] (walking
//!   hop-by-hop, routing, destination-options and fragment headers),
//!   [`tcp`], [`udp`], [`sctp`] (chunks, CRC32c), [`icmp`] (v4 and v6).
//! - [`checksum`]: the Internet checksum, IPv4/IPv6 pseudo-headers, and
//!   RFC 1624 incremental updates for NAT rewrites, with UDP's zero rule.
//! - [`build`]: IP-in-IP encapsulation/decapsulation (LVS TUN), ICMPv4/ICMPv6
//!   error messages, Ethernet headers, written into caller buffers.
//! - [`testframe`]: a builder of complete, checksummed test frames for tests
//!   and demos (this one allocates).
//!
//! What it does not do: allocate (outside [`testframe`]), keep state,
//! reassemble fragments, parse TCP/IP options or ND options, or decide
//! anything (forwarding policy lives in rvs-core). Malformed input is always
//! a [`WireError`] value, never a panic: reads past the end of a buffer
//! through an unchecked view yield zeros, and slices are clamped.

#![forbid(unsafe_code)]

mod bytes;
mod error;
#[cfg(test)]
mod fixtures;
mod ip;

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod sctp;
pub mod tcp;
pub mod testframe;
pub mod udp;

pub use error::{Layer, WireError};
pub use ethernet::{EtherType, EthernetFrame, MacAddr};
pub use icmp::{Icmpv4Packet, Icmpv4Type, Icmpv6Packet, Icmpv6Type};
pub use ip::IpProtocol;
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, UpperLayer};
pub use sctp::{crc32c, SctpChunk, SctpChunkType, SctpPacket};
pub use tcp::{TcpFlags, TcpPacket};
pub use udp::UdpPacket;
