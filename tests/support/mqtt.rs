//! A hand-driven MQTT client over a raw socket, speaking through our codec:
//! for what a real client will not do (withhold acks, send hostile bytes,
//! inspect the exact flags and properties on the wire).

use std::net::SocketAddr;
use std::time::Duration;

use bulwark_codec::{
    decode, frame_len, ConnAck, Connect, DecodeLimits, Packet, Properties, ProtocolVersion,
    PubResp, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions,
};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one read brought.
// Boxing the packet would only make every match in the tests noisier; a
// test helper does not care about the size of a value on its stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Got {
    Packet(Packet),
    /// The broker closed the connection.
    Closed,
    /// Nothing complete arrived in time.
    Timeout,
}

pub struct RawClient {
    pub stream: TcpStream,
    pub version: ProtocolVersion,
    buf: BytesMut,
}

pub fn connect_packet(client_id: &str, version: ProtocolVersion) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 30,
        client_id: client_id.to_owned(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

pub fn publish(topic: &str, qos: QoS, packet_id: u16, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_owned(),
        packet_id,
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    }
}

pub fn subscribe(packet_id: u16, filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        filters: vec![(
            filter.to_owned(),
            SubscriptionOptions {
                qos,
                ..Default::default()
            },
        )],
        properties: Properties::default(),
    })
}

pub fn ack(packet_id: u16) -> PubResp {
    PubResp {
        packet_id,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }
}

impl RawClient {
    /// A TCP connection with nothing sent yet.
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            version,
            buf: BytesMut::new(),
        }
    }

    /// Sends `connect` and returns the CONNACK, whatever its reason.
    pub async fn connect(addr: SocketAddr, connect: Connect) -> (RawClient, ConnAck) {
        let mut c = RawClient::open(addr, connect.protocol).await;
        c.send(&Packet::Connect(Box::new(connect))).await;
        match c.next(Duration::from_secs(3)).await {
            Got::Packet(Packet::ConnAck(ack)) => (c, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with `client_id` and defaults, asserting success.
    pub async fn connected(
        addr: SocketAddr,
        client_id: &str,
        version: ProtocolVersion,
    ) -> RawClient {
        let (c, ack) = RawClient::connect(addr, connect_packet(client_id, version)).await;
        assert_eq!(ack.reason, ReasonCode::Success, "CONNACK {ack:?}");
        c
    }

    pub async fn send(&mut self, packet: &Packet) {
        let bytes = crate::encode(packet, self.version);
        self.send_bytes(&bytes).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // The broker may already have closed on us; the test asserts on
        // what it reads back.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next packet, or why there is none.
    pub async fn next(&mut self, wait: Duration) -> Got {
        let limits = DecodeLimits {
            max_packet_size: u32::MAX,
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(n) = frame_len(&self.buf, &limits).expect("broker sent a bad frame") {
                let frame = self.buf.split_to(n).freeze();
                let packet = decode(frame, self.version).expect("broker sent a bad packet");
                return Got::Packet(packet);
            }
            self.buf.reserve(4096);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Got::Closed,
                Ok(Ok(_)) => {}
                Err(_) => return Got::Timeout,
            }
        }
    }

    /// The next PUBLISH, skipping other packets; `None` on close or timeout.
    pub async fn next_publish(&mut self, wait: Duration) -> Option<Publish> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Got::Packet(Packet::Publish(p)) => return Some(p),
                Got::Packet(_) => {}
                Got::Closed | Got::Timeout => return None,
            }
        }
    }

    /// The next packet that is not a PUBLISH (SUBACK, PUBACK, ...); panics
    /// on close or timeout.
    pub async fn next_control(&mut self, wait: Duration) -> Packet {
        loop {
            match self.next(wait).await {
                Got::Packet(Packet::Publish(_)) => {}
                Got::Packet(p) => return p,
                other => panic!("expected a packet, got {other:?}"),
            }
        }
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(&subscribe(1, filter, qos)).await;
        match self.next_control(Duration::from_secs(3)).await {
            Packet::SubAck(s) => assert!(!s.reasons.iter().any(|r| r.is_error()), "{s:?}"),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Reads until the broker closes the connection within `wait`; returns
    /// the reason of the DISCONNECT it sent first, if any. Panics if the
    /// connection stays open.
    pub async fn expect_close(&mut self, wait: Duration) -> Option<ReasonCode> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut reason = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Got::Packet(Packet::Disconnect(d)) => reason = Some(d.reason),
                Got::Packet(_) => {}
                Got::Closed => return reason,
                Got::Timeout => panic!("connection still open after {wait:?}"),
            }
        }
    }
}
