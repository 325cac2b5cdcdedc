//! Connection admission through the real accept loop: floods from one
//! loopback address are closed at once, without reading, while a
//! well-behaved client from another loopback address is still served.
//! Linux routes all of 127.0.0.0/8 to loopback, so binding the flood's
//! sockets to 127.0.0.3 gives it a source address of its own.
//!
//! Every flood is a few dozen sockets and every test a few seconds at most.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bulwark_broker::admission::AdmissionLimits;
use bulwark_broker::stats::Stats;
use bulwark_codec::ProtocolVersion;
use bulwark_tests::mqtt::connect_packet;
use bulwark_tests::{encode, eventually, limits, start_with, v5, Limits, TestBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const FLOOD: &str = "127.0.0.3";
/// How long a refused socket may take to see its close.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

fn with_admission(admission: AdmissionLimits) -> Limits {
    Limits {
        admission,
        ..limits()
    }
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let local: IpAddr = from.parse().expect("address");
    socket
        .bind(SocketAddr::new(local, 0))
        .expect("bind a loopback source address");
    socket.connect(to).await.expect("connect")
}

async fn flood(from: &str, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(connect_from(from, to).await);
    }
    out
}

/// How many of `streams` the broker closes within [`CLOSE_WAIT`]; the
/// closed ones are removed, the open ones kept (still holding their slot).
async fn closed_by_broker(streams: &mut Vec<TcpStream>) -> usize {
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    let mut open = Vec::new();
    let mut closed = 0;
    for mut s in streams.drain(..) {
        let mut byte = [0u8; 1];
        // A closed socket answers at once even past the deadline: the read
        // is polled before the timer.
        match tokio::time::timeout_at(deadline, s.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => panic!("the broker sent bytes before CONNECT"),
            Err(_) => open.push(s),
        }
    }
    *streams = open;
    closed
}

/// Sends a v5 CONNECT from `from` and says whether a CONNACK came back.
async fn raw_connect_ok(from: &str, to: SocketAddr, id: &str) -> bool {
    let mut s = connect_from(from, to).await;
    let bytes = encode(
        &bulwark_codec::Packet::Connect(Box::new(connect_packet(id, ProtocolVersion::V5))),
        ProtocolVersion::V5,
    );
    if s.write_all(&bytes).await.is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), s.read(&mut first)).await,
        Ok(Ok(1)) if first == [0x20]
    )
}

async fn counted(b: &TestBroker, counter: impl Fn(&Stats) -> &AtomicU64, at_least: u64) -> bool {
    eventually(Duration::from_secs(2), || {
        Stats::get(counter(b.broker.stats())) >= at_least
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_flood_from_one_address_is_throttled_and_others_are_served() {
    let b = start_with(with_admission(AdmissionLimits {
        connection_rate_per_address: 10,
        ..AdmissionLimits::default()
    }))
    .await;
    let mut socks = flood(FLOOD, b.addr, 30).await;
    let closed = closed_by_broker(&mut socks).await;
    // 10 of burst, plus what refills while the flood is being opened.
    assert!(closed >= 15, "only {closed} of 30 closed");
    assert!(
        socks.len() >= 10,
        "the burst was not admitted: {}",
        socks.len()
    );
    assert!(
        counted(&b, |s| &s.refused_connection_rate, closed as u64).await,
        "refusals not counted"
    );
    // Someone else on another address is unaffected.
    let mut c = v5::connected(b.port(), "bystander").await;
    c.subscribe("t", v5::QoS::AtMostOnce).await;
    // And the flooding address gets a new token within a fraction of a
    // second: throttled, not banned.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(raw_connect_ok(FLOOD, b.addr, "recovered").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_per_address_are_capped_and_reported_in_sys() {
    let b = start_with(Limits {
        sys_interval: Duration::from_secs(1),
        ..with_admission(AdmissionLimits {
            max_connections_per_address: 5,
            ..AdmissionLimits::default()
        })
    })
    .await;
    let mut socks = flood(FLOOD, b.addr, 12).await;
    assert_eq!(closed_by_broker(&mut socks).await, 7);
    assert_eq!(socks.len(), 5);
    assert!(counted(&b, |s| &s.refused_connections_per_address, 7).await);

    let mut c = v5::connected(b.port(), "watcher").await;
    c.subscribe(
        "$SYS/broker/connections/refused/per_address",
        v5::QoS::AtMostOnce,
    )
    .await;
    // The retained figure may predate the refusals; the next tick has them.
    let seen = c
        .until(Duration::from_secs(3), |p| match p {
            rumqttc::v5::mqttbytes::v5::Packet::Publish(p) if v5::text(p) == "7" => Some(()),
            _ => None,
        })
        .await;
    assert!(seen.is_some(), "$SYS did not report the 7 refusals");

    // Closing the held sockets frees the address's slots.
    drop(socks);
    assert!(
        eventually(Duration::from_secs(2), || b.broker.admission().counts().0
            == 1)
        .await,
        "slots not released: {:?}",
        b.broker.admission().counts()
    );
    assert!(raw_connect_ok(FLOOD, b.addr, "again").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_cap_refuses_everyone_until_a_slot_frees() {
    let b = start_with(with_admission(AdmissionLimits {
        max_connections: 4,
        ..AdmissionLimits::default()
    }))
    .await;
    let c1 = v5::connected(b.port(), "one").await;
    let mut socks = flood(FLOOD, b.addr, 3).await;
    assert_eq!(closed_by_broker(&mut socks).await, 0);
    let mut late = flood("127.0.0.4", b.addr, 2).await;
    assert_eq!(closed_by_broker(&mut late).await, 2);
    assert!(counted(&b, |s| &s.refused_max_connections, 2).await);
    drop(c1);
    assert!(
        eventually(Duration::from_secs(2), || b.broker.admission().counts().0
            == 3)
        .await,
        "slot not released: {:?}",
        b.broker.admission().counts()
    );
    let _c2 = v5::connected(b.port(), "two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_cannot_hold_more_than_the_pending_cap() {
    let b = start_with(Limits {
        connect_timeout: Duration::from_secs(1),
        ..with_admission(AdmissionLimits {
            max_pending_connects: 3,
            ..AdmissionLimits::default()
        })
    })
    .await;
    // Clients that completed CONNECT do not count as pending.
    let mut real = Vec::new();
    for i in 0..4 {
        real.push(v5::connected(b.port(), &format!("real{i}")).await);
    }
    let mut idle = flood(FLOOD, b.addr, 3).await;
    assert_eq!(closed_by_broker(&mut idle).await, 0);
    let mut more = flood("127.0.0.4", b.addr, 2).await;
    assert_eq!(closed_by_broker(&mut more).await, 2);
    assert!(counted(&b, |s| &s.refused_pending_connects, 2).await);
    assert!(
        eventually(Duration::from_secs(1), || b.broker.admission().counts()
            == (7, 3))
        .await,
        "{:?}",
        b.broker.admission().counts()
    );
    // The idlers are closed after connect_timeout, and a real client gets
    // in again.
    assert!(
        eventually(Duration::from_secs(3), || b.broker.admission().counts()
            == (4, 0))
        .await,
        "idlers not released: {:?}",
        b.broker.admission().counts()
    );
    assert_eq!(closed_by_broker(&mut idle).await, 3);
    let _late = v5::connected(b.port(), "late").await;
}
