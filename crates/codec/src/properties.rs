//! MQTT 5 properties (spec 2.2.2).
//!
//! Decoding enforces the table of spec 2.2.2.2: a property is accepted only
//! on the packets that allow it, at most once unless the spec lets it repeat
//! (User Property anywhere, Subscription Identifier only on PUBLISH), and
//! only with a value in its range. Encoding writes whatever is set, in
//! identifier order.

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::read::{Reader, VBI_MAX};
use crate::write::{bin_len, put_bin, put_str, put_vbi, str_len, vbi_len};
use crate::Properties;

/// Where a property block sits: a packet, or the will inside CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropCtx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropCtx {
    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    fn packet(self) -> PacketType {
        match self {
            PropCtx::Connect | PropCtx::Will => PacketType::Connect,
            PropCtx::ConnAck => PacketType::ConnAck,
            PropCtx::Publish => PacketType::Publish,
            PropCtx::PubAck => PacketType::PubAck,
            PropCtx::PubRec => PacketType::PubRec,
            PropCtx::PubRel => PacketType::PubRel,
            PropCtx::PubComp => PacketType::PubComp,
            PropCtx::Subscribe => PacketType::Subscribe,
            PropCtx::SubAck => PacketType::SubAck,
            PropCtx::Unsubscribe => PacketType::Unsubscribe,
            PropCtx::UnsubAck => PacketType::UnsubAck,
            PropCtx::Disconnect => PacketType::Disconnect,
            PropCtx::Auth => PacketType::Auth,
        }
    }
}

/// The packets on which each property may appear (spec 2.2.2.2), as a mask
/// of [`PropCtx::bit`]s; `None` for an unknown identifier.
fn allowed_on(id: u32) -> Option<u16> {
    use PropCtx::*;
    let mask = |ctxs: &[PropCtx]| ctxs.iter().fold(0u16, |m, c| m | c.bit());
    let message = [Publish, Will];
    let acks = [
        ConnAck, PubAck, PubRec, PubRel, PubComp, SubAck, UnsubAck, Disconnect, Auth,
    ];
    Some(match id {
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 => mask(&message),
        0x0B => mask(&[Publish, Subscribe]),
        0x11 => mask(&[Connect, ConnAck, Disconnect]),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => mask(&[ConnAck]),
        0x15 | 0x16 => mask(&[Connect, ConnAck, Auth]),
        0x17 | 0x19 => mask(&[Connect]),
        0x18 => mask(&[Will]),
        0x1C => mask(&[ConnAck, Disconnect]),
        0x1F => mask(&acks),
        0x21 | 0x22 | 0x27 => mask(&[Connect, ConnAck]),
        0x23 => mask(&[Publish]),
        0x26 => !0,
        _ => return None,
    })
}

fn once<T>(slot: &mut Option<T>, id: u8, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(value);
    Ok(())
}

fn flag(id: u8, v: u8) -> Result<u8, DecodeError> {
    if v > 1 {
        return Err(DecodeError::PropertyValue {
            id,
            value: v.into(),
        });
    }
    Ok(v)
}

fn nonzero16(id: u8, v: u16) -> Result<u16, DecodeError> {
    if v == 0 {
        return Err(DecodeError::PropertyValue { id, value: 0 });
    }
    Ok(v)
}

/// The properties of a packet in `version`: none on the wire in 3.1.1.
pub(crate) fn decode_for(
    version: crate::ProtocolVersion,
    r: &mut Reader<'_>,
    src: &Bytes,
    ctx: PropCtx,
) -> Result<Properties, DecodeError> {
    match version {
        crate::ProtocolVersion::V311 => Ok(Properties::default()),
        crate::ProtocolVersion::V5 => decode(r, src, ctx),
    }
}

/// Reads a property length and the properties it covers.
pub(crate) fn decode(
    r: &mut Reader<'_>,
    src: &Bytes,
    ctx: PropCtx,
) -> Result<Properties, DecodeError> {
    let len = r.vbi()?;
    let mut pr = r.sub(len as usize)?;
    let mut p = Properties::default();
    while !pr.is_empty() {
        let wide_id = pr.vbi()?;
        let mask = allowed_on(wide_id).ok_or(DecodeError::UnknownProperty(wide_id))?;
        // Every known identifier fits one byte.
        let id = wide_id as u8;
        if mask & ctx.bit() == 0 {
            return Err(DecodeError::PropertyNotAllowed {
                id,
                packet: ctx.packet(),
            });
        }
        decode_one(&mut pr, src, ctx, id, &mut p)?;
    }
    Ok(p)
}

