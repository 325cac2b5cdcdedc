//! CONNECT (spec 3.1): the only packet that names its protocol version.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::{parse_vbi, Reader};
use crate::write::{bin_len, put_bin, put_header, put_str, str_len, total_len};
use crate::{Connect, ProtocolVersion, QoS, Will};

const PROTOCOL_NAME: &[u8] = b"MQTT";
/// MQTT 3.1's name; we do not speak 3.1 and answer it as an unsupported level.
const MQISDP: &[u8] = b"MQIsdp";

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

/// The version a CONNECT frame announces, if its protocol name and level
/// are readable and known. The broker uses it to answer a CONNECT that
/// fails to decode with a CONNACK in the client's version; on `None` the
/// 3.1.1 form is the one older clients (3.1 included) understand.
pub fn peek_connect_version(frame: &[u8]) -> Option<ProtocolVersion> {
    let (&byte1, rest) = frame.split_first()?;
    if byte1 >> 4 != 1 {
        return None;
    }
    let (_, vbi_len) = parse_vbi(rest).ok()??;
    let mut r = Reader::new(rest.get(vbi_len..)?);
    let name = r.binary().ok()?;
    match (name, r.u8().ok()?) {
        (PROTOCOL_NAME, 4) => Some(ProtocolVersion::V311),
        (PROTOCOL_NAME, 5) => Some(ProtocolVersion::V5),
        _ => None,
    }
}

fn protocol(r: &mut Reader<'_>) -> Result<ProtocolVersion, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    match (name, level) {
        (PROTOCOL_NAME, 4) => Ok(ProtocolVersion::V311),
        (PROTOCOL_NAME, 5) => Ok(ProtocolVersion::V5),
        (PROTOCOL_NAME | MQISDP, _) => Err(DecodeError::UnsupportedProtocolLevel(level)),
        _ => Err(DecodeError::InvalidProtocolName),
    }
}

/// Checks the connect flags byte (spec 3.1.2.3) and returns the will QoS.
fn check_flags(flags: u8, protocol: ProtocolVersion) -> Result<QoS, DecodeError> {
    if flags & RESERVED != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let will_qos = (flags >> 3) & 0x03;
    if flags & WILL == 0 {
        if will_qos != 0 {
            return Err(DecodeError::WillQosWithoutWill);
        }
        if flags & WILL_RETAIN != 0 {
            return Err(DecodeError::WillRetainWithoutWill);
        }
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::WillQos3)?;
    if protocol == ProtocolVersion::V311 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    Ok(will_qos)
}

/// A topic name in a will follows the PUBLISH topic rules (spec 4.7).
pub(crate) fn check_topic_name(topic: &str) -> Result<(), DecodeError> {
    if topic.is_empty() {
        return Err(DecodeError::EmptyTopic);
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(DecodeError::TopicWildcard);
    }
    Ok(())
}

pub(crate) fn decode(body: &[u8], src: &Bytes) -> Result<Connect, DecodeError> {
    let mut r = Reader::new(body);
    let protocol = protocol(&mut r)?;
    let v5 = protocol == ProtocolVersion::V5;
    let flags = r.u8()?;
    let will_qos = check_flags(flags, protocol)?;
    let keep_alive = r.u16()?;
    let properties = if v5 {
        properties::decode(&mut r, src, PropCtx::Connect)?
    } else {
        Default::default()
    };
    if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
        return Err(DecodeError::AuthDataWithoutMethod);
    }
    let client_id = r.string()?;
    let will = if flags & WILL != 0 {
        let properties = if v5 {
            properties::decode(&mut r, src, PropCtx::Will)?
        } else {
            Default::default()
        };
        let topic = r.string()?;
        check_topic_name(&topic)?;
        let payload = src.slice_ref(r.binary()?);
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: flags & WILL_RETAIN != 0,
            properties,
        })
    } else {
        None
    };
    let username = if flags & USERNAME != 0 {
        if r.is_empty() {
            return Err(DecodeError::MissingUsername);
        }
        Some(r.string()?)
    } else {
        None
    };
    let password = if flags & PASSWORD != 0 {
        if r.is_empty() {
            return Err(DecodeError::MissingPassword);
        }
        Some(src.slice_ref(r.binary()?))
    } else {
        None
    };
    if !r.is_empty() {
        return Err(match (flags & USERNAME != 0, flags & PASSWORD != 0) {
            (false, false) => DecodeError::UnexpectedUsername,
            (true, false) => DecodeError::UnexpectedPassword,
            _ => DecodeError::TrailingBytes,
        });
    }
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

