//! Will messages: sent when a connection ends abnormally or with v5
//! DISCONNECT 0x04, not on a normal DISCONNECT, after the will delay, and not
//! at all when the client comes back within the delay.

use std::time::{Duration, Instant};

use bulwark_codec::{Disconnect, Packet, Properties, ProtocolVersion, ReasonCode, Will};
use bulwark_tests::mqtt::{connect_packet, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, v3, TestBroker};
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(400);

async fn watcher(b: &TestBroker) -> v5::Client {
    let mut w = v5::connected(b.port(), "watcher").await;
    w.subscribe("will/#", QoS::AtLeastOnce).await;
    w
}

fn will_options(
    b: &TestBroker,
    id: &str,
    delay: Option<u32>,
    expiry: u32,
) -> rumqttc::v5::MqttOptions {
    let mut o = v5::options(b.port(), id);
    let props = LastWillProperties {
        delay_interval: delay,
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    o.set_last_will(LastWill::new(
        "will/t",
        "gone",
        QoS::AtLeastOnce,
        false,
        Some(props),
    ));
    v5::set_session_expiry(&mut o, expiry);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_will_is_published_when_the_socket_drops() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let (c, _) = v5::connect(will_options(&b, "dies", None, 0)).await;
    drop(c);
    let got = w.publish_msg(WAIT).await.expect("will");
    assert_eq!(
        (v5::topic(&got).as_str(), v5::text(&got).as_str()),
        ("will/t", "gone")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_will_is_published_when_the_socket_drops() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let mut o = v3::options(b.port(), "dies3");
    o.set_last_will(rumqttc::LastWill::new(
        "will/v3",
        "gone3",
        rumqttc::QoS::AtLeastOnce,
        false,
    ));
    let (c, _) = v3::connect(o).await;
    drop(c);
    let got = w.publish_msg(WAIT).await.expect("will");
    assert_eq!(v5::text(&got), "gone3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_not_published_on_normal_disconnect() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let (c, _) = v5::connect(will_options(&b, "polite", None, 0)).await;
    c.disconnect().await;
    assert!(w.publish_msg(QUIET).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_on_disconnect_with_will_message() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let mut connect = connect_packet("wants-will", ProtocolVersion::V5);
    connect.will = Some(Will {
        topic: "will/t".into(),
        payload: Bytes::from_static(b"asked"),
        qos: bulwark_codec::QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    });
    let (mut c, ack) = RawClient::connect(b.addr, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    c.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::default(),
    }))
    .await;
    let got = w
        .publish_msg(WAIT)
        .await
        .expect("will after DISCONNECT 0x04");
    assert_eq!(v5::text(&got), "asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_interval_delays_the_will() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let (c, _) = v5::connect(will_options(&b, "late", Some(1), 10)).await;
    drop(c);
    let dropped = Instant::now();
    let got = w.publish_msg(WAIT).await.expect("delayed will");
    assert_eq!(v5::text(&got), "gone");
    assert!(
        dropped.elapsed() >= Duration::from_millis(900),
        "will sent after {:?}, before its 1 s delay",
        dropped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_within_the_will_delay_cancels_the_will() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let (c, _) = v5::connect(will_options(&b, "back", Some(1), 10)).await;
    drop(c);
    b.offline("back").await;
    let mut o = will_options(&b, "back", Some(1), 10);
    o.set_clean_start(false);
    let (_c, ack) = v5::connect(o).await;
    assert!(ack.session_present);
    assert!(w.publish_msg(Duration::from_millis(1500)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_longer_than_session_expiry_sends_will_when_session_ends() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    // Session expiry 0: the session ends at once, and the will with it
    // [MQTT-3.1.3-9].
    let (c, _) = v5::connect(will_options(&b, "short", Some(30), 0)).await;
    drop(c);
    assert!(w.publish_msg(WAIT).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_message_expiry_counts_from_publication() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let mut o = will_options(&b, "long-lived", None, 0);
    let props = LastWillProperties {
        delay_interval: None,
        payload_format_indicator: None,
        message_expiry_interval: Some(1),
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    o.set_last_will(LastWill::new(
        "will/t",
        "gone",
        QoS::AtLeastOnce,
        false,
        Some(props),
    ));
    let (c, _) = v5::connect(o).await;
    // Connected for longer than the will's lifetime: the lifetime starts
    // when the will is published [MQTT-3.1.3.2.4], so it must still arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(c);
    let got = w.publish_msg(WAIT).await.expect("will with a 1 s lifetime");
    let left = got.properties.and_then(|p| p.message_expiry_interval);
    assert_eq!(left, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_when_the_connection_is_taken_over() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let (_old, _) = v5::connect(will_options(&b, "twin", None, 0)).await;
    let _new = v5::connected(b.port(), "twin").await;
    let got = w
        .publish_msg(WAIT)
        .await
        .expect("will of the old connection");
    assert_eq!(v5::text(&got), "gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_start_reconnection_ends_the_session_and_sends_the_delayed_will() {
    let b = start_with(limits()).await;
    let mut w = watcher(&b).await;
    let (c, _) = v5::connect(will_options(&b, "restart", Some(3), 10)).await;
    drop(c);
    b.offline("restart").await;
    // A clean start is not a reconnection to the old session: it ends it,
    // and the will goes out with it, before the 3 s delay [MQTT-3.1.3.2.2].
    let (_c, ack) = v5::connect(will_options(&b, "restart", Some(3), 10)).await;
    assert!(!ack.session_present);
    assert!(w.publish_msg(Duration::from_millis(1500)).await.is_some());
}
