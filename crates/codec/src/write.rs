//! Encoding primitives.
//!
//! The encoder works in two passes: every packet first computes its exact
//! length (failing on values the wire format cannot carry), then writes into
//! `out`, reserved once. The write helpers therefore assume their input was
//! validated by the length pass and never fail.

use bytes::BufMut;

use crate::error::EncodeError;
use crate::read::VBI_MAX;

/// Bytes a variable byte integer takes.
pub(crate) fn vbi_len(value: usize) -> Result<usize, EncodeError> {
    match value {
        0..=127 => Ok(1),
        128..=16_383 => Ok(2),
        16_384..=2_097_151 => Ok(3),
        2_097_152..=268_435_455 => Ok(4),
        _ => Err(EncodeError::VbiOutOfRange(value as u64)),
    }
}

pub(crate) fn put_vbi(out: &mut impl BufMut, value: usize) {
    let mut v = value;
    loop {
        let byte = (v % 128) as u8;
        v /= 128;
        if v == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

/// Length of a UTF-8 Encoded String field, prefix included.
pub(crate) fn str_len(s: &str) -> Result<usize, EncodeError> {
    if s.len() > usize::from(u16::MAX) {
        return Err(EncodeError::StringTooLong(s.len()));
    }
    Ok(2 + s.len())
}

/// Length of a Binary Data field, prefix included.
pub(crate) fn bin_len(b: &[u8]) -> Result<usize, EncodeError> {
    if b.len() > usize::from(u16::MAX) {
        return Err(EncodeError::BinaryTooLong(b.len()));
    }
    Ok(2 + b.len())
}

/// Writes a length-prefixed field whose length `*_len` already checked.
pub(crate) fn put_bin(out: &mut impl BufMut, b: &[u8]) {
    out.put_u16(b.len() as u16);
    out.put_slice(b);
}

pub(crate) fn put_str(out: &mut impl BufMut, s: &str) {
    put_bin(out, s.as_bytes());
}

/// Total packet length from the remaining length; refuses what a 4-byte
/// remaining length cannot express.
pub(crate) fn total_len(remaining: usize) -> Result<usize, EncodeError> {
    if remaining > VBI_MAX as usize {
        return Err(EncodeError::PacketTooLarge(remaining));
    }
    Ok(1 + vbi_len(remaining)? + remaining)
}

/// Reserves the whole packet and writes its fixed header.
pub(crate) fn put_header(out: &mut bytes::BytesMut, byte1: u8, remaining: usize, total: usize) {
    out.reserve(total);
    out.put_u8(byte1);
    put_vbi(out, remaining);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::parse_vbi;

    #[test]
    fn vbi_round_trip_at_boundaries() {
        for v in [
            0usize,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
        ] {
            let mut out = Vec::new();
            put_vbi(&mut out, v);
            assert_eq!(out.len(), vbi_len(v).ok().unwrap_or(0));
            assert_eq!(parse_vbi(&out), Ok(Some((v as u32, out.len()))));
        }
        assert!(vbi_len(268_435_456).is_err());
    }
}
