//! fanin-qos1: publishers at QoS 1 with a bounded in-flight window, one QoS 1 subscriber, and an
//! exact account of messages the broker acknowledged but never delivered.
//!
//! Each publisher is two tasks sharing an [`InFlight`] table: the sender claims packet ids while
//! the window has room and writes a batch per syscall; the acker reads PUBACKs in bulk, retires
//! their ids and marks the sequence numbers acknowledged. The lock is taken once per batch or
//! per read, never per message.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::BytesMut;
use tokio::sync::Notify;
use tokio::time::timeout;

use crate::conn::{self, FrameReader, Writer, BIG_READ, MAX_DRAIN};
use crate::fanin::PUBLISHERS;
use crate::mqtt::{self, Packet};
use crate::scenario::{ensure_traffic, join_all, percent, thousands, Outcome, Params};

/// Unacknowledged messages each publisher may have outstanding.
pub const WINDOW: usize = 256;
/// Most messages claimed and written per syscall.
const BATCH: usize = 64;

/// A growable bit set indexed by sequence number.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    /// Sets bit `i`; returns false when it was already set (a duplicate delivery).
    fn insert(&mut self, i: u32) -> bool {
        let (word, bit) = (i as usize / 64, i % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let was = self.0[word] & (1 << bit) != 0;
        self.0[word] |= 1 << bit;
        !was
    }

    /// How many bits are set here and not in `other`.
    fn count_missing_from(&self, other: &Bits) -> u64 {
        self.0
            .iter()
            .enumerate()
            .map(|(i, w)| u64::from((w & !other.0.get(i).copied().unwrap_or(0)).count_ones()))
            .sum()
    }
}

/// A publisher's outstanding messages, by packet id.
struct InFlight {
    slots: Vec<Option<u32>>,
    next_id: u16,
    count: usize,
    acked: Bits,
    acked_total: u64,
    /// Set by the sender when it stops; the acker then exits once the window is empty.
    done: bool,
}

impl InFlight {
    fn new() -> Self {
        InFlight {
            slots: vec![None; 65536],
            next_id: 0,
            count: 0,
            acked: Bits::default(),
            acked_total: 0,
            done: false,
        }
    }

    /// Takes a free packet id for `seq`. Ids cycle, skipping any still outstanding; as the
    /// window is far below 65535 a free one always exists.
    fn claim(&mut self, seq: u32) -> u16 {
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            let slot = &mut self.slots[usize::from(self.next_id)];
            if self.next_id != 0 && slot.is_none() {
                *slot = Some(seq);
                self.count += 1;
                return self.next_id;
            }
        }
    }
}

