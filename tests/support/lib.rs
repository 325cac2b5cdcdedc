//! Test support: a broker on an ephemeral loopback port with the limits a
//! test chooses, and raw-socket helpers for the malformed-input tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use bulwark_broker::{Broker, Limits, ListenerInfo, MemoryStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Broker,
    accept: JoinHandle<()>,
}

impl TestBroker {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits until the broker has detached `client_id`'s connection (its
    /// session kept offline), so that what follows cannot race the detach.
    pub async fn offline(&self, client_id: &str) {
        let gone = eventually(Duration::from_secs(3), || {
            self.broker
                .session(client_id)
                .is_none_or(|s| !s.is_online())
        })
        .await;
        assert!(gone, "{client_id} still online after 3 s");
    }

    /// Stops accepting; existing connections keep running until dropped.
    pub fn stop(&self) {
        self.accept.abort();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

pub async fn start() -> TestBroker {
    start_with(Limits::default()).await
}

pub async fn start_with(limits: Limits) -> TestBroker {
    start_with_store(limits, Arc::new(MemoryStore::new())).await
}

/// Starts a broker on 127.0.0.1:0 that allows anonymous access, as the
/// embedded default does on loopback.
pub async fn start_with_store(limits: Limits, store: Arc<dyn Store>) -> TestBroker {
    let broker = Broker::new(limits, store);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let info = Arc::new(ListenerInfo {
        name: Arc::from("test"),
        allow_anonymous: true,
        min_factors: Default::default(),
    });
    // The binary's accept loop, admission included, so integration tests
    // exercise the same path.
    let accept = tokio::spawn(bulwark_broker::accept::accept_loop(
        broker.clone(),
        listener,
        info,
    ));
    tokio::spawn(broker.clone().run_housekeeping());
    TestBroker {
        addr,
        broker,
        accept,
    }
}

/// A raw TCP client for sending hand-made bytes.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        // The broker may already have closed on us; the test asserts on
        // what it reads back.
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads whatever arrives within `wait`, until EOF. Returns the bytes
    /// and whether the connection was closed by the broker.
    pub async fn read_for(&mut self, wait: Duration) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(buf.get(..n).unwrap_or(&[])),
                Err(_) => return (out, false),
            }
        }
    }
}

/// Encodes a packet with our codec, for raw tests that need a valid prefix.
pub fn encode(packet: &bulwark_codec::Packet, v: bulwark_codec::ProtocolVersion) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    bulwark_codec::encode(packet, v, &mut b).expect("encode");
    b.to_vec()
}

/// Limits for tests: the defaults with `$SYS` publishing off, so a test that
/// counts messages sees only its own.
pub fn limits() -> Limits {
    Limits {
        sys_interval: Duration::ZERO,
        // Keep-alive tests use 1 s to see timeouts quickly.
        min_keep_alive: 1,
        ..Limits::default()
    }
}

/// Polls `cond` every 10 ms until it holds or `wait` passes; returns whether
/// it held. For broker-side state that no packet announces.
pub async fn eventually(wait: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub mod mqtt;
pub mod pki;
pub mod tls;
pub mod v3;
pub mod v5;