struct Plan {
    remaining: usize,
    total: usize,
    props: usize,
    will_props: usize,
}

fn plan(c: &Connect) -> Result<Plan, EncodeError> {
    let v5 = c.protocol == ProtocolVersion::V5;
    // name (2 + 4), level, flags, keep alive
    let mut n = 10 + str_len(&c.client_id)?;
    let mut props = 0;
    let mut will_props = 0;
    if v5 {
        props = properties::content_len(&PropsRef::of(&c.properties))?;
        n += properties::prefixed_len(props)?;
    }
    if let Some(w) = &c.will {
        if v5 {
            will_props = properties::content_len(&PropsRef::of(&w.properties))?;
            n += properties::prefixed_len(will_props)?;
        }
        n += str_len(&w.topic)? + bin_len(&w.payload)?;
    }
    if let Some(u) = &c.username {
        n += str_len(u)?;
    }
    if let Some(p) = &c.password {
        n += bin_len(p)?;
    }
    Ok(Plan {
        remaining: n,
        total: total_len(n)?,
        props,
        will_props,
    })
}

pub(crate) fn encoded_len(c: &Connect) -> Result<usize, EncodeError> {
    plan(c).map(|p| p.total)
}

/// Encodes in the version the CONNECT names, whatever the session's.
pub(crate) fn encode(c: &Connect, out: &mut BytesMut) -> Result<(), EncodeError> {
    let plan = plan(c)?;
    let v5 = c.protocol == ProtocolVersion::V5;
    let mut flags = 0;
    if c.clean_start {
        flags |= CLEAN_START;
    }
    if let Some(w) = &c.will {
        flags |= WILL | ((w.qos as u8) << 3);
        if w.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }
    put_header(out, 0x10, plan.remaining, plan.total);
    put_str(out, "MQTT");
    out.put_u8(if v5 { 5 } else { 4 });
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    if v5 {
        properties::write(out, &PropsRef::of(&c.properties), plan.props);
    }
    put_str(out, &c.client_id);
    if let Some(w) = &c.will {
        if v5 {
            properties::write(out, &PropsRef::of(&w.properties), plan.will_props);
        }
        put_str(out, &w.topic);
        put_bin(out, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(out, u);
    }
    if let Some(p) = &c.password {
        put_bin(out, p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{dec, frame};
    use crate::{Packet, ProtocolVersion::*};

    /// Body of a CONNECT: protocol name/level, flags, keep alive 60, v5
    /// empty properties, then `tail` (client id and what follows).
    fn body(name: &[u8], level: u8, flags: u8, tail: &[u8]) -> Vec<u8> {
        let mut b = vec![0, name.len() as u8];
        b.extend_from_slice(name);
        b.extend_from_slice(&[level, flags, 0, 60]);
        if level == 5 {
            b.push(0);
        }
        b.extend_from_slice(tail);
        b
    }

    const CID: &[u8] = &[0, 1, b'c'];

    #[test]
    fn strictness_table() {
        use DecodeError as E;
        let will = [CID, &[0, 1, b't', 0, 0]].concat();
        let will5 = [CID, &[0, 0, 1, b't', 0, 0]].concat();
        let user = [CID, &[0, 1, b'u']].concat();
        let cases: Vec<(&str, Vec<u8>, E)> = vec![
            ("name", body(b"MQTX", 4, 0, CID), E::InvalidProtocolName),
            (
                "3.1",
                body(b"MQIsdp", 3, 0, CID),
                E::UnsupportedProtocolLevel(3),
            ),
            (
                "level",
                body(b"MQTT", 6, 0, CID),
                E::UnsupportedProtocolLevel(6),
            ),
            (
                "reserved",
                body(b"MQTT", 4, 0x01, CID),
                E::ConnectReservedFlag,
            ),
            (
                "will qos",
                body(b"MQTT", 4, 0x08, CID),
                E::WillQosWithoutWill,
            ),
            (
                "will retain",
                body(b"MQTT", 5, 0x20, CID),
                E::WillRetainWithoutWill,
            ),
            ("will qos 3", body(b"MQTT", 4, 0x1C, &will), E::WillQos3),
            (
                "pw no user",
                body(b"MQTT", 4, 0x40, &[CID, &[0, 0]].concat()),
                E::PasswordWithoutUsername,
            ),
            (
                "missing user",
                body(b"MQTT", 4, 0x80, CID),
                E::MissingUsername,
            ),
            (
                "missing pw",
                body(b"MQTT", 4, 0xC0, &user),
                E::MissingPassword,
            ),
            (
                "unexpected user",
                body(b"MQTT", 4, 0, &user),
                E::UnexpectedUsername,
            ),
            (
                "unexpected pw",
                body(b"MQTT", 5, 0x80, &[&user[..], &[0, 0]].concat()),
                E::UnexpectedPassword,
            ),
            (
                "will wildcard",
                body(b"MQTT", 4, 0x04, &[CID, &[0, 1, b'#', 0, 0]].concat()),
                E::TopicWildcard,
            ),
            (
                "will prop",
                body(
                    b"MQTT",
                    5,
                    0x04,
                    &[CID, &[2, 0x17, 1, 0, 1, b't', 0, 0]].concat(),
                ),
                E::PropertyNotAllowed {
                    id: 0x17,
                    packet: crate::PacketType::Connect,
                },
            ),
            (
                "truncated will",
                body(b"MQTT", 5, 0x04, &will5[..6]),
                E::Truncated,
            ),
            (
                "null in id",
                body(b"MQTT", 4, 0, &[0, 1, 0]),
                E::NullCharacter,
            ),
        ];
        for (name, b, want) in cases {
            let got = dec(&frame(0x10, &b), V311);
            assert_eq!(got, Err(want), "{name}");
        }
    }

    #[test]
    fn v5_password_without_username_is_allowed() {
        let b = body(b"MQTT", 5, 0x40, &[CID, &[0, 2, 1, 2]].concat());
        let Ok(Packet::Connect(c)) = dec(&frame(0x10, &b), V311) else {
            panic!("should decode");
        };
        assert_eq!(c.protocol, V5);
        assert_eq!(c.password.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(c.username, None);
    }

    #[test]
    fn auth_data_needs_method() {
        let mut b = body(b"MQTT", 5, 0, CID);
        // replace the empty property block with authentication data only
        b.splice(10..11, [4, 0x16, 0, 1, 9]);
        assert_eq!(
            dec(&frame(0x10, &b), V5),
            Err(DecodeError::AuthDataWithoutMethod)
        );
    }

    #[test]
    fn peek() {
        let ok4 = frame(0x10, &body(b"MQTT", 4, 0x01, CID));
        let ok5 = frame(0x10, &body(b"MQTT", 5, 0xFF, &[]));
        assert_eq!(peek_connect_version(&ok4), Some(V311));
        assert_eq!(peek_connect_version(&ok5), Some(V5));
        assert_eq!(peek_connect_version(&ok5[..8]), None);
        assert_eq!(
            peek_connect_version(&frame(0x10, &body(b"MQIsdp", 3, 0, CID))),
            None
        );
        assert_eq!(
            peek_connect_version(&frame(0x20, &body(b"MQTT", 5, 0, CID))),
            None
        );
        assert_eq!(
            peek_connect_version(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0]),
            None
        );
    }
}
