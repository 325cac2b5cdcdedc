//! Receive Maximum in both directions: the broker never has more
//! unacknowledged QoS 1/2 messages in flight to a client than the client
//! allows, and a client that exceeds the broker's limit with QoS 2 is
//! disconnected with 0x93.

use std::time::Duration;

use bulwark_codec::{Packet, Properties, ProtocolVersion, QoS as CQoS, ReasonCode};
use bulwark_tests::mqtt::{ack, connect_packet, publish, Got, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, Limits, TestBroker};

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

/// A raw v5 subscriber to `fc/t` at QoS 1 announcing `receive_maximum`.
async fn subscriber(b: &TestBroker, receive_maximum: Option<u16>) -> RawClient {
    let mut connect = connect_packet("fc-sub", ProtocolVersion::V5);
    connect.properties = Properties {
        receive_maximum,
        ..Default::default()
    };
    let (mut c, ack) = RawClient::connect(b.addr, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    c.subscribe("fc/t", CQoS::AtLeastOnce).await;
    c
}

async fn publish_n(b: &TestBroker, n: usize) {
    let mut p = v5::connected(b.port(), "fc-pub").await;
    for i in 0..n {
        p.publish("fc/t", QoS::AtLeastOnce, false, format!("{i}").as_bytes())
            .await;
    }
}

/// Every PUBLISH that arrives within `QUIET`, as packet ids.
async fn drain(c: &mut RawClient) -> Vec<u16> {
    let mut ids = Vec::new();
    while let Some(p) = c.next_publish(QUIET).await {
        ids.push(p.packet_id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_respects_the_clients_receive_maximum() {
    let b = start_with(limits()).await;
    let mut c = subscriber(&b, Some(2)).await;
    publish_n(&b, 5).await;

    let first = drain(&mut c).await;
    assert_eq!(first.len(), 2, "in flight before any PUBACK: {first:?}");
    c.send(&Packet::PubAck(ack(first[0]))).await;
    let second = drain(&mut c).await;
    assert_eq!(second.len(), 1, "one PUBACK frees one slot");
    for id in [first[1], second[0]] {
        c.send(&Packet::PubAck(ack(id))).await;
    }
    assert_eq!(drain(&mut c).await.len(), 2, "the rest follows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_caps_inflight_at_its_own_limit() {
    let b = start_with(Limits {
        max_inflight_out: 3,
        ..limits()
    })
    .await;
    // No Receive Maximum: the client allows 65535.
    let mut c = subscriber(&b, None).await;
    publish_n(&b, 6).await;
    assert_eq!(drain(&mut c).await.len(), 3);
}

async fn qos2_until_refused(v: ProtocolVersion) -> (RawClient, Option<ReasonCode>) {
    let b = start_with(Limits {
        receive_maximum: 2,
        ..limits()
    })
    .await;
    let (mut c, ack) = RawClient::connect(b.addr, connect_packet("greedy", v)).await;
    if v == ProtocolVersion::V5 {
        assert_eq!(ack.properties.receive_maximum, Some(2));
    }
    for id in 1..=2 {
        c.send(&Packet::Publish(publish(
            "fc/q2",
            CQoS::ExactlyOnce,
            id,
            b"x",
        )))
        .await;
        match c.next(WAIT).await {
            Got::Packet(Packet::PubRec(r)) => assert_eq!(r.packet_id, id),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    let held = b
        .broker
        .session("greedy")
        .map(|s| s.state().incoming_qos2_len());
    assert_eq!(held, Some(2));
    c.send(&Packet::Publish(publish(
        "fc/q2",
        CQoS::ExactlyOnce,
        3,
        b"x",
    )))
    .await;
    let reason = c.expect_close(WAIT).await;
    (c, reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_client_exceeding_receive_maximum_gets_disconnect_0x93() {
    let (_c, reason) = qos2_until_refused(ProtocolVersion::V5).await;
    assert_eq!(reason, Some(ReasonCode::ReceiveMaximumExceeded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_client_exceeding_receive_maximum_is_closed() {
    let (_c, reason) = qos2_until_refused(ProtocolVersion::V311).await;
    assert_eq!(reason, None);
}
