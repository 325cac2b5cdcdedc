//! A publisher faster than a subscriber that keeps reading is slowed down
//! instead of having its acknowledged QoS 1 messages dropped: with a queue
//! limit far below the burst, every acknowledged message still arrives, in
//! order, and nothing is counted as dropped.

use std::time::Duration;

use bulwark_broker::stats::Stats;
use bulwark_codec::{Packet, ProtocolVersion, QoS};
use bulwark_tests::mqtt::{self, Got, RawClient};
use bulwark_tests::{limits, start_with, Limits};
use bytes::BytesMut;

const BURST: u16 = 3000;
const MAX_QUEUED: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_publisher_is_paced_by_a_slower_reader_without_loss() {
    let b = start_with(Limits {
        max_queued_messages: MAX_QUEUED,
        ..limits()
    })
    .await;
    let v = ProtocolVersion::V311;
    let mut sub = RawClient::connected(b.addr, "slow-reader", v).await;
    sub.subscribe("bp/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(b.addr, "flooder", v).await;

    // The whole burst in one write, without waiting for any PUBACK: only
    // the broker's back-pressure can keep it within the queue limit.
    let mut burst = BytesMut::new();
    for id in 1..=BURST {
        let payload: &'static [u8] = Box::leak(id.to_be_bytes().to_vec().into_boxed_slice());
        let p = Packet::Publish(mqtt::publish("bp/t", QoS::AtLeastOnce, id, payload));
        burst.extend_from_slice(&bulwark_tests::encode(&p, v));
    }
    let send = tokio::spawn(async move {
        publisher.send_bytes(&burst).await;
        let mut acked = 0u16;
        while acked < BURST {
            match publisher.next(Duration::from_secs(10)).await {
                Got::Packet(Packet::PubAck(_)) => acked += 1,
                other => panic!("publisher expected PUBACK, got {other:?}"),
            }
        }
        acked
    });

    // Slower than the publisher: acknowledges each message and pauses
    // every few, but never stops reading.
    for expected in 1..=BURST {
        let m = sub
            .next_publish(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("message {expected} never arrived"));
        assert_eq!(&m.payload[..], &expected.to_be_bytes(), "order or loss");
        sub.send(&Packet::PubAck(mqtt::ack(m.packet_id))).await;
        if expected % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let acked = tokio::time::timeout(Duration::from_secs(20), send)
        .await
        .expect("publisher finished")
        .expect("publisher task");
    assert_eq!(acked, BURST);
    let stats = b.broker.stats();
    assert_eq!(Stats::get(&stats.dropped_queue_full), 0, "nothing dropped");
}
