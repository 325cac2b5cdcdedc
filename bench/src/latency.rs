//! latency: a paced publisher stamps each message with its send time; the subscriber records
//! arrival minus stamp. Both sides are in this process, so one monotonic clock serves both.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use tokio::time::MissedTickBehavior;

use crate::conn::{self, FrameReader, Writer, BIG_READ};
use crate::mqtt;
use crate::scenario::{join_all, Outcome, Params};

/// Messages per second: far below any broker's capacity, so the figure is latency, not queueing.
pub const RATE: u64 = 10_000;
/// Samples sent in the first moments are dropped: they carry connection warm-up, not steady state.
pub const WARMUP: Duration = Duration::from_millis(200);
const TOPIC: &str = "bench/latency";

/// Sends `rate` messages a second to `topic` until `end`, each stamped with its send time
/// (nanoseconds since `base`): each 1 ms tick sends whatever is due by then, so a late tick
/// catches up instead of lowering the rate. Returns how many were sent.
pub async fn paced(
    w: &mut Writer,
    topic: &str,
    rate: u64,
    base: Instant,
    end: Instant,
) -> Result<u64> {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut sent: u64 = 0;
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= end {
            return Ok(sent);
        }
        let due = now.duration_since(base).as_nanos() as u64 * rate / 1_000_000_000;
        buf.clear();
        while sent < due {
            let stamp = base.elapsed().as_nanos() as u64;
            let body = conn::payload(0, sent as u32, stamp);
            mqtt::publish(&mut buf, topic.as_bytes(), 0, 0, &body);
            sent += 1;
        }
        if !buf.is_empty() {
            conn::send(w, &buf).await?;
        }
    }
}

/// [`paced`] at [`RATE`] on its own task; the read half is held so the connection stays open.
async fn paced_publisher(
    _reader: FrameReader,
    mut w: Writer,
    base: Instant,
    end: Instant,
) -> Result<u64> {
    paced(&mut w, TOPIC, RATE, base, end).await
}

/// The value at quantile `q` of sorted `v`.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(idx).copied().unwrap_or(0)
}

pub async fn run(addr: SocketAddr, p: &Params) -> Result<Outcome> {
    let (mut sr, mut sw) = conn::connect(addr, "bench-latency-sub", 60, BIG_READ).await?;
    conn::subscribe(&mut sr, &mut sw, TOPIC, 0).await?;
    let (pr, pw) = conn::connect(addr, "bench-latency-pub", 60, 1024).await?;
    let base = Instant::now();
    let end = base + Duration::from_secs(p.seconds);
    let warmup_nanos = WARMUP.as_nanos() as u64;
    let sub = tokio::spawn(async move {
        let mut samples = Vec::with_capacity((RATE * 12 / 10) as usize * 8);
        let mut bad = 0u64;
        conn::subscribe_loop(&mut sr, &mut sw, end, |payload, now| {
            let Some((_, _, stamp)) = conn::parse_payload(payload) else {
                bad += 1;
                return;
            };
            if stamp >= warmup_nanos {
                let arrived = now.duration_since(base).as_nanos() as u64;
                samples.push(arrived.saturating_sub(stamp));
            }
        })
        .await?;
        if bad > 0 {
            bail!("subscriber got {bad} payloads without a timestamp");
        }
        Ok(samples)
    });
    let sent = join_all(vec![tokio::spawn(paced_publisher(pr, pw, base, end))])
        .await?
        .remove(0);
    let mut samples = join_all(vec![sub]).await?.remove(0);
    if samples.is_empty() {
        bail!("latency: no message reached the subscriber ({sent} sent)");
    }
    samples.sort_unstable();
    let us = |q: f64| quantile(&samples, q) as f64 / 1000.0;
    let max = *samples.last().context("no samples")? as f64 / 1000.0;
    let (p50, p99) = (us(0.50), us(0.99));
    Ok(Outcome {
        cells: vec![
            format!("{p50:.0}"),
            format!("{p99:.0}"),
            format!("{:.0}", us(0.999)),
            format!("{max:.0}"),
            format!("{} / {sent}", samples.len()),
        ],
        ratio_keys: vec![p50, p99],
        extra_rows: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 501);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 1.0), 1000);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
