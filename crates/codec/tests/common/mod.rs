//! Proptest strategies for valid packets, shared by the round-trip and
//! differential tests, and the normalisation of what 3.1.1 cannot carry.
#![allow(dead_code)]

use bulwark_codec::*;
use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Which packet a property block belongs to; decides the allowed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    Ack,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

pub fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é€😀/_-]{0,8}"
}

pub fn topic() -> impl Strategy<Value = String> {
    "[a-z0-9é/$_-]{1,12}"
}

pub fn filter() -> impl Strategy<Value = String> {
    "[a-z0-9/+#$]{1,12}"
}

pub fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    option::of(0u8..=1)
}

/// Every property with a valid value, then those `ctx` does not allow
/// cleared.
pub fn properties(ctx: Ctx) -> impl Strategy<Value = Properties> {
    let message = (
        flag(),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic()),
        option::of(binary()),
        vec(1u32..=268_435_455, 0..3),
        option::of(1u16..),
    );
    let session = (
        option::of(any::<u32>()),
        option::of(text()),
        option::of(any::<u16>()),
        option::of(text()),
        option::of(binary()),
        flag(),
        option::of(any::<u32>()),
        flag(),
        option::of(text()),
        option::of(text()),
    );
    let limits = (
        option::of(text()),
        option::of(1u16..),
        option::of(any::<u16>()),
        flag(),
        flag(),
        vec((text(), text()), 0..3),
        option::of(1u32..),
        flag(),
        flag(),
        flag(),
    );
    (message, session, limits).prop_map(move |(m, s, l)| {
        let p = Properties {
            payload_format_indicator: m.0,
            message_expiry_interval: m.1,
            content_type: m.2,
            response_topic: m.3,
            correlation_data: m.4,
            subscription_identifiers: m.5,
            topic_alias: m.6,
            session_expiry_interval: s.0,
            assigned_client_identifier: s.1,
            server_keep_alive: s.2,
            authentication_method: s.3,
            authentication_data: s.4,
            request_problem_information: s.5,
            will_delay_interval: s.6,
            request_response_information: s.7,
            response_information: s.8,
            server_reference: s.9,
            reason_string: l.0,
            receive_maximum: l.1,
            topic_alias_maximum: l.2,
            maximum_qos: l.3,
            retain_available: l.4,
            user_properties: l.5,
            maximum_packet_size: l.6,
            wildcard_subscription_available: l.7,
            subscription_identifier_available: l.8,
            shared_subscription_available: l.9,
        };
        restrict(p, ctx)
    })
}

/// Keeps only the properties spec 2.2.2.2 allows in `ctx`.
pub fn restrict(p: Properties, ctx: Ctx) -> Properties {
    use Ctx::*;
    let mut out = Properties {
        user_properties: p.user_properties,
        ..Properties::default()
    };
    if matches!(ctx, Publish | Will) {
        out.payload_format_indicator = p.payload_format_indicator;
        out.message_expiry_interval = p.message_expiry_interval;
        out.content_type = p.content_type;
        out.response_topic = p.response_topic;
        out.correlation_data = p.correlation_data;
    }
    match ctx {
        Publish => {
            out.subscription_identifiers = p.subscription_identifiers;
            out.topic_alias = p.topic_alias;
        }
        Subscribe => {
            out.subscription_identifiers = p.subscription_identifiers.into_iter().take(1).collect()
        }
        Will => out.will_delay_interval = p.will_delay_interval,
        _ => {}
    }
    if matches!(ctx, Connect | ConnAck | Disconnect) {
        out.session_expiry_interval = p.session_expiry_interval;
    }
    if matches!(ctx, Connect | ConnAck | Auth) {
        out.authentication_method = p.authentication_method;
        // Data without a method is a protocol error.
        out.authentication_data = p
            .authentication_data
            .filter(|_| out.authentication_method.is_some());
    }
    if matches!(ctx, Connect | ConnAck) {
        out.receive_maximum = p.receive_maximum;
        out.topic_alias_maximum = p.topic_alias_maximum;
        out.maximum_packet_size = p.maximum_packet_size;
    }
    if ctx == Connect {
        out.request_problem_information = p.request_problem_information;
        out.request_response_information = p.request_response_information;
    }
    if ctx == ConnAck {
        out.assigned_client_identifier = p.assigned_client_identifier;
        out.server_keep_alive = p.server_keep_alive;
        out.response_information = p.response_information;
        out.maximum_qos = p.maximum_qos;
        out.retain_available = p.retain_available;
        out.wildcard_subscription_available = p.wildcard_subscription_available;
        out.subscription_identifier_available = p.subscription_identifier_available;
        out.shared_subscription_available = p.shared_subscription_available;
    }
    if matches!(ctx, ConnAck | Disconnect) {
        out.server_reference = p.server_reference;
    }
    if !matches!(ctx, Connect | Will | Publish | Subscribe | Unsubscribe) {
        out.reason_string = p.reason_string;
    }
    out
}

