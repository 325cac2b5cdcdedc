//! idle-memory: the broker's resident memory per idle, connected client.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;

use crate::broker::rss_bytes;
use crate::conn::{self, FrameReader, Writer};
use crate::mqtt::{self, Packet};
use crate::scenario::{join_all, thousands, Outcome, Params};

/// Client tasks opening connections in parallel: enough to hide each handshake's round trip,
/// few enough not to overflow the broker's listen backlog.
const TASKS: usize = 8;
/// Every this many connections one is pinged after the measurement, to check the broker still
/// holds them open rather than having quietly dropped them.
const PING_EVERY: usize = 100;

type Conn = (FrameReader, Writer);

async fn open_share(addr: SocketAddr, task: usize, n: usize) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n / TASKS + 1);
    for i in (task..n).step_by(TASKS) {
        // Keep-alive 0: the broker must not expect pings from clients that only sit there.
        let c = conn::connect(addr, &format!("bench-idle-{i}"), 300, 16)
            .await
            .with_context(|| {
                format!(
                    "idle connection #{i} (this task had opened {})",
                    conns.len()
                )
            })?;
        conns.push(c);
    }
    Ok(conns)
}

async fn ping(c: &mut Conn) -> Result<()> {
    let mut out = BytesMut::with_capacity(2);
    mqtt::pingreq(&mut out);
    conn::send(&mut c.1, &out).await?;
    c.0.await_packet("PINGRESP", |p| {
        Ok(matches!(p, Packet::PingResp).then_some(()))
    })
    .await
}

pub async fn run(addr: SocketAddr, pid: u32, p: &Params) -> Result<Outcome> {
    let n = p.idle_connections;
    if n == 0 {
        bail!("--idle-connections is 0");
    }
    // Let the broker finish its start-up allocations before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes(pid)?;
    let handles = (0..TASKS.min(n))
        .map(|t| tokio::spawn(open_share(addr, t, n)))
        .collect();
    let mut conns: Vec<Conn> = join_all(handles).await?.into_iter().flatten().collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_bytes(pid)?;
    let mut answered = 0;
    let mut asked = 0;
    for c in conns.iter_mut().step_by(PING_EVERY) {
        asked += 1;
        if ping(c).await.is_ok() {
            answered += 1;
        }
    }
    let per_conn = after.saturating_sub(before) as f64 / conns.len() as f64;
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    Ok(Outcome {
        cells: vec![
            thousands(per_conn),
            mib(before),
            mib(after),
            format!(
                "{}, {answered}/{asked} sampled answered PINGREQ",
                thousands(conns.len() as f64)
            ),
        ],
        ratio_keys: vec![per_conn],
        extra_rows: Vec::new(),
    })
}
