//! Bounds-checked big-endian field access shared by the views.
//!
//! Reads past the end of a buffer return zero and writes past the end are
//! ignored, so a view built with `new_unchecked` over too short a buffer gives
//! wrong values instead of a panic. `new_checked` rules that case out.

pub(crate) fn u8_at(buf: &[u8], off: usize) -> u8 {
    buf.get(off).copied().unwrap_or(0)
}

pub(crate) fn u16_at(buf: &[u8], off: usize) -> u16 {
    u16::from_be_bytes(array_at(buf, off))
}

pub(crate) fn u32_at(buf: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(array_at(buf, off))
}

pub(crate) fn array_at<const N: usize>(buf: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = off.checked_add(N).and_then(|end| buf.get(off..end)) {
        out.copy_from_slice(src);
    }
    out
}

pub(crate) fn set_u8(buf: &mut [u8], off: usize, v: u8) {
    if let Some(b) = buf.get_mut(off) {
        *b = v;
    }
}

pub(crate) fn set_u16(buf: &mut [u8], off: usize, v: u16) {
    set_bytes(buf, off, &v.to_be_bytes());
}

pub(crate) fn set_u32(buf: &mut [u8], off: usize, v: u32) {
    set_bytes(buf, off, &v.to_be_bytes());
}

pub(crate) fn set_bytes(buf: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = off
        .checked_add(v.len())
        .and_then(|end| buf.get_mut(off..end))
    {
        dst.copy_from_slice(v);
    }
}