/// A reason code valid on the packet, named as the decoder names it.
fn reason(codes: &'static [u8], zero: ReasonCode) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(move |c| match c {
        0 => zero,
        c => ReasonCode::from_code(c).unwrap_or(ReasonCode::UnspecifiedError),
    })
}

const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x95, 0x9F,
];
const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x8B, 0x8E, 0x93, 0x94, 0x95, 0x9C, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

fn v5(version: ProtocolVersion, ctx: Ctx) -> BoxedStrategy<Properties> {
    match version {
        ProtocolVersion::V5 => properties(ctx).boxed(),
        ProtocolVersion::V311 => Just(Properties::default()).boxed(),
    }
}

pub fn connect() -> impl Strategy<Value = Packet> {
    let version = prop_oneof![Just(ProtocolVersion::V311), Just(ProtocolVersion::V5)];
    version.prop_flat_map(|v| {
        let will = (topic(), binary(), qos(), any::<bool>(), v5(v, Ctx::Will)).prop_map(
            |(topic, payload, qos, retain, properties)| Will {
                topic,
                payload,
                qos,
                retain,
                properties,
            },
        );
        (
            any::<bool>(),
            any::<u16>(),
            text(),
            option::of(will),
            option::of(text()),
            option::of(binary()),
            v5(v, Ctx::Connect),
        )
            .prop_map(
                move |(
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                )| {
                    // 3.1.1 has no password without a user name [MQTT-3.1.2-22].
                    let username = match (v, &password) {
                        (ProtocolVersion::V311, Some(_)) => username.or(Some(String::new())),
                        _ => username,
                    };
                    Packet::Connect(Box::new(Connect {
                        protocol: v,
                        clean_start,
                        keep_alive,
                        client_id,
                        will,
                        username,
                        password,
                        properties,
                    }))
                },
            )
    })
}

pub fn publish(version: ProtocolVersion) -> impl Strategy<Value = Publish> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic(),
        1u16..,
        v5(version, Ctx::Publish),
        binary(),
        any::<bool>(),
    )
        .prop_map(
            move |(qos, dup, retain, topic, pid, properties, payload, aliased)| {
                let aliased = aliased && properties.topic_alias.is_some();
                Publish {
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    topic: if aliased { String::new() } else { topic },
                    packet_id: if qos == QoS::AtMostOnce { 0 } else { pid },
                    properties,
                    payload,
                }
            },
        )
}

fn sub_options() -> impl Strategy<Value = SubscriptionOptions> {
    let rh = prop_oneof![
        Just(RetainHandling::OnSubscribe),
        Just(RetainHandling::OnNewSubscribe),
        Just(RetainHandling::Never)
    ];
    (qos(), any::<bool>(), any::<bool>(), rh).prop_map(
        |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
            qos,
            no_local,
            retain_as_published,
            retain_handling,
        },
    )
}

fn pub_resp(version: ProtocolVersion, codes: &'static [u8]) -> impl Strategy<Value = PubResp> {
    (
        1u16..,
        reason(codes, ReasonCode::Success),
        v5(version, Ctx::Ack),
    )
        .prop_map(|(packet_id, reason, properties)| PubResp {
            packet_id,
            reason,
            properties,
        })
}

