//! PUBLISH (spec 3.3), and [`PublishView`], the fan-out encoding path.

use bytes::{BufMut, Bytes, BytesMut};

use crate::connect::check_topic_name;
use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::Reader;
use crate::write::{put_header, put_str, str_len, total_len};
use crate::{Properties, ProtocolVersion, Publish, QoS};

pub(crate) fn decode(
    flags: u8,
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let dup = flags & 0x08 != 0;
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::PublishQos3)?;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::DupOnQos0);
    }
    let mut r = Reader::new(body);
    let topic = r.string()?;
    let packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        r.packet_id(PacketType::Publish)?
    };
    let properties = properties::decode_for(version, &mut r, src, PropCtx::Publish)?;
    // An alias stands in for the topic (spec 3.3.2.3.4).
    if !(topic.is_empty() && properties.topic_alias.is_some()) {
        check_topic_name(&topic)?;
    }
    let payload = src.slice_ref(r.rest());
    Ok(Publish {
        dup,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        packet_id,
        properties,
        payload,
    })
}

/// A PUBLISH to encode, borrowed from a stored message, so one message can
/// be encoded for many subscribers without cloning it. The per-delivery
/// fields replace the same-named ones in `properties`.
#[derive(Debug, Clone, Copy)]
pub struct PublishView<'a> {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty when `topic_alias` is set (v5).
    pub topic: &'a str,
    /// Ignored for QoS 0.
    pub packet_id: u16,
    /// The message's own properties.
    pub properties: &'a Properties,
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub subscription_identifiers: &'a [u32],
    pub payload: &'a [u8],
}

impl<'a> PublishView<'a> {
    /// A view of a decoded or owned PUBLISH, delivering it unchanged.
    pub fn of(p: &'a Publish) -> Self {
        PublishView {
            dup: p.dup,
            qos: p.qos,
            retain: p.retain,
            topic: &p.topic,
            packet_id: p.packet_id,
            properties: &p.properties,
            message_expiry_interval: p.properties.message_expiry_interval,
            topic_alias: p.properties.topic_alias,
            subscription_identifiers: &p.properties.subscription_identifiers,
            payload: &p.payload,
        }
    }

    fn props(&self) -> PropsRef<'a> {
        PropsRef {
            base: self.properties,
            message_expiry_interval: self.message_expiry_interval,
            topic_alias: self.topic_alias,
            subscription_identifiers: self.subscription_identifiers,
        }
    }
}

struct Plan {
    remaining: usize,
    total: usize,
    props: usize,
}

fn plan(v: &PublishView<'_>, version: ProtocolVersion) -> Result<Plan, EncodeError> {
    // A peer would refuse it (spec 3.3.2.3.4); for a 3.1.1 subscriber the
    // caller must resolve aliases to topics.
    if v.topic.is_empty() && (v.topic_alias.is_none() || version == ProtocolVersion::V311) {
        return Err(EncodeError::EmptyTopic);
    }
    let mut n = str_len(v.topic)? + v.payload.len();
    if v.qos != QoS::AtMostOnce {
        if v.packet_id == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        n += 2;
    }
    let mut props = 0;
    if version == ProtocolVersion::V5 {
        props = properties::content_len(&v.props())?;
        n += properties::prefixed_len(props)?;
    }
    Ok(Plan {
        remaining: n,
        total: total_len(n)?,
        props,
    })
}

/// Length of the encoded PUBLISH, fixed header included.
pub fn publish_len(view: &PublishView<'_>, version: ProtocolVersion) -> Result<usize, EncodeError> {
    plan(view, version).map(|p| p.total)
}

