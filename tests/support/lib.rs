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
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let info = Arc::new(ListenerInfo {
        name: Arc::from("test"),
        allow_anonymous: true,
    });
    let b = broker.clone();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (r, w) = stream.into_split();
            tokio::spawn(bulwark_broker::serve(b.clone(), r, w, peer, info.clone()));
        }
    });
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
