//! tls-handshake and mtls-handshake: new TLS connections per second. Each connection is a full
//! TLS 1.3 handshake (no resumption), MQTT CONNECT/CONNACK, DISCONNECT and a clean close.
//! auth-connect runs the same loop on the plain listener with a user name and password.
//!
//! Many connections are in flight at once, as when a fleet reconnects after a restart: with few,
//! the figure would be set by round trips and by Mosquitto's Nagle delays (it leaves
//! TCP_NODELAY off by default) rather than by the CPU a handshake costs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::BytesMut;

use crate::auth;
use crate::conn::{self, Transport};
use crate::mqtt;
use crate::scenario::{join_all, thousands, Outcome, Params};
use crate::system::cpu_seconds;

/// Client tasks connecting in a loop: enough that round trips and delayed ACKs never leave the
/// broker idle, below Bulwark's default of 256 concurrent handshakes per listener.
pub const TASKS: usize = 128;
/// After DISCONNECT and our close, how long we wait for the broker to close its side.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Pause after a failed attempt, so a broker refusing everything is not hammered in a tight loop.
const FAIL_PAUSE: Duration = Duration::from_millis(10);

/// Who the looping clients are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clients {
    /// [`TASKS`] anonymous clients, unique client IDs (the TLS scenarios).
    Anonymous,
    /// [`auth::TASKS`] clients, task `t` logging in as [`auth::identity`]`(t)` with client IDs
    /// in its default pattern (auth-connect).
    Login,
}

/// One task's tally.
#[derive(Default)]
struct Tally {
    /// Connect-to-CONNACK times of connections that completed within the window.
    times: Vec<Duration>,
    failed: u64,
    first_error: Option<anyhow::Error>,
}

/// One connection: TCP, TLS handshake, CONNECT/CONNACK (all in `conn::open`), then DISCONNECT
/// and the broker's close. Returns the time to CONNACK.
async fn one(
    addr: SocketAddr,
    transport: &Transport,
    id: &str,
    login: Option<(&str, &str)>,
) -> Result<Duration> {
    let started = Instant::now();
    let (mut r, mut w) = conn::open_as(addr, transport, id, login, 60, 256).await?;
    let to_connack = started.elapsed();
    let mut out = BytesMut::with_capacity(2);
    mqtt::disconnect(&mut out);
    conn::send(&mut w, &out).await?;
    // The broker closes on DISCONNECT; we close after it, so TIME_WAIT lands on its side and
    // tens of thousands of connections do not use up this side's ephemeral ports. Whether it
    // ends with close_notify, a bare FIN or a reset is its business: any read error means the
    // connection is gone.
    let closed = tokio::time::timeout(CLOSE_WAIT, async {
        while r.fill().await.is_ok() {
            r.drain_packets(|_| Ok(())).ok();
        }
    })
    .await
    .is_ok();
    if !closed {
        w.shutdown().await?;
    }
    Ok(to_connack)
}

async fn task(
    addr: SocketAddr,
    transport: Transport,
    clients: Clients,
    t: usize,
    end: Instant,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut n = 0u64;
    let identity = auth::identity(t);
    let login = (clients == Clients::Login).then_some((identity.as_str(), auth::PASSWORD));
    while Instant::now() < end {
        n += 1;
        let id = match clients {
            // Starts with the client certificate's CN: with mutual TLS,
            // Bulwark binds client IDs to the certificate identity.
            Clients::Anonymous => format!("{}-hs-{t}-{n}", crate::tls::CLIENT_CN),
            Clients::Login => format!("{identity}-{n}"),
        };
        match one(addr, &transport, &id, login).await {
            Ok(d) => {
                if Instant::now() <= end {
                    tally.times.push(d);
                }
            }
            Err(e) => {
                tally.failed += 1;
                tally.first_error.get_or_insert(e);
                tokio::time::sleep(FAIL_PAUSE).await;
            }
        }
    }
    Ok(tally)
}

pub async fn run(
    addr: SocketAddr,
    transport: &Transport,
    pid: u32,
    p: &Params,
    name: &str,
    clients: Clients,
) -> Result<Outcome> {
    // One connection that verifies the server certificate (for TLS), so a broken setup fails
    // here and not silently in the unverified loop.
    let probe_identity = auth::identity(0);
    let (probe_id, login, tasks) = match clients {
        Clients::Anonymous => (format!("{}-hs-probe", crate::tls::CLIENT_CN), None, TASKS),
        Clients::Login => (
            format!("{probe_identity}-probe"),
            Some((probe_identity.as_str(), auth::PASSWORD)),
            auth::TASKS,
        ),
    };
    one(addr, transport, &probe_id, login)
        .await
        .with_context(|| format!("{name}: verified probe connection"))?;
    let transport = transport.unverified();
    let window = Duration::from_secs(p.seconds);
    let pid_s = pid.to_string();
    let (broker0, self0) = (cpu_seconds(&pid_s)?, cpu_seconds("self")?);
    let start = Instant::now();
    let end = start + window;
    let handles = (0..tasks)
        .map(|t| tokio::spawn(task(addr, transport.clone(), clients, t, end)))
        .collect();
    // CPU is read when the window closes, not when the last in-flight connection finishes.
    tokio::time::sleep_until(end.into()).await;
    let elapsed = start.elapsed().as_secs_f64();
    let broker_cpu = (cpu_seconds(&pid_s)? - broker0) / elapsed;
    let self_cpu = (cpu_seconds("self")? - self0) / elapsed;
    let tallies = join_all(handles).await?;
    let failed: u64 = tallies.iter().map(|t| t.failed).sum();
    let mut times = Vec::new();
    let mut first_error = None;
    for t in tallies {
        times.extend(t.times);
        first_error = first_error.or(t.first_error);
    }
    if times.is_empty() {
        let e = first_error.unwrap_or_else(|| anyhow::anyhow!("no attempt finished"));
        return Err(e.context(format!("{name}: no connection completed")));
    }
    if let Some(e) = &first_error {
        eprint!("({name}: {failed} failed, first: {e:#}) ");
    }
    times.sort_unstable();
    let pct = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
        format!("{:.2}", times[i].as_secs_f64() * 1000.0)
    };
    let rate = times.len() as f64 / window.as_secs_f64();
    // Broker CPU time per completed connection, in µs: less sensitive than the rate to what
    // else the machine is doing.
    let cpu_per_conn = broker_cpu * elapsed / times.len() as f64 * 1e6;
    Ok(Outcome {
        cells: vec![
            thousands(rate),
            pct(0.5),
            pct(0.99),
            failed.to_string(),
            format!("{:.0} %", broker_cpu * 100.0),
            thousands(cpu_per_conn),
            format!("{:.0} %", self_cpu * 100.0),
        ],
        ratio_keys: vec![rate, cpu_per_conn],
        extra_rows: Vec::new(),
    })
}