struct Shared {
    state: Mutex<InFlight>,
    /// Woken by the acker when ids were retired, so a sender with a full window resumes.
    room: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct PubResult {
    sent: u64,
    acked_total: u64,
    acked: Bits,
}

async fn publisher(
    reader: FrameReader,
    mut w: Writer,
    publisher: u32,
    end: Instant,
) -> Result<PubResult> {
    let shared = Arc::new(Shared {
        state: Mutex::new(InFlight::new()),
        room: Notify::new(),
    });
    let acker = tokio::spawn(ack_loop(reader, shared.clone(), end));
    let topic = format!("bench/p{publisher}");
    let mut buf = BytesMut::with_capacity(BATCH * 96);
    let mut seq: u32 = 0;
    while Instant::now() < end {
        buf.clear();
        let claimed = {
            let mut st = shared.lock();
            let k = (WINDOW - st.count).min(BATCH);
            for _ in 0..k {
                let id = st.claim(seq);
                let body = conn::payload(publisher, seq, 0);
                mqtt::publish(&mut buf, topic.as_bytes(), 1, id, &body);
                seq += 1;
            }
            k
        };
        if claimed == 0 {
            // Window full: wait for PUBACKs (Notify keeps a wake-up sent before we wait).
            let _ = tokio::time::timeout_at(end.into(), shared.room.notified()).await;
            continue;
        }
        conn::send(&mut w, &buf).await?;
    }
    shared.lock().done = true;
    join_all(vec![acker]).await?;
    let mut st = shared.lock();
    Ok(PubResult {
        sent: u64::from(seq),
        acked_total: st.acked_total,
        acked: std::mem::take(&mut st.acked),
    })
}

/// Reads PUBACKs until the sender is done and every message is acknowledged, or the drain
/// limit passes (a broker that withholds acks must not hang the run).
async fn ack_loop(mut reader: FrameReader, shared: Arc<Shared>, end: Instant) -> Result<()> {
    loop {
        {
            let st = shared.lock();
            if st.done && st.count == 0 {
                return Ok(());
            }
        }
        if Instant::now() > end + MAX_DRAIN {
            return Ok(());
        }
        match timeout(Duration::from_millis(100), reader.fill()).await {
            Err(_) => continue,
            Ok(read) => read?,
        };
        let mut st = shared.lock();
        reader.drain_packets(|p| match p {
            Packet::PubAck { packet_id } => {
                if let Some(seq) = st.slots[usize::from(packet_id)].take() {
                    st.count -= 1;
                    st.acked_total += 1;
                    st.acked.insert(seq);
                }
                Ok(())
            }
            other => bail!("publisher got unexpected {other:?}"),
        })?;
        drop(st);
        shared.room.notify_one();
    }
}

pub async fn run(addr: SocketAddr, p: &Params) -> Result<Outcome> {
    let (mut sr, mut sw) = conn::connect(addr, "bench-qos1-sub", 60, BIG_READ).await?;
    conn::subscribe(&mut sr, &mut sw, "bench/#", 1).await?;
    let mut pubs = Vec::new();
    for i in 0..PUBLISHERS {
        pubs.push(conn::connect(addr, &format!("bench-qos1-pub-{i}"), 60, 64 * 1024).await?);
    }
    let window = Duration::from_secs(p.seconds);
    let end = Instant::now() + window;
    let sub = tokio::spawn(async move {
        let mut received: Vec<Bits> = (0..PUBLISHERS).map(|_| Bits::default()).collect();
        let mut foreign = 0u64;
        let counts =
            conn::subscribe_loop(
                &mut sr,
                &mut sw,
                end,
                |payload, _| match conn::parse_payload(payload) {
                    Some((publisher, seq, _)) if publisher < PUBLISHERS => {
                        received[publisher as usize].insert(seq);
                    }
                    _ => foreign += 1,
                },
            )
            .await?;
        if foreign > 0 {
            bail!("subscriber got {foreign} payloads the bench did not send");
        }
        Ok((counts, received))
    });
    let handles = pubs
        .into_iter()
        .zip(0..)
        .map(|((r, w), i)| tokio::spawn(publisher(r, w, i, end)))
        .collect();
    let results = join_all(handles).await?;
    let (counts, received) = join_all(vec![sub]).await?.remove(0);
    ensure_traffic(counts.total, "fanin-qos1")?;
    let sent: u64 = results.iter().map(|r| r.sent).sum();
    let acked: u64 = results.iter().map(|r| r.acked_total).sum();
    let dropped: u64 = results
        .iter()
        .zip(&received)
        .map(|(r, got)| r.acked.count_missing_from(got))
        .sum();
    let secs = window.as_secs_f64();
    Ok(Outcome {
        cells: vec![
            thousands(counts.in_window as f64 / secs),
            thousands(acked as f64 / secs),
            format!(
                "{} ({})",
                thousands(dropped as f64),
                percent(dropped as f64, acked as f64)
            ),
            thousands(sent.saturating_sub(acked) as f64),
        ],
        ratio_keys: vec![counts.in_window as f64 / secs],
        extra_rows: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_count_what_the_other_set_lacks() {
        let mut acked = Bits::default();
        let mut got = Bits::default();
        for i in [0, 5, 64, 200] {
            assert!(acked.insert(i));
        }
        assert!(got.insert(5));
        assert!(!got.insert(5));
        got.insert(64);
        assert_eq!(acked.count_missing_from(&got), 2);
    }

    #[test]
    fn claim_skips_outstanding_ids_and_zero() {
        let mut f = InFlight::new();
        assert_eq!(f.claim(0), 1);
        f.next_id = 65534;
        assert_eq!(f.claim(1), 65535);
        assert_eq!(f.claim(2), 2); // 0 is not an id, 1 is still outstanding
        assert_eq!(f.count, 3);
    }
}
