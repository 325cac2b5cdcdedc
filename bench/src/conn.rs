//! Client connections: TCP with TCP_NODELAY (optionally under TLS), the CONNECT and SUBSCRIBE
//! handshakes, a buffered frame reader, and the subscriber's read-and-drain loop shared by the
//! scenarios.
//!
//! Every await on the broker is under a timeout, so a broker that stops answering turns into an
//! error naming what we were waiting for instead of a hung benchmark.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

use crate::mqtt::{self, Packet};
use crate::tls::TlsClient;

/// Limit for connecting and for each handshake reply.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that cannot complete in this long means the broker stopped reading altogether;
/// ordinary backpressure clears far sooner.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the publishers stop, a subscriber is drained once it has been quiet this long.
pub const QUIET: Duration = Duration::from_millis(500);
/// ... or at the latest this long after the window ends, so a slow trickle cannot stall the run.
pub const MAX_DRAIN: Duration = Duration::from_secs(3);
/// Read buffer for subscribers: big, so one read syscall carries hundreds of packets.
pub const BIG_READ: usize = 256 * 1024;

/// How the bench reaches a broker's listener.
#[derive(Clone)]
pub enum Transport {
    Plain,
    /// TLS, verifying the server's certificate.
    Tls(Arc<TlsClient>),
    /// TLS accepting any server certificate: the handshake loop's cheaper client.
    TlsUnverified(Arc<TlsClient>),
}

impl Transport {
    /// The same transport without server-certificate verification.
    pub fn unverified(&self) -> Transport {
        match self {
            Transport::Tls(c) | Transport::TlsUnverified(c) => Transport::TlsUnverified(c.clone()),
            Transport::Plain => Transport::Plain,
        }
    }
}

/// A connection's read side. An enum rather than a boxed trait object: the plain path stays
/// exactly what it was before TLS was added.
enum ReadSide {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// A connection's write side; see [`send`].
pub enum Writer {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl Writer {
    /// Closes our direction: FIN, preceded by a TLS close_notify on TLS.
    pub async fn shutdown(&mut self) -> Result<()> {
        let done = match self {
            Writer::Plain(w) => timeout(WRITE_TIMEOUT, w.shutdown()).await,
            Writer::Tls(w) => timeout(WRITE_TIMEOUT, w.shutdown()).await,
        };
        done.with_context(|| format!("shutdown not done within {WRITE_TIMEOUT:?}"))?
            .context("shutdown failed")
    }
}

/// The read half with its buffer; packets are decoded in place and consumed in bulk.
pub struct FrameReader {
    half: ReadSide,
    buf: BytesMut,
    chunk: usize,
}

impl FrameReader {
    /// Reads once, appending to the buffer. Errors when the broker closes the connection.
    pub async fn fill(&mut self) -> Result<usize> {
        if self.buf.capacity() - self.buf.len() < self.chunk / 2 {
            self.buf.reserve(self.chunk);
        }
        let n = match &mut self.half {
            ReadSide::Plain(h) => h.read_buf(&mut self.buf).await?,
            ReadSide::Tls(h) => h.read_buf(&mut self.buf).await?,
        };
        if n == 0 {
            bail!("broker closed the connection");
        }
        Ok(n)
    }

