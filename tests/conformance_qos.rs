//! QoS 1 and 2 in both directions, downgrade to the granted QoS, and
//! redelivery of unacknowledged messages with DUP when a session resumes.

use std::time::Duration;

use bulwark_codec::{Packet, Properties, ProtocolVersion, QoS as CQoS, ReasonCode};
use bulwark_tests::mqtt::{ack, connect_packet, publish, Got, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, TestBroker};

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_and_qos2_are_delivered_once_at_the_published_qos() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("q/#", QoS::ExactlyOnce).await;
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("q/1", QoS::AtLeastOnce, false, b"one").await;
    p.publish("q/2", QoS::ExactlyOnce, false, b"two").await;
    let got = s.publishes_for(Duration::from_millis(600)).await;
    let seen: Vec<(String, QoS)> = got.iter().map(|m| (v5::text(m), m.qos)).collect();
    assert_eq!(
        seen,
        [
            ("one".to_string(), QoS::AtLeastOnce),
            ("two".to_string(), QoS::ExactlyOnce)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_is_downgraded_to_the_granted_qos() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("d/t", QoS::AtLeastOnce).await;
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("d/t", QoS::ExactlyOnce, false, b"x").await;
    assert_eq!(
        s.publish_msg(WAIT).await.expect("msg").qos,
        QoS::AtLeastOnce
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_qos2_round_trip() {
    let b = start_with(limits()).await;
    let mut s = bulwark_tests::v3::connected(b.port(), "sub3").await;
    s.subscribe("q3/t", rumqttc::QoS::ExactlyOnce).await;
    let mut p = bulwark_tests::v3::connected(b.port(), "pub3").await;
    p.publish("q3/t", rumqttc::QoS::ExactlyOnce, false, b"x")
        .await;
    let got = s.publishes_for(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, rumqttc::QoS::ExactlyOnce);
}

/// A raw v5 or 3.1.1 subscriber with a persistent session, subscribed to
/// `topic` at `qos`.
async fn persistent_raw(b: &TestBroker, id: &str, v: ProtocolVersion, qos: CQoS) -> RawClient {
    let (mut c, ack) =
        RawClient::connect(b.addr, persistent_connect(id, v, v == ProtocolVersion::V5)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    c.subscribe("dup/t", qos).await;
    c
}

fn persistent_connect(id: &str, v: ProtocolVersion, clean: bool) -> bulwark_codec::Connect {
    let mut connect = connect_packet(id, v);
    connect.clean_start = clean;
    if v == ProtocolVersion::V5 {
        connect.properties = Properties {
            session_expiry_interval: Some(30),
            ..Default::default()
        };
    }
    connect
}

async fn publish_one(b: &TestBroker, qos: QoS) {
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("dup/t", qos, false, b"again").await;
}

async fn redelivered_with_dup(v: ProtocolVersion, qos: CQoS) {
    let b = start_with(limits()).await;
    let mut c = persistent_raw(&b, "nack", v, qos).await;
    let rq = if qos == CQoS::AtLeastOnce {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    };
    publish_one(&b, rq).await;
    let first = c.next_publish(WAIT).await.expect("first delivery");
    assert!(!first.dup);
    drop(c);
    b.offline("nack").await;

    let (mut c, ack) = RawClient::connect(b.addr, persistent_connect("nack", v, false)).await;
    assert!(ack.session_present);
    let again = c.next_publish(WAIT).await.expect("redelivery");
    assert!(again.dup, "redelivered PUBLISH must have DUP set");
    assert_eq!(
        (again.packet_id, again.qos, &again.payload[..]),
        (first.packet_id, first.qos, &b"again"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_unacked_qos1_is_redelivered_with_dup_on_resume() {
    redelivered_with_dup(ProtocolVersion::V5, CQoS::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_unacked_qos2_is_redelivered_with_dup_on_resume() {
    redelivered_with_dup(ProtocolVersion::V5, CQoS::ExactlyOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_unacked_qos1_is_redelivered_with_dup_on_resume() {
    redelivered_with_dup(ProtocolVersion::V311, CQoS::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_pubrel_is_resent_on_resume_after_pubrec() {
    let b = start_with(limits()).await;
    let mut c = persistent_raw(&b, "rel", ProtocolVersion::V5, CQoS::ExactlyOnce).await;
    publish_one(&b, QoS::ExactlyOnce).await;
    let m = c.next_publish(WAIT).await.expect("delivery");
    c.send(&Packet::PubRec(ack(m.packet_id))).await;
    match c.next(WAIT).await {
        Got::Packet(Packet::PubRel(r)) => assert_eq!(r.packet_id, m.packet_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    drop(c);
    b.offline("rel").await;

    let (mut c, _) = RawClient::connect(
        b.addr,
        persistent_connect("rel", ProtocolVersion::V5, false),
    )
    .await;
    match c.next(WAIT).await {
        Got::Packet(Packet::PubRel(r)) => assert_eq!(r.packet_id, m.packet_id),
        other => panic!("expected PUBREL again, got {other:?}"),
    }
    c.send(&Packet::PubComp(ack(m.packet_id))).await;
    assert!(c.next_publish(QUIET).await.is_none(), "message sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_are_not_redelivered() {
    let b = start_with(limits()).await;
    let mut c = persistent_raw(&b, "acked", ProtocolVersion::V5, CQoS::AtLeastOnce).await;
    publish_one(&b, QoS::AtLeastOnce).await;
    let m = c.next_publish(WAIT).await.expect("delivery");
    c.send(&Packet::PubAck(ack(m.packet_id))).await;
    let acked = bulwark_tests::eventually(WAIT, || {
        b.broker
            .session("acked")
            .is_some_and(|s| s.state().inflight_len() == 0)
    })
    .await;
    assert!(acked);
    drop(c);
    b.offline("acked").await;
    let (mut c, _) = RawClient::connect(
        b.addr,
        persistent_connect("acked", ProtocolVersion::V5, false),
    )
    .await;
    assert!(c.next_publish(QUIET).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_qos2_packet_id_before_pubrel_is_routed_once() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("once/t", QoS::ExactlyOnce).await;
    let mut c = RawClient::connected(b.addr, "twice", ProtocolVersion::V5).await;
    for dup in [false, true, true] {
        let mut p = publish("once/t", CQoS::ExactlyOnce, 7, b"x");
        p.dup = dup;
        c.send(&Packet::Publish(p)).await;
        match c.next(WAIT).await {
            Got::Packet(Packet::PubRec(r)) => assert_eq!(r.packet_id, 7),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    c.send(&Packet::PubRel(ack(7))).await;
    match c.next(WAIT).await {
        Got::Packet(Packet::PubComp(r)) => assert_eq!(r.packet_id, 7),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    assert_eq!(s.publishes_for(Duration::from_millis(500)).await.len(), 1);
}
