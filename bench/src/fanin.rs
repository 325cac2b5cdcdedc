//! fanin-qos0 (and fanin-qos0-tls, the same over TLS): several publishers flat out into one
//! subscriber at QoS 0; also home of the QoS 0 publisher loop that fanout reuses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::BytesMut;

use crate::conn::{self, FrameReader, Transport, Writer, BIG_READ};
use crate::fanout::Gate;
use crate::mqtt;
use crate::scenario::{ensure_traffic, join_all, percent, thousands, Outcome, Params};

pub const PUBLISHERS: u32 = 4;
/// Messages per write: ~20 KB, enough to amortise the syscall, small enough that the broker
/// sees a steady stream rather than rare floods.
const BATCH: u32 = 256;

/// What a QoS 0 publisher sends, and the optional gate that stops it outrunning subscribers.
pub struct Qos0Publisher {
    pub topic: String,
    pub publisher: u32,
    pub batch: u32,
    pub gate: Option<Arc<Gate>>,
}

/// Sends QoS 0 messages in batches until `end`; returns how many were sent.
/// The read half is held only so the connection stays fully open.
pub async fn publish_qos0(
    _reader: FrameReader,
    mut w: Writer,
    cfg: Qos0Publisher,
    end: Instant,
) -> Result<u64> {
    let mut buf = BytesMut::with_capacity(cfg.batch as usize * 96);
    let mut seq: u32 = 0;
    while Instant::now() < end {
        if let Some(gate) = &cfg.gate {
            gate.wait_for_room(seq, cfg.batch, end).await;
        }
        buf.clear();
        for _ in 0..cfg.batch {
            let body = conn::payload(cfg.publisher, seq, 0);
            mqtt::publish(&mut buf, cfg.topic.as_bytes(), 0, 0, &body);
            seq = seq.wrapping_add(1);
        }
        conn::send(&mut w, &buf).await?;
    }
    Ok(u64::from(seq))
}

/// Runs the fan-in against `addr` over `transport`; `name` labels errors.
pub async fn run(
    addr: SocketAddr,
    transport: &Transport,
    p: &Params,
    name: &str,
) -> Result<Outcome> {
    let (mut sr, mut sw) = conn::open(addr, transport, "bench-fanin-sub", 60, BIG_READ).await?;
    conn::subscribe(&mut sr, &mut sw, "bench/#", 0).await?;
    let mut pubs = Vec::new();
    for i in 0..PUBLISHERS {
        let id = format!("bench-fanin-pub-{i}");
        pubs.push(conn::open(addr, transport, &id, 60, 1024).await?);
    }
    let window = Duration::from_secs(p.seconds);
    let end = Instant::now() + window;
    let sub =
        tokio::spawn(async move { conn::subscribe_loop(&mut sr, &mut sw, end, |_, _| {}).await });
    let handles = pubs
        .into_iter()
        .zip(0..)
        .map(|((r, w), i)| {
            let cfg = Qos0Publisher {
                topic: format!("bench/p{i}"),
                publisher: i,
                batch: BATCH,
                gate: None,
            };
            tokio::spawn(publish_qos0(r, w, cfg, end))
        })
        .collect();
    let sent: u64 = join_all(handles).await?.iter().sum();
    let got = join_all(vec![sub]).await?.remove(0);
    ensure_traffic(got.total, name)?;
    let secs = window.as_secs_f64();
    Ok(Outcome {
        cells: vec![
            thousands(got.in_window as f64 / secs),
            thousands(sent as f64 / secs),
            percent(sent.saturating_sub(got.total) as f64, sent as f64),
        ],
        ratio_keys: vec![got.in_window as f64 / secs],
        extra_rows: Vec::new(),
    })
}