    /// Decodes every complete packet in the buffer, hands each to `f`, then drops their bytes
    /// with one advance. Returns how many packets were handled.
    pub fn drain_packets(&mut self, mut f: impl FnMut(Packet<'_>) -> Result<()>) -> Result<usize> {
        let mut at = 0;
        let mut count = 0;
        while let Some((packet, used)) = mqtt::decode(&self.buf[at..])? {
            f(packet)?;
            at += used;
            count += 1;
        }
        self.buf.advance(at);
        Ok(count)
    }

    /// Reads until `f` accepts a packet (returns `Some`), under [`HANDSHAKE_TIMEOUT`].
    /// Packets before it are skipped, so a stray PUBLISH does not break a handshake.
    pub async fn await_packet<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&Packet<'_>) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let mut found = None;
            let mut at = 0;
            while let Some((packet, used)) = mqtt::decode(&self.buf[at..])? {
                at += used;
                if let Some(v) = f(&packet)? {
                    found = Some(v);
                    break;
                }
            }
            self.buf.advance(at);
            if let Some(v) = found {
                return Ok(v);
            }
            tokio::time::timeout_at(deadline, self.fill())
                .await
                .with_context(|| format!("no {what} within {HANDSHAKE_TIMEOUT:?}"))??;
        }
    }
}

/// Writes a whole batch in as few syscalls as the kernel allows. On TLS the records are
/// flushed too: rustls may still hold the tail of the batch when `write_all` returns.
pub async fn send(w: &mut Writer, bytes: &[u8]) -> Result<()> {
    let written = match w {
        Writer::Plain(w) => timeout(WRITE_TIMEOUT, w.write_all(bytes)).await,
        Writer::Tls(w) => {
            timeout(WRITE_TIMEOUT, async {
                w.write_all(bytes).await?;
                w.flush().await
            })
            .await
        }
    };
    written
        .with_context(|| format!("broker did not accept our bytes for {WRITE_TIMEOUT:?}"))?
        .context("write to broker failed")
}

/// Opens a plain TCP connection and completes CONNECT/CONNACK. `read_chunk` sizes the read
/// buffer: big for subscribers, tiny for the idle-memory connections so the bench stays small.
pub async fn connect(
    addr: SocketAddr,
    client_id: &str,
    keep_alive: u16,
    read_chunk: usize,
) -> Result<(FrameReader, Writer)> {
    open(addr, &Transport::Plain, client_id, keep_alive, read_chunk).await
}

/// As [`connect`], over `transport`: for TLS, the full handshake comes first.
pub async fn open(
    addr: SocketAddr,
    transport: &Transport,
    client_id: &str,
    keep_alive: u16,
    read_chunk: usize,
) -> Result<(FrameReader, Writer)> {
    open_as(addr, transport, client_id, None, keep_alive, read_chunk).await
}

/// As [`open`], with `login` (user name, password) in the CONNECT.
pub async fn open_as(
    addr: SocketAddr,
    transport: &Transport,
    client_id: &str,
    login: Option<(&str, &str)>,
    keep_alive: u16,
    read_chunk: usize,
) -> Result<(FrameReader, Writer)> {
    let stream = timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("TCP connect to {addr} timed out"))?
        .with_context(|| format!("TCP connect to {addr} failed"))?;
    // Without it the kernel holds small writes (acks, pings) back for up to ~40 ms.
    stream.set_nodelay(true)?;
    let (half, mut w) = match transport {
        Transport::Plain => {
            let (r, w) = stream.into_split();
            (ReadSide::Plain(r), Writer::Plain(w))
        }
        Transport::Tls(tls) | Transport::TlsUnverified(tls) => {
            let connector = match transport {
                Transport::TlsUnverified(_) => &tls.unverified,
                _ => &tls.connector,
            };
            let stream = timeout(
                HANDSHAKE_TIMEOUT,
                connector.connect(tls.server_name.clone(), stream),
            )
            .await
            .with_context(|| format!("TLS handshake with {addr} timed out"))?
            .with_context(|| format!("TLS handshake with {addr} failed"))?;
            let (r, w) = tokio::io::split(stream);
            (ReadSide::Tls(r), Writer::Tls(w))
        }
    };
    let mut reader = FrameReader {
        half,
        buf: BytesMut::with_capacity(read_chunk),
        chunk: read_chunk,
    };
    let mut out = BytesMut::with_capacity(64);
    mqtt::connect_login(&mut out, client_id, keep_alive, login);
    send(&mut w, &out).await?;
    reader
        .await_packet("CONNACK", |p| match p {
            Packet::ConnAck { return_code: 0 } => Ok(Some(())),
            Packet::ConnAck { return_code } => bail!("CONNACK refused with code {return_code}"),
            other => bail!("expected CONNACK, got {other:?}"),
        })
        .await?;
    Ok((reader, w))
}

