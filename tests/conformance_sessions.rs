//! Sessions: clean start, session expiry, the session present flag and
//! takeover of a live connection with the same client identifier.

use std::time::{Duration, Instant};

use bulwark_codec::{Packet, ProtocolVersion, ReasonCode};
use bulwark_tests::mqtt::{connect_packet, Got, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, v3};

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(300);

fn persistent(port: u16, id: &str, clean_start: bool, expiry: u32) -> rumqttc::v5::MqttOptions {
    let mut o = v5::options(port, id);
    o.set_clean_start(clean_start);
    v5::set_session_expiry(&mut o, expiry);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_session_keeps_subscriptions_and_reports_session_present() {
    let b = start_with(limits()).await;
    let (mut c, ack) = v5::connect(persistent(b.port(), "keep", true, 10)).await;
    assert!(!ack.session_present, "a clean start never has a session");
    c.subscribe("keep/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    b.offline("keep").await;

    let (mut c, ack) = v5::connect(persistent(b.port(), "keep", false, 10)).await;
    assert!(ack.session_present);
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("keep/t", QoS::AtLeastOnce, false, b"m").await;
    let got = c.publish_msg(WAIT).await.expect("subscription survived");
    assert_eq!(v5::text(&got), "m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_start_discards_the_existing_session() {
    let b = start_with(limits()).await;
    let (mut c, _) = v5::connect(persistent(b.port(), "clean", true, 10)).await;
    c.subscribe("clean/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    b.offline("clean").await;

    let (mut c, ack) = v5::connect(persistent(b.port(), "clean", true, 10)).await;
    assert!(!ack.session_present);
    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("clean/t", QoS::AtLeastOnce, false, b"m").await;
    assert!(
        c.publish_msg(QUIET).await.is_none(),
        "old subscription kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_session_queues_qos1_until_the_client_returns() {
    let b = start_with(limits()).await;
    let (mut c, _) = v5::connect(persistent(b.port(), "q", true, 5)).await;
    c.subscribe("q/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    b.offline("q").await;

    let mut p = v5::connected(b.port(), "pub").await;
    p.publish("q/t", QoS::AtLeastOnce, false, b"while away")
        .await;
    let (mut c, ack) = v5::connect(persistent(b.port(), "q", false, 5)).await;
    assert!(ack.session_present);
    let got = c.publish_msg(WAIT).await.expect("queued message");
    assert_eq!(v5::text(&got), "while away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ends_once_its_expiry_interval_elapses() {
    let b = start_with(limits()).await;
    let (mut c, _) = v5::connect(persistent(b.port(), "exp", true, 1)).await;
    c.subscribe("exp/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let left = Instant::now();
    b.offline("exp").await;
    assert!(b.broker.session("exp").is_some(), "kept while offline");

    let gone = bulwark_tests::eventually(WAIT, || b.broker.session("exp").is_none()).await;
    assert!(gone, "session still there 3 s after a 1 s expiry");
    assert!(
        left.elapsed() >= Duration::from_millis(950),
        "ended before its expiry: {:?}",
        left.elapsed()
    );
    let (_c, ack) = v5::connect(persistent(b.port(), "exp", false, 1)).await;
    assert!(!ack.session_present);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_zero_ends_the_session_at_disconnect() {
    let b = start_with(limits()).await;
    let (mut c, _) = v5::connect(persistent(b.port(), "zero", true, 0)).await;
    c.subscribe("zero/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let gone = bulwark_tests::eventually(WAIT, || b.broker.session("zero").is_none()).await;
    assert!(gone);
    let (_c, ack) = v5::connect(persistent(b.port(), "zero", false, 0)).await;
    assert!(!ack.session_present);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_clean_session_flag_controls_persistence() {
    let b = start_with(limits()).await;
    let mut o = v3::options(b.port(), "v3keep");
    o.set_clean_session(false);
    let (mut c, ack) = v3::connect(o.clone()).await;
    assert!(!ack.session_present);
    c.subscribe("v3/t", rumqttc::QoS::AtLeastOnce).await;
    c.disconnect().await;
    b.offline("v3keep").await;

    let mut p = v3::connected(b.port(), "pub").await;
    p.publish("v3/t", rumqttc::QoS::AtLeastOnce, false, b"queued")
        .await;
    let (mut c, ack) = v3::connect(o).await;
    assert!(ack.session_present);
    let got = c.publish_msg(WAIT).await.expect("queued for the session");
    assert_eq!(v3::text(&got), "queued");
    c.disconnect().await;
    b.offline("v3keep").await;

    let mut o = v3::options(b.port(), "v3keep");
    o.set_clean_session(true);
    let (_c, ack) = v3::connect(o).await;
    assert!(!ack.session_present);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_takeover_sends_session_taken_over_to_the_old_connection() {
    let b = start_with(limits()).await;
    // Raw clients see the DISCONNECT itself; rumqttc 0.24 reads it together
    // with the close that follows and reports only the close.
    let mut old = RawClient::connected(b.addr, "twin", ProtocolVersion::V5).await;
    let (_new, ack) = RawClient::connect(b.addr, connect_packet("twin", ProtocolVersion::V5)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(
        old.expect_close(WAIT).await,
        Some(ReasonCode::SessionTakenOver)
    );

    let mut old = v5::connected(b.port(), "twin-r").await;
    let _new = v5::connected(b.port(), "twin-r").await;
    assert!(
        old.error(WAIT).await.is_some(),
        "old rumqttc connection kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_takeover_closes_the_old_connection() {
    let b = start_with(limits()).await;
    let mut old = RawClient::connected(b.addr, "twin3", ProtocolVersion::V311).await;
    let (_new, ack) =
        RawClient::connect(b.addr, connect_packet("twin3", ProtocolVersion::V311)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    // 3.1.1 has no DISCONNECT from the server: the old socket just closes.
    loop {
        match old.next(WAIT).await {
            Got::Closed => break,
            Got::Packet(Packet::PingResp) => {}
            other => panic!("expected the old connection to close, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_above_the_maximum_is_lowered_and_announced() {
    let b = start_with(bulwark_tests::Limits {
        max_session_expiry: 5,
        ..limits()
    })
    .await;
    let (_c, ack) = v5::connect(persistent(b.port(), "greedy", true, 100)).await;
    let told = ack.properties.and_then(|p| p.session_expiry_interval);
    assert_eq!(told, Some(5));
}

fn raw_persistent(id: &str, expiry: u32) -> bulwark_codec::Connect {
    let mut c = connect_packet(id, ProtocolVersion::V5);
    c.properties.session_expiry_interval = Some(expiry);
    c
}

fn disconnect_with_expiry(expiry: u32) -> Packet {
    let mut d = bulwark_codec::Disconnect {
        reason: ReasonCode::NormalDisconnection,
        properties: Default::default(),
    };
    d.properties.session_expiry_interval = Some(expiry);
    Packet::Disconnect(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_with_expiry_zero_ends_the_session() {
    let b = start_with(limits()).await;
    let (mut c, _) = RawClient::connect(b.addr, raw_persistent("bye", 30)).await;
    c.send(&disconnect_with_expiry(0)).await;
    assert_eq!(c.expect_close(WAIT).await, None);
    let gone = bulwark_tests::eventually(WAIT, || b.broker.session("bye").is_none()).await;
    assert!(gone, "session kept after DISCONNECT set expiry 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_may_not_raise_expiry_from_zero() {
    let b = start_with(limits()).await;
    let (mut c, _) = RawClient::connect(b.addr, raw_persistent("sneaky", 0)).await;
    c.send(&disconnect_with_expiry(30)).await;
    assert_eq!(c.expect_close(WAIT).await, Some(ReasonCode::ProtocolError));
}
