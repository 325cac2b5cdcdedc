//! Decode and encode errors.
//!
//! Each [`DecodeError`] variant is one way a peer can break the protocol.
//! Its `Display` starts with the clause it violates, in the form
//! `[MQTT-x.y.z-n]` for a numbered conformance statement, or `[MQTT-x.y.z]`
//! for a rule the specification states in a section without numbering it.
//! Numbers are those of MQTT 5.0 unless the rule exists only in 3.1.1.

use crate::frame::PacketType;
use crate::ReasonCode;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("[MQTT-2.1.2] packet type 0 is reserved")]
    ReservedPacketType,
    #[error("[MQTT-2.1.2] AUTH (packet type 15) is reserved in MQTT 3.1.1")]
    AuthInV311,
    #[error("[MQTT-1.5.5] variable byte integer longer than 4 bytes")]
    VbiTooLong,
    #[error("[MQTT-3.2.2-15] packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge { size: usize, max: u32 },
    #[error("[{}] invalid fixed header flags {flags:#06b} for {packet:?}", fixed_flags_clause(*.packet))]
    InvalidFlags { packet: PacketType, flags: u8 },
    #[error("[MQTT-3.3.1-4] PUBLISH with both QoS bits set")]
    PublishQos3,
    #[error("[MQTT-3.3.1-2] DUP flag set on a QoS 0 PUBLISH")]
    DupOnQos0,
    #[error("[MQTT-2.2.1-3] packet identifier 0 on {0:?}")]
    ZeroPacketId(PacketType),
    #[error("[MQTT-2.1.4] a field extends past the end of the packet")]
    Truncated,
    #[error("[MQTT-2.1.4] bytes left over after the last field of the packet")]
    TrailingBytes,
    #[error("[MQTT-1.5.4-1] string is not well-formed UTF-8")]
    InvalidUtf8,
    #[error("[MQTT-1.5.4-1] string encodes a UTF-16 surrogate code point")]
    Utf16Surrogate,
    #[error("[MQTT-1.5.4-2] string contains U+0000")]
    NullCharacter,
    #[error("[MQTT-3.3.2-2] PUBLISH topic name contains a wildcard")]
    TopicWildcard,
    #[error("[MQTT-4.7.3-1] empty PUBLISH topic name without a topic alias")]
    EmptyTopic,
    #[error("[MQTT-3.3.2-8] topic alias 0")]
    TopicAliasZero,
    #[error("[MQTT-4.7.3-1] empty topic filter")]
    EmptyTopicFilter,
    #[error("[{clause}] {0:?} without any topic filter", clause = empty_list_clause(*.0))]
    EmptyFilterList(PacketType),
    #[error("[{clause}] {0:?} without any reason code", clause = empty_list_clause(*.0))]
    EmptyReasonList(PacketType),
    #[error("[MQTT-3.8.3-5] reserved bits set in subscription options")]
    SubscriptionOptionsReserved,
    #[error("[MQTT-3.8.3.1] retain handling 3 in subscription options")]
    RetainHandling3,
    #[error("[MQTT-3.8.3.1] maximum QoS 3 in subscription options")]
    SubscribeQos3,
    #[error("[MQTT-3.8.3-4] MQTT 3.1.1 requested QoS byte has bits other than the QoS set")]
    V311SubscribeOptionBits,
    #[error("[MQTT-2.2.2.2] property {0:#04x} is unknown")]
    UnknownProperty(u32),
    #[error("[MQTT-2.2.2.2] property {id:#04x} is not allowed on {packet:?}")]
    PropertyNotAllowed { id: u8, packet: PacketType },
    #[error("[MQTT-2.2.2.2] property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    #[error("[{}] property {id:#04x} has the invalid value {value}", property_clause(*.id))]
    PropertyValue { id: u8, value: u32 },
    #[error("[MQTT-3.1.2-1] protocol name is not \"MQTT\"")]
    InvalidProtocolName,
    #[error("[MQTT-3.1.2-2] unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    #[error("[MQTT-3.1.2-3] CONNECT reserved flag is set")]
    ConnectReservedFlag,
    #[error("[MQTT-3.1.2-11] will QoS is not 0 while the will flag is 0")]
    WillQosWithoutWill,
    #[error("[MQTT-3.1.2-12] will QoS 3")]
    WillQos3,
    #[error("[MQTT-3.1.2-13] will retain is set while the will flag is 0")]
    WillRetainWithoutWill,
    #[error("[MQTT-3.1.2-22] password flag set without the user name flag (MQTT 3.1.1)")]
    PasswordWithoutUsername,
    #[error("[MQTT-3.1.2-16] user name present while the user name flag is 0")]
    UnexpectedUsername,
    #[error("[MQTT-3.1.2-17] user name flag set but no user name present")]
    MissingUsername,
    #[error("[MQTT-3.1.2-18] password present while the password flag is 0")]
    UnexpectedPassword,
    #[error("[MQTT-3.1.2-19] password flag set but no password present")]
    MissingPassword,
    #[error("[MQTT-3.1.2.11.10] authentication data without an authentication method")]
    AuthDataWithoutMethod,
    #[error("[MQTT-3.2.2-1] CONNACK reserved acknowledge flags are set")]
    ConnAckReservedFlags,
    #[error("[MQTT-3.2.2-6] session present set with a failure reason code")]
    SessionPresentOnError,
    #[error("[{}] reason code {code:#04x} is not valid on {packet:?}", reason_clause(*.packet))]
    InvalidReasonCode { packet: PacketType, code: u8 },
}