/// Subscribes to one filter and waits for a SUBACK that grants it.
pub async fn subscribe(
    reader: &mut FrameReader,
    w: &mut Writer,
    filter: &str,
    qos: u8,
) -> Result<()> {
    let mut out = BytesMut::with_capacity(64);
    mqtt::subscribe(&mut out, 1, filter, qos);
    send(w, &out).await?;
    reader
        .await_packet("SUBACK", |p| match p {
            Packet::SubAck { granted, .. } if granted.first().is_some_and(|g| *g <= 2) => {
                Ok(Some(()))
            }
            Packet::SubAck { granted, .. } => bail!("SUBACK refused {filter}: {granted:?}"),
            _ => Ok(None),
        })
        .await
}

/// Counts of one subscriber's run.
#[derive(Debug, Default, Clone, Copy)]
pub struct SubCounts {
    /// Messages that arrived before the window ended.
    pub in_window: u64,
    /// All messages, including those drained after the window.
    pub total: u64,
}

/// Reads until the window `end` has passed and the connection has been quiet for [`QUIET`]
/// (or [`MAX_DRAIN`] after `end`). Calls `on_publish(payload, now)` for each PUBLISH, with one
/// clock read per batch of packets; QoS 1 messages are PUBACKed with one write per read.
pub async fn subscribe_loop(
    reader: &mut FrameReader,
    w: &mut Writer,
    end: Instant,
    mut on_publish: impl FnMut(&[u8], Instant),
) -> Result<SubCounts> {
    let mut counts = SubCounts::default();
    let mut acks = BytesMut::with_capacity(4096);
    loop {
        let now = Instant::now();
        if now >= end + MAX_DRAIN {
            return Ok(counts);
        }
        let wait = end.saturating_duration_since(now) + QUIET;
        match timeout(wait, reader.fill()).await {
            Ok(read) => {
                read?;
            }
            Err(_) => return Ok(counts), // quiet after the window: drained
        }
        let now = Instant::now();
        let mut n = 0u64;
        reader.drain_packets(|p| {
            match p {
                Packet::Publish {
                    qos,
                    packet_id,
                    payload,
                    ..
                } => {
                    if qos > 0 {
                        mqtt::puback(&mut acks, packet_id);
                    }
                    on_publish(payload, now);
                    n += 1;
                }
                Packet::PingResp => {}
                other => bail!("subscriber got unexpected {other:?}"),
            }
            Ok(())
        })?;
        if !acks.is_empty() {
            send(w, &acks).await?;
            acks.clear();
        }
        counts.total += n;
        if now <= end {
            counts.in_window += n;
        }
    }
}

/// Encodes a 64-byte benchmark payload: publisher id, sequence number, then `stamp` (the send
/// time for the latency scenario, else zero), padded with a fixed pattern.
pub fn payload(publisher: u32, seq: u32, stamp: u64) -> [u8; 64] {
    let mut p = [0x5a; 64];
    p[0..4].copy_from_slice(&publisher.to_be_bytes());
    p[4..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(&stamp.to_be_bytes());
    p
}

/// Inverse of [`payload`]; `None` for a payload the bench did not send.
pub fn parse_payload(p: &[u8]) -> Option<(u32, u32, u64)> {
    let publisher = u32::from_be_bytes(p.get(0..4)?.try_into().ok()?);
    let seq = u32::from_be_bytes(p.get(4..8)?.try_into().ok()?);
    let stamp = u64::from_be_bytes(p.get(8..16)?.try_into().ok()?);
    Some((publisher, seq, stamp))
}