fn decode_one(
    r: &mut Reader<'_>,
    src: &Bytes,
    ctx: PropCtx,
    id: u8,
    p: &mut Properties,
) -> Result<(), DecodeError> {
    match id {
        0x01 => once(&mut p.payload_format_indicator, id, flag(id, r.u8()?)?),
        0x02 => once(&mut p.message_expiry_interval, id, r.u32()?),
        0x03 => once(&mut p.content_type, id, r.string()?),
        0x08 => once(&mut p.response_topic, id, r.string()?),
        0x09 => once(&mut p.correlation_data, id, src.slice_ref(r.binary()?)),
        0x0B => {
            let v = r.vbi()?;
            if v == 0 {
                return Err(DecodeError::PropertyValue { id, value: 0 });
            }
            if ctx != PropCtx::Publish && !p.subscription_identifiers.is_empty() {
                return Err(DecodeError::DuplicateProperty(id));
            }
            p.subscription_identifiers.push(v);
            Ok(())
        }
        0x11 => once(&mut p.session_expiry_interval, id, r.u32()?),
        0x12 => once(&mut p.assigned_client_identifier, id, r.string()?),
        0x13 => once(&mut p.server_keep_alive, id, r.u16()?),
        0x15 => once(&mut p.authentication_method, id, r.string()?),
        0x16 => once(&mut p.authentication_data, id, src.slice_ref(r.binary()?)),
        0x17 => once(&mut p.request_problem_information, id, flag(id, r.u8()?)?),
        0x18 => once(&mut p.will_delay_interval, id, r.u32()?),
        0x19 => once(&mut p.request_response_information, id, flag(id, r.u8()?)?),
        0x1A => once(&mut p.response_information, id, r.string()?),
        0x1C => once(&mut p.server_reference, id, r.string()?),
        0x1F => once(&mut p.reason_string, id, r.string()?),
        0x21 => once(&mut p.receive_maximum, id, nonzero16(id, r.u16()?)?),
        0x22 => once(&mut p.topic_alias_maximum, id, r.u16()?),
        0x23 => {
            let v = r.u16()?;
            if v == 0 {
                return Err(DecodeError::TopicAliasZero);
            }
            once(&mut p.topic_alias, id, v)
        }
        0x24 => once(&mut p.maximum_qos, id, flag(id, r.u8()?)?),
        0x25 => once(&mut p.retain_available, id, flag(id, r.u8()?)?),
        0x26 => {
            let pair = (r.string()?, r.string()?);
            p.user_properties.push(pair);
            Ok(())
        }
        0x27 => {
            let v = r.u32()?;
            if v == 0 {
                return Err(DecodeError::PropertyValue { id, value: 0 });
            }
            once(&mut p.maximum_packet_size, id, v)
        }
        0x28 => once(
            &mut p.wildcard_subscription_available,
            id,
            flag(id, r.u8()?)?,
        ),
        0x29 => once(
            &mut p.subscription_identifier_available,
            id,
            flag(id, r.u8()?)?,
        ),
        0x2A => once(&mut p.shared_subscription_available, id, flag(id, r.u8()?)?),
        _ => Err(DecodeError::UnknownProperty(id.into())),
    }
}

/// Properties to encode: a base set, with the three per-delivery fields of
/// a PUBLISH given separately so fan-out can substitute them without
/// cloning the message's properties.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PropsRef<'a> {
    pub base: &'a Properties,
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub subscription_identifiers: &'a [u32],
}

impl<'a> PropsRef<'a> {
    pub(crate) fn of(base: &'a Properties) -> Self {
        PropsRef {
            base,
            message_expiry_interval: base.message_expiry_interval,
            topic_alias: base.topic_alias,
            subscription_identifiers: &base.subscription_identifiers,
        }
    }

    /// Nothing to write: lets acknowledgements use their short forms.
    pub(crate) fn is_empty(&self) -> bool {
        self.message_expiry_interval.is_none()
            && self.topic_alias.is_none()
            && self.subscription_identifiers.is_empty()
            && *self.base
                == Properties {
                    message_expiry_interval: None,
                    topic_alias: None,
                    subscription_identifiers: Vec::new(),
                    ..Properties::default()
                }
    }
}

fn opt_str(s: &Option<String>) -> Result<usize, EncodeError> {
    s.as_deref().map_or(Ok(0), |s| Ok(1 + str_len(s)?))
}

fn opt_bin(b: &Option<Bytes>) -> Result<usize, EncodeError> {
    b.as_deref().map_or(Ok(0), |b| Ok(1 + bin_len(b)?))
}

fn opt_fixed<T>(v: &Option<T>, size: usize) -> usize {
    v.as_ref().map_or(0, |_| 1 + size)
}

