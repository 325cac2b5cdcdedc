//! Dispatch: one frame to one [`Packet`], one [`Packet`] to bytes.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::{self, PacketType};
use crate::publish::{encode_publish, publish_len, PublishView};
use crate::{connack, connect, disconnect, publish, pubresp, suback, subscribe, unsubscribe};
use crate::{Packet, ProtocolVersion};

/// Decodes exactly one whole packet, as delimited by [`crate::frame_len`].
///
/// `version` is the session's protocol; CONNECT carries its own and ignores
/// it. Bytes left after the last field are an error. Payload, correlation
/// data, password and authentication data share `frame`'s memory.
pub fn decode(frame: Bytes, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let (kind, flags, body) = frame::split(&frame)?;
    if kind != PacketType::Publish && flags != kind.required_flags() {
        return Err(DecodeError::InvalidFlags {
            packet: kind,
            flags,
        });
    }
    let src = &frame;
    Ok(match kind {
        PacketType::Connect => Packet::Connect(Box::new(connect::decode(body, src)?)),
        PacketType::ConnAck => Packet::ConnAck(connack::decode(body, src, version)?),
        PacketType::Publish => Packet::Publish(publish::decode(flags, body, src, version)?),
        PacketType::PubAck => Packet::PubAck(pubresp::decode(kind, body, src, version)?),
        PacketType::PubRec => Packet::PubRec(pubresp::decode(kind, body, src, version)?),
        PacketType::PubRel => Packet::PubRel(pubresp::decode(kind, body, src, version)?),
        PacketType::PubComp => Packet::PubComp(pubresp::decode(kind, body, src, version)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode(body, src, version)?),
        PacketType::SubAck => Packet::SubAck(suback::decode_suback(body, src, version)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe::decode(body, src, version)?),
        PacketType::UnsubAck => Packet::UnsubAck(suback::decode_unsuback(body, src, version)?),
        PacketType::PingReq | PacketType::PingResp => {
            if !body.is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
            if kind == PacketType::PingReq {
                Packet::PingReq
            } else {
                Packet::PingResp
            }
        }
        PacketType::Disconnect => {
            Packet::Disconnect(disconnect::decode_disconnect(body, src, version)?)
        }
        PacketType::Auth => {
            if version == ProtocolVersion::V311 {
                return Err(DecodeError::AuthInV311);
            }
            Packet::Auth(disconnect::decode_auth(body, src)?)
        }
    })
}

/// Appends `packet` encoded for `version` to `out`, reserving its exact size
/// once. What 3.1.1 cannot carry (properties, most reason codes) is left
/// out or mapped; CONNECT is encoded in the version it names.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(c) => connect::encode(c, out),
        Packet::ConnAck(p) => connack::encode(p, version, out),
        Packet::Publish(p) => encode_publish(&PublishView::of(p), version, out),
        Packet::PubAck(p) => pubresp::encode(PacketType::PubAck, p, version, out),
        Packet::PubRec(p) => pubresp::encode(PacketType::PubRec, p, version, out),
        Packet::PubRel(p) => pubresp::encode(PacketType::PubRel, p, version, out),
        Packet::PubComp(p) => pubresp::encode(PacketType::PubComp, p, version, out),
        Packet::Subscribe(p) => subscribe::encode(p, version, out),
        Packet::SubAck(p) => suback::encode_suback(p, version, out),
        Packet::Unsubscribe(p) => unsubscribe::encode(p, version, out),
        Packet::UnsubAck(p) => suback::encode_unsuback(p, version, out),
        Packet::PingReq => {
            out.extend_from_slice(&[0xC0, 0]);
            Ok(())
        }
        Packet::PingResp => {
            out.extend_from_slice(&[0xD0, 0]);
            Ok(())
        }
        Packet::Disconnect(p) => disconnect::encode_disconnect(p, version, out),
        Packet::Auth(p) => disconnect::encode_auth(p, version, out),
    }
}

/// The number of bytes [`encode`] would append, fixed header included.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    match packet {
        Packet::Connect(c) => connect::encoded_len(c),
        Packet::ConnAck(p) => connack::encoded_len(p, version),
        Packet::Publish(p) => publish_len(&PublishView::of(p), version),
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            pubresp::encoded_len(p, version)
        }
        Packet::Subscribe(p) => subscribe::encoded_len(p, version),
        Packet::SubAck(p) => suback::suback_len(p, version),
        Packet::Unsubscribe(p) => unsubscribe::encoded_len(p, version),
        Packet::UnsubAck(p) => suback::unsuback_len(p, version),
        Packet::PingReq | Packet::PingResp => Ok(2),
        Packet::Disconnect(p) => disconnect::disconnect_len(p, version),
        Packet::Auth(p) => disconnect::auth_len(p, version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::dec;
    use crate::ProtocolVersion::*;

    #[test]
    fn ping_and_reserved() {
        assert_eq!(dec(&[0xC0, 0], V311), Ok(Packet::PingReq));
        assert_eq!(dec(&[0xD0, 0], V5), Ok(Packet::PingResp));
        assert_eq!(dec(&[0xC0, 1, 0], V5), Err(DecodeError::TrailingBytes));
        assert_eq!(
            dec(&[0xC8, 0], V5),
            Err(DecodeError::InvalidFlags {
                packet: PacketType::PingReq,
                flags: 8
            })
        );
        assert_eq!(dec(&[0x00, 0], V5), Err(DecodeError::ReservedPacketType));
        assert_eq!(dec(&[0xC0, 0, 0], V5), Err(DecodeError::TrailingBytes));
        assert_eq!(
            dec(&[0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0], V5),
            Err(DecodeError::VbiTooLong)
        );
    }

    #[test]
    fn every_error_names_a_clause() {
        let errors = [
            DecodeError::DupOnQos0,
            DecodeError::InvalidFlags {
                packet: PacketType::Subscribe,
                flags: 0,
            },
            DecodeError::PropertyValue { id: 0x21, value: 0 },
            DecodeError::InvalidReasonCode {
                packet: PacketType::Disconnect,
                code: 3,
            },
        ];
        for e in errors {
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("[{}] ", e.clause())), "{shown}");
        }
        assert_eq!(
            DecodeError::DupOnQos0.to_string(),
            "[MQTT-3.3.1-2] DUP flag set on a QoS 0 PUBLISH"
        );
    }
}
