//! SUBSCRIBE (spec 3.8). Filters stay raw strings: their syntax belongs to
//! the topic crate, so a v5 broker can refuse one filter in SUBACK without
//! dropping the connection.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::Reader;
use crate::write::{put_header, put_str, str_len, total_len};
use crate::{ProtocolVersion, QoS, RetainHandling, Subscribe, SubscriptionOptions};

const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;

fn options(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = match version {
        ProtocolVersion::V311 => 0xFC,
        ProtocolVersion::V5 => 0xC0,
    };
    if byte & reserved != 0 {
        return Err(match version {
            ProtocolVersion::V311 => DecodeError::V311SubscribeOptionBits,
            ProtocolVersion::V5 => DecodeError::SubscriptionOptionsReserved,
        });
    }
    let qos = QoS::from_u8(byte & 0x03).ok_or(DecodeError::SubscribeQos3)?;
    let retain_handling = match (byte >> 4) & 0x03 {
        0 => RetainHandling::OnSubscribe,
        1 => RetainHandling::OnNewSubscribe,
        2 => RetainHandling::Never,
        _ => return Err(DecodeError::RetainHandling3),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & NO_LOCAL != 0,
        retain_as_published: byte & RETAIN_AS_PUBLISHED != 0,
        retain_handling,
    })
}

/// Reads a non-empty topic filter.
pub(crate) fn filter(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let f = r.string()?;
    if f.is_empty() {
        return Err(DecodeError::EmptyTopicFilter);
    }
    Ok(f)
}

pub(crate) fn decode(
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<Subscribe, DecodeError> {
    let mut r = Reader::new(body);
    let packet_id = r.packet_id(PacketType::Subscribe)?;
    let properties = properties::decode_for(version, &mut r, src, PropCtx::Subscribe)?;
    // Grown per entry, never sized from the peer's bytes.
    let mut filters = Vec::new();
    while !r.is_empty() {
        let f = filter(&mut r)?;
        filters.push((f, options(r.u8()?, version)?));
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptyFilterList(PacketType::Subscribe));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

fn options_byte(o: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let mut b = o.qos as u8;
    if version == ProtocolVersion::V5 {
        b |= (o.retain_handling as u8) << 4;
        if o.no_local {
            b |= NO_LOCAL;
        }
        if o.retain_as_published {
            b |= RETAIN_AS_PUBLISHED;
        }
    }
    b
}

fn plan(p: &Subscribe, version: ProtocolVersion) -> Result<(usize, usize, usize), EncodeError> {
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
    for (f, _) in &p.filters {
        n += str_len(f)? + 1;
    }
    Ok((n, total_len(n)?, props))
}

pub(crate) fn encoded_len(p: &Subscribe, version: ProtocolVersion) -> Result<usize, EncodeError> {
    plan(p, version).map(|(_, total, _)| total)
}

pub(crate) fn encode(
    p: &Subscribe,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (remaining, total, props) = plan(p, version)?;
    put_header(out, 0x82, remaining, total);
    out.put_u16(p.packet_id);
    if version == ProtocolVersion::V5 {
        properties::write(out, &PropsRef::of(&p.properties), props);
    }
    for (f, o) in &p.filters {
        put_str(out, f);
        out.put_u8(options_byte(o, version));
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
        let f = &[0, 1, b'a'][..];
        let cases: Vec<(&str, Vec<u8>, ProtocolVersion, E)> = vec![
            (
                "flags",
                frame(0x80, &[&[0, 1], f, &[0]].concat()),
                V311,
                E::InvalidFlags {
                    packet: PacketType::Subscribe,
                    flags: 0,
                },
            ),
            (
                "flags 3",
                frame(0x83, &[&[0, 1], f, &[0]].concat()),
                V311,
                E::InvalidFlags {
                    packet: PacketType::Subscribe,
                    flags: 3,
                },
            ),
            (
                "pid 0",
                frame(0x82, &[&[0, 0], f, &[0]].concat()),
                V311,
                E::ZeroPacketId(PacketType::Subscribe),
            ),
            (
                "empty v3",
                frame(0x82, &[0, 1]),
                V311,
                E::EmptyFilterList(PacketType::Subscribe),
            ),
            (
                "empty v5",
                frame(0x82, &[0, 1, 0]),
                V5,
                E::EmptyFilterList(PacketType::Subscribe),
            ),
            (
                "empty filter",
                frame(0x82, &[0, 1, 0, 0, 0]),
                V311,
                E::EmptyTopicFilter,
            ),
            (
                "v3 bits",
                frame(0x82, &[&[0, 1], f, &[0x04]].concat()),
                V311,
                E::V311SubscribeOptionBits,
            ),
            (
                "v3 qos 3",
                frame(0x82, &[&[0, 1], f, &[0x03]].concat()),
                V311,
                E::SubscribeQos3,
            ),
            (
                "v5 reserved",
                frame(0x82, &[&[0, 1, 0], f, &[0x40]].concat()),
                V5,
                E::SubscriptionOptionsReserved,
            ),
            (
                "v5 qos 3",
                frame(0x82, &[&[0, 1, 0], f, &[0x03]].concat()),
                V5,
                E::SubscribeQos3,
            ),
            (
                "retain handling 3",
                frame(0x82, &[&[0, 1, 0], f, &[0x30]].concat()),
                V5,
                E::RetainHandling3,
            ),
            (
                "missing options",
                frame(0x82, &[&[0, 1], f].concat()),
                V311,
                E::Truncated,
            ),
            (
                "two sub ids",
                frame(0x82, &[&[0, 1, 4, 0x0B, 1, 0x0B, 2], f, &[0]].concat()),
                V5,
                E::DuplicateProperty(0x0B),
            ),
            (
                "sub id 0",
                frame(0x82, &[&[0, 1, 2, 0x0B, 0], f, &[0]].concat()),
                V5,
                E::PropertyValue { id: 0x0B, value: 0 },
            ),
            (
                "topic alias",
                frame(0x82, &[&[0, 1, 3, 0x23, 0, 1], f, &[0]].concat()),
                V5,
                E::PropertyNotAllowed {
                    id: 0x23,
                    packet: PacketType::Subscribe,
                },
            ),
        ];
        for (name, b, v, want) in cases {
            assert_eq!(dec(&b, v), Err(want), "{name}");
        }
    }

    #[test]
    fn all_options_decode() {
        let b = frame(0x82, &[0, 1, 0, 0, 1, b'a', 0x2E]);
        let Ok(crate::Packet::Subscribe(s)) = dec(&b, V5) else {
            panic!("decodes")
        };
        let want = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::Never,
        };
        assert_eq!(s.filters, [("a".to_string(), want)]);
    }
}