impl DecodeError {
    /// The reason code the receiver answers with (CONNACK or DISCONNECT),
    /// as MQTT 5.0 prescribes for this kind of error.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            TopicWildcard => ReasonCode::TopicNameInvalid,
            TopicAliasZero => ReasonCode::TopicAliasInvalid,
            InvalidProtocolName | UnsupportedProtocolLevel(_) => {
                ReasonCode::UnsupportedProtocolVersion
            }
            EmptyTopic
            | EmptyFilterList(_)
            | EmptyReasonList(_)
            | RetainHandling3
            | SubscribeQos3
            | DuplicateProperty(_)
            | PropertyValue { .. }
            | AuthDataWithoutMethod
            | SessionPresentOnError
            | InvalidReasonCode { .. } => ReasonCode::ProtocolError,
            _ => ReasonCode::MalformedPacket,
        }
    }

    /// The specification clause this error violates, e.g. `MQTT-3.3.1-2`.
    pub fn clause(&self) -> &'static str {
        use DecodeError::*;
        match self {
            ReservedPacketType | AuthInV311 => "MQTT-2.1.2",
            VbiTooLong => "MQTT-1.5.5",
            PacketTooLarge { .. } => "MQTT-3.2.2-15",
            InvalidFlags { packet, .. } => fixed_flags_clause(*packet),
            PublishQos3 => "MQTT-3.3.1-4",
            DupOnQos0 => "MQTT-3.3.1-2",
            ZeroPacketId(_) => "MQTT-2.2.1-3",
            Truncated | TrailingBytes => "MQTT-2.1.4",
            InvalidUtf8 | Utf16Surrogate => "MQTT-1.5.4-1",
            NullCharacter => "MQTT-1.5.4-2",
            TopicWildcard => "MQTT-3.3.2-2",
            EmptyTopic | EmptyTopicFilter => "MQTT-4.7.3-1",
            TopicAliasZero => "MQTT-3.3.2-8",
            EmptyFilterList(p) | EmptyReasonList(p) => empty_list_clause(*p),
            SubscriptionOptionsReserved => "MQTT-3.8.3-5",
            RetainHandling3 | SubscribeQos3 => "MQTT-3.8.3.1",
            V311SubscribeOptionBits => "MQTT-3.8.3-4",
            UnknownProperty(_) | PropertyNotAllowed { .. } | DuplicateProperty(_) => "MQTT-2.2.2.2",
            PropertyValue { id, .. } => property_clause(*id),
            InvalidProtocolName => "MQTT-3.1.2-1",
            UnsupportedProtocolLevel(_) => "MQTT-3.1.2-2",
            ConnectReservedFlag => "MQTT-3.1.2-3",
            WillQosWithoutWill => "MQTT-3.1.2-11",
            WillQos3 => "MQTT-3.1.2-12",
            WillRetainWithoutWill => "MQTT-3.1.2-13",
            PasswordWithoutUsername => "MQTT-3.1.2-22",
            UnexpectedUsername => "MQTT-3.1.2-16",
            MissingUsername => "MQTT-3.1.2-17",
            UnexpectedPassword => "MQTT-3.1.2-18",
            MissingPassword => "MQTT-3.1.2-19",
            AuthDataWithoutMethod => "MQTT-3.1.2.11.10",
            ConnAckReservedFlags => "MQTT-3.2.2-1",
            SessionPresentOnError => "MQTT-3.2.2-6",
            InvalidReasonCode { packet, .. } => reason_clause(*packet),
        }
    }
}

