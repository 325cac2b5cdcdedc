//! Bounded floods on loopback (issue: abuse resistance): each keeps the
//! broker's memory bounded, counts the limit it hits, and keeps serving a
//! well-behaved client while it lasts.
//!
//! The tests run one at a time (a shared lock) so that the process RSS they
//! check is theirs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_broker::limit_hits::LimitKind;
use bulwark_broker::{Broker, MemoryStore};
use bulwark_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use bulwark_tests::mqtt::{connect_packet, publish, subscribe, Got, RawClient};
use bulwark_tests::{eventually, limits, start_with, Limits};
use bulwark_transport::Kind;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Resident set size of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A well-behaved client still gets a PINGRESP promptly.
async fn still_served(c: &mut RawClient) {
    let started = Instant::now();
    c.send(&Packet::PingReq).await;
    match c.next(Duration::from_secs(2)).await {
        Got::Packet(Packet::PingResp) => {}
        other => panic!("well-behaved client not served: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_subscriptions_from_one_client_stop_at_the_quota() {
    let _serial = SERIAL.lock().await;
    let b = start_with(limits()).await;
    let v = ProtocolVersion::V5;
    let mut bystander = RawClient::connected(b.addr, "bystander", v).await;
    let mut greedy = RawClient::connected(b.addr, "greedy", v).await;
    let max = b.broker.limits().max_subscriptions;
    let before = rss();
    let mut refused = 0;
    for batch in 0..50u16 {
        // 100 filters per SUBSCRIBE, 5,000 in all.
        let filters = (0..100)
            .map(|i| {
                (
                    format!("scan/{batch}/{i}/#"),
                    bulwark_codec::SubscriptionOptions {
                        qos: QoS::AtMostOnce,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let sub = Packet::Subscribe(bulwark_codec::Subscribe {
            packet_id: batch + 1,
            filters,
            properties: Default::default(),
        });
        greedy.send(&sub).await;
        match greedy.next_control(Duration::from_secs(5)).await {
            Packet::SubAck(a) => {
                refused += a
                    .reasons
                    .iter()
                    .filter(|r| **r == ReasonCode::QuotaExceeded)
                    .count()
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }
    assert_eq!(refused, 5000 - max);
    assert_eq!(b.broker.subscription_count(), max);
    assert_eq!(
        b.broker.stats().limits.count(LimitKind::Subscriptions),
        (5000 - max) as u64
    );
    still_served(&mut bystander).await;
    let grown = rss().saturating_sub(before);
    assert!(grown < 32 << 20, "RSS grew by {grown} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_holds_at_most_max_queued_bytes() {
    let _serial = SERIAL.lock().await;
    let per_session = 2 << 20;
    let b = start_with(Limits {
        max_queued_bytes: per_session,
        max_publish_bandwidth: 1 << 30,
        max_publish_rate: 1 << 20,
        ..limits()
    })
    .await;
    let v = ProtocolVersion::V5;
    // Subscribes, then never reads again.
    let mut stuck = RawClient::connected(b.addr, "stuck", v).await;
    stuck.subscribe("big/t", QoS::AtLeastOnce).await;
    let mut bystander = RawClient::connected(b.addr, "bystander", v).await;
    let mut p = RawClient::connected(b.addr, "pub", v).await;
    let payload: &'static [u8] = Box::leak(vec![b'x'; 64 * 1024].into_boxed_slice());
    // 32 MiB offered, 16 times what the session may hold.
    for i in 0..512u16 {
        p.send(&Packet::Publish(publish(
            "big/t",
            QoS::AtLeastOnce,
            i + 1,
            payload,
        )))
        .await;
        if i % 64 == 63 {
            still_served(&mut bystander).await;
        }
    }
    let counted = eventually(Duration::from_secs(10), || {
        b.broker.stats().limits.count(LimitKind::QueuedBytes) > 0
    })
    .await;
    assert!(counted, "no queued-bytes limit hit counted");
    assert!(
        b.broker.queued_bytes() <= per_session,
        "{} bytes queued for one session, limit {per_session}",
        b.broker.queued_bytes()
    );
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_memory_budget_publishers_wait_and_nothing_grows() {
    let _serial = SERIAL.lock().await;
    let budget = 1 << 20;
    let b = start_with(Limits {
        max_queued_bytes_total: budget,
        max_queued_bytes: 4 << 20,
        max_queued_messages: 100_000,
        max_publish_bandwidth: 1 << 30,
        max_publish_rate: 1 << 20,
        ..limits()
    })
    .await;
    let v = ProtocolVersion::V5;
    // Three subscribers that stop reading: together they could hold 12 MiB.
    let mut stuck = Vec::new();
    for i in 0..3 {
        let mut s = RawClient::connected(b.addr, &format!("stuck-{i}"), v).await;
        s.subscribe("budget/t", QoS::AtLeastOnce).await;
        stuck.push(s);
    }
    let mut bystander = RawClient::connected(b.addr, "bystander", v).await;
    let p = RawClient::connected(b.addr, "pub", v).await;
    let (mut rd, mut wr) = p.stream.into_split();
    let payload: &'static [u8] = Box::leak(vec![b'y'; 16 * 1024].into_boxed_slice());
    let n = 400u16;
    // The publisher writes from its own task: once the broker stops reading
    // it, its writes block, as a real publisher's would.
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for i in 0..n {
            let packet = Packet::Publish(publish("budget/t", QoS::AtLeastOnce, i + 1, payload));
            if wr
                .write_all(&bulwark_tests::encode(&packet, v))
                .await
                .is_err()
            {
                break;
            }
        }
        wr
    });
    let paused = eventually(Duration::from_secs(10), || {
        b.broker.stats().limits.count(LimitKind::MemoryBudget) > 0
    })
    .await;
    assert!(paused, "the budget was never hit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Over by at most one PUBLISH fanned out to three sessions.
    let overshoot = 3 * (payload.len() + 256);
    assert!(
        b.broker.queued_bytes() <= budget + overshoot,
        "{} bytes queued, budget {budget}",
        b.broker.queued_bytes()
    );
    // The publisher is not being read: it got fewer PUBACKs than it sent.
    let acked = count_pubacks(&mut rd, v, Duration::from_millis(300), usize::from(n)).await;
    assert!(
        acked < usize::from(n),
        "all {acked} acknowledged despite the budget"
    );
    assert!(!writer.is_finished(), "the publisher was never slowed");
    // Clients that do not publish are still served.
    still_served(&mut bystander).await;
    // The stuck subscribers go away; their memory is returned and the
    // publisher's remaining messages are taken and acknowledged.
    stuck.clear();
    let rest = count_pubacks(&mut rd, v, Duration::from_secs(3), usize::from(n) - acked).await;
    assert_eq!(acked + rest, usize::from(n), "publisher not resumed");
    let _wr = writer.await.expect("writer");
}

/// PUBACKs read from `rd` until `want` arrived or none came for `quiet`.
async fn count_pubacks(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    v: ProtocolVersion,
    quiet: Duration,
    want: usize,
) -> usize {
    use tokio::io::AsyncReadExt;
    let limits = bulwark_codec::DecodeLimits {
        max_packet_size: u32::MAX,
    };
    let mut buf = bytes::BytesMut::new();
    let mut acks = 0;
    while acks < want {
        while let Ok(Some(n)) = bulwark_codec::frame_len(&buf, &limits) {
            let frame = buf.split_to(n).freeze();
            if let Ok(Packet::PubAck(_)) = bulwark_codec::decode(frame, v) {
                acks += 1;
            }
        }
        if acks >= want {
            break;
        }
        buf.reserve(4096);
        match tokio::time::timeout(quiet, rd.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_flood_with_bad_credentials_costs_nothing_lasting() {
    let _serial = SERIAL.lock().await;
    let mut l = limits();
    l.admission.max_connections_per_address = 100_000;
    l.admission.max_pending_connects = 100_000;
    l.admission.connection_rate_per_address = 100_000;
    l.admission.connection_rate_total = 100_000;
    let broker = Broker::new(l, Arc::new(MemoryStore::new()));
    // The attacked listener requires credentials; the other is where the
    // plant's own client lives.
    let closed = bulwark_tests::tls::spec(Kind::Mqtt, None, false);
    let open = bulwark_tests::tls::spec(Kind::Mqtt, None, true);
    let closed = bulwark_transport::bind(closed).await.expect("bind");
    let open = bulwark_transport::bind(open).await.expect("bind");
    let (attacked, served) = (closed.local_addr(), open.local_addr());
    let t1 = tokio::spawn(closed.run(broker.clone()));
    let t2 = tokio::spawn(open.run(broker.clone()));
    let mut plant = RawClient::connected(served, "plc", ProtocolVersion::V311).await;
    let before = rss();
    let mut refused = 0;
    for wave in 0..10 {
        let mut tasks = Vec::new();
        for i in 0..200 {
            tasks.push(tokio::spawn(async move {
                let mut c = connect_packet(&format!("bot-{wave}-{i}"), ProtocolVersion::V311);
                c.username = Some(format!("admin{i}"));
                c.password = Some(bytes::Bytes::from_static(b"hunter2"));
                let (_c, ack) = RawClient::connect(attacked, c).await;
                ack.reason
            }));
        }
        for t in tasks {
            if t.await.expect("bot") != ReasonCode::Success {
                refused += 1;
            }
        }
        still_served(&mut plant).await;
    }
    assert_eq!(refused, 2000, "a bad credential got in");
    let settled = eventually(Duration::from_secs(5), || broker.session_count() == 1).await;
    assert!(settled, "{} sessions left behind", broker.session_count());
    let grown = rss().saturating_sub(before);
    assert!(grown < 32 << 20, "RSS grew by {grown} bytes");
    t1.abort();
    t2.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_unsubscribe_churn_leaks_nothing() {
    let _serial = SERIAL.lock().await;
    // A client hammering one topic with subscribe/unsubscribe while
    // publishing does not leak subscriptions or queued bytes.
    let b = start_with(limits()).await;
    let v = ProtocolVersion::V5;
    let mut c = RawClient::connected(b.addr, "churn", v).await;
    for i in 0..500u16 {
        c.send(&subscribe(i + 1, "churn/t", QoS::AtLeastOnce)).await;
        c.send(&Packet::Publish(publish(
            "churn/t",
            QoS::AtMostOnce,
            0,
            b"x",
        )))
        .await;
        c.send(&Packet::Unsubscribe(bulwark_codec::Unsubscribe {
            packet_id: i + 1,
            filters: vec!["churn/t".into()],
            properties: Default::default(),
        }))
        .await;
    }
    c.send(&Packet::PingReq).await;
    loop {
        match c.next(Duration::from_secs(5)).await {
            Got::Packet(Packet::PingResp) => break,
            Got::Packet(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(b.broker.subscription_count(), 0);
    let drained = eventually(Duration::from_secs(2), || b.broker.queued_bytes() == 0).await;
    assert!(drained, "{} bytes still queued", b.broker.queued_bytes());
}
