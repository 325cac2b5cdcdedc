//! A bounded reader over peer bytes.
//!
//! Invariant: no method can read past the slice it was given; every length
//! the peer declares is checked against the bytes actually present before
//! anything is copied or allocated. Length-prefixed fields get sub-readers
//! so a field cannot spill into its neighbour.

use crate::error::DecodeError;

/// Largest value a variable byte integer can carry (4 bytes).
pub(crate) const VBI_MAX: u32 = 268_435_455;

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(DecodeError::Truncated)?;
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// A reader over the next `n` bytes, which this reader skips.
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        self.bytes(n).map(Reader::new)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, tail) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
        self.buf = tail;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b: [u8; 2] = self.array()?;
        Ok(u16::from_be_bytes(b))
    }

    /// A packet identifier where one is required: never 0 [MQTT-2.2.1-3].
    pub(crate) fn packet_id(&mut self, kind: crate::PacketType) -> Result<u16, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::ZeroPacketId(kind)),
            id => Ok(id),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b: [u8; 4] = self.array()?;
        Ok(u32::from_be_bytes(b))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated)?;
        self.buf = tail;
        Ok(*head)
    }

    /// A variable byte integer of at most 4 bytes. Non-minimal encodings are
    /// accepted (see the crate docs).
    pub(crate) fn vbi(&mut self) -> Result<u32, DecodeError> {
        match parse_vbi(self.buf)? {
            Some((value, len)) => {
                self.bytes(len)?;
                Ok(value)
            }
            None => Err(DecodeError::Truncated),
        }
    }

    /// Two-byte length then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()?;
        self.bytes(usize::from(len))
    }

    /// A UTF-8 Encoded String (spec 1.5.4).
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        check_utf8(raw).map(str::to_owned)
    }

    /// Fails if any byte is left: every field has been read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Parses a variable byte integer at the start of `buf`. `Ok(None)` when
/// `buf` ends before the integer does; `Err` once a fifth byte would be
/// needed.
pub(crate) fn parse_vbi(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &b) in buf.iter().take(4).enumerate() {
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::VbiTooLong)
    } else {
        Ok(None)
    }
}

/// Validates a UTF-8 Encoded String: well-formed (which in Rust's decoder
/// already excludes surrogates; we name them apart for the audit log) and
/// without U+0000.
pub(crate) fn check_utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    match std::str::from_utf8(raw) {
        Ok(s) if s.as_bytes().contains(&0) => Err(DecodeError::NullCharacter),
        Ok(s) => Ok(s),
        Err(e) => {
            // A surrogate is encoded ED A0..BF xx in the CESU-ish form
            // clients produce from UTF-16 strings.
            let at = raw.get(e.valid_up_to()..).unwrap_or_default();
            match at {
                [0xED, second, ..] if (0xA0..=0xBF).contains(second) => {
                    Err(DecodeError::Utf16Surrogate)
                }
                _ => Err(DecodeError::InvalidUtf8),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vbi_boundaries() {
        type Case<'a> = (&'a [u8], Result<Option<(u32, usize)>, DecodeError>);
        let cases: &[Case] = &[
            (&[0x00], Ok(Some((0, 1)))),
            (&[0x7F], Ok(Some((127, 1)))),
            (&[0x80, 0x01], Ok(Some((128, 2)))),
            (&[0xFF, 0xFF, 0xFF, 0x7F], Ok(Some((VBI_MAX, 4)))),
            (&[0x80], Ok(None)),
            (&[0xFF, 0xFF, 0xFF], Ok(None)),
            (&[0xFF, 0xFF, 0xFF, 0xFF], Err(DecodeError::VbiTooLong)),
            (
                &[0xFF, 0xFF, 0xFF, 0xFF, 0x01],
                Err(DecodeError::VbiTooLong),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_vbi(input), want, "{input:02x?}");
        }
    }

    #[test]
    fn strings() {
        let cases: &[(&[u8], Result<&str, DecodeError>)] = &[
            (b"a/b", Ok("a/b")),
            ("\u{FEFF}é".as_bytes(), Ok("\u{FEFF}é")),
            (b"a\0b", Err(DecodeError::NullCharacter)),
            (&[0xC3], Err(DecodeError::InvalidUtf8)),
            (&[0xC0, 0x80], Err(DecodeError::InvalidUtf8)),
            (&[b'a', 0xED, 0xA0, 0x80], Err(DecodeError::Utf16Surrogate)),
            (&[0xED, 0xBF, 0xBF], Err(DecodeError::Utf16Surrogate)),
            (&[0xF4, 0x90, 0x80, 0x80], Err(DecodeError::InvalidUtf8)),
        ];
        for (input, want) in cases {
            assert_eq!(&check_utf8(input), want, "{input:02x?}");
        }
    }

    #[test]
    fn reader_is_bounded() {
        let mut r = Reader::new(&[0x00, 0x05, b'a']);
        assert_eq!(r.string(), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[0x01]);
        assert_eq!(r.u16(), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[0x01, 0x02]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert!(r.finish().is_ok());
        let mut r = Reader::new(&[0x80]);
        assert_eq!(r.vbi(), Err(DecodeError::Truncated));
    }
}