fn fixed_flags_clause(packet: PacketType) -> &'static str {
    match packet {
        PacketType::PubRel => "MQTT-3.6.1-1",
        PacketType::Subscribe => "MQTT-3.8.1-1",
        PacketType::Unsubscribe => "MQTT-3.10.1-1",
        _ => "MQTT-2.2.2-1",
    }
}

fn empty_list_clause(packet: PacketType) -> &'static str {
    match packet {
        PacketType::Subscribe => "MQTT-3.8.3-2",
        PacketType::Unsubscribe => "MQTT-3.10.3-2",
        PacketType::SubAck => "MQTT-3.9.3",
        _ => "MQTT-3.11.3",
    }
}

/// The statement obliging the sender to use one of the packet's reason codes.
fn reason_clause(packet: PacketType) -> &'static str {
    match packet {
        PacketType::ConnAck => "MQTT-3.2.2-8",
        PacketType::PubAck => "MQTT-3.4.2-1",
        PacketType::PubRec => "MQTT-3.5.2-1",
        PacketType::PubRel => "MQTT-3.6.2-1",
        PacketType::PubComp => "MQTT-3.7.2-1",
        PacketType::SubAck => "MQTT-3.9.3",
        PacketType::UnsubAck => "MQTT-3.11.3",
        PacketType::Disconnect => "MQTT-3.14.2-1",
        _ => "MQTT-3.15.2-1",
    }
}

/// The section that defines a property's range.
fn property_clause(id: u8) -> &'static str {
    match id {
        0x01 => "MQTT-3.3.2.3.2",
        0x0B => "MQTT-3.3.2.3.8",
        0x17 => "MQTT-3.1.2.11.7",
        0x19 => "MQTT-3.1.2.11.6",
        0x21 => "MQTT-3.1.2.11.3",
        0x24 => "MQTT-3.2.2.3.4",
        0x25 => "MQTT-3.2.2.3.5",
        0x27 => "MQTT-3.1.2.11.4",
        0x28 => "MQTT-3.2.2.3.11",
        0x29 => "MQTT-3.2.2.3.12",
        0x2A => "MQTT-3.2.2.3.13",
        _ => "MQTT-2.2.2.2",
    }
}

/// Why a packet could not be encoded. These are caller bugs or values the
/// wire format cannot carry, never peer behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("string of {0} bytes exceeds 65535")]
    StringTooLong(usize),
    #[error("binary data of {0} bytes exceeds 65535")]
    BinaryTooLong(usize),
    #[error("remaining length {0} exceeds 268435455")]
    PacketTooLarge(usize),
    #[error("value {0} cannot be encoded as a variable byte integer")]
    VbiOutOfRange(u64),
    #[error("packet identifier 0 on a packet that needs one")]
    ZeroPacketId,
    #[error("a SUBSCRIBE, UNSUBSCRIBE, SUBACK or UNSUBACK needs at least one entry")]
    EmptyList,
    #[error("AUTH does not exist in MQTT 3.1.1")]
    AuthInV311,
    #[error("empty PUBLISH topic without a topic alias (or in MQTT 3.1.1, which has none)")]
    EmptyTopic,
}
