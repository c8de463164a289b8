//! The one error type of the crate: what was wrong with a packet (or with an
//! output buffer), at which layer, with the numbers that did not fit.
//!
//! Every parser returns these as values; no input makes the crate panic.

use core::fmt;

/// The protocol layer an error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// Ethernet II header (with any 802.1Q / 802.1ad tags).
    Ethernet,
    /// ARP for IPv4 over Ethernet.
    Arp,
    /// IPv4 header.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Ext,
    /// TCP header.
    Tcp,
    /// UDP header.
    Udp,
    /// SCTP common header.
    Sctp,
    /// An SCTP chunk.
    SctpChunk,
    /// ICMPv4 header.
    Icmpv4,
    /// ICMPv6 header.
    Icmpv6,
    /// A builder's output buffer.
    Output,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Layer::Ethernet => "ethernet",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6 extension header",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Sctp => "sctp",
            Layer::SctpChunk => "sctp chunk",
            Layer::Icmpv4 => "icmpv4",
            Layer::Icmpv6 => "icmpv6",
            Layer::Output => "output buffer",
        };
        f.write_str(name)
    }
}

/// Why a packet could not be viewed or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the layer does.
    #[error("{layer}: truncated, need {need} bytes, have {have}")]
    Truncated {
        /// Layer being read.
        layer: Layer,
        /// Bytes the layer needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// IP version nibble is not the one expected.
    #[error("{layer}: bad version {version}")]
    BadVersion {
        /// Layer being read.
        layer: Layer,
        /// Version found.
        version: u8,
    },
    /// A header-length field is below the minimum for the protocol
    /// (IPv4 IHL < 5, TCP data offset < 5). `value` is in bytes.
    #[error("{layer}: bad header length {value} bytes")]
    BadHeaderLength {
        /// Layer being read.
        layer: Layer,
        /// Header length the packet claims, in bytes.
        value: usize,
    },
    /// A total-length field is smaller than the header it must contain.
    #[error("{layer}: bad total length {value} (header is {header_len} bytes)")]
    BadTotalLength {
        /// Layer being read.
        layer: Layer,
        /// The length field's value.
        value: usize,
        /// Header length it had to cover.
        header_len: usize,
    },
    /// A length field (UDP length, SCTP chunk length) is below its minimum.
    #[error("{layer}: bad length field {value} (minimum {min})")]
    BadLength {
        /// Layer being read.
        layer: Layer,
        /// The length field's value.
        value: usize,
        /// Smallest legal value.
        min: usize,
    },
    /// A field has a value this crate cannot handle in this position
    /// (for example a tunnel builder given a packet that is not IP).
    #[error("{layer}: unsupported value {value} in {field}")]
    Unsupported {
        /// Layer being read.
        layer: Layer,
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u32,
    },
    /// A payload is too big for the length field that must describe it.
    #[error("{layer}: payload of {len} bytes exceeds maximum {max}")]
    TooLong {
        /// Layer being built.
        layer: Layer,
        /// Length asked for.
        len: usize,
        /// Largest length that fits.
        max: usize,
    },
    /// Text that should have been a MAC address was not.
    #[error("bad MAC address syntax")]
    BadMacAddr,
}

/// Check that `buf` holds `need` bytes for `layer`.
pub(crate) fn need(layer: Layer, buf: &[u8], need: usize) -> Result<(), WireError> {
    if buf.len() < need {
        Err(WireError::Truncated {
            layer,
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// `buf[start..end]`, clamped to the buffer, never panicking.
pub(crate) fn clamp(buf: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(buf.len());
    let start = start.min(end);
    &buf[start..end]
}

/// Mutable `buf[start..end]`, clamped to the buffer, never panicking.
pub(crate) fn clamp_mut(buf: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    let end = end.min(buf.len());
    let start = start.min(end);
    &mut buf[start..end]
}
