//! Retained messages: delivery at subscribe per Retain Handling, Retain As
//! Published, clearing with an empty payload, and message expiry.

use std::time::Duration;

use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, TestBroker};
use rumqttc::v5::mqttbytes::v5::{Filter, PublishProperties, RetainForwardRule};

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

async fn retain(b: &TestBroker, topic: &str, payload: &[u8]) {
    let mut p = v5::connected(b.port(), "retainer").await;
    p.publish(topic, QoS::AtLeastOnce, true, payload).await;
    p.disconnect().await;
}

fn filter(path: &str, rule: RetainForwardRule) -> Filter {
    let mut f = Filter::new(path, QoS::AtLeastOnce);
    f.retain_forward_rule = rule;
    f
}

async fn subscribe_with(c: &mut v5::Client, f: Filter) {
    c.client.subscribe_many(vec![f]).await.expect("subscribe");
    c.suback().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_message_reaches_a_later_subscriber_with_retain_set() {
    let b = start_with(limits()).await;
    retain(&b, "r/a", b"kept").await;
    let mut c = v5::connected(b.port(), "late").await;
    c.subscribe("r/+", QoS::AtLeastOnce).await;
    let got = c.publish_msg(WAIT).await.expect("retained message");
    assert_eq!(
        (v5::topic(&got).as_str(), v5::text(&got).as_str()),
        ("r/a", "kept")
    );
    assert!(
        got.retain,
        "retained messages sent at subscribe keep the flag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_0_sends_retained_on_every_subscribe() {
    let b = start_with(limits()).await;
    retain(&b, "rh0/t", b"x").await;
    let mut c = v5::connected(b.port(), "rh0").await;
    for _ in 0..2 {
        subscribe_with(&mut c, filter("rh0/t", RetainForwardRule::OnEverySubscribe)).await;
        assert!(c.publish_msg(WAIT).await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_1_sends_retained_only_for_a_new_subscription() {
    let b = start_with(limits()).await;
    retain(&b, "rh1/t", b"x").await;
    let mut c = v5::connected(b.port(), "rh1").await;
    subscribe_with(&mut c, filter("rh1/t", RetainForwardRule::OnNewSubscribe)).await;
    assert!(c.publish_msg(WAIT).await.is_some(), "new subscription");
    subscribe_with(&mut c, filter("rh1/t", RetainForwardRule::OnNewSubscribe)).await;
    assert!(
        c.publish_msg(QUIET).await.is_none(),
        "existing subscription"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_2_never_sends_retained() {
    let b = start_with(limits()).await;
    retain(&b, "rh2/t", b"x").await;
    let mut c = v5::connected(b.port(), "rh2").await;
    subscribe_with(&mut c, filter("rh2/t", RetainForwardRule::Never)).await;
    assert!(c.publish_msg(QUIET).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_as_published_controls_the_flag_on_live_messages() {
    let b = start_with(limits()).await;
    let mut keep = v5::connected(b.port(), "rap").await;
    let mut f = Filter::new("rap/t", QoS::AtLeastOnce);
    f.preserve_retain = true;
    subscribe_with(&mut keep, f).await;
    let mut plain = v5::connected(b.port(), "plain").await;
    plain.subscribe("rap/t", QoS::AtLeastOnce).await;

    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("rap/t", QoS::AtLeastOnce, true, b"live").await;
    assert!(keep.publish_msg(WAIT).await.expect("rap").retain);
    assert!(!plain.publish_msg(WAIT).await.expect("plain").retain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_retained_payload_clears_the_topic() {
    let b = start_with(limits()).await;
    retain(&b, "clr/t", b"x").await;
    assert_eq!(b.broker.retained_count(), 1);
    retain(&b, "clr/t", b"").await;
    assert_eq!(b.broker.retained_count(), 0);
    let mut c = v5::connected(b.port(), "c").await;
    c.subscribe("clr/t", QoS::AtLeastOnce).await;
    assert!(c.publish_msg(QUIET).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_retained_message_is_not_delivered() {
    let b = start_with(limits()).await;
    let mut p = v5::connected(b.port(), "pub").await;
    for (topic, expiry) in [("exp/short", 1), ("exp/long", 60)] {
        let props = PublishProperties {
            message_expiry_interval: Some(expiry),
            ..Default::default()
        };
        p.client
            .publish_with_properties(topic, QoS::AtLeastOnce, true, "x", props)
            .await
            .expect("publish");
        p.wait_acked(QoS::AtLeastOnce).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut c = v5::connected(b.port(), "c").await;
    c.subscribe("exp/#", QoS::AtLeastOnce).await;
    let got = c.publishes_for(Duration::from_millis(500)).await;
    let topics: Vec<String> = got.iter().map(v5::topic).collect();
    assert_eq!(topics, ["exp/long"]);
    let left = got[0]
        .properties
        .as_ref()
        .and_then(|p| p.message_expiry_interval);
    assert!(matches!(left, Some(1..=59)), "remaining expiry {left:?}");
}
