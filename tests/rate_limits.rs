//! Per-connection publish rate and bandwidth limits through real sockets: a
//! burst far above the limit is slowed ("throttle", nothing lost) or closed
//! ("disconnect", v5 DISCONNECT 0x96), and another client on the same broker
//! is not slowed by it.
//!
//! Limits are small (tens of messages per second) so that each test's lower
//! bound is a second or two and the whole file a few seconds.

use std::time::{Duration, Instant};

use bulwark_broker::limits::PublishLimitAction;
use bulwark_broker::stats::Stats;
use bulwark_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use bulwark_tests::mqtt::{connect_packet, publish, RawClient};
use bulwark_tests::{limits, start_with, Limits};

const RATE: u32 = 50;

fn rate_limited(action: PublishLimitAction) -> Limits {
    Limits {
        max_publish_rate: RATE,
        publish_limit_action: action,
        ..limits()
    }
}

/// `n` QoS 0 PUBLISH to `topic` in one buffer, so they arrive together.
fn burst(topic: &str, n: usize, payload: &'static [u8], v: ProtocolVersion) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..n {
        let p = Packet::Publish(publish(topic, QoS::AtMostOnce, 0, payload));
        bytes.extend(bulwark_tests::encode(&p, v));
    }
    bytes
}

async fn receive(sub: &mut RawClient, n: usize, wait: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = 0;
    while got < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if sub.next_publish(left).await.is_none() {
            break;
        }
        got += 1;
    }
    got
}

#[tokio::test]
async fn throttle_delivers_every_message_but_no_faster_than_the_rate() {
    let b = start_with(rate_limited(PublishLimitAction::Throttle)).await;
    let v = ProtocolVersion::V5;
    let mut sub = RawClient::connected(b.addr, "sub", v).await;
    sub.subscribe("t", QoS::AtMostOnce).await;
    // Keep-alive 1 s (closed after 1.5 s of silence): the throttled wait is
    // longer, and must not count as silence.
    let mut connect = connect_packet("pub", v);
    connect.keep_alive = 1;
    let (mut publisher, ack) = RawClient::connect(b.addr, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);

    let n = 150;
    let start = Instant::now();
    publisher.send_bytes(&burst("t", n, b"x", v)).await;
    let got = receive(&mut sub, n, Duration::from_secs(6)).await;
    let elapsed = start.elapsed();
    assert_eq!(got, n, "throttling must not lose messages");
    // The first RATE pass at once, the rest at RATE per second.
    let bound = Duration::from_secs_f64((n as f64 - f64::from(RATE)) / f64::from(RATE));
    assert!(
        elapsed >= bound.mul_f64(0.95),
        "{n} messages in {elapsed:?}, limit {RATE}/s allows no less than {bound:?}"
    );
    assert!(Stats::get(&b.broker.stats().publish_rate_limited) > 0);
    // Still connected: the keep-alive did not fire while we were throttled.
    publisher.send(&Packet::PingReq).await;
    assert!(matches!(
        publisher.next_control(Duration::from_secs(2)).await,
        Packet::PingResp
    ));
}

#[tokio::test]
async fn throttle_limits_bandwidth_too() {
    let b = start_with(Limits {
        max_publish_bandwidth: 2_000,
        ..limits()
    })
    .await;
    let v = ProtocolVersion::V311;
    let mut sub = RawClient::connected(b.addr, "sub", v).await;
    sub.subscribe("t", QoS::AtMostOnce).await;
    let mut publisher = RawClient::connected(b.addr, "pub", v).await;
    static PAYLOAD: [u8; 96] = [7; 96];
    let bytes = burst("t", 40, &PAYLOAD, v);
    // 40 packets of 101 bytes against a 2000-byte burst refilled at 2000/s.
    let start = Instant::now();
    publisher.send_bytes(&bytes).await;
    assert_eq!(receive(&mut sub, 40, Duration::from_secs(5)).await, 40);
    let bound = Duration::from_secs_f64((bytes.len() as f64 - 2_000.0 - 101.0) / 2_000.0);
    let elapsed = start.elapsed();
    assert!(elapsed >= bound, "{elapsed:?} < {bound:?}");
}

#[tokio::test]
async fn disconnect_closes_a_v5_client_with_message_rate_too_high() {
    let b = start_with(rate_limited(PublishLimitAction::Disconnect)).await;
    let v = ProtocolVersion::V5;
    let mut publisher = RawClient::connected(b.addr, "pub", v).await;
    publisher.send_bytes(&burst("t", 200, b"x", v)).await;
    assert_eq!(
        publisher.expect_close(Duration::from_secs(3)).await,
        Some(ReasonCode::MessageRateTooHigh)
    );
    let stats = b.broker.stats();
    assert_eq!(Stats::get(&stats.publish_rate_disconnects), 1);
}

#[tokio::test]
async fn disconnect_closes_a_v3_client() {
    let b = start_with(rate_limited(PublishLimitAction::Disconnect)).await;
    let v = ProtocolVersion::V311;
    let mut publisher = RawClient::connected(b.addr, "pub", v).await;
    publisher.send_bytes(&burst("t", 200, b"x", v)).await;
    assert_eq!(publisher.expect_close(Duration::from_secs(3)).await, None);
}

#[tokio::test]
async fn another_client_is_served_at_full_speed_while_one_is_throttled() {
    let b = start_with(rate_limited(PublishLimitAction::Throttle)).await;
    let v = ProtocolVersion::V5;
    let mut sub = RawClient::connected(b.addr, "sub", v).await;
    sub.subscribe("fast", QoS::AtMostOnce).await;
    let mut slow = RawClient::connected(b.addr, "slow", v).await;
    let mut fast = RawClient::connected(b.addr, "fast", v).await;
    // Takes about 3 s to get through at 50/s.
    slow.send_bytes(&burst("slow", 200, b"x", v)).await;
    let stats = b.broker.stats();
    assert!(
        bulwark_tests::eventually(Duration::from_secs(2), || {
            Stats::get(&stats.publish_rate_limited) > 0
        })
        .await,
        "the slow publisher was never throttled"
    );
    // Within its own burst: must not wait on the other's buckets.
    let start = Instant::now();
    fast.send_bytes(&burst("fast", 40, b"y", v)).await;
    assert_eq!(receive(&mut sub, 40, Duration::from_secs(2)).await, 40);
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(500),
        "fast client slowed to {elapsed:?}"
    );
}
