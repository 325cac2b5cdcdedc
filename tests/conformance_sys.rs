//! `$SYS/broker/...` statistics, published every `sys_interval`, and the
//! `$SYS` namespace closed to client publishes.

use std::collections::HashMap;
use std::time::Duration;

use bulwark_codec::{Packet as CPacket, ProtocolVersion, QoS as CQoS, ReasonCode};
use bulwark_tests::mqtt::{publish, Got, RawClient};
use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with, Limits};

/// Collects `$SYS/broker/...` figures until `done` holds or 4 s pass.
async fn figures(
    c: &mut v5::Client,
    done: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let mut seen = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while !done(&seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(m) = c.publish_msg(left).await else {
            break;
        };
        let topic = v5::topic(&m);
        let name = topic.trim_start_matches("$SYS/broker/").to_owned();
        seen.insert(name, v5::text(&m));
    }
    seen
}

fn number(seen: &HashMap<String, String>, name: &str) -> u64 {
    let v = seen.get(name).map(String::as_str).unwrap_or("");
    // "uptime" reads "N seconds".
    v.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_report_clients_messages_bytes_and_uptime() {
    let b = start_with(Limits {
        sys_interval: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut p = v5::connected(b.port(), "pub").await;
    for _ in 0..3 {
        p.publish("load/t", QoS::AtLeastOnce, false, b"x").await;
    }
    let mut c = v5::connected(b.port(), "sys").await;
    c.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;
    // The retained figures from before the publishes come first; wait for
    // a snapshot taken after them.
    let seen = figures(&mut c, |s| {
        number(s, "clients/connected") >= 2
            && number(s, "messages/received") >= 3
            && number(s, "bytes/received") > 0
            && number(s, "bytes/sent") > 0
    })
    .await;
    assert!(number(&seen, "clients/connected") >= 2, "{seen:?}");
    assert!(number(&seen, "messages/received") >= 3, "{seen:?}");
    assert!(number(&seen, "bytes/received") > 0, "{seen:?}");
    assert!(number(&seen, "bytes/sent") > 0, "{seen:?}");
    assert!(
        seen.get("uptime").is_some_and(|u| u.ends_with("seconds")),
        "{seen:?}"
    );
    assert!(
        seen.get("version")
            .is_some_and(|v| v.starts_with("bulwark")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_figures_are_refreshed_every_interval() {
    let b = start_with(Limits {
        sys_interval: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut c = v5::connected(b.port(), "sys").await;
    c.subscribe("$SYS/broker/uptime", QoS::AtMostOnce).await;
    // The retained figure at subscribe, then at least one fresh one.
    let first = c.publish_msg(Duration::from_secs(3)).await.expect("uptime");
    let second = c
        .publish_msg(Duration::from_millis(2500))
        .await
        .expect("refreshed");
    assert!(first.retain && !second.retain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_publish_into_sys() {
    let b = start_with(limits()).await;
    let mut watcher = v5::connected(b.port(), "w").await;
    watcher.subscribe("$SYS/#", QoS::AtMostOnce).await;
    // Raw, because rumqttc turns a failed PUBACK into a connection error.
    let mut p = RawClient::connected(b.addr, "forger", ProtocolVersion::V5).await;
    let forged = publish("$SYS/broker/uptime", CQoS::AtLeastOnce, 1, b"0 seconds");
    p.send(&CPacket::Publish(forged)).await;
    match p.next(Duration::from_secs(3)).await {
        Got::Packet(CPacket::PubAck(a)) => assert_eq!(a.reason, ReasonCode::NotAuthorized),
        other => panic!("expected PUBACK 0x87, got {other:?}"),
    }
    assert!(watcher
        .publish_msg(Duration::from_millis(300))
        .await
        .is_none());
}
