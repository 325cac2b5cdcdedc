//! Topic aliases: a client sets an alias with a topic and then publishes with
//! the alias and an empty topic; the broker assigns aliases towards clients
//! that allow them, within the maximum they announced, and never to others.

use std::time::Duration;

use bulwark_codec::{Packet, Properties, ProtocolVersion, Publish, QoS as CQoS, ReasonCode};
use bulwark_tests::mqtt::{connect_packet, publish, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, Limits, TestBroker};

const WAIT: Duration = Duration::from_secs(3);

fn aliased(topic: &str, alias: u16) -> Packet {
    let mut p = publish(topic, CQoS::AtMostOnce, 0, b"x");
    p.properties.topic_alias = Some(alias);
    Packet::Publish(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_alias_set_with_a_topic_is_used_with_an_empty_topic() {
    let b = start_with(limits()).await;
    let mut s = v5::connected(b.port(), "sub").await;
    s.subscribe("ta/#", QoS::AtMostOnce).await;
    let (mut c, ack) =
        RawClient::connect(b.addr, connect_packet("aliaser", ProtocolVersion::V5)).await;
    assert_eq!(ack.properties.topic_alias_maximum, Some(64));
    c.send(&aliased("ta/long/name", 1)).await;
    c.send(&aliased("", 1)).await;
    let got = s.publishes_for(Duration::from_millis(500)).await;
    let topics: Vec<String> = got.iter().map(v5::topic).collect();
    assert_eq!(topics, ["ta/long/name", "ta/long/name"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_above_the_maximum_gets_disconnect_0x94() {
    let b = start_with(Limits {
        topic_alias_maximum: 2,
        ..limits()
    })
    .await;
    let mut c = RawClient::connected(b.addr, "over", ProtocolVersion::V5).await;
    c.send(&aliased("ta/t", 3)).await;
    assert_eq!(
        c.expect_close(WAIT).await,
        Some(ReasonCode::TopicAliasInvalid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_used_before_it_is_set_is_a_protocol_error() {
    let b = start_with(limits()).await;
    let mut c = RawClient::connected(b.addr, "unset", ProtocolVersion::V5).await;
    c.send(&aliased("", 1)).await;
    assert_eq!(c.expect_close(WAIT).await, Some(ReasonCode::ProtocolError));
}

async fn raw_subscriber(b: &TestBroker, alias_max: Option<u16>) -> RawClient {
    let mut connect = connect_packet("alias-sub", ProtocolVersion::V5);
    connect.properties = Properties {
        topic_alias_maximum: alias_max,
        ..Default::default()
    };
    let (mut c, _) = RawClient::connect(b.addr, connect).await;
    c.subscribe("out/#", CQoS::AtMostOnce).await;
    c
}

async fn publish_topics(b: &TestBroker, topics: &[&str]) {
    let mut p = v5::connected(b.port(), "pub").await;
    for t in topics {
        p.publish(t, QoS::AtLeastOnce, false, b"x").await;
    }
}

async fn received(c: &mut RawClient, n: usize) -> Vec<Publish> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(c.next_publish(WAIT).await.expect("publish"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_assigns_aliases_when_the_client_allows_them() {
    let b = start_with(limits()).await;
    let mut c = raw_subscriber(&b, Some(4)).await;
    publish_topics(&b, &["out/a", "out/a", "out/b"]).await;
    let got = received(&mut c, 3).await;
    let a = got[0]
        .properties
        .topic_alias
        .expect("alias set on first use");
    assert_eq!(got[0].topic, "out/a");
    assert!((1..=4).contains(&a));
    assert_eq!(
        (got[1].topic.as_str(), got[1].properties.topic_alias),
        ("", Some(a))
    );
    let b_alias = got[2].properties.topic_alias.expect("alias for out/b");
    assert_eq!(got[2].topic, "out/b");
    assert_ne!(b_alias, a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stays_within_the_clients_alias_maximum() {
    let b = start_with(limits()).await;
    let mut c = raw_subscriber(&b, Some(1)).await;
    publish_topics(&b, &["out/a", "out/b", "out/b"]).await;
    for p in received(&mut c, 3).await {
        assert!(p.properties.topic_alias.is_none_or(|a| a == 1), "{p:?}");
        if p.topic.is_empty() {
            assert_eq!(p.properties.topic_alias, Some(1));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_sends_no_alias_to_a_client_that_allows_none() {
    let b = start_with(limits()).await;
    let mut c = raw_subscriber(&b, None).await;
    publish_topics(&b, &["out/a", "out/a"]).await;
    for p in received(&mut c, 2).await {
        assert_eq!(
            (p.topic.as_str(), p.properties.topic_alias),
            ("out/a", None)
        );
    }
}
