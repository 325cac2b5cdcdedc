//! DISCONNECT (spec 3.14) and AUTH (spec 3.15): a reason code and
//! properties, both omitted when the reason is 0x00 and there are no
//! properties.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::PacketType;
use crate::properties::{self, PropCtx, PropsRef};
use crate::read::Reader;
use crate::reason;
use crate::write::{put_header, total_len};
use crate::{Auth, Disconnect, Properties, ProtocolVersion, ReasonCode};

pub(crate) fn decode_disconnect(
    body: &[u8],
    src: &Bytes,
    version: ProtocolVersion,
) -> Result<Disconnect, DecodeError> {
    let mut r = Reader::new(body);
    let mut d = Disconnect {
        reason: ReasonCode::NormalDisconnection,
        properties: Default::default(),
    };
    if version == ProtocolVersion::V5 && !r.is_empty() {
        d.reason = reason::decode_v5(PacketType::Disconnect, r.u8()?)?;
        // "If the Remaining Length is less than 2, a value of 0 is used"
        // for the property length (spec 3.14.2.2.1).
        if !r.is_empty() {
            d.properties = properties::decode(&mut r, src, PropCtx::Disconnect)?;
        }
    }
    r.finish()?;
    Ok(d)
}

/// AUTH exists only in v5; the caller refuses it for 3.1.1. Unlike
/// DISCONNECT the spec allows no reason-code-only form, so a one-byte AUTH
/// is truncated.
pub(crate) fn decode_auth(body: &[u8], src: &Bytes) -> Result<Auth, DecodeError> {
    let mut r = Reader::new(body);
    let mut a = Auth {
        reason: ReasonCode::Success,
        properties: Default::default(),
    };
    if !r.is_empty() {
        a.reason = reason::decode_v5(PacketType::Auth, r.u8()?)?;
        a.properties = properties::decode(&mut r, src, PropCtx::Auth)?;
        if a.properties.authentication_data.is_some()
            && a.properties.authentication_method.is_none()
        {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
    }
    r.finish()?;
    Ok(a)
}

/// (remaining, total, property content length, form): form 0 writes
/// nothing, 1 the reason only, 2 reason and properties.
fn plan(
    reason: ReasonCode,
    props: &Properties,
    version: ProtocolVersion,
    reason_only_form: bool,
) -> Result<(usize, usize, usize, u8), EncodeError> {
    let props_ref = PropsRef::of(props);
    let (remaining, content, form) = match version {
        ProtocolVersion::V311 => (0, 0, 0),
        ProtocolVersion::V5 if props_ref.is_empty() && reason.code() == 0 => (0, 0, 0),
        ProtocolVersion::V5 if props_ref.is_empty() && reason_only_form => (1, 0, 1),
        ProtocolVersion::V5 => {
            let content = properties::content_len(&props_ref)?;
            (1 + properties::prefixed_len(content)?, content, 2)
        }
    };
    Ok((remaining, total_len(remaining)?, content, form))
}

fn encode_with(
    byte1: u8,
    reason: ReasonCode,
    props: &Properties,
    version: ProtocolVersion,
    reason_only_form: bool,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (remaining, total, content, form) = plan(reason, props, version, reason_only_form)?;
    put_header(out, byte1, remaining, total);
    if form >= 1 {
        out.put_u8(reason.code());
    }
    if form == 2 {
        properties::write(out, &PropsRef::of(props), content);
    }
    Ok(())
}

pub(crate) fn disconnect_len(
    d: &Disconnect,
    version: ProtocolVersion,
) -> Result<usize, EncodeError> {
    plan(d.reason, &d.properties, version, true).map(|p| p.1)
}

pub(crate) fn encode_disconnect(
    d: &Disconnect,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_with(0xE0, d.reason, &d.properties, version, true, out)
}

pub(crate) fn auth_len(a: &Auth, version: ProtocolVersion) -> Result<usize, EncodeError> {
    if version == ProtocolVersion::V311 {
        return Err(EncodeError::AuthInV311);
    }
    plan(a.reason, &a.properties, version, false).map(|p| p.1)
}

pub(crate) fn encode_auth(
    a: &Auth,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if version == ProtocolVersion::V311 {
        return Err(EncodeError::AuthInV311);
    }
    encode_with(0xF0, a.reason, &a.properties, version, false, out)
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
                "flags",
                frame(0xE1, &[]),
                V311,
                E::InvalidFlags {
                    packet: Disconnect,
                    flags: 1,
                },
            ),
            ("v3 body", frame(0xE0, &[0]), V311, E::TrailingBytes),
            (
                "code",
                frame(0xE0, &[0x92]),
                V5,
                E::InvalidReasonCode {
                    packet: Disconnect,
                    code: 0x92,
                },
            ),
            (
                "prop",
                frame(0xE0, &[0, 2, 0x24, 1]),
                V5,
                E::PropertyNotAllowed {
                    id: 0x24,
                    packet: Disconnect,
                },
            ),
            ("auth in v3", frame(0xF0, &[]), V311, E::AuthInV311),
            (
                "auth flags",
                frame(0xF1, &[]),
                V5,
                E::InvalidFlags {
                    packet: Auth,
                    flags: 1,
                },
            ),
            ("auth short", frame(0xF0, &[0x18]), V5, E::Truncated),
            (
                "auth code",
                frame(0xF0, &[0x04, 0]),
                V5,
                E::InvalidReasonCode {
                    packet: Auth,
                    code: 4,
                },
            ),
            (
                "auth data only",
                frame(0xF0, &[0x18, 4, 0x16, 0, 1, 7]),
                V5,
                E::AuthDataWithoutMethod,
            ),
            (
                "auth trailing",
                frame(0xF0, &[0x18, 0, 1]),
                V5,
                E::TrailingBytes,
            ),
        ];
        for (name, b, v, want) in cases {
            assert_eq!(dec(&b, v), Err(want), "{name}");
        }
    }

    #[test]
    fn short_forms() {
        let d = |reason| {
            Packet::Disconnect(crate::Disconnect {
                reason,
                properties: Default::default(),
            })
        };
        assert_eq!(enc(&d(ReasonCode::NormalDisconnection), V5), [0xE0, 0]);
        assert_eq!(enc(&d(ReasonCode::ServerBusy), V5), [0xE0, 1, 0x89]);
        assert_eq!(enc(&d(ReasonCode::ServerBusy), V311), [0xE0, 0]);
        assert_eq!(dec(&[0xE0, 1, 0x89], V5), Ok(d(ReasonCode::ServerBusy)));
        assert_eq!(dec(&[0xE0, 0], V5), Ok(d(ReasonCode::NormalDisconnection)));
        let a = |reason| {
            Packet::Auth(crate::Auth {
                reason,
                properties: Default::default(),
            })
        };
        assert_eq!(enc(&a(ReasonCode::Success), V5), [0xF0, 0]);
        assert_eq!(enc(&a(ReasonCode::ReAuthenticate), V5), [0xF0, 2, 0x19, 0]);
        let mut out = BytesMut::new();
        assert_eq!(
            crate::encode(&a(ReasonCode::Success), V311, &mut out),
            Err(EncodeError::AuthInV311)
        );
    }
}
