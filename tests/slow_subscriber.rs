//! A subscriber that never reads delays nobody but itself: a fast subscriber
//! of the same topic receives everything, and the slow one's queue stays
//! within `max_queued_messages`, the excess dropped and counted.

use std::time::Duration;

use bulwark_broker::stats::Stats;
use bulwark_codec::{ProtocolVersion, QoS as CQoS};
use bulwark_tests::mqtt::RawClient;
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, Limits, TestBroker};

const MAX_QUEUED: usize = 100;

async fn broker() -> TestBroker {
    start_with(Limits {
        max_queued_messages: MAX_QUEUED,
        ..limits()
    })
    .await
}

/// A client that accepts packets up to 1 MiB (rumqttc's default is 10 KiB).
async fn big_client(b: &TestBroker, id: &str) -> v5::Client {
    let mut o = v5::options(b.port(), id);
    o.set_max_packet_size(Some(1024 * 1024));
    v5::connect(o).await.0
}

/// Publishes `n` messages of `size` bytes, each acknowledged before the
/// next, while `fast` must receive all of them in order.
async fn flood_and_check_fast(b: &TestBroker, n: usize, size: usize) {
    let mut fast = big_client(b, "fast").await;
    fast.subscribe("flood/t", QoS::AtLeastOnce).await;
    let mut p = big_client(b, "pub").await;
    let mut payload = vec![b'x'; size];
    let received = tokio::spawn(async move {
        let mut got = 0usize;
        while let Some(m) = fast.publish_msg(Duration::from_secs(5)).await {
            let seq = u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
            assert_eq!(
                seq as usize, got,
                "fast subscriber lost or reordered a message"
            );
            got += 1;
            if got == n {
                break;
            }
        }
        got
    });
    for i in 0..n {
        payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
        p.publish("flood/t", QoS::AtLeastOnce, false, &payload)
            .await;
    }
    let got = tokio::time::timeout(Duration::from_secs(20), received)
        .await
        .expect("fast subscriber finished")
        .expect("receiver task");
    assert_eq!(got, n, "fast subscriber was held up by the slow one");
}

fn slow_is_bounded(b: &TestBroker) {
    let queued = b.broker.session("slow").map(|s| s.state().queued());
    assert!(
        queued.is_some_and(|q| q <= MAX_QUEUED),
        "slow queue {queued:?}"
    );
    assert!(
        Stats::get(&b.broker.stats().dropped_queue_full) > 0,
        "no drop counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_that_never_reads_does_not_block_others_and_is_bounded() {
    let b = broker().await;
    let mut slow = RawClient::connected(b.addr, "slow", ProtocolVersion::V5).await;
    slow.subscribe("flood/t", CQoS::AtMostOnce).await;
    // From here on `slow` never reads: its socket buffers fill, then the
    // broker's write buffer, then its queue.
    flood_and_check_fast(&b, 600, 32 * 1024).await;
    slow_is_bounded(&b);
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_that_never_acknowledges_is_bounded() {
    let b = broker().await;
    let mut slow = RawClient::connected(b.addr, "slow", ProtocolVersion::V5).await;
    slow.subscribe("flood/t", CQoS::AtLeastOnce).await;
    // It reads nothing and acks nothing: at most max_inflight_out in
    // flight, then the queue fills.
    flood_and_check_fast(&b, 400, 64).await;
    slow_is_bounded(&b);
    let inflight = b.broker.session("slow").map(|s| s.state().inflight_len());
    assert!(inflight.is_some_and(|n| n <= usize::from(limits().max_inflight_out)));
    drop(slow);
}
