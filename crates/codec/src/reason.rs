//! Which reason codes each packet may carry (MQTT 5 sections 3.x.2.1,
//! 3.9.3, 3.11.3) and the 3.1.1 return codes.

use crate::error::DecodeError;
use crate::frame::PacketType;
use crate::ReasonCode;

impl ReasonCode {
    /// The reason code for a wire byte, naming 0x00 `Success` and 0x01/0x02
    /// `GrantedQoS1/2`. `None` for a byte the spec does not define.
    pub fn from_code(code: u8) -> Option<ReasonCode> {
        use ReasonCode::*;
        Some(match code {
            0x00 => Success,
            0x01 => GrantedQoS1,
            0x02 => GrantedQoS2,
            0x04 => DisconnectWithWillMessage,
            0x10 => NoMatchingSubscribers,
            0x11 => NoSubscriptionExisted,
            0x18 => ContinueAuthentication,
            0x19 => ReAuthenticate,
            0x80 => UnspecifiedError,
            0x81 => MalformedPacket,
            0x82 => ProtocolError,
            0x83 => ImplementationSpecificError,
            0x84 => UnsupportedProtocolVersion,
            0x85 => ClientIdentifierNotValid,
            0x86 => BadUserNameOrPassword,
            0x87 => NotAuthorized,
            0x88 => ServerUnavailable,
            0x89 => ServerBusy,
            0x8A => Banned,
            0x8B => ServerShuttingDown,
            0x8C => BadAuthenticationMethod,
            0x8D => KeepAliveTimeout,
            0x8E => SessionTakenOver,
            0x8F => TopicFilterInvalid,
            0x90 => TopicNameInvalid,
            0x91 => PacketIdentifierInUse,
            0x92 => PacketIdentifierNotFound,
            0x93 => ReceiveMaximumExceeded,
            0x94 => TopicAliasInvalid,
            0x95 => PacketTooLarge,
            0x96 => MessageRateTooHigh,
            0x97 => QuotaExceeded,
            0x98 => AdministrativeAction,
            0x99 => PayloadFormatInvalid,
            0x9A => RetainNotSupported,
            0x9B => QoSNotSupported,
            0x9C => UseAnotherServer,
            0x9D => ServerMoved,
            0x9E => SharedSubscriptionsNotSupported,
            0x9F => ConnectionRateExceeded,
            0xA0 => MaximumConnectTime,
            0xA1 => SubscriptionIdentifiersNotSupported,
            0xA2 => WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }
}

const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

/// Decodes a v5 reason code byte of `packet`, refusing those the packet
/// may not carry, and naming 0x00 as that packet names it.
pub(crate) fn decode_v5(packet: PacketType, code: u8) -> Result<ReasonCode, DecodeError> {
    let allowed = match packet {
        PacketType::ConnAck => CONNACK,
        PacketType::PubAck | PacketType::PubRec => PUBACK,
        PacketType::PubRel | PacketType::PubComp => PUBREL,
        PacketType::SubAck => SUBACK,
        PacketType::UnsubAck => UNSUBACK,
        PacketType::Disconnect => DISCONNECT,
        _ => AUTH,
    };
    let invalid = DecodeError::InvalidReasonCode { packet, code };
    if !allowed.contains(&code) {
        return Err(invalid);
    }
    let reason = ReasonCode::from_code(code).ok_or(invalid)?;
    Ok(match (packet, reason) {
        (PacketType::Disconnect, ReasonCode::Success) => ReasonCode::NormalDisconnection,
        (PacketType::SubAck, ReasonCode::Success) => ReasonCode::GrantedQoS0,
        _ => reason,
    })
}

/// A 3.1.1 CONNACK return code (3.1.1 section 3.2.2.3).
pub(crate) fn decode_v3_connack(code: u8) -> Result<ReasonCode, DecodeError> {
    use ReasonCode::*;
    Ok(match code {
        0 => Success,
        1 => UnsupportedProtocolVersion,
        2 => ClientIdentifierNotValid,
        3 => ServerUnavailable,
        4 => BadUserNameOrPassword,
        5 => NotAuthorized,
        _ => {
            return Err(DecodeError::InvalidReasonCode {
                packet: PacketType::ConnAck,
                code,
            })
        }
    })
}

/// A 3.1.1 SUBACK return code (3.1.1 section 3.9.3).
pub(crate) fn decode_v3_suback(code: u8) -> Result<ReasonCode, DecodeError> {
    use ReasonCode::*;
    Ok(match code {
        0 => GrantedQoS0,
        1 => GrantedQoS1,
        2 => GrantedQoS2,
        0x80 => UnspecifiedError,
        _ => {
            return Err(DecodeError::InvalidReasonCode {
                packet: PacketType::SubAck,
                code,
            })
        }
    })
}

/// The 3.1.1 SUBACK byte for a reason: the granted QoS, or 0x80 for any
/// failure.
pub(crate) fn encode_v3_suback(reason: ReasonCode) -> u8 {
    match reason {
        ReasonCode::GrantedQoS1 => 1,
        ReasonCode::GrantedQoS2 => 2,
        r if r.is_error() => 0x80,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_code_inverts_code() {
        for b in 0..=255u8 {
            if let Some(r) = ReasonCode::from_code(b) {
                assert_eq!(r.code(), b);
            }
        }
    }

    #[test]
    fn per_packet_tables() {
        use PacketType::*;
        let cases = [
            (Disconnect, 0x00, Ok(ReasonCode::NormalDisconnection)),
            (SubAck, 0x00, Ok(ReasonCode::GrantedQoS0)),
            (PubAck, 0x10, Ok(ReasonCode::NoMatchingSubscribers)),
            (
                PubRel,
                0x10,
                Err(DecodeError::InvalidReasonCode {
                    packet: PubRel,
                    code: 0x10,
                }),
            ),
            (Auth, 0x18, Ok(ReasonCode::ContinueAuthentication)),
            (
                Auth,
                0x80,
                Err(DecodeError::InvalidReasonCode {
                    packet: Auth,
                    code: 0x80,
                }),
            ),
            (
                ConnAck,
                0x8E,
                Err(DecodeError::InvalidReasonCode {
                    packet: ConnAck,
                    code: 0x8E,
                }),
            ),
            (
                Disconnect,
                0x03,
                Err(DecodeError::InvalidReasonCode {
                    packet: Disconnect,
                    code: 3,
                }),
            ),
        ];
        for (p, code, want) in cases {
            assert_eq!(decode_v5(p, code), want, "{p:?} {code:#x}");
        }
        assert_eq!(
            decode_v3_connack(6).map_err(|e| e.reason_code()),
            Err(ReasonCode::ProtocolError)
        );
        assert!(decode_v3_suback(0x81).is_err());
        assert_eq!(encode_v3_suback(ReasonCode::NotAuthorized), 0x80);
    }
}