/// Bytes of the properties themselves, without the length prefix.
pub(crate) fn content_len(p: &PropsRef<'_>) -> Result<usize, EncodeError> {
    let b = p.base;
    let mut n = opt_fixed(&b.payload_format_indicator, 1)
        + opt_fixed(&p.message_expiry_interval, 4)
        + opt_str(&b.content_type)?
        + opt_str(&b.response_topic)?
        + opt_bin(&b.correlation_data)?
        + opt_fixed(&b.session_expiry_interval, 4)
        + opt_str(&b.assigned_client_identifier)?
        + opt_fixed(&b.server_keep_alive, 2)
        + opt_str(&b.authentication_method)?
        + opt_bin(&b.authentication_data)?
        + opt_fixed(&b.request_problem_information, 1)
        + opt_fixed(&b.will_delay_interval, 4)
        + opt_fixed(&b.request_response_information, 1)
        + opt_str(&b.response_information)?
        + opt_str(&b.server_reference)?
        + opt_str(&b.reason_string)?
        + opt_fixed(&b.receive_maximum, 2)
        + opt_fixed(&b.topic_alias_maximum, 2)
        + opt_fixed(&p.topic_alias, 2)
        + opt_fixed(&b.maximum_qos, 1)
        + opt_fixed(&b.retain_available, 1)
        + opt_fixed(&b.maximum_packet_size, 4)
        + opt_fixed(&b.wildcard_subscription_available, 1)
        + opt_fixed(&b.subscription_identifier_available, 1)
        + opt_fixed(&b.shared_subscription_available, 1);
    for &id in p.subscription_identifiers {
        if id > VBI_MAX {
            return Err(EncodeError::VbiOutOfRange(id.into()));
        }
        n += 1 + vbi_len(id as usize)?;
    }
    for (k, v) in &b.user_properties {
        n += 1 + str_len(k)? + str_len(v)?;
    }
    Ok(n)
}

/// Bytes of the property length prefix plus the properties.
pub(crate) fn prefixed_len(content: usize) -> Result<usize, EncodeError> {
    Ok(vbi_len(content)? + content)
}

/// Writes the length prefix and the properties; `content` is what
/// [`content_len`] returned for `p`.
pub(crate) fn write<B: BufMut>(out: &mut B, p: &PropsRef<'_>, content: usize) {
    let b = p.base;
    put_vbi(out, content);
    byte(out, 0x01, b.payload_format_indicator);
    long(out, 0x02, p.message_expiry_interval);
    string(out, 0x03, &b.content_type);
    string(out, 0x08, &b.response_topic);
    binary(out, 0x09, &b.correlation_data);
    for &id in p.subscription_identifiers {
        out.put_u8(0x0B);
        put_vbi(out, id as usize);
    }
    long(out, 0x11, b.session_expiry_interval);
    string(out, 0x12, &b.assigned_client_identifier);
    short(out, 0x13, b.server_keep_alive);
    string(out, 0x15, &b.authentication_method);
    binary(out, 0x16, &b.authentication_data);
    byte(out, 0x17, b.request_problem_information);
    long(out, 0x18, b.will_delay_interval);
    byte(out, 0x19, b.request_response_information);
    string(out, 0x1A, &b.response_information);
    string(out, 0x1C, &b.server_reference);
    string(out, 0x1F, &b.reason_string);
    short(out, 0x21, b.receive_maximum);
    short(out, 0x22, b.topic_alias_maximum);
    short(out, 0x23, p.topic_alias);
    byte(out, 0x24, b.maximum_qos);
    byte(out, 0x25, b.retain_available);
    for (k, v) in &b.user_properties {
        out.put_u8(0x26);
        put_str(out, k);
        put_str(out, v);
    }
    long(out, 0x27, b.maximum_packet_size);
    byte(out, 0x28, b.wildcard_subscription_available);
    byte(out, 0x29, b.subscription_identifier_available);
    byte(out, 0x2A, b.shared_subscription_available);
}

fn byte<B: BufMut>(out: &mut B, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        out.put_slice(&[id, v]);
    }
}

fn short<B: BufMut>(out: &mut B, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        out.put_u8(id);
        out.put_u16(v);
    }
}

fn long<B: BufMut>(out: &mut B, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        out.put_u8(id);
        out.put_u32(v);
    }
}

fn string<B: BufMut>(out: &mut B, id: u8, v: &Option<String>) {
    if let Some(v) = v {
        out.put_u8(id);
        put_str(out, v);
    }
}

fn binary<B: BufMut>(out: &mut B, id: u8, v: &Option<Bytes>) {
    if let Some(v) = v {
        out.put_u8(id);
        put_bin(out, v);
    }
}
