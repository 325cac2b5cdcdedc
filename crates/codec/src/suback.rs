//! SUBACK (spec 3.9) and UNSUBACK (spec 3.11): a packet identifier, v5
//! properties, then one reason code per filter (none for a 3.1.1 UNSUBACK).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::Reader;
use crate::reason;
use crate::write::{put_header, total_len};
use crate::{Properties, ProtocolVersion, ReasonCode, SubAck, UnsubAck};

/// The fields SUBACK and UNSUBACK share, borrowed for encoding.
struct AckRef<'a> {
    kind: PacketType,
    packet_id: u16,
    reasons: &'a [ReasonCode],
    properties: &'a Properties,
}

fn decode_ack(
    kind: PacketType,
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<(u16, Vec<ReasonCode>, Properties), DecodeError> {
    let mut r = Reader::new(body);
    let packet_id = r.u16()?;
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketId(kind));
    }
    let v5 = version == ProtocolVersion::V5;
    let ctx = if kind == PacketType::SubAck {
        PropCtx::SubAck
    } else {
        PropCtx::UnsubAck
    };
    let properties = if v5 {
        properties::decode(&mut r, src, ctx)?
    } else {
        Default::default()
    };
    if kind == PacketType::UnsubAck && !v5 {
        r.finish()?;
        return Ok((packet_id, Vec::new(), properties));
    }
    let codes = r.rest();
    if codes.is_empty() {
        return Err(DecodeError::EmptyReasonList(kind));
    }
    let reasons = codes
        .iter()
        .map(|&c| {
            if v5 {
                reason::decode_v5(kind, c)
            } else {
                reason::decode_v3_suback(c)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((packet_id, reasons, properties))
}

pub(crate) fn decode_suback(
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<SubAck, DecodeError> {
    let (packet_id, reasons, properties) = decode_ack(PacketType::SubAck, body, src, version)?;
    Ok(SubAck {
        packet_id,
        reasons,
        properties,
    })
}

pub(crate) fn decode_unsuback(
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<UnsubAck, DecodeError> {
    let (packet_id, reasons, properties) = decode_ack(PacketType::UnsubAck, body, src, version)?;
    Ok(UnsubAck {
        packet_id,
        reasons,
        properties,
    })
}

fn plan(a: &AckRef<'_>, version: ProtocolVersion) -> Result<(usize, usize, usize), EncodeError> {
    if a.packet_id == 0 {
        return Err(EncodeError::ZeroPacketId);
    }
    let v3_unsuback = a.kind == PacketType::UnsubAck && version == ProtocolVersion::V311;
    if a.reasons.is_empty() && !v3_unsuback {
        return Err(EncodeError::EmptyList);
    }
    let mut n = 2;
    let mut props = 0;
    if version == ProtocolVersion::V5 {
        props = properties::content_len(&PropsRef::of(a.properties))?;
        n += properties::prefixed_len(props)?;
    }
    if !v3_unsuback {
        n += a.reasons.len();
    }
    Ok((n, total_len(n)?, props))
}

fn encode_ack(
    a: &AckRef<'_>,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (remaining, total, props) = plan(a, version)?;
    put_header(out, (a.kind as u8) << 4, remaining, total);
    out.put_u16(a.packet_id);
    match version {
        ProtocolVersion::V5 => {
            properties::write(out, &PropsRef::of(a.properties), props);
            for r in a.reasons {
                out.put_u8(r.code());
            }
        }
        ProtocolVersion::V311 if a.kind == PacketType::SubAck => {
            for &r in a.reasons {
                out.put_u8(reason::encode_v3_suback(r));
            }
        }
        ProtocolVersion::V311 => {}
    }
    Ok(())
}

fn suback_ref(p: &SubAck) -> AckRef<'_> {
    AckRef {
        kind: PacketType::SubAck,
        packet_id: p.packet_id,
        reasons: &p.reasons,
        properties: &p.properties,
    }
}

fn unsuback_ref(p: &UnsubAck) -> AckRef<'_> {
    AckRef {
        kind: PacketType::UnsubAck,
        packet_id: p.packet_id,
        reasons: &p.reasons,
        properties: &p.properties,
    }
}

pub(crate) fn suback_len(p: &SubAck, version: ProtocolVersion) -> Result<usize, EncodeError> {
    plan(&suback_ref(p), version).map(|(_, total, _)| total)
}

pub(crate) fn encode_suback(
    p: &SubAck,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_ack(&suback_ref(p), version, out)
}

pub(crate) fn unsuback_len(p: &UnsubAck, version: ProtocolVersion) -> Result<usize, EncodeError> {
    plan(&unsuback_ref(p), version).map(|(_, total, _)| total)
}

pub(crate) fn encode_unsuback(
    p: &UnsubAck,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_ack(&unsuback_ref(p), version, out)
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
                "suback flags",
                frame(0x92, &[0, 1, 0]),
                V311,
                E::InvalidFlags {
                    packet: SubAck,
                    flags: 2,
                },
            ),
            (
                "suback pid 0",
                frame(0x90, &[0, 0, 0]),
                V311,
                E::ZeroPacketId(SubAck),
            ),
            (
                "suback empty",
                frame(0x90, &[0, 1]),
                V311,
                E::EmptyReasonList(SubAck),
            ),
            (
                "suback empty v5",
                frame(0x90, &[0, 1, 0]),
                V5,
                E::EmptyReasonList(SubAck),
            ),
            (
                "suback v3 code",
                frame(0x90, &[0, 1, 0x87]),
                V311,
                E::InvalidReasonCode {
                    packet: SubAck,
                    code: 0x87,
                },
            ),
            (
                "suback v5 code",
                frame(0x90, &[0, 1, 0, 0x11]),
                V5,
                E::InvalidReasonCode {
                    packet: SubAck,
                    code: 0x11,
                },
            ),
            (
                "unsuback v3 extra",
                frame(0xB0, &[0, 1, 0]),
                V311,
                E::TrailingBytes,
            ),
            (
                "unsuback empty v5",
                frame(0xB0, &[0, 1, 0]),
                V5,
                E::EmptyReasonList(UnsubAck),
            ),
            (
                "unsuback v5 code",
                frame(0xB0, &[0, 1, 0, 0x01]),
                V5,
                E::InvalidReasonCode {
                    packet: UnsubAck,
                    code: 1,
                },
            ),
            (
                "unsuback prop",
                frame(0xB0, &[0, 1, 2, 0x01, 0, 0]),
                V5,
                E::PropertyNotAllowed {
                    id: 1,
                    packet: UnsubAck,
                },
            ),
        ];
        for (name, b, v, want) in cases {
            assert_eq!(dec(&b, v), Err(want), "{name}");
        }
    }

    #[test]
    fn v3_suback_maps_failures_to_0x80() {
        let p = SubAck {
            packet_id: 1,
            reasons: vec![
                ReasonCode::GrantedQoS2,
                ReasonCode::NotAuthorized,
                ReasonCode::GrantedQoS0,
            ],
            properties: Default::default(),
        };
        assert_eq!(enc(&Packet::SubAck(p), V311), [0x90, 5, 0, 1, 2, 0x80, 0]);
    }
}
