//! Subscriptions: wildcard matching, the `$`-topic rule, subscription
//! identifiers, overlapping subscriptions, No Local and unsubscribe.

use std::time::Duration;

use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, Limits, TestBroker};
use rumqttc::v5::mqttbytes::v5::{Filter, SubscribeProperties};

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

/// Publishes `topics` in order, then `end/` as a sentinel every subscriber
/// of these tests also holds, and returns the topics `s` received before it.
async fn matched(b: &TestBroker, s: &mut v5::Client, topics: &[&str]) -> Vec<String> {
    s.subscribe("end/", QoS::AtLeastOnce).await;
    let mut p = v5::connected(b.port(), "pub").await;
    for t in topics.iter().chain(&["end/"]) {
        p.publish(t, QoS::AtLeastOnce, false, b"x").await;
    }
    let mut got = Vec::new();
    loop {
        let m = s.publish_msg(WAIT).await.expect("sentinel");
        let t = v5::topic(&m);
        if t == "end/" {
            return got;
        }
        got.push(t);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_matches_exactly_one_level() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("a/+/c", QoS::AtLeastOnce).await;
    let got = matched(&b, &mut s, &["a/b/c", "a/b/d", "a/b/c/d", "a/c", "a//c"]).await;
    assert_eq!(got, ["a/b/c", "a//c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_matches_the_parent_and_every_level_below() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("a/#", QoS::AtLeastOnce).await;
    let got = matched(&b, &mut s, &["a", "a/b", "a/b/c", "b/a", "ab"]).await;
    assert_eq!(got, ["a", "a/b", "a/b/c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_at_the_first_level_do_not_match_dollar_topics() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("#", QoS::AtLeastOnce).await;
    s.subscribe("+/x", QoS::AtLeastOnce).await;
    let got = matched(&b, &mut s, &["$foo", "$foo/x", "foo/x"]).await;
    assert_eq!(got, ["foo/x"]);

    let mut d = v5::connected(b.port(), "dollar").await;
    d.subscribe("$foo/#", QoS::AtLeastOnce).await;
    let got = matched(&b, &mut d, &["$foo/x"]).await;
    assert_eq!(got, ["$foo/x"], "an explicit $ filter matches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_does_not_receive_sys_topics() {
    let b = start_with(Limits {
        sys_interval: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut all = v5::connected(b.port(), "all").await;
    all.subscribe("#", QoS::AtMostOnce).await;
    let mut sys = v5::connected(b.port(), "sys").await;
    sys.subscribe("$SYS/#", QoS::AtMostOnce).await;
    // Retained $SYS figures arrive at subscribe and fresh ones every second.
    assert!(sys.publish_msg(Duration::from_millis(2500)).await.is_some());
    let leaked = all.publishes_for(Duration::from_millis(1200)).await;
    let topics: Vec<String> = leaked.iter().map(v5::topic).collect();
    assert!(topics.is_empty(), "# received {topics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_carries_the_subscription_identifier() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    let props = SubscribeProperties {
        id: Some(7),
        user_properties: Vec::new(),
    };
    s.client
        .subscribe_with_properties("sid/t", QoS::AtLeastOnce, props)
        .await
        .expect("subscribe");
    s.suback().await;
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("sid/t", QoS::AtLeastOnce, false, b"x").await;
    let got = s.publish_msg(WAIT).await.expect("msg");
    let ids = got.properties.map(|p| p.subscription_identifiers);
    assert_eq!(ids, Some(vec![7]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_yield_one_copy_at_the_highest_qos_with_all_ids() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    for (filter, qos, id) in [("ov/#", QoS::AtMostOnce, 1), ("ov/+", QoS::ExactlyOnce, 2)] {
        let props = SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        };
        s.client
            .subscribe_with_properties(filter, qos, props)
            .await
            .expect("subscribe");
        s.suback().await;
    }
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("ov/x", QoS::ExactlyOnce, false, b"x").await;
    let got = s.publishes_for(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1, "one copy per session [MQTT-3.3.4-2]");
    assert_eq!(got[0].qos, QoS::ExactlyOnce);
    let mut ids = got[0]
        .properties
        .clone()
        .map(|p| p.subscription_identifiers)
        .unwrap_or_default();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_keeps_a_clients_own_messages_from_it() {
    let b = start_with(limits()).await;
    let mut me = v5::connected(b.port(), "me").await;
    let mut f = Filter::new("nl/t", QoS::AtLeastOnce);
    f.nolocal = true;
    me.client.subscribe_many(vec![f]).await.expect("subscribe");
    me.suback().await;
    let mut other = v5::connected(b.port(), "other").await;
    other.subscribe("nl/t", QoS::AtLeastOnce).await;

    me.publish("nl/t", QoS::AtLeastOnce, false, b"mine").await;
    assert_eq!(
        v5::text(&other.publish_msg(WAIT).await.expect("other gets it")),
        "mine"
    );
    assert!(me.publish_msg(QUIET).await.is_none(), "own message echoed");
    other
        .publish("nl/t", QoS::AtLeastOnce, false, b"theirs")
        .await;
    assert_eq!(
        v5::text(&me.publish_msg(WAIT).await.expect("others' messages")),
        "theirs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_no_local_a_client_receives_its_own_messages() {
    let b = start_with(limits()).await;
    let mut me = v5::connected(b.port(), "me").await;
    me.subscribe("echo/t", QoS::AtLeastOnce).await;
    me.publish("echo/t", QoS::AtLeastOnce, false, b"mine").await;
    assert!(me.publish_msg(WAIT).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("un/t", QoS::AtLeastOnce).await;
    s.client.unsubscribe("un/t").await.expect("unsubscribe");
    let unsubscribed = s
        .until(WAIT, |p| {
            matches!(p, rumqttc::v5::mqttbytes::v5::Packet::UnsubAck(_)).then_some(())
        })
        .await;
    assert!(unsubscribed.is_some());
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("un/t", QoS::AtLeastOnce, false, b"x").await;
    assert!(s.publish_msg(QUIET).await.is_none());
}
