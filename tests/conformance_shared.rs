//! Shared subscriptions: each message goes to exactly one member of a group,
//! spread across members, and what a departing member left unacknowledged
//! goes to another member.

use std::collections::HashSet;
use std::time::Duration;

use bulwark_codec::{ProtocolVersion, QoS as CQoS};
use bulwark_tests::mqtt::RawClient;
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with};

const WAIT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_spread_and_each_goes_to_exactly_one_member() {
    let b = start_with(limits()).await;
    let mut m1 = v5::connected(b.port(), "m1").await;
    let mut m2 = v5::connected(b.port(), "m2").await;
    for m in [&mut m1, &mut m2] {
        m.subscribe("$share/g/sh/t", QoS::AtLeastOnce).await;
    }
    // A plain subscriber of the same filter still gets every message.
    let mut plain = v5::connected(b.port(), "plain").await;
    plain.subscribe("sh/t", QoS::AtLeastOnce).await;

    let mut p = v5::connected(b.port(), "pub").await;
    for i in 0..10 {
        p.publish("sh/t", QoS::AtLeastOnce, false, format!("{i}").as_bytes())
            .await;
    }
    let a: Vec<String> = m1
        .publishes_for(Duration::from_millis(500))
        .await
        .iter()
        .map(v5::text)
        .collect();
    let c: Vec<String> = m2
        .publishes_for(Duration::from_millis(100))
        .await
        .iter()
        .map(v5::text)
        .collect();
    assert!(!a.is_empty() && !c.is_empty(), "not spread: {a:?} / {c:?}");
    let all: HashSet<&String> = a.iter().chain(&c).collect();
    assert_eq!((a.len() + c.len(), all.len()), (10, 10), "{a:?} / {c:?}");
    assert_eq!(
        plain.publishes_for(Duration::from_millis(100)).await.len(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_of_a_departing_member_go_to_another() {
    let b = start_with(limits()).await;
    // The raw member receives its share and never acknowledges it.
    let mut raw = RawClient::connected(b.addr, "lazy", ProtocolVersion::V5).await;
    raw.subscribe("$share/g/ho/t", CQoS::AtLeastOnce).await;
    let mut good = v5::connected(b.port(), "good").await;
    good.subscribe("$share/g/ho/t", QoS::AtLeastOnce).await;

    let mut p = v5::connected(b.port(), "pub").await;
    for i in 0..4 {
        p.publish("ho/t", QoS::AtLeastOnce, false, format!("{i}").as_bytes())
            .await;
    }
    let lazy_got = raw
        .next_publish(WAIT)
        .await
        .expect("the lazy member's share");
    drop(raw);

    let mut seen: HashSet<String> = HashSet::new();
    while seen.len() < 4 {
        match good.publish_msg(WAIT).await {
            Some(m) => seen.insert(v5::text(&m)),
            None => break,
        };
    }
    let lazy_text = String::from_utf8_lossy(&lazy_got.payload).into_owned();
    assert!(
        seen.contains(&lazy_text),
        "{lazy_text} not handed over: {seen:?}"
    );
    assert_eq!(seen.len(), 4);
}
