//! fanout: one QoS 0 publisher, many subscribers on the same topic.
//!
//! Run flat out, the publisher would fill megabytes of socket buffer in front of the broker and
//! the figures would measure that backlog draining (or the broker's queue limit dropping it)
//! rather than fan-out speed. So the publisher is gated end to end: it stays at most [`AHEAD`]
//! messages ahead of the newest message the slowest subscriber has seen. The gate follows
//! sequence numbers, not counts, so a broker that drops messages does not stall it; the drops
//! show up as loss.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::Notify;

use crate::conn::{self, BIG_READ};
use crate::fanin::{publish_qos0, Qos0Publisher};
use crate::scenario::{ensure_traffic, join_all, percent, thousands, Outcome, Params};

pub const SUBSCRIBERS: usize = 50;
/// Most messages the publisher may be ahead of the slowest subscriber. Below Mosquitto's
/// default 1000-message queue, so a broker keeping up is not pushed into dropping.
pub const AHEAD: u32 = 512;
/// Messages per write: each becomes 50 deliveries, so small batches still keep a broker busy.
const BATCH: u32 = 64;
const TOPIC: &str = "bench/fanout";

/// End-to-end flow control between the subscribers and the publisher.
pub struct Gate {
    /// Per subscriber: one past the highest sequence number it has received.
    seen: Vec<AtomicU32>,
    /// While the publisher waits: the `seen` value every subscriber must reach for it to go on
    /// (0 when not waiting). A subscriber wakes the publisher only when it crosses this mark,
    /// so a wait costs at most one wake-up per subscriber instead of one per message.
    wake_at: AtomicU32,
    progress: Notify,
}

impl Gate {
    fn new(subscribers: usize) -> Self {
        Gate {
            seen: (0..subscribers).map(|_| AtomicU32::new(0)).collect(),
            wake_at: AtomicU32::new(0),
            progress: Notify::new(),
        }
    }

    fn slowest(&self) -> u32 {
        self.seen
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .min()
            .unwrap_or(0)
    }

    /// Called by subscriber `sub` for each message it receives.
    fn record(&self, sub: usize, seq: u32) {
        let Some(slot) = self.seen.get(sub) else {
            return;
        };
        let old = slot.load(Ordering::Relaxed);
        let new = seq.wrapping_add(1);
        if new > old {
            slot.store(new, Ordering::SeqCst);
            let mark = self.wake_at.load(Ordering::SeqCst);
            if mark != 0 && old < mark && new >= mark {
                self.progress.notify_one();
            }
        }
    }

    /// Waits until `batch` more messages after `sent` stay within [`AHEAD`] of the slowest
    /// subscriber, or `end` passes. The short timeout backs up the wake-up, which may race.
    pub async fn wait_for_room(&self, sent: u32, batch: u32, end: Instant) {
        // The slowest subscriber must have seen this many messages (0 is kept for "idle").
        let Some(mark) = (sent + batch).checked_sub(AHEAD).filter(|m| *m > 0) else {
            return;
        };
        loop {
            self.wake_at.store(mark, Ordering::SeqCst);
            if self.slowest() >= mark || Instant::now() >= end {
                self.wake_at.store(0, Ordering::SeqCst);
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(5), self.progress.notified()).await;
        }
    }
}

pub async fn run(addr: SocketAddr, p: &Params) -> Result<Outcome> {
    let mut subs = Vec::with_capacity(SUBSCRIBERS);
    for i in 0..SUBSCRIBERS {
        let (mut r, mut w) =
            conn::connect(addr, &format!("bench-fanout-sub-{i}"), 60, BIG_READ).await?;
        conn::subscribe(&mut r, &mut w, TOPIC, 0).await?;
        subs.push((r, w));
    }
    let (pr, pw) = conn::connect(addr, "bench-fanout-pub", 60, 1024).await?;
    let gate = Arc::new(Gate::new(SUBSCRIBERS));
    let window = Duration::from_secs(p.seconds);
    let end = Instant::now() + window;
    let sub_handles = subs
        .into_iter()
        .enumerate()
        .map(|(i, (mut r, mut w))| {
            let gate = gate.clone();
            tokio::spawn(async move {
                conn::subscribe_loop(&mut r, &mut w, end, |payload, _| {
                    if let Some((_, seq, _)) = conn::parse_payload(payload) {
                        gate.record(i, seq);
                    }
                })
                .await
            })
        })
        .collect();
    let cfg = Qos0Publisher {
        topic: TOPIC.to_string(),
        publisher: 0,
        batch: BATCH,
        gate: Some(gate),
    };
    let publisher = tokio::spawn(publish_qos0(pr, pw, cfg, end));
    let sent = join_all(vec![publisher]).await?.remove(0);
    let counts = join_all(sub_handles).await?;
    let in_window: u64 = counts.iter().map(|c| c.in_window).sum();
    let total: u64 = counts.iter().map(|c| c.total).sum();
    ensure_traffic(total, "fanout")?;
    let worst = counts.iter().map(|c| c.total).min().unwrap_or(0);
    let secs = window.as_secs_f64();
    let expected = sent as f64 * SUBSCRIBERS as f64;
    Ok(Outcome {
        cells: vec![
            thousands(in_window as f64 / secs),
            thousands(sent as f64 / secs),
            percent(expected - total as f64, expected),
            percent(sent.saturating_sub(worst) as f64, sent as f64),
        ],
        ratio_keys: vec![in_window as f64 / secs],
        extra_rows: Vec::new(),
    })
}
