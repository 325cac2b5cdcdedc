//! CONNACK (spec 3.2).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::Reader;
use crate::reason;
use crate::write::{put_header, total_len};
use crate::{ConnAck, ProtocolVersion};

pub(crate) fn decode(
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<ConnAck, DecodeError> {
    let mut r = Reader::new(body);
    let ack_flags = r.u8()?;
    if ack_flags & 0xFE != 0 {
        return Err(DecodeError::ConnAckReservedFlags);
    }
    let code = r.u8()?;
    let (reason, properties) = match version {
        ProtocolVersion::V311 => (reason::decode_v3_connack(code)?, Default::default()),
        ProtocolVersion::V5 => (
            reason::decode_v5(PacketType::ConnAck, code)?,
            properties::decode(&mut r, src, PropCtx::ConnAck)?,
        ),
    };
    r.finish()?;
    let session_present = ack_flags & 0x01 != 0;
    if session_present && reason.is_error() {
        return Err(DecodeError::SessionPresentOnError);
    }
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

fn plan(p: &ConnAck, version: ProtocolVersion) -> Result<(usize, usize, usize), EncodeError> {
    let props = match version {
        ProtocolVersion::V311 => 0,
        ProtocolVersion::V5 => properties::content_len(&PropsRef::of(&p.properties))?,
    };
    let remaining = match version {
        ProtocolVersion::V311 => 2,
        ProtocolVersion::V5 => 2 + properties::prefixed_len(props)?,
    };
    Ok((remaining, total_len(remaining)?, props))
}

pub(crate) fn encoded_len(p: &ConnAck, version: ProtocolVersion) -> Result<usize, EncodeError> {
    plan(p, version).map(|(_, total, _)| total)
}

pub(crate) fn encode(
    p: &ConnAck,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (remaining, total, props) = plan(p, version)?;
    put_header(out, 0x20, remaining, total);
    out.put_u8(u8::from(p.session_present));
    match version {
        ProtocolVersion::V311 => out.put_u8(p.reason.to_v3_connack()),
        ProtocolVersion::V5 => {
            out.put_u8(p.reason.code());
            properties::write(out, &PropsRef::of(&p.properties), props);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{dec, frame};
    use crate::ProtocolVersion::*;

    #[test]
    fn strictness_table() {
        use DecodeError as E;
        let cases: Vec<(&str, Vec<u8>, ProtocolVersion, E)> = vec![
            (
                "flags",
                frame(0x20, &[0x02, 0]),
                V311,
                E::ConnAckReservedFlags,
            ),
            (
                "header flags",
                frame(0x21, &[0, 0]),
                V311,
                E::InvalidFlags {
                    packet: PacketType::ConnAck,
                    flags: 1,
                },
            ),
            (
                "v3 code",
                frame(0x20, &[0, 6]),
                V311,
                E::InvalidReasonCode {
                    packet: PacketType::ConnAck,
                    code: 6,
                },
            ),
            (
                "v5 code",
                frame(0x20, &[0, 0x04, 0]),
                V5,
                E::InvalidReasonCode {
                    packet: PacketType::ConnAck,
                    code: 4,
                },
            ),
            (
                "present on error",
                frame(0x20, &[1, 0x80, 0]),
                V5,
                E::SessionPresentOnError,
            ),
            (
                "trailing v3",
                frame(0x20, &[0, 0, 0]),
                V311,
                E::TrailingBytes,
            ),
            ("no props v5", frame(0x20, &[0, 0]), V5, E::Truncated),
            (
                "max qos 2",
                frame(0x20, &[0, 0, 2, 0x24, 2]),
                V5,
                E::PropertyValue { id: 0x24, value: 2 },
            ),
            (
                "retain avail 2",
                frame(0x20, &[0, 0, 2, 0x25, 2]),
                V5,
                E::PropertyValue { id: 0x25, value: 2 },
            ),
            (
                "wildcard avail 2",
                frame(0x20, &[0, 0, 2, 0x28, 2]),
                V5,
                E::PropertyValue { id: 0x28, value: 2 },
            ),
            (
                "subid avail 2",
                frame(0x20, &[0, 0, 2, 0x29, 2]),
                V5,
                E::PropertyValue { id: 0x29, value: 2 },
            ),
            (
                "shared avail 2",
                frame(0x20, &[0, 0, 2, 0x2A, 2]),
                V5,
                E::PropertyValue { id: 0x2A, value: 2 },
            ),
            (
                "recv max 0",
                frame(0x20, &[0, 0, 3, 0x21, 0, 0]),
                V5,
                E::PropertyValue { id: 0x21, value: 0 },
            ),
            (
                "max packet 0",
                frame(0x20, &[0, 0, 5, 0x27, 0, 0, 0, 0]),
                V5,
                E::PropertyValue { id: 0x27, value: 0 },
            ),
            (
                "will delay",
                frame(0x20, &[0, 0, 5, 0x18, 0, 0, 0, 0]),
                V5,
                E::PropertyNotAllowed {
                    id: 0x18,
                    packet: PacketType::ConnAck,
                },
            ),
            (
                "dup",
                frame(0x20, &[0, 0, 6, 0x13, 0, 1, 0x13, 0, 1]),
                V5,
                E::DuplicateProperty(0x13),
            ),
            (
                "unknown",
                frame(0x20, &[0, 0, 2, 0x7F, 0]),
                V5,
                E::UnknownProperty(0x7F),
            ),
            (
                "prop vbi",
                frame(0x20, &[0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 1]),
                V5,
                E::VbiTooLong,
            ),
            (
                "prop len",
                frame(0x20, &[0, 0, 5, 0x13, 0]),
                V5,
                E::Truncated,
            ),
        ];
        for (name, b, v, want) in cases {
            assert_eq!(dec(&b, v), Err(want), "{name}");
        }
    }
}
