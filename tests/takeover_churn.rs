//! Same-client-ID takeovers racing with subscribe and unsubscribe churn
//! (the pattern behind NanoMQ CVE-2026-22040): every displaced connection is
//! told 0x8E and closed, the broker keeps serving, and in the end exactly
//! the last connection receives what is published to the session.

use std::time::Duration;

use bulwark_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode, Unsubscribe};
use bulwark_tests::mqtt::{self, RawClient};
use bulwark_tests::{limits, start_with};

const ROUNDS: usize = 40;

fn connect(clean_start: bool) -> Connect {
    let mut c = mqtt::connect_packet("churn", ProtocolVersion::V5);
    c.clean_start = clean_start;
    c.properties.session_expiry_interval = Some(60);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_takeovers_with_subscription_churn() {
    let b = start_with(limits()).await;
    let mut previous: Option<RawClient> = None;
    let mut displaced = Vec::new();
    for round in 0..ROUNDS {
        let (mut c, ack) = RawClient::connect(b.addr, connect(round % 3 == 0)).await;
        assert_eq!(ack.reason, ReasonCode::Success, "round {round}");
        c.subscribe("churn/#", QoS::AtLeastOnce).await;
        if round % 2 == 1 {
            c.send(&Packet::Unsubscribe(Unsubscribe {
                packet_id: 2,
                filters: vec!["churn/#".into()],
                properties: Default::default(),
            }))
            .await;
            match c.next_control(Duration::from_secs(3)).await {
                Packet::UnsubAck(_) => {}
                other => panic!("expected UNSUBACK, got {other:?}"),
            }
            c.subscribe("churn/#", QoS::AtLeastOnce).await;
        }
        if let Some(old) = previous.replace(c) {
            displaced.push(old);
        }
    }
    for (i, mut old) in displaced.into_iter().enumerate() {
        let reason = old.expect_close(Duration::from_secs(3)).await;
        assert_eq!(reason, Some(ReasonCode::SessionTakenOver), "displaced #{i}");
    }
    let mut last = previous.expect("a last connection");
    let mut publisher = RawClient::connected(b.addr, "churn-publisher", ProtocolVersion::V5).await;
    publisher
        .send(&Packet::Publish(mqtt::publish(
            "churn/x",
            QoS::AtMostOnce,
            0,
            b"after the churn",
        )))
        .await;
    let got = last
        .next_publish(Duration::from_secs(3))
        .await
        .expect("the surviving connection receives the message");
    assert_eq!(&got.payload[..], b"after the churn");
    assert_eq!(b.broker.session_count(), 2, "one session per client ID");
}
