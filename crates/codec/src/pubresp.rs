//! PUBACK, PUBREC, PUBREL and PUBCOMP (spec 3.4 to 3.7): one shape, one
//! file, told apart by [`PacketType`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::Reader;
use crate::reason;
use crate::write::{put_header, total_len};
use crate::{ProtocolVersion, PubResp, ReasonCode};

fn ctx(kind: PacketType) -> PropCtx {
    match kind {
        PacketType::PubAck => PropCtx::PubAck,
        PacketType::PubRec => PropCtx::PubRec,
        PacketType::PubRel => PropCtx::PubRel,
        _ => PropCtx::PubComp,
    }
}

pub(crate) fn decode(
    kind: PacketType,
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<PubResp, DecodeError> {
    let mut r = Reader::new(body);
    let packet_id = r.packet_id(kind)?;
    let mut resp = PubResp {
        packet_id,
        reason: ReasonCode::Success,
        properties: Default::default(),
    };
    // Short forms (spec 3.4.2.1): the reason code and then the property
    // length may be left out.
    if version == ProtocolVersion::V5 && !r.is_empty() {
        resp.reason = reason::decode_v5(kind, r.u8()?)?;
        if !r.is_empty() {
            resp.properties = properties::decode(&mut r, src, ctx(kind))?;
        }
    }
    r.finish()?;
    Ok(resp)
}

/// The first byte of the fixed header.
fn byte1(kind: PacketType) -> u8 {
    ((kind as u8) << 4) | kind.required_flags()
}

/// (remaining length, total, property content length, form) where form is
/// how many optional fields are written: 0 none, 1 reason, 2 reason+props.
fn plan(p: &PubResp, version: ProtocolVersion) -> Result<(usize, usize, usize, u8), EncodeError> {
    if p.packet_id == 0 {
        return Err(EncodeError::ZeroPacketId);
    }
    let props_ref = PropsRef::of(&p.properties);
    let (remaining, props, form) = match version {
        ProtocolVersion::V311 => (2, 0, 0),
        ProtocolVersion::V5 if props_ref.is_empty() => {
            if p.reason.code() == 0 {
                (2, 0, 0)
            } else {
                (3, 0, 1)
            }
        }
        ProtocolVersion::V5 => {
            let props = properties::content_len(&props_ref)?;
            (3 + properties::prefixed_len(props)?, props, 2)
        }
    };
    Ok((remaining, total_len(remaining)?, props, form))
}

pub(crate) fn encoded_len(p: &PubResp, version: ProtocolVersion) -> Result<usize, EncodeError> {
    plan(p, version).map(|(_, total, _, _)| total)
}

pub(crate) fn encode(
    kind: PacketType,
    p: &PubResp,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (remaining, total, props, form) = plan(p, version)?;
    put_header(out, byte1(kind), remaining, total);
    out.put_u16(p.packet_id);
    if form >= 1 {
        out.put_u8(p.reason.code());
    }
    if form == 2 {
        properties::write(out, &PropsRef::of(&p.properties), props);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{dec, enc, frame};
    use crate::{Packet, ProtocolVersion::*};

    #[test]
    fn strictness_table() {
        use DecodeError as E;
        use PacketType::*;
        let cases: Vec<(&str, Vec<u8>, ProtocolVersion, E)> = vec![
            (
                "puback flags",
                frame(0x41, &[0, 1]),
                V311,
                E::InvalidFlags {
                    packet: PubAck,
                    flags: 1,
                },
            ),
            (
                "pubrel flags",
                frame(0x60, &[0, 1]),
                V311,
                E::InvalidFlags {
                    packet: PubRel,
                    flags: 0,
                },
            ),
            (
                "pubcomp flags",
                frame(0x72, &[0, 1]),
                V5,
                E::InvalidFlags {
                    packet: PubComp,
                    flags: 2,
                },
            ),
            ("pid 0", frame(0x50, &[0, 0]), V311, E::ZeroPacketId(PubRec)),
            (
                "v3 trailing",
                frame(0x40, &[0, 1, 0]),
                V311,
                E::TrailingBytes,
            ),
            ("truncated", frame(0x40, &[0]), V5, E::Truncated),
            (
                "pubrel code",
                frame(0x62, &[0, 1, 0x10]),
                V5,
                E::InvalidReasonCode {
                    packet: PubRel,
                    code: 0x10,
                },
            ),
            (
                "puback code",
                frame(0x40, &[0, 1, 0x92]),
                V5,
                E::InvalidReasonCode {
                    packet: PubAck,
                    code: 0x92,
                },
            ),
            (
                "prop not allowed",
                frame(0x40, &[0, 1, 0, 3, 0x23, 0, 1]),
                V5,
                E::PropertyNotAllowed {
                    id: 0x23,
                    packet: PubAck,
                },
            ),
            (
                "reason dup",
                frame(0x70, &[0, 1, 0, 8, 0x1F, 0, 1, b'a', 0x1F, 0, 1, b'b']),
                V5,
                E::DuplicateProperty(0x1F),
            ),
            (
                "props past end",
                frame(0x40, &[0, 1, 0, 9, 0x1F, 0, 1]),
                V5,
                E::Truncated,
            ),
        ];
        for (name, b, v, want) in cases {
            assert_eq!(dec(&b, v), Err(want), "{name}");
        }
    }

    #[test]
    fn short_forms() {
        let ok = |reason| PubResp {
            packet_id: 7,
            reason,
            properties: Default::default(),
        };
        assert_eq!(
            enc(&Packet::PubAck(ok(ReasonCode::Success)), V5),
            [0x40, 2, 0, 7]
        );
        assert_eq!(
            enc(&Packet::PubRel(ok(ReasonCode::Success)), V5),
            [0x62, 2, 0, 7]
        );
        assert_eq!(
            enc(&Packet::PubRec(ok(ReasonCode::NoMatchingSubscribers)), V5),
            [0x50, 3, 0, 7, 0x10]
        );
        assert_eq!(
            enc(
                &Packet::PubComp(ok(ReasonCode::PacketIdentifierNotFound)),
                V311
            ),
            [0x70, 2, 0, 7]
        );
        assert_eq!(
            dec(&[0x40, 3, 0, 7, 0x10], V5),
            Ok(Packet::PubAck(ok(ReasonCode::NoMatchingSubscribers)))
        );
        assert_eq!(
            dec(&[0x40, 4, 0, 7, 0x00, 0], V5),
            Ok(Packet::PubAck(ok(ReasonCode::Success)))
        );
    }
}
