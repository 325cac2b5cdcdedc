//! Message expiry: an expired queued message is not delivered, and the
//! interval forwarded is what is left of it, not the original.

use std::time::Duration;

use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, TestBroker};
use rumqttc::v5::mqttbytes::v5::PublishProperties;

const WAIT: Duration = Duration::from_secs(3);

fn persistent(b: &TestBroker, clean_start: bool) -> rumqttc::v5::MqttOptions {
    let mut o = v5::options(b.port(), "away");
    o.set_clean_start(clean_start);
    v5::set_session_expiry(&mut o, 30);
    o
}

/// Subscribes `away` to `me/#` and leaves it offline.
async fn offline_subscriber(b: &TestBroker) {
    let (mut c, _) = v5::connect(persistent(b, true)).await;
    c.subscribe("me/#", QoS::AtLeastOnce).await;
    c.disconnect().await;
    b.offline("away").await;
}

async fn publish_expiring(p: &mut v5::Client, topic: &str, expiry: Option<u32>) {
    let props = PublishProperties {
        message_expiry_interval: expiry,
        ..Default::default()
    };
    p.client
        .publish_with_properties(topic, QoS::AtLeastOnce, false, "x", props)
        .await
        .expect("publish");
    p.wait_acked(QoS::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_queued_message_is_not_delivered_on_reconnect() {
    let b = start_with(limits()).await;
    offline_subscriber(&b).await;
    let mut p = v5::connected(b.port(), "pub").await;
    publish_expiring(&mut p, "me/short", Some(1)).await;
    publish_expiring(&mut p, "me/forever", None).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (mut c, _) = v5::connect(persistent(&b, false)).await;
    let got = c.publishes_for(Duration::from_millis(500)).await;
    let topics: Vec<String> = got.iter().map(v5::topic).collect();
    assert_eq!(topics, ["me/forever"]);
    assert!(got[0]
        .properties
        .as_ref()
        .is_none_or(|p| p.message_expiry_interval.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_expiry_is_the_time_left() {
    let b = start_with(limits()).await;
    offline_subscriber(&b).await;
    let mut p = v5::connected(b.port(), "pub").await;
    publish_expiring(&mut p, "me/ten", Some(10)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (mut c, _) = v5::connect(persistent(&b, false)).await;
    let got = c.publish_msg(WAIT).await.expect("message");
    let left = got.properties.and_then(|p| p.message_expiry_interval);
    assert!(matches!(left, Some(1..=9)), "forwarded expiry {left:?}");
}
