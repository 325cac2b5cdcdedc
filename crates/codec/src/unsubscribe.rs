//! UNSUBSCRIBE (spec 3.10).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::Reader;
use crate::subscribe::filter;
use crate::write::{put_header, put_str, str_len, total_len};
use crate::{ProtocolVersion, Unsubscribe};

pub(crate) fn decode(
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let mut r = Reader::new(body);
    let packet_id = r.packet_id(PacketType::Unsubscribe)?;
    let properties = properties::decode_for(version, &mut r, src, PropCtx::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(filter(&mut r)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptyFilterList(PacketType::Unsubscribe));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

fn plan(p: &Unsubscribe, version: ProtocolVersion) -> Result<(usize, usize, usize), EncodeError> {
    if p.packet_id == 0 {
        return Err(EncodeError::ZeroPacketId);
    }
    if p.filters.is_empty() {
        return Err(EncodeError::EmptyList);
    }
    let mut n = 2;
    let mut props = 0;
    if version == ProtocolVersion::V5 {
        props = properties::content_len(&PropsRef::of(&p.properties))?;
        n += properties::prefixed_len(props)?;
    }
    for f in &p.filters {
        n += str_len(f)?;
    }
    Ok((n, total_len(n)?, props))
}

pub(crate) fn encoded_len(p: &Unsubscribe, version: ProtocolVersion) -> Result<usize, EncodeError> {
    plan(p, version).map(|(_, total, _)| total)
}

pub(crate) fn encode(
    p: &Unsubscribe,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (remaining, total, props) = plan(p, version)?;
    put_header(out, 0xA2, remaining, total);
    out.put_u16(p.packet_id);
    if version == ProtocolVersion::V5 {
        properties::write(out, &PropsRef::of(&p.properties), props);
    }
    for f in &p.filters {
        put_str(out, f);
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
                frame(0xA0, &[0, 1, 0, 1, b'a']),
                V311,
                E::InvalidFlags {
                    packet: PacketType::Unsubscribe,
                    flags: 0,
                },
            ),
            (
                "pid 0",
                frame(0xA2, &[0, 0, 0, 1, b'a']),
                V311,
                E::ZeroPacketId(PacketType::Unsubscribe),
            ),
            (
                "empty v3",
                frame(0xA2, &[0, 1]),
                V311,
                E::EmptyFilterList(PacketType::Unsubscribe),
            ),
            (
                "empty v5",
                frame(0xA2, &[0, 1, 0]),
                V5,
                E::EmptyFilterList(PacketType::Unsubscribe),
            ),
            (
                "empty filter",
                frame(0xA2, &[0, 1, 0, 0, 1, b'a', 0, 0]),
                V5,
                E::EmptyTopicFilter,
            ),
            (
                "truncated filter",
                frame(0xA2, &[0, 1, 0, 3, b'a']),
                V311,
                E::Truncated,
            ),
            (
                "sub id",
                frame(0xA2, &[0, 1, 2, 0x0B, 1, 0, 1, b'a']),
                V5,
                E::PropertyNotAllowed {
                    id: 0x0B,
                    packet: PacketType::Unsubscribe,
                },
            ),
        ];
        for (name, b, v, want) in cases {
            assert_eq!(dec(&b, v), Err(want), "{name}");
        }
    }
}
