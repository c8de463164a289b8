//! SCTP (RFC 9260): a zero-copy view of the common header, an iterator over
//! chunks, and the CRC32c checksum (own table-driven implementation of the
//! Castagnoli polynomial, RFC 9260 Appendix A / RFC 3309).
//!
//! The checksum field holds the CRC32c of the packet (field zeroed) stored
//! least-significant byte first, which is how Linux and the RFC's sample
//! code lay it out; [`SctpPacket::checksum`] returns that numeric value.
//! Does not interpret chunk parameters.

use core::fmt;

use crate::bytes::{set_bytes, set_u16, set_u32, u16_at, u32_at, u8_at};
use crate::error::{clamp, need, Layer, WireError};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const VTAG: usize = 4;
    pub const CHECKSUM: usize = 8;
}

/// Length of the SCTP common header.
pub const HEADER_LEN: usize = 12;
/// Length of a chunk header (type, flags, length).
pub const CHUNK_HEADER_LEN: usize = 4;

const fn crc32c_table() -> [u32; 256] {
    // Reflected Castagnoli polynomial 0x1EDC6F41.
    const POLY: u32 = 0x82f6_3b78;
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC32C_TABLE: [u32; 256] = crc32c_table();

/// Feed `data` into a running CRC32c register (start from `0xFFFF_FFFF`,
/// finish by complementing). See [`crc32c`] for the one-shot form.
pub fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC32c (Castagnoli) of `data`: init all ones, reflected, final complement.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(0xffff_ffff, data)
}

/// SCTP chunk types (RFC 9260 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SctpChunkType {
    /// 0
    Data,
    /// 1
    Init,
    /// 2
    InitAck,
    /// 3
    Sack,
    /// 4
    Heartbeat,
    /// 5
    HeartbeatAck,
    /// 6
    Abort,
    /// 7
    Shutdown,
    /// 8
    ShutdownAck,
    /// 9
    Error,
    /// 10
    CookieEcho,
    /// 11
    CookieAck,
    /// 14
    ShutdownComplete,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for SctpChunkType {
    fn from(v: u8) -> Self {
        match v {
            0 => SctpChunkType::Data,
            1 => SctpChunkType::Init,
            2 => SctpChunkType::InitAck,
            3 => SctpChunkType::Sack,
            4 => SctpChunkType::Heartbeat,
            5 => SctpChunkType::HeartbeatAck,
            6 => SctpChunkType::Abort,
            7 => SctpChunkType::Shutdown,
            8 => SctpChunkType::ShutdownAck,
            9 => SctpChunkType::Error,
            10 => SctpChunkType::CookieEcho,
            11 => SctpChunkType::CookieAck,
            14 => SctpChunkType::ShutdownComplete,
            o => SctpChunkType::Unknown(o),
        }
    }
}

