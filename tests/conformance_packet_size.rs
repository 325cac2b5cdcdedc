//! Maximum Packet Size in both directions: a client's over-size packet is
//! refused with 0x95 (from its declared length, before the body arrives);
//! a message larger than the subscriber announced is not sent to it.

use std::time::Duration;

use bulwark_codec::{Packet, ProtocolVersion, QoS as CQoS, ReasonCode};
use bulwark_tests::mqtt::{connect_packet, publish, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, Limits, TestBroker};
use bytes::Bytes;

const WAIT: Duration = Duration::from_secs(3);

async fn small_broker() -> TestBroker {
    start_with(Limits {
        max_packet_size: 1024,
        ..limits()
    })
    .await
}

async fn send_big(b: &TestBroker, v: ProtocolVersion) -> Option<ReasonCode> {
    let (mut c, ack) = RawClient::connect(b.addr, connect_packet("big", v)).await;
    if v == ProtocolVersion::V5 {
        assert_eq!(ack.properties.maximum_packet_size, Some(1024));
    }
    let mut p = publish("big/t", CQoS::AtMostOnce, 0, b"");
    p.payload = Bytes::from(vec![b'x'; 2000]);
    c.send(&Packet::Publish(p)).await;
    c.expect_close(WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_packet_above_max_packet_size_gets_disconnect_0x95() {
    let b = small_broker().await;
    assert_eq!(
        send_big(&b, ProtocolVersion::V5).await,
        Some(ReasonCode::PacketTooLarge)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_packet_above_max_packet_size_is_closed() {
    let b = small_broker().await;
    assert_eq!(send_big(&b, ProtocolVersion::V311).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_length_is_refused_before_the_body_is_sent() {
    let b = small_broker().await;
    let mut c = RawClient::connected(b.addr, "huge", ProtocolVersion::V5).await;
    // A PUBLISH declaring 268 MB, and not one byte of it.
    c.send_bytes(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    assert_eq!(
        c.expect_close(Duration::from_secs(1)).await,
        Some(ReasonCode::PacketTooLarge)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_larger_than_subscribers_maximum_is_not_sent_to_it() {
    let b = start_with(limits()).await;
    let mut o = v5::options(b.port(), "tiny");
    o.set_max_packet_size(Some(256));
    let (mut small, _) = v5::connect(o).await;
    small.subscribe("mps/t", QoS::AtLeastOnce).await;
    let mut large = v5::connected(b.port(), "roomy").await;
    large.subscribe("mps/t", QoS::AtLeastOnce).await;

    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("mps/t", QoS::AtLeastOnce, false, &[b'x'; 1000])
        .await;
    p.publish("mps/t", QoS::AtLeastOnce, false, b"small").await;

    let got = small.publishes_for(Duration::from_millis(500)).await;
    let texts: Vec<String> = got.iter().map(v5::text).collect();
    assert_eq!(texts, ["small"]);
    assert_eq!(
        large.publishes_for(Duration::from_millis(300)).await.len(),
        2
    );
    assert_eq!(
        bulwark_broker::stats::Stats::get(&b.broker.stats().dropped_too_large),
        1
    );
}
