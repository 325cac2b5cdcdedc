//! Malformed and hostile input, sent as raw bytes. Each case checks the
//! broker's answer (v5 DISCONNECT with the reason the spec gives, a CONNACK
//! refusal, or a plain close) and that a well-behaved client connected all
//! along is still served.

use std::time::Duration;

use bulwark_codec::{Packet, ProtocolVersion, QoS as CQoS, ReasonCode};
use bulwark_tests::mqtt::{ack, connect_packet, publish, Got, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{encode, limits, start_with, Limits, Raw, TestBroker};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V3: ProtocolVersion = ProtocolVersion::V311;
const WAIT: Duration = Duration::from_secs(2);

/// A broker and a rumqttc client that must keep being served.
struct Scene {
    b: TestBroker,
    bystander: v5::Client,
}

async fn scene() -> Scene {
    scene_with(limits()).await
}

async fn scene_with(l: Limits) -> Scene {
    let b = start_with(l).await;
    let mut bystander = v5::connected(b.port(), "bystander").await;
    bystander.subscribe("ok/t", QoS::AtLeastOnce).await;
    Scene { b, bystander }
}

impl Scene {
    /// Connects a raw client, sends `bytes` and returns the DISCONNECT
    /// reason the broker closed with (`None`: closed without one).
    async fn after_connect(&self, v: ProtocolVersion, bytes: &[u8]) -> Option<ReasonCode> {
        let mut c = RawClient::connected(self.b.addr, "bad", v).await;
        c.send_bytes(bytes).await;
        c.expect_close(WAIT).await
    }

    /// Sends `bytes` as the very first thing on a connection; returns what
    /// the broker answered before closing.
    async fn before_connect(&self, bytes: &[u8]) -> Vec<u8> {
        let mut raw = Raw::connect(self.b.addr).await;
        raw.send(bytes).await;
        let (answer, closed) = raw.read_for(WAIT).await;
        assert!(closed, "connection left open; answered {answer:?}");
        answer
    }

    async fn still_serves(mut self) {
        self.bystander
            .publish("ok/t", QoS::AtLeastOnce, false, b"alive")
            .await;
        let got = self
            .bystander
            .publish_msg(WAIT)
            .await
            .expect("bystander served");
        assert_eq!(v5::text(&got), "alive");
    }
}

fn vbi(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn frame(byte1: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![byte1];
    f.extend(vbi(body.len()));
    f.extend_from_slice(body);
    f
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A v5 PUBLISH body: topic, packet id when given, properties, payload.
fn publish_body(topic: &[u8], packet_id: Option<u16>, props: &[u8]) -> Vec<u8> {
    let mut body = string(topic);
    if let Some(id) = packet_id {
        body.extend(id.to_be_bytes());
    }
    body.extend(vbi(props.len()));
    body.extend_from_slice(props);
    body.extend_from_slice(b"payload");
    body
}

fn v5_publish(topic: &[u8]) -> Vec<u8> {
    frame(0x30, &publish_body(topic, None, &[]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_flag_bits_are_malformed() {
    let s = scene().await;
    // SUBSCRIBE must carry flags 0b0010; PINGREQ 0.
    let subscribe = frame(0x80, &[0, 1, 0, 0, 1, b'a', 0]);
    assert_eq!(
        s.after_connect(V5, &subscribe).await,
        Some(ReasonCode::MalformedPacket)
    );
    assert_eq!(
        s.after_connect(V5, &[0xC1, 0]).await,
        Some(ReasonCode::MalformedPacket)
    );
    assert_eq!(s.after_connect(V3, &[0xC1, 0]).await, None);
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_qos_3_is_malformed() {
    let s = scene().await;
    let p = frame(0x36, &publish_body(b"a", Some(1), &[]));
    assert_eq!(
        s.after_connect(V5, &p).await,
        Some(ReasonCode::MalformedPacket)
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_identifier_zero_is_malformed() {
    let s = scene().await;
    let p = frame(0x32, &publish_body(b"a", Some(0), &[]));
    assert_eq!(
        s.after_connect(V5, &p).await,
        Some(ReasonCode::MalformedPacket)
    );
    let sub = frame(0x82, &[0, 0, 0, 0, 1, b'a', 0]);
    assert_eq!(
        s.after_connect(V5, &sub).await,
        Some(ReasonCode::MalformedPacket)
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_byte_remaining_length_is_malformed() {
    let s = scene_with(Limits {
        max_packet_size: u32::MAX,
        ..limits()
    })
    .await;
    let bad = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
    assert_eq!(
        s.after_connect(V5, &bad).await,
        Some(ReasonCode::MalformedPacket)
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_length_above_maximum_is_answered_before_the_body() {
    let s = scene_with(Limits {
        max_packet_size: 4096,
        ..limits()
    })
    .await;
    // 5000 bytes declared, none sent: the answer must not wait for them.
    let mut header = vec![0x30];
    header.extend(vbi(5000));
    assert_eq!(
        s.after_connect(V5, &header).await,
        Some(ReasonCode::PacketTooLarge)
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_utf8_and_null_in_a_topic_are_malformed() {
    let s = scene().await;
    for topic in [&b"a/\xFF"[..], b"a/\xC0\x80", b"a\0b", b"\xED\xA0\x80"] {
        assert_eq!(
            s.after_connect(V5, &v5_publish(topic)).await,
            Some(ReasonCode::MalformedPacket),
            "topic {topic:?}"
        );
    }
    assert_eq!(
        s.after_connect(V3, &frame(0x30, &[0, 2, b'a', 0, b'x']))
            .await,
        None
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_in_a_publish_topic_are_refused() {
    let s = scene().await;
    for topic in [&b"a/+"[..], b"a/#", b"#"] {
        assert_eq!(
            s.after_connect(V5, &v5_publish(topic)).await,
            Some(ReasonCode::TopicNameInvalid),
            "topic {topic:?}"
        );
    }
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_topic_without_alias_is_a_protocol_error() {
    let s = scene().await;
    assert_eq!(
        s.after_connect(V5, &v5_publish(b"")).await,
        Some(ReasonCode::ProtocolError)
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_topic_filter_is_refused() {
    let s = scene().await;
    let sub = frame(0x82, &[0, 1, 0, 0, 0, 0]);
    let mut c = RawClient::connected(s.b.addr, "bad", V5).await;
    c.send_bytes(&sub).await;
    // Either answer is the spec's: the filter is malformed, or the one
    // filter is refused in the SUBACK.
    match c.next(WAIT).await {
        Got::Packet(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::MalformedPacket),
        Got::Packet(Packet::SubAck(a)) => assert_eq!(a.reasons, [ReasonCode::TopicFilterInvalid]),
        other => panic!("expected DISCONNECT 0x81 or SUBACK 0x8F, got {other:?}"),
    }
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_property_is_a_protocol_error() {
    let s = scene().await;
    let props = [0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
    let p = frame(0x30, &publish_body(b"a", None, &props));
    assert_eq!(
        s.after_connect(V5, &p).await,
        Some(ReasonCode::ProtocolError)
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_not_allowed_on_the_packet_is_malformed() {
    let s = scene().await;
    // Session Expiry Interval belongs on CONNECT and DISCONNECT only.
    let p = frame(0x30, &publish_body(b"a", None, &[0x11, 0, 0, 0, 1]));
    assert_eq!(
        s.after_connect(V5, &p).await,
        Some(ReasonCode::MalformedPacket)
    );
    s.still_serves().await;
}

fn connect_bytes(v: ProtocolVersion) -> Vec<u8> {
    encode(&Packet::Connect(Box::new(connect_packet("odd", v))), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocol_name_is_refused() {
    let s = scene().await;
    for v in [V3, V5] {
        let mut bytes = connect_bytes(v);
        // Fixed header (2 bytes) and the name's length (2), then "MQTT".
        bytes[7] = b'X';
        let answer = s.before_connect(&bytes).await;
        // A server may close without CONNACK [MQTT-3.1.2-1]; if it answers,
        // it refuses.
        assert!(
            answer.is_empty()
                || answer == [0x20, 2, 0, 1]
                || answer.starts_with(&[0x20, 3, 0, 0x84]),
            "answered {answer:?}"
        );
    }
    assert!(s.b.broker.session("odd").is_none());
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocol_level_gets_connack_0x01() {
    let s = scene().await;
    for level in [3, 6] {
        let mut bytes = connect_bytes(V3);
        bytes[8] = level;
        let answer = s.before_connect(&bytes).await;
        assert_eq!(answer, [0x20, 2, 0, 1], "level {level}");
    }
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_packet_other_than_connect_closes_the_connection() {
    let s = scene().await;
    assert!(s.before_connect(&[0xC0, 0]).await.is_empty());
    assert!(s.before_connect(&v5_publish(b"a")).await.is_empty());
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect_is_a_protocol_error() {
    let s = scene().await;
    assert_eq!(
        s.after_connect(V5, &connect_bytes(V5)).await,
        Some(ReasonCode::ProtocolError)
    );
    assert_eq!(s.after_connect(V3, &connect_bytes(V3)).await, None);
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_only_packets_from_a_client_are_a_protocol_error() {
    let s = scene().await;
    let connack = frame(0x20, &[0, 0, 0]);
    let suback = frame(0x90, &[0, 1, 0, 0]);
    for bytes in [connack, suback] {
        assert_eq!(
            s.after_connect(V5, &bytes).await,
            Some(ReasonCode::ProtocolError)
        );
    }
    assert_eq!(s.after_connect(V3, &frame(0x90, &[0, 1, 0])).await, None);
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_qos2_ids_without_pubrel_are_routed_once_and_held_once() {
    let mut s = scene().await;
    s.bystander.subscribe("q2/t", QoS::ExactlyOnce).await;
    let mut c = RawClient::connected(s.b.addr, "repeater", V5).await;
    for _ in 0..50 {
        c.send(&Packet::Publish(publish(
            "q2/t",
            CQoS::ExactlyOnce,
            9,
            b"x",
        )))
        .await;
    }
    for _ in 0..50 {
        match c.next(WAIT).await {
            Got::Packet(Packet::PubRec(r)) => assert_eq!(r.packet_id, 9),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    let held =
        s.b.broker
            .session("repeater")
            .map(|x| x.state().incoming_qos2_len());
    assert_eq!(held, Some(1));
    c.send(&Packet::PubRel(ack(9))).await;
    assert_eq!(
        s.bystander
            .publishes_for(Duration::from_millis(400))
            .await
            .len(),
        1
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_receive_maximum_zero_is_refused() {
    let s = scene().await;
    let mut connect = connect_packet("zero-rm", V5);
    connect.properties.receive_maximum = Some(0);
    let (mut c, ack) = RawClient::connect(s.b.addr, connect).await;
    assert_eq!(ack.reason, ReasonCode::ProtocolError);
    assert!(matches!(c.next(WAIT).await, Got::Closed));
    s.still_serves().await;
}