impl From<SctpChunkType> for u8 {
    fn from(t: SctpChunkType) -> u8 {
        match t {
            SctpChunkType::Data => 0,
            SctpChunkType::Init => 1,
            SctpChunkType::InitAck => 2,
            SctpChunkType::Sack => 3,
            SctpChunkType::Heartbeat => 4,
            SctpChunkType::HeartbeatAck => 5,
            SctpChunkType::Abort => 6,
            SctpChunkType::Shutdown => 7,
            SctpChunkType::ShutdownAck => 8,
            SctpChunkType::Error => 9,
            SctpChunkType::CookieEcho => 10,
            SctpChunkType::CookieAck => 11,
            SctpChunkType::ShutdownComplete => 14,
            SctpChunkType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for SctpChunkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SctpChunkType::Unknown(v) => write!(f, "chunk-{v}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One chunk, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SctpChunk<'a> {
    /// Chunk type.
    pub chunk_type: SctpChunkType,
    /// Chunk flags.
    pub flags: u8,
    /// Length field (header + value, without padding).
    pub length: u16,
    /// Value bytes (`length - 4` bytes).
    pub value: &'a [u8],
}

/// Iterator over the chunks of a packet. Yields `Err` once for a malformed
/// chunk and then stops.
#[derive(Debug, Clone)]
pub struct SctpChunks<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for SctpChunks<'a> {
    type Item = Result<SctpChunk<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let result = need(Layer::SctpChunk, rest, CHUNK_HEADER_LEN).and_then(|()| {
            let length = usize::from(u16_at(rest, 2));
            if length < CHUNK_HEADER_LEN {
                return Err(WireError::BadLength {
                    layer: Layer::SctpChunk,
                    value: length,
                    min: CHUNK_HEADER_LEN,
                });
            }
            need(Layer::SctpChunk, rest, length)?;
            Ok(length)
        });
        match result {
            Ok(length) => {
                let chunk = SctpChunk {
                    chunk_type: u8_at(rest, 0).into(),
                    flags: u8_at(rest, 1),
                    length: u16_at(rest, 2),
                    value: clamp(rest, CHUNK_HEADER_LEN, length),
                };
                // Chunks are padded to 4 bytes; a missing final pad is tolerated.
                let padded = length.saturating_add(3) & !3;
                self.rest = clamp(rest, padded, rest.len());
                Some(Ok(chunk))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// A zero-copy view of an SCTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SctpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// Wrap without checking (getters read zeros past the end).
    pub const fn new_unchecked(buffer: T) -> Self {
        SctpPacket { buffer }
    }

    /// Wrap after checking that the 12-byte common header is present.
    /// Chunks are validated as they are iterated ([`SctpPacket::chunks`]) or
    /// all at once by [`SctpPacket::check_chunks`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        need(Layer::Sctp, p.buffer.as_ref(), HEADER_LEN)?;
        Ok(p)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16_at(self.buf(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16_at(self.buf(), field::DST_PORT)
    }

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        u32_at(self.buf(), field::VTAG)
    }

    /// The CRC32c in the checksum field (read least-significant byte first).
    pub fn checksum(&self) -> u32 {
        u32_at(self.buf(), field::CHECKSUM).swap_bytes()
    }

    /// CRC32c of the packet with the checksum field taken as zero.
    pub fn compute_checksum(&self) -> u32 {
        let buf = self.buf();
        let mut crc = crc32c_update(0xffff_ffff, clamp(buf, 0, field::CHECKSUM));
        crc = crc32c_update(crc, &[0; 4]);
        crc = crc32c_update(crc, clamp(buf, HEADER_LEN, buf.len()));
        !crc
    }

    /// True when the checksum field matches the packet.
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == self.compute_checksum()
    }

    /// Bytes after the common header.
    pub fn chunk_bytes(&self) -> &[u8] {
        let buf = self.buf();
        clamp(buf, HEADER_LEN, buf.len())
    }

    /// Iterate over the chunks.
    pub fn chunks(&self) -> SctpChunks<'_> {
        SctpChunks {
            rest: self.chunk_bytes(),
            failed: false,
        }
    }

    /// Validate every chunk header; returns the number of chunks.
    pub fn check_chunks(&self) -> Result<usize, WireError> {
        let mut n = 0;
        for c in self.chunks() {
            c?;
            n += 1;
        }
        Ok(n)
    }

    /// Type of the first chunk, if the packet has a well-formed one.
    pub fn first_chunk_type(&self) -> Option<SctpChunkType> {
        match self.chunks().next() {
            Some(Ok(c)) => Some(c.chunk_type),
            _ => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    /// Set the source port (checksum untouched).
    pub fn set_src_port(&mut self, p: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, p);
    }

    /// Set the destination port (checksum untouched).
    pub fn set_dst_port(&mut self, p: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, p);
    }

    /// Set the verification tag.
    pub fn set_verification_tag(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::VTAG, v);
    }

    /// Store `crc` in the checksum field (least-significant byte first).
    pub fn set_checksum(&mut self, crc: u32) {
        set_bytes(self.buffer.as_mut(), field::CHECKSUM, &crc.to_le_bytes());
    }

    /// Compute and store the CRC32c.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_values() {
        // The standard check value for "123456789".
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 §B.4 test vectors.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
        let dec: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&dec), 0x113f_db5c);
        assert_eq!(crc32c(&[]), 0);
    }

    /// An INIT packet: ports 5000 -> 80, vtag 0, one INIT chunk of 20 bytes
    /// (initiate tag 0x01020304, a_rwnd 65536, 10 out / 10 in streams,
    /// initial TSN 0x0a0b0c0d), then a 5-byte unknown chunk padded to 8.
    fn init_packet() -> Vec<u8> {
        let mut b = vec![0x13, 0x88, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[1, 0, 0, 20]);
        b.extend_from_slice(&[1, 2, 3, 4, 0, 1, 0, 0, 0, 10, 0, 10, 0x0a, 0x0b, 0x0c, 0x0d]);
        b.extend_from_slice(&[0xc0, 0x05, 0, 5, 0xee, 0, 0, 0]);
        b
    }

    #[test]
    fn chunks_are_iterated() {
        let b = init_packet();
        let p = SctpPacket::new_checked(&b[..]).expect("valid");
        assert_eq!(p.src_port(), 5000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.verification_tag(), 0);
        let chunks: Vec<_> = p.chunks().collect::<Result<_, _>>().expect("well-formed");
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].chunk_type, SctpChunkType::Init);
        assert_eq!(chunks[0].length, 20);
        assert_eq!(chunks[0].value.len(), 16);
        assert_eq!(chunks[1].chunk_type, SctpChunkType::Unknown(0xc0));
        assert_eq!(chunks[1].flags, 5);
        assert_eq!(chunks[1].value, &[0xee]);
        assert_eq!(p.check_chunks(), Ok(2));
        assert_eq!(p.first_chunk_type(), Some(SctpChunkType::Init));
    }

    #[test]
    fn checksum_fill_and_verify() {
        let mut b = init_packet();
        let mut p = SctpPacket::new_checked(&mut b[..]).expect("valid");
        p.fill_checksum();
        assert!(p.verify_checksum());
        // Independently: CRC32c over the bytes with a zero field, stored LE.
        let mut zeroed = init_packet();
        zeroed[8..12].fill(0);
        let crc = crc32c(&zeroed);
        assert_eq!(&b[8..12], &crc.to_le_bytes());
        b[20] ^= 1;
        assert!(!SctpPacket::new_unchecked(&b[..]).verify_checksum());
    }

    #[test]
    fn malformed_chunks() {
        let b = init_packet();
        assert_eq!(
            SctpPacket::new_checked(&b[..11]),
            Err(WireError::Truncated {
                layer: Layer::Sctp,
                need: 12,
                have: 11
            })
        );
        // Chunk length 3 (< 4).
        let mut bad = b.clone();
        bad[15] = 3;
        let p = SctpPacket::new_checked(&bad[..]).expect("header ok");
        let mut it = p.chunks();
        assert_eq!(
            it.next(),
            Some(Err(WireError::BadLength {
                layer: Layer::SctpChunk,
                value: 3,
                min: 4
            }))
        );
        assert_eq!(it.next(), None);
        // Chunk running past the end.
        let p = SctpPacket::new_checked(&b[..30]).expect("header ok");
        assert_eq!(
            p.check_chunks(),
            Err(WireError::Truncated {
                layer: Layer::SctpChunk,
                need: 20,
                have: 18
            })
        );
        // Unpadded final chunk is accepted.
        let p = SctpPacket::new_checked(&b[..37]).expect("header ok");
        assert_eq!(p.check_chunks(), Ok(2));
        // Three stray bytes after the last chunk.
        let mut tail = b.clone();
        tail.extend_from_slice(&[1, 2, 3]);
        let p = SctpPacket::new_checked(&tail[..]).expect("header ok");
        assert!(matches!(
            p.check_chunks(),
            Err(WireError::Truncated {
                need: 4,
                have: 3,
                ..
            })
        ));
    }

    #[test]
    fn chunk_type_numbers() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(SctpChunkType::from(v)), v);
        }
        assert_eq!(SctpChunkType::from(14), SctpChunkType::ShutdownComplete);
        assert_eq!(SctpChunkType::from(12), SctpChunkType::Unknown(12));
    }
}
