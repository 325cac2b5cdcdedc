//! The fixed header: packet type, flags, remaining length.
//!
//! [`frame_len`] delimits packets in a byte stream and refuses an over-size
//! packet from its declared length, before its body is buffered.

use crate::error::DecodeError;
use crate::read::parse_vbi;

/// The control packet type, high nibble of the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    /// MQTT 5 only.
    Auth = 15,
}

impl PacketType {
    /// `None` for the reserved type 0.
    pub fn from_nibble(n: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match n {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The flags nibble every packet but PUBLISH must carry (spec 2.1.3).
    pub(crate) fn required_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

/// Limits applied while framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted packet, fixed header included. The broker announces
    /// it in CONNACK (Maximum Packet Size) and refuses larger packets with
    /// reason code 0x95.
    pub max_packet_size: u32,
}

impl DecodeLimits {
    /// 1 MiB: large enough for typical telemetry and firmware chunks, small
    /// enough that a few thousand half-sent packets cannot exhaust memory.
    pub const DEFAULT_MAX_PACKET_SIZE: u32 = 1024 * 1024;
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_packet_size: Self::DEFAULT_MAX_PACKET_SIZE,
        }
    }
}

/// Looks at the start of `buf`. `Ok(None)`: need more bytes.
/// `Ok(Some(n))`: the first `n` bytes are one whole packet.
///
/// Fails on a remaining length longer than 4 bytes, on the reserved packet
/// type 0 and on a declared size over `limits.max_packet_size` (decided from
/// the declared length alone, so the body is never buffered).
pub fn frame_len(buf: &[u8], limits: &DecodeLimits) -> Result<Option<usize>, DecodeError> {
    let Some((&byte1, rest)) = buf.split_first() else {
        return Ok(None);
    };
    if byte1 >> 4 == 0 {
        return Err(DecodeError::ReservedPacketType);
    }
    let Some((remaining, vbi_len)) = parse_vbi(rest)? else {
        return Ok(None);
    };
    let total = 1 + vbi_len + remaining as usize;
    if total > limits.max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: limits.max_packet_size,
        });
    }
    Ok((buf.len() >= total).then_some(total))
}

/// Splits a whole frame into its type, flags and body, checking that the
/// remaining length matches the frame exactly.
pub(crate) fn split(frame: &[u8]) -> Result<(PacketType, u8, &[u8]), DecodeError> {
    let (&byte1, rest) = frame.split_first().ok_or(DecodeError::Truncated)?;
    let kind = PacketType::from_nibble(byte1 >> 4).ok_or(DecodeError::ReservedPacketType)?;
    let (remaining, vbi_len) = parse_vbi(rest)?.ok_or(DecodeError::Truncated)?;
    let body = rest.get(vbi_len..).ok_or(DecodeError::Truncated)?;
    match body.len().cmp(&(remaining as usize)) {
        std::cmp::Ordering::Less => Err(DecodeError::Truncated),
        std::cmp::Ordering::Greater => Err(DecodeError::TrailingBytes),
        std::cmp::Ordering::Equal => Ok((kind, byte1 & 0x0F, body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limit_is_documented_value() {
        assert_eq!(DecodeLimits::default().max_packet_size, 1_048_576);
    }

    #[test]
    fn framing_table() {
        let lim = DecodeLimits {
            max_packet_size: 200,
        };
        let big = [&[0x30, 0xC9, 0x01][..], &[0u8; 10][..]].concat(); // declares 201 + 3
        type Case<'a> = (&'a [u8], Result<Option<usize>, DecodeError>);
        let cases: &[Case] = &[
            (&[], Ok(None)),
            (&[0xC0], Ok(None)),
            (&[0xC0, 0x00], Ok(Some(2))),
            (&[0xC0, 0x00, 0xD0], Ok(Some(2))),
            (&[0x30, 0x03, 0x00], Ok(None)),
            (&[0x30, 0x80], Ok(None)),
            (&[0x00, 0x00], Err(DecodeError::ReservedPacketType)),
            (&[0x00], Err(DecodeError::ReservedPacketType)),
            (
                &[0x30, 0xFF, 0xFF, 0xFF, 0xFF],
                Err(DecodeError::VbiTooLong),
            ),
            (
                &big,
                Err(DecodeError::PacketTooLarge {
                    size: 204,
                    max: 200,
                }),
            ),
            (
                &[0x30, 0xFF, 0xFF, 0xFF, 0x7F],
                Err(DecodeError::PacketTooLarge {
                    size: 268_435_460,
                    max: 200,
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&frame_len(input, &lim), want, "{input:02x?}");
        }
    }

    #[test]
    fn split_checks_exact_length() {
        assert_eq!(split(&[0xC0, 0x00]), Ok((PacketType::PingReq, 0, &[][..])));
        assert_eq!(split(&[0xC0, 0x01]), Err(DecodeError::Truncated));
        assert_eq!(split(&[0xC0, 0x00, 0x00]), Err(DecodeError::TrailingBytes));
        assert_eq!(split(&[0x0C, 0x00]), Err(DecodeError::ReservedPacketType));
        assert_eq!(split(&[0xC0]), Err(DecodeError::Truncated));
    }
}