/// Any packet valid to send in `version` (CONNECT carries its own).
pub fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v = version;
    let connack = (
        any::<bool>(),
        reason(CONNACK, ReasonCode::Success),
        v5(v, Ctx::ConnAck),
    )
        .prop_map(|(sp, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present: sp && !reason.is_error(),
                reason,
                properties,
            })
        });
    let subscribe = (
        1u16..,
        vec((filter(), sub_options()), 1..4),
        v5(v, Ctx::Subscribe),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        });
    let suback = (
        1u16..,
        vec(reason(SUBACK, ReasonCode::GrantedQoS0), 1..4),
        v5(v, Ctx::Ack),
    )
        .prop_map(|(packet_id, reasons, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties,
            })
        });
    let unsubscribe = (1u16.., vec(filter(), 1..4), v5(v, Ctx::Unsubscribe)).prop_map(
        |(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties,
            })
        },
    );
    let unsuback = (
        1u16..,
        vec(reason(UNSUBACK, ReasonCode::Success), 1..4),
        v5(v, Ctx::Ack),
    )
        .prop_map(|(packet_id, reasons, properties)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties,
            })
        });
    let disconnect = (
        reason(DISCONNECT, ReasonCode::NormalDisconnection),
        v5(v, Ctx::Disconnect),
    )
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }));
    let auth = (reason(AUTH, ReasonCode::Success), v5(v, Ctx::Auth))
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }));
    let common = prop_oneof![
        connect(),
        connack,
        publish(v).prop_map(Packet::Publish),
        pub_resp(v, PUBACK).prop_map(Packet::PubAck),
        pub_resp(v, PUBACK).prop_map(Packet::PubRec),
        pub_resp(v, PUBREL).prop_map(Packet::PubRel),
        pub_resp(v, PUBREL).prop_map(Packet::PubComp),
        subscribe,
        suback,
        unsubscribe,
        unsuback,
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect,
    ];
    match version {
        ProtocolVersion::V5 => prop_oneof![10 => common, 1 => auth].boxed(),
        ProtocolVersion::V311 => common.boxed(),
    }
}

/// What a packet becomes after a trip through `version`: 3.1.1 has no
/// reason codes beyond CONNACK's return codes and SUBACK's granted QoS.
pub fn normalise(p: Packet, version: ProtocolVersion) -> Packet {
    if version == ProtocolVersion::V5 {
        return p;
    }
    let ok = |r: PubResp| PubResp {
        reason: ReasonCode::Success,
        ..r
    };
    match p {
        Packet::ConnAck(mut c) => {
            c.reason = match c.reason.to_v3_connack() {
                0 => ReasonCode::Success,
                1 => ReasonCode::UnsupportedProtocolVersion,
                2 => ReasonCode::ClientIdentifierNotValid,
                3 => ReasonCode::ServerUnavailable,
                4 => ReasonCode::BadUserNameOrPassword,
                _ => ReasonCode::NotAuthorized,
            };
            Packet::ConnAck(c)
        }
        Packet::PubAck(r) => Packet::PubAck(ok(r)),
        Packet::PubRec(r) => Packet::PubRec(ok(r)),
        Packet::PubRel(r) => Packet::PubRel(ok(r)),
        Packet::PubComp(r) => Packet::PubComp(ok(r)),
        Packet::SubAck(mut s) => {
            for r in &mut s.reasons {
                *r = match *r {
                    ReasonCode::GrantedQoS1 | ReasonCode::GrantedQoS2 => *r,
                    r if r.is_error() => ReasonCode::UnspecifiedError,
                    _ => ReasonCode::GrantedQoS0,
                };
            }
            Packet::SubAck(s)
        }
        Packet::Subscribe(mut s) => {
            for (_, o) in &mut s.filters {
                *o = SubscriptionOptions {
                    qos: o.qos,
                    ..SubscriptionOptions::default()
                };
            }
            Packet::Subscribe(s)
        }
        Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
            reasons: Vec::new(),
            ..u
        }),
        Packet::Disconnect(_) => Packet::Disconnect(Disconnect {
            reason: ReasonCode::NormalDisconnection,
            properties: Properties::default(),
        }),
        other => other,
    }
}
