//! The packet model shared by decoder and encoder.

use bytes::Bytes;

/// Protocol level byte of CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1, protocol level 4.
    V311,
    /// MQTT 5.0, protocol level 5.
    V5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Every MQTT 5 property. A packet carries only those the spec allows on it;
/// the decoder enforces that, the encoder writes whatever is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    /// Several on a server-to-client PUBLISH, at most one on SUBSCRIBE.
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

/// The will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// v5 will properties (will delay, message expiry, content type, ...).
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    /// May be empty: the server then assigns one (or refuses).
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    /// Binary in both versions; never log it.
    pub password: Option<Bytes>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// v5 reason code; for 3.1.1 the encoder maps it to a return code
    /// (see [`ReasonCode::to_v3_connack`]).
    pub reason: ReasonCode,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// Empty only on a v5 PUBLISH that carries a topic alias.
    pub topic: String,
    /// 0 for QoS 0; never 0 for QoS 1 and 2 (the decoder refuses it).
    pub packet_id: u16,
    pub properties: Properties,
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share this shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResp {
    pub packet_id: u16,
    /// `Success` when a v5 peer omitted it, and always for 3.1.1.
    pub reason: ReasonCode,
    pub properties: Properties,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// Send retained messages at subscribe.
    #[default]
    OnSubscribe = 0,
    /// Send them only if the subscription did not exist.
    OnNewSubscribe = 1,
    /// Never send them for this subscription.
    Never = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: u16,
    /// Raw filters: syntax is checked by the topic crate, not here, so the
    /// broker can answer a bad filter with a per-filter SUBACK code in v5.
    /// The codec refuses only what makes the packet malformed (empty list,
    /// empty or non-UTF-8 filter, reserved option bits).
    pub filters: Vec<(String, SubscriptionOptions)>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: u16,
    /// One per filter. For 3.1.1 only GrantedQoS0/1/2 and
    /// UnspecifiedError (encoded 0x80) are meaningful.
    pub reasons: Vec<ReasonCode>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub filters: Vec<String>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: u16,
    /// v5 only: one per filter. Empty for 3.1.1.
    pub reasons: Vec<ReasonCode>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Always `NormalDisconnection` for 3.1.1.
    pub reason: ReasonCode,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResp),
    PubRec(PubResp),
    PubRel(PubResp),
    PubComp(PubResp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

/// MQTT 5 reason codes (spec 2.4). Several share a value with a different
/// meaning by packet; the variant names the meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    Success,                             // 0x00 (also Normal disconnection, Granted QoS 0)
    NormalDisconnection,                 // 0x00 in DISCONNECT
    GrantedQoS0,                         // 0x00 in SUBACK
    GrantedQoS1,                         // 0x01
    GrantedQoS2,                         // 0x02
    DisconnectWithWillMessage,           // 0x04
    NoMatchingSubscribers,               // 0x10
    NoSubscriptionExisted,               // 0x11
    ContinueAuthentication,              // 0x18
    ReAuthenticate,                      // 0x19
    UnspecifiedError,                    // 0x80
    MalformedPacket,                     // 0x81
    ProtocolError,                       // 0x82
    ImplementationSpecificError,         // 0x83
    UnsupportedProtocolVersion,          // 0x84
    ClientIdentifierNotValid,            // 0x85
    BadUserNameOrPassword,               // 0x86
    NotAuthorized,                       // 0x87
    ServerUnavailable,                   // 0x88
    ServerBusy,                          // 0x89
    Banned,                              // 0x8A
    ServerShuttingDown,                  // 0x8B
    BadAuthenticationMethod,             // 0x8C
    KeepAliveTimeout,                    // 0x8D
    SessionTakenOver,                    // 0x8E
    TopicFilterInvalid,                  // 0x8F
    TopicNameInvalid,                    // 0x90
    PacketIdentifierInUse,               // 0x91
    PacketIdentifierNotFound,            // 0x92
    ReceiveMaximumExceeded,              // 0x93
    TopicAliasInvalid,                   // 0x94
    PacketTooLarge,                      // 0x95
    MessageRateTooHigh,                  // 0x96
    QuotaExceeded,                       // 0x97
    AdministrativeAction,                // 0x98
    PayloadFormatInvalid,                // 0x99
    RetainNotSupported,                  // 0x9A
    QoSNotSupported,                     // 0x9B
    UseAnotherServer,                    // 0x9C
    ServerMoved,                         // 0x9D
    SharedSubscriptionsNotSupported,     // 0x9E
    ConnectionRateExceeded,              // 0x9F
    MaximumConnectTime,                  // 0xA0
    SubscriptionIdentifiersNotSupported, // 0xA1
    WildcardSubscriptionsNotSupported,   // 0xA2
}

impl ReasonCode {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        use ReasonCode::*;
        match self {
            Success | NormalDisconnection | GrantedQoS0 => 0x00,
            GrantedQoS1 => 0x01,
            GrantedQoS2 => 0x02,
            DisconnectWithWillMessage => 0x04,
            NoMatchingSubscribers => 0x10,
            NoSubscriptionExisted => 0x11,
            ContinueAuthentication => 0x18,
            ReAuthenticate => 0x19,
            UnspecifiedError => 0x80,
            MalformedPacket => 0x81,
            ProtocolError => 0x82,
            ImplementationSpecificError => 0x83,
            UnsupportedProtocolVersion => 0x84,
            ClientIdentifierNotValid => 0x85,
            BadUserNameOrPassword => 0x86,
            NotAuthorized => 0x87,
            ServerUnavailable => 0x88,
            ServerBusy => 0x89,
            Banned => 0x8A,
            ServerShuttingDown => 0x8B,
            BadAuthenticationMethod => 0x8C,
            KeepAliveTimeout => 0x8D,
            SessionTakenOver => 0x8E,
            TopicFilterInvalid => 0x8F,
            TopicNameInvalid => 0x90,
            PacketIdentifierInUse => 0x91,
            PacketIdentifierNotFound => 0x92,
            ReceiveMaximumExceeded => 0x93,
            TopicAliasInvalid => 0x94,
            PacketTooLarge => 0x95,
            MessageRateTooHigh => 0x96,
            QuotaExceeded => 0x97,
            AdministrativeAction => 0x98,
            PayloadFormatInvalid => 0x99,
            RetainNotSupported => 0x9A,
            QoSNotSupported => 0x9B,
            UseAnotherServer => 0x9C,
            ServerMoved => 0x9D,
            SharedSubscriptionsNotSupported => 0x9E,
            ConnectionRateExceeded => 0x9F,
            MaximumConnectTime => 0xA0,
            SubscriptionIdentifiersNotSupported => 0xA1,
            WildcardSubscriptionsNotSupported => 0xA2,
        }
    }

    /// The MQTT 3.1.1 CONNACK return code that best conveys this reason
    /// (3.1.1 section 3.2.2.3): 1 unacceptable protocol version, 2 identifier
    /// rejected, 3 server unavailable, 4 bad user name or password, 5 not
    /// authorized.
    pub fn to_v3_connack(self) -> u8 {
        use ReasonCode::*;
        match self {
            Success => 0,
            UnsupportedProtocolVersion => 1,
            ClientIdentifierNotValid => 2,
            ServerUnavailable
            | ServerBusy
            | ServerShuttingDown
            | ConnectionRateExceeded
            | UseAnotherServer
            | ServerMoved => 3,
            BadUserNameOrPassword => 4,
            _ => 5,
        }
    }

    pub fn is_error(self) -> bool {
        self.code() >= 0x80
    }
}
