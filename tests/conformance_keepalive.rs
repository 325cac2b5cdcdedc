//! Keep-alive: a silent client is disconnected after one and a half times its
//! keep-alive, not before; the broker imposes its maximum on v5 clients with
//! Server Keep Alive and refuses 3.1.1 clients asking for more.

use std::time::{Duration, Instant};

use bulwark_codec::{Packet, ProtocolVersion, ReasonCode};
use bulwark_tests::mqtt::{connect_packet, Got, RawClient};
use bulwark_tests::{encode, limits, start_with, Limits, Raw, TestBroker};

fn with_keep_alive(id: &str, v: ProtocolVersion, secs: u16) -> bulwark_codec::Connect {
    let mut c = connect_packet(id, v);
    c.keep_alive = secs;
    c
}

/// Time from CONNACK until the broker closes a client that stays silent.
async fn silent_until_closed(
    b: &TestBroker,
    v: ProtocolVersion,
    keep_alive: u16,
) -> (Duration, Option<ReasonCode>) {
    let (mut c, ack) = RawClient::connect(b.addr, with_keep_alive("quiet", v, keep_alive)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    let start = Instant::now();
    let reason = c.expect_close(Duration::from_secs(4)).await;
    (start.elapsed(), reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_v5_client_is_disconnected_after_one_and_a_half_keep_alives() {
    let b = start_with(limits()).await;
    let (after, reason) = silent_until_closed(&b, ProtocolVersion::V5, 1).await;
    assert_eq!(reason, Some(ReasonCode::KeepAliveTimeout));
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_millis(2500),
        "closed after {after:?}, expected about 1.5 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_v311_client_is_closed_after_one_and_a_half_keep_alives() {
    let b = start_with(limits()).await;
    let (after, reason) = silent_until_closed(&b, ProtocolVersion::V311, 1).await;
    assert_eq!(reason, None);
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_millis(2500),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinging_client_stays_connected() {
    let b = start_with(limits()).await;
    let (mut c, _) =
        RawClient::connect(b.addr, with_keep_alive("pinger", ProtocolVersion::V5, 1)).await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.send(&Packet::PingReq).await;
        match c.next(Duration::from_secs(1)).await {
            Got::Packet(Packet::PingResp) => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_keep_alive_zero_or_above_maximum_gets_server_keep_alive() {
    let b = start_with(Limits {
        max_keep_alive: 60,
        ..limits()
    })
    .await;
    for (asked, told) in [(0, Some(60)), (61, Some(60)), (600, Some(60)), (30, None)] {
        let (_c, ack) =
            RawClient::connect(b.addr, with_keep_alive("ka", ProtocolVersion::V5, asked)).await;
        assert_eq!(ack.reason, ReasonCode::Success);
        assert_eq!(ack.properties.server_keep_alive, told, "asked {asked}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_keep_alive_is_enforced() {
    let b = start_with(Limits {
        max_keep_alive: 1,
        ..limits()
    })
    .await;
    // The client asks for none; the broker imposes 1 s and holds it to it.
    let (after, reason) = silent_until_closed(&b, ProtocolVersion::V5, 0).await;
    assert_eq!(reason, Some(ReasonCode::KeepAliveTimeout));
    assert!(after < Duration::from_millis(2500), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_keep_alive_above_maximum_is_refused_with_return_code_2() {
    let b = start_with(Limits {
        max_keep_alive: 60,
        ..limits()
    })
    .await;
    for asked in [61, 0] {
        let mut raw = Raw::connect(b.addr).await;
        let connect = with_keep_alive("ka3", ProtocolVersion::V311, asked);
        raw.send(&encode(
            &Packet::Connect(Box::new(connect)),
            ProtocolVersion::V311,
        ))
        .await;
        let (bytes, closed) = raw.read_for(Duration::from_secs(2)).await;
        assert_eq!(bytes, [0x20, 0x02, 0x00, 0x02], "asked {asked}");
        assert!(closed);
    }
    let (_c, ack) =
        RawClient::connect(b.addr, with_keep_alive("ka3", ProtocolVersion::V311, 60)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_below_the_minimum_is_raised_for_v5_and_refused_for_v311() {
    let b = start_with(Limits {
        sys_interval: Duration::ZERO,
        ..Limits::default()
    })
    .await;
    assert_eq!(b.broker.limits().min_keep_alive, 5);
    let (_c, ack) =
        RawClient::connect(b.addr, with_keep_alive("fast5", ProtocolVersion::V5, 1)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(ack.properties.server_keep_alive, Some(5));
    let mut raw = Raw::connect(b.addr).await;
    let connect = with_keep_alive("fast3", ProtocolVersion::V311, 2);
    raw.send(&encode(
        &Packet::Connect(Box::new(connect)),
        ProtocolVersion::V311,
    ))
    .await;
    let (bytes, closed) = raw.read_for(Duration::from_secs(2)).await;
    assert_eq!(bytes, [0x20, 0x02, 0x00, 0x02]);
    assert!(closed);
    use bulwark_broker::limit_hits::LimitKind;
    assert_eq!(b.broker.stats().limits.count(LimitKind::KeepAlive), 1);
}