/// Appends the encoded PUBLISH to `out`, reserving its exact size once.
pub fn encode_publish(
    view: &PublishView<'_>,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let plan = plan(view, version)?;
    let byte1 = 0x30 | (u8::from(view.dup) << 3) | ((view.qos as u8) << 1) | u8::from(view.retain);
    put_header(out, byte1, plan.remaining, plan.total);
    put_str(out, view.topic);
    if view.qos != QoS::AtMostOnce {
        out.put_u16(view.packet_id);
    }
    if version == ProtocolVersion::V5 {
        properties::write(out, &view.props(), plan.props);
    }
    out.put_slice(view.payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{dec, frame};
    use crate::{decode, Packet, ProtocolVersion::*};

    #[test]
    fn strictness_table() {
        use DecodeError as E;
        let t = &[0, 1, b't'][..];
        let cases: Vec<(&str, Vec<u8>, ProtocolVersion, E)> = vec![
            (
                "qos 3",
                frame(0x36, &[t, &[0, 1]].concat()),
                V311,
                E::PublishQos3,
            ),
            ("dup qos 0", frame(0x38, t), V311, E::DupOnQos0),
            (
                "pid 0",
                frame(0x32, &[t, &[0, 0]].concat()),
                V311,
                E::ZeroPacketId(PacketType::Publish),
            ),
            (
                "pid 0 qos2",
                frame(0x34, &[t, &[0, 0, 0]].concat()),
                V5,
                E::ZeroPacketId(PacketType::Publish),
            ),
            (
                "plus",
                frame(0x30, &[0, 3, b'a', b'/', b'+']),
                V311,
                E::TopicWildcard,
            ),
            ("hash", frame(0x30, &[0, 1, b'#', 0]), V5, E::TopicWildcard),
            ("empty v3", frame(0x30, &[0, 0]), V311, E::EmptyTopic),
            ("empty v5", frame(0x30, &[0, 0, 0]), V5, E::EmptyTopic),
            (
                "alias 0",
                frame(0x30, &[0, 0, 3, 0x23, 0, 0]),
                V5,
                E::TopicAliasZero,
            ),
            (
                "alias dup",
                frame(0x30, &[t, &[6, 0x23, 0, 1, 0x23, 0, 2]].concat()),
                V5,
                E::DuplicateProperty(0x23),
            ),
            (
                "pfi 2",
                frame(0x30, &[t, &[2, 0x01, 2]].concat()),
                V5,
                E::PropertyValue { id: 1, value: 2 },
            ),
            (
                "subid 0",
                frame(0x30, &[t, &[2, 0x0B, 0]].concat()),
                V5,
                E::PropertyValue { id: 0x0B, value: 0 },
            ),
            (
                "subid vbi",
                frame(0x30, &[t, &[5, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF]].concat()),
                V5,
                E::VbiTooLong,
            ),
            (
                "session expiry",
                frame(0x30, &[t, &[5, 0x11, 0, 0, 0, 1]].concat()),
                V5,
                E::PropertyNotAllowed {
                    id: 0x11,
                    packet: PacketType::Publish,
                },
            ),
            (
                "topic truncated",
                frame(0x30, &[0, 5, b'a']),
                V311,
                E::Truncated,
            ),
            (
                "pid truncated",
                frame(0x32, &[t, &[0]].concat()),
                V311,
                E::Truncated,
            ),
            (
                "surrogate",
                frame(0x30, &[0, 3, 0xED, 0xA0, 0x80]),
                V311,
                E::Utf16Surrogate,
            ),
            (
                "bad utf8",
                frame(0x30, &[0, 2, 0xC3, 0x28]),
                V311,
                E::InvalidUtf8,
            ),
            (
                "null",
                frame(0x30, &[0, 2, b'a', 0]),
                V311,
                E::NullCharacter,
            ),
        ];
        for (name, b, v, want) in cases {
            assert_eq!(dec(&b, v), Err(want), "{name}");
        }
    }

    #[test]
    fn alias_allows_empty_topic_and_repeated_sub_ids() {
        let b = frame(0x30, &[0, 0, 7, 0x23, 0, 5, 0x0B, 1, 0x0B, 2, b'x']);
        let Ok(Packet::Publish(p)) = dec(&b, V5) else {
            panic!("decodes")
        };
        assert_eq!(p.topic, "");
        assert_eq!(p.properties.topic_alias, Some(5));
        assert_eq!(p.properties.subscription_identifiers, [1, 2]);
        assert_eq!(&p.payload[..], b"x");
    }

    #[test]
    fn payload_is_zero_copy() {
        let frame = Bytes::from(frame(0x30, &[0, 1, b't', 1, 2, 3]));
        let Ok(Packet::Publish(p)) = decode(frame.clone(), V311) else {
            panic!("decodes")
        };
        assert_eq!(p.payload.as_ptr(), frame[5..].as_ptr());
    }

    #[test]
    fn view_overrides_per_delivery_fields() {
        let props = Properties {
            message_expiry_interval: Some(100),
            topic_alias: Some(9),
            subscription_identifiers: vec![7],
            content_type: Some("c".into()),
            ..Properties::default()
        };
        let view = PublishView {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "a/b",
            packet_id: 3,
            properties: &props,
            message_expiry_interval: Some(40),
            topic_alias: None,
            subscription_identifiers: &[1, 2],
            payload: b"hello",
        };
        let mut out = BytesMut::new();
        assert!(encode_publish(&view, V5, &mut out).is_ok());
        assert_eq!(publish_len(&view, V5), Ok(out.len()));
        let Ok(Packet::Publish(p)) = decode(out.freeze(), V5) else {
            panic!("decodes")
        };
        assert_eq!(p.properties.message_expiry_interval, Some(40));
        assert_eq!(p.properties.topic_alias, None);
        assert_eq!(p.properties.subscription_identifiers, [1, 2]);
        assert_eq!(p.properties.content_type.as_deref(), Some("c"));
        assert!(p.retain);
        assert_eq!(p.packet_id, 3);
    }

    #[test]
    fn encoder_refuses_zero_packet_id() {
        let p = Properties::default();
        let view = PublishView {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t",
            packet_id: 0,
            properties: &p,
            message_expiry_interval: None,
            topic_alias: None,
            subscription_identifiers: &[],
            payload: b"",
        };
        assert_eq!(publish_len(&view, V311), Err(EncodeError::ZeroPacketId));
        let view = PublishView {
            topic: "",
            qos: QoS::AtMostOnce,
            topic_alias: Some(1),
            ..view
        };
        assert!(publish_len(&view, V5).is_ok());
        assert_eq!(publish_len(&view, V311), Err(EncodeError::EmptyTopic));
        let view = PublishView {
            topic_alias: None,
            ..view
        };
        assert_eq!(publish_len(&view, V5), Err(EncodeError::EmptyTopic));
    }
}
