//! under-attack: a legitimate client's publish-to-delivery latency and throughput, measured on
//! one broker run unloaded, during a connection flood and during a publish flood, with the
//! broker's memory and what it accepted of the attack.
//!
//! The broker runs with its default abuse limits here (`broker::Limits::Defaults`): they are
//! what is measured. The attack runs on a second tokio runtime whose threads are reniced to 19,
//! so a busy attack generator does not delay the legitimate client's own reads and writes in
//! this process; real attackers do not share the victim client's CPU either.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::broker::{rss_bytes, Kind};
use crate::conn::{self, FrameReader, Writer, BIG_READ};
use crate::latency::{self, quantile, WARMUP};
use crate::mqtt::{self, Packet};
use crate::scenario::{join_all, thousands, Outcome, Params, Row};
use crate::system::cpu_seconds;

/// The legitimate publisher's rate: under Bulwark's default 1,000 msg/s per connection, so the
/// figure measures the attack, not the limit applied to the victim.
pub const LEGIT_RATE: u64 = 800;
/// Connection attempts per second during the connection flood.
pub const CONNECT_RATE: u64 = 5_000;
/// Attempts come from 127.0.1.1 ..= 127.0.1.SOURCES in turn.
pub const SOURCES: u64 = 250;
/// Clients publishing flat out during the publish flood.
pub const FLOODERS: u32 = 20;
/// The attack starts this long before the measuring window, so the window sees it in full swing.
pub const LEAD: Duration = Duration::from_millis(500);
/// How long an attempt waits for TCP connect and then for the CONNACK or the broker's close.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Most connection attempts in flight at once (fewer if the open-file limit is low).
const MAX_IN_FLIGHT: usize = 2_000;
/// File descriptors left for everything else, in this process and in the broker.
const FD_RESERVE: u64 = 300;
const RSS_EVERY: Duration = Duration::from_millis(100);
/// Pause after a window before the next condition: the legitimate subscriber drains, the
/// attack's last attempts finish, and each broker has published its final `$SYS` figures.
const SETTLE: Duration = Duration::from_secs(2);
/// How long after the window the `$SYS` sample that closes it may take to arrive.
const SYS_WAIT: Duration = Duration::from_secs(3);
/// Messages per write for a flood publisher (~19 KB).
const FLOOD_BATCH: u32 = 256;
const LEGIT_TOPIC: &str = "bench/legit";
/// Long-lived connections: well inside both brokers' limits (Bulwark refuses more than 300).
const KEEP_ALIVE: u16 = 300;
/// Nice value of the attack runtime's threads.
const ATTACK_NICE: &str = "19";

/// What the legitimate client runs under, in the order the conditions run. The publish flood
/// comes last: a throttled flooder leaves megabytes in its socket that Bulwark goes on reading
/// at the limit after the window, which would otherwise spill into the next condition.
pub const CONDITIONS: [Condition; 3] = [
    Condition::Unloaded,
    Condition::ConnectFlood,
    Condition::PublishFlood,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Unloaded,
    ConnectFlood,
    PublishFlood,
}

impl Condition {
    fn label(self) -> String {
        match self {
            Condition::Unloaded => "unloaded".into(),
            Condition::ConnectFlood => format!(
                "connection flood, {} attempts/s",
                thousands(CONNECT_RATE as f64)
            ),
            Condition::PublishFlood => format!("publish flood, {FLOODERS} clients flat out"),
        }
    }
}

/// The scenario's paragraph for the report.
pub fn describe(p: &Params) -> String {
    let s = p.seconds;
    format!(
        "A legitimate client: 1 publisher at a paced {LEGIT_RATE} msg/s (QoS 0, 64-byte \
         payloads carrying their send time) to `{LEGIT_TOPIC}`, 1 subscriber on its own \
         connection; both connect first and stay connected. Latency is publish-write to \
         subscriber-read as in latency, for messages sent in each {s} s window after its first \
         {warm} ms, including any that arrive after it (up to {drain} s late); *delivered* counts \
         what arrived within the window. Three conditions on one broker run, \
         one after the other: **unloaded**; **connection flood**: {rate} connection attempts a \
         second, each from the next of 127.0.1.1–127.0.1.{SOURCES} (the socket is bound before \
         connecting, so per-address limits see {SOURCES} hosts at {per} attempts/s each): TCP \
         connect, a CONNECT (3.1.1, fresh client id, no credentials: both listeners are \
         anonymous), wait up to {attempt} s for the CONNACK or the close, then close; \
         *accepted* means CONNACK 0, *refused* a close before any CONNACK (Bulwark closes a \
         refused socket at accept, unread), a CONNACK with an error code or a TCP error; \
         **publish flood**: {FLOODERS} more clients, connected before the window, publish \
         64-byte QoS 0 messages to `flood/00`…`flood/{last:02}`, topics nobody subscribes to, \
         {FLOOD_BATCH} per write, as fast as the broker reads them; *written* counts what their \
         kernel took, *taken* what the broker read by the window's end (its `$SYS` count of \
         PUBLISH received, interpolated at the window's end, less the legitimate publisher's); \
         the rest was still in socket buffers. Each attack starts {lead} ms before its window \
         and stops when it ends. Broker VmRSS is read every {rss} ms from the attack's start \
         (*start*) to the window's end (*end*); *peak* is the highest; *broker CPU* is its CPU \
         time (user + system) over the same span, in % of one core. *p99 / unloaded p99* \
         divides by the same broker run's unloaded p99 (target for Bulwark: at most 2).",
        warm = WARMUP.as_millis(),
        drain = conn::MAX_DRAIN.as_secs(),
        rate = thousands(CONNECT_RATE as f64),
        per = CONNECT_RATE / SOURCES,
        attempt = ATTEMPT_TIMEOUT.as_secs(),
        last = FLOODERS - 1,
        lead = LEAD.as_millis(),
        rss = RSS_EVERY.as_millis(),
    )
}

/// Method notes for the report when under-attack runs.
pub fn method_notes() -> Vec<String> {
    vec![
        "under-attack runs each broker with a configuration of its own. Bulwark: its default \
         abuse limits, which are what it measures (connection_rate_total 2,000/s and \
         connection_rate_per_address 50/s, each with an equal burst; \
         max_connections_per_address 1,000; max_pending_connects 1,024; max_publish_rate \
         1,000 msg/s and max_publish_bandwidth 1 MiB/s per connection, publish_limit_action \
         throttle: a connection over its rate is not read until its bucket refills), plus \
         sys_interval = 1. Mosquitto: listener, allow_anonymous true, max_connections -1 (its \
         default: no limit) and sys_interval 1; it has no per-client or per-address rate limits. \
         sys_interval 1 lets the bench read each broker's count of PUBLISH received every \
         second."
            .to_string(),
        format!(
            "under-attack's legitimate publisher sends {LEGIT_RATE} msg/s on one connection, not \
             2,000: at 2,000 it would itself be over Bulwark's default 1,000 msg/s \
             per-connection limit and be throttled, which would measure that limit rather than \
             the attack."
        ),
        format!(
            "under-attack's attack traffic (connection attempts, flood publishers) runs in this \
             tool on a second runtime whose threads are reniced to {ATTACK_NICE}, on the load \
             generator's CPUs; the legitimate client and the measuring stay at normal priority, \
             so a busy attack generator does not delay the legitimate client's own reads and \
             writes (real attackers do not share its CPU). With 2 cores the attack threads \
             also yield to the broker. At most {MAX_IN_FLIGHT} attempts are in flight (fewer \
             if the open-file limit is low); each ends within {} s, so the broker holds at most \
             that many attack sockets.",
            ATTEMPT_TIMEOUT.as_secs()
        ),
    ]
}

/// A `$SYS` counter of PUBLISH packets received, sampled as the broker publishes it (every
/// second with sys_interval 1; Mosquitto only when it changed).
struct Counter {
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    task: JoinHandle<Result<()>>,
}

impl Counter {
    fn topic(kind: Kind) -> &'static str {
        match kind {
            Kind::Bulwark => "$SYS/broker/messages/received",
            Kind::Mosquitto => "$SYS/broker/publish/messages/received",
        }
    }

    async fn start(addr: SocketAddr, kind: Kind) -> Result<Counter> {
        let topic = Self::topic(kind);
        let (mut r, mut w) = conn::connect(addr, "bench-sys-watch", KEEP_ALIVE, 4096).await?;
        conn::subscribe(&mut r, &mut w, topic, 0).await?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let log = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                // Nothing else goes to the broker on this connection: ping now and then.
                if timeout(Duration::from_secs(30), r.fill()).await.is_err() {
                    let mut ping = BytesMut::with_capacity(2);
                    mqtt::pingreq(&mut ping);
                    conn::send(&mut w, &ping).await?;
                    continue;
                }
                let now = Instant::now();
                r.drain_packets(|p| {
                    if let Packet::Publish {
                        topic: t, payload, ..
                    } = p
                    {
                        let value = std::str::from_utf8(payload)
                            .ok()
                            .and_then(|v| v.trim().parse::<u64>().ok());
                        if let (true, Some(v)) = (t == topic.as_bytes(), value) {
                            log.lock().expect("counter log").push((now, v));
                        }
                    }
                    Ok(())
                })?;
            }
        });
        Ok(Counter { samples, task })
    }

    /// PUBLISH packets the broker read from `start` (when the counter had been still for a
    /// while, so its last value stands) to `end` (interpolated between the samples either
    /// side), less `legit` of our own. Waits up to [`SYS_WAIT`] for a sample after `end`.
    async fn taken(&self, start: Instant, end: Instant, legit: u64) -> Option<f64> {
        let deadline = end + SYS_WAIT;
        loop {
            let done = {
                let s = self.samples.lock().expect("counter log");
                count_between(&s, start, end)
            };
            if let Some(n) = done {
                return Some((n - legit as f64).max(0.0));
            }
            if Instant::now() >= deadline || self.task.is_finished() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The counter's growth from `start` to `end`: its last value at or before `start`, its value
/// at `end` interpolated between the samples around it. `None` until a sample after `end`.
fn count_between(samples: &[(Instant, u64)], start: Instant, end: Instant) -> Option<f64> {
    let at_start = samples.iter().rev().find(|(t, _)| *t <= start)?.1 as f64;
    let after = samples.iter().find(|(t, _)| *t > end)?;
    let at_end = match samples.iter().rev().find(|(t, _)| *t <= end) {
        Some(before) => {
            let span = after.0.duration_since(before.0).as_secs_f64();
            let into = end.duration_since(before.0).as_secs_f64();
            let (b, a) = (before.1 as f64, after.1 as f64);
            if span > 0.0 {
                b + (a - b) * into / span
            } else {
                a
            }
        }
        None => after.1 as f64,
    };
    Some(at_end - at_start)
}

/// How one connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// CONNACK with return code 0.
    Accepted,
    /// The broker closed (or reset) the connection before any CONNACK.
    Closed,
    /// CONNACK with an error code.
    ConnAckRefused,
    /// TCP connect failed (refused, reset).
    TcpFailed,
    /// No CONNACK and no close within [`ATTEMPT_TIMEOUT`].
    TimedOut,
    /// The load generator could not make the socket (out of descriptors or ports).
    LocalError,
    /// Something other than a CONNACK came back.
    Unexpected,
}

const ATTEMPT_KINDS: usize = 7;

/// Connection-flood figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ConnectCounts {
    by_kind: [u64; ATTEMPT_KINDS],
    /// Attempts due but not made: the in-flight cap was reached.
    skipped: u64,
    /// Attempts still running when the bench stopped waiting (should stay 0).
    unfinished: u64,
}

impl ConnectCounts {
    fn get(&self, a: Attempt) -> u64 {
        self.by_kind[a as usize]
    }

    fn started(&self) -> u64 {
        self.by_kind.iter().sum::<u64>() + self.unfinished
    }
}

#[derive(Default)]
struct Tally {
    by_kind: [AtomicU64; ATTEMPT_KINDS],
    skipped: AtomicU64,
}

/// What one condition's attack did.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AttackFigures {
    None,
    Connect(ConnectCounts),
    Flood {
        /// Messages the flood clients' kernel accepted (whole batches).
        written: u64,
        /// Messages the broker read, from `$SYS`; `None` without a usable sample.
        taken: Option<f64>,
    },
}

fn bound_socket(src: Ipv4Addr) -> std::io::Result<TcpSocket> {
    let s = TcpSocket::new_v4()?;
    // Lets the ephemeral port of a connection in TIME_WAIT be bound again.
    s.set_reuseaddr(true)?;
    s.bind(SocketAddr::from((src, 0)))?;
    Ok(s)
}

/// One attack connection: TCP connect from `src`, CONNECT, the answer, close.
async fn attempt(addr: SocketAddr, src: Ipv4Addr, id: u64) -> Attempt {
    let Ok(socket) = bound_socket(src) else {
        return Attempt::LocalError;
    };
    let exchange = async {
        let Ok(mut stream) = socket.connect(addr).await else {
            return Attempt::TcpFailed;
        };
        let _ = stream.set_nodelay(true);
        let mut out = BytesMut::with_capacity(32);
        mqtt::connect(&mut out, &format!("bench-atk-{id}"), KEEP_ALIVE);
        if stream.write_all(&out).await.is_err() {
            return Attempt::Closed;
        }
        let mut buf = [0u8; 64];
        let mut len = 0;
        loop {
            match stream.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return Attempt::Closed,
                Ok(n) => len += n,
            }
            match mqtt::decode(&buf[..len]) {
                Ok(Some((Packet::ConnAck { return_code: 0 }, _))) => return Attempt::Accepted,
                Ok(Some((Packet::ConnAck { .. }, _))) => return Attempt::ConnAckRefused,
                Ok(None) if len < buf.len() => {}
                _ => return Attempt::Unexpected,
            }
        }
        // Dropping the stream closes it: a FIN, as the CONNACK has been read.
    };
    timeout(ATTEMPT_TIMEOUT, exchange)
        .await
        .unwrap_or(Attempt::TimedOut)
}

/// Makes [`CONNECT_RATE`] attempts a second from `start` until `end`, at most `cap` in flight,
/// then waits for the last ones. Runs on the attack runtime; so do the attempts.
async fn connect_flood(
    addr: SocketAddr,
    start: Instant,
    end: Instant,
    cap: usize,
) -> Result<AttackFigures> {
    let tally = Arc::new(Tally::default());
    let permits = Arc::new(Semaphore::new(cap));
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Whatever is due by now: a late tick catches up instead of lowering the rate.
        let due = now.duration_since(start).as_nanos() as u64 * CONNECT_RATE / 1_000_000_000;
        while n < due {
            let src = Ipv4Addr::new(127, 0, 1, (1 + n % SOURCES) as u8);
            let id = n;
            n += 1;
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tally.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let tally = tally.clone();
            tokio::spawn(async move {
                let a = attempt(addr, src, id).await;
                tally.by_kind[a as usize].fetch_add(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    }
    // Every attempt ends within ATTEMPT_TIMEOUT of its start; the margin covers a loaded CPU.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let finished = timeout(
        ATTEMPT_TIMEOUT + Duration::from_secs(2),
        permits.acquire_many(all),
    )
    .await;
    let mut counts = ConnectCounts {
        skipped: tally.skipped.load(Ordering::Relaxed),
        ..Default::default()
    };
    for (c, t) in counts.by_kind.iter_mut().zip(&tally.by_kind) {
        *c = t.load(Ordering::Relaxed);
    }
    if finished.is_err() {
        counts.unfinished = permits.available_permits().abs_diff(cap) as u64;
    }
    Ok(AttackFigures::Connect(counts))
}

type Conn = (FrameReader, Writer);

/// Connects the flood publishers. Runs on the attack runtime, so their sockets are driven by it.
async fn connect_flooders(addr: SocketAddr) -> Result<Vec<Conn>> {
    let mut conns = Vec::new();
    for i in 0..FLOODERS {
        let c = conn::connect(addr, &format!("bench-flood-{i}"), KEEP_ALIVE, 1024)
            .await
            .with_context(|| format!("flood publisher {i}"))?;
        conns.push(c);
    }
    Ok(conns)
}

/// One flood publisher: the same pre-encoded batch, written as fast as the broker reads it,
/// until `end`. Returns the messages of completed writes.
async fn flood_one(conn: Conn, i: u32, end: Instant) -> Result<u64> {
    let (_reader, mut w) = conn;
    let topic = format!("flood/{i:02}");
    let mut batch = BytesMut::with_capacity(FLOOD_BATCH as usize * 80);
    for seq in 0..FLOOD_BATCH {
        mqtt::publish(
            &mut batch,
            topic.as_bytes(),
            0,
            0,
            &conn::payload(i, seq, 0),
        );
    }
    let mut written = 0u64;
    while Instant::now() < end {
        match tokio::time::timeout_at(end.into(), conn::send(&mut w, &batch)).await {
            Ok(sent) => sent?,
            Err(_) => break, // the window ended mid-write: the batch does not count
        }
        written += u64::from(FLOOD_BATCH);
    }
    Ok(written)
}

async fn flood(conns: Vec<Conn>, end: Instant) -> Result<AttackFigures> {
    let handles = conns
        .into_iter()
        .zip(0..)
        .map(|(c, i)| tokio::spawn(flood_one(c, i, end)))
        .collect();
    let written = join_all(handles).await?.iter().sum();
    Ok(AttackFigures::Flood {
        written,
        taken: None,
    })
}

static RENICE_WARNED: AtomicBool = AtomicBool::new(false);

/// Lowers the calling thread's priority with `renice` on its thread id (Linux applies
/// setpriority to the one thread); the crate forbids the unsafe a direct call would need.
fn deprioritise_this_thread() {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_owned()));
    let ok = tid.is_some_and(|tid| {
        Command::new("renice")
            .args(["-n", ATTACK_NICE, "-p"])
            .arg(tid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok && !RENICE_WARNED.swap(true, Ordering::Relaxed) {
        eprint!("(warning: could not renice the attack threads) ");
    }
}

/// The attack's runtime: as many workers as the load generator has CPUs, at low priority.
fn attack_runtime() -> Result<Runtime> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("bench-attack")
        .on_thread_start(deprioritise_this_thread)
        .enable_all()
        .build()
        .context("building the attack runtime")
}

/// Attempts in flight at most: each holds a descriptor here and, once accepted, one in the
/// broker, which inherits our limit.
fn in_flight_cap() -> usize {
    let soft = crate::system::open_file_limit().unwrap_or(1024);
    (soft.saturating_sub(FD_RESERVE) as usize).clamp(16, MAX_IN_FLIGHT)
}

/// What the broker used from a sampler's start to its end.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_start: u64,
    rss_peak: u64,
    rss_end: u64,
    /// CPU time (user + system) over wall time, 1.0 being one core.
    cpu: f64,
}

/// Reads the broker's VmRSS every [`RSS_EVERY`] from now until `until`, and its CPU time at
/// both ends.
async fn sample_broker(pid: u32, until: Instant) -> Result<Usage> {
    let pid_s = pid.to_string();
    let (cpu0, t0) = (cpu_seconds(&pid_s)?, Instant::now());
    let mut tick = tokio::time::interval(RSS_EVERY);
    let (mut first, mut peak) = (None, 0);
    loop {
        tick.tick().await;
        let v = rss_bytes(pid)?;
        first.get_or_insert(v);
        peak = peak.max(v);
        if Instant::now() >= until {
            let cpu = (cpu_seconds(&pid_s)? - cpu0) / t0.elapsed().as_secs_f64();
            return Ok(Usage {
                rss_start: first.unwrap_or(v),
                rss_peak: peak,
                rss_end: v,
                cpu,
            });
        }
    }
}

/// One condition's figures.
struct Measured {
    cond: Condition,
    /// Publish-to-delivery times in ns, sorted; warm-up excluded.
    samples: Vec<u64>,
    delivered: u64,
    sent: u64,
    broker: Usage,
    attack: AttackFigures,
    /// How long the attack ran: lead plus window.
    attack_secs: f64,
}

struct Legit {
    sub: Conn,
    /// Held so the publisher's connection stays fully open.
    _pub_reader: FrameReader,
    pub_writer: Writer,
}

struct Ctx {
    addr: SocketAddr,
    pid: u32,
    window: Duration,
    cap: usize,
    attack: Handle,
    counter: Counter,
    legit: Legit,
}

async fn measure(cond: Condition, c: &mut Ctx) -> Result<Measured> {
    // The subscriber sends nothing else: one PINGREQ per condition keeps it within keep-alive
    // however long the run (its PINGRESP is read by the subscriber loop).
    let mut ping = BytesMut::with_capacity(2);
    mqtt::pingreq(&mut ping);
    conn::send(&mut c.legit.sub.1, &ping).await?;
    let flooders = match cond {
        Condition::PublishFlood => c
            .attack
            .spawn(connect_flooders(c.addr))
            .await
            .context("flood publishers' task")??,
        _ => Vec::new(),
    };
    let attack_start = Instant::now();
    let base = attack_start + LEAD;
    let end = base + c.window;
    let usage = tokio::spawn(sample_broker(c.pid, end));
    let attack = match cond {
        Condition::Unloaded => None,
        Condition::ConnectFlood => {
            Some(
                c.attack
                    .spawn(connect_flood(c.addr, attack_start, end, c.cap)),
            )
        }
        Condition::PublishFlood => Some(c.attack.spawn(flood(flooders, end))),
    };
    tokio::time::sleep_until(base.into()).await;
    let warmup = WARMUP.as_nanos() as u64;
    let mut samples = Vec::with_capacity((LEGIT_RATE * (c.window.as_secs() + 1)) as usize);
    let mut bad = 0u64;
    let (sub_r, sub_w) = &mut c.legit.sub;
    let (sent, got) = tokio::join!(
        latency::paced(&mut c.legit.pub_writer, LEGIT_TOPIC, LEGIT_RATE, base, end),
        conn::subscribe_loop(sub_r, sub_w, end, |payload, now| {
            let Some((_, _, stamp)) = conn::parse_payload(payload) else {
                bad += 1;
                return;
            };
            // Late arrivals count too: the drain after the window catches a delayed tail.
            if stamp >= warmup {
                let arrived = now.duration_since(base).as_nanos() as u64;
                samples.push(arrived.saturating_sub(stamp));
            }
        })
    );
    let (sent, got) = (sent.context("legitimate publisher")?, got?);
    if bad > 0 {
        bail!("legitimate subscriber got {bad} payloads without a timestamp");
    }
    let mut figures = match attack {
        Some(h) => h.await.context("attack task")??,
        None => AttackFigures::None,
    };
    let usage = usage.await.context("broker sampler")??;
    if let AttackFigures::Flood { taken, .. } = &mut figures {
        *taken = c.counter.taken(attack_start, end, sent).await;
    }
    tokio::time::sleep_until((end + SETTLE).into()).await;
    if samples.is_empty() {
        bail!(
            "{}: no legitimate message arrived within the window ({sent} sent)",
            cond.label()
        );
    }
    samples.sort_unstable();
    Ok(Measured {
        cond,
        samples,
        delivered: got.in_window,
        sent,
        broker: usage,
        attack: figures,
        attack_secs: (LEAD + c.window).as_secs_f64(),
    })
}

pub async fn run(addr: SocketAddr, pid: u32, kind: Kind, p: &Params) -> Result<Outcome> {
    let mut sub = conn::connect(addr, "bench-legit-sub", KEEP_ALIVE, BIG_READ).await?;
    conn::subscribe(&mut sub.0, &mut sub.1, LEGIT_TOPIC, 0).await?;
    let (pub_reader, pub_writer) = conn::connect(addr, "bench-legit-pub", KEEP_ALIVE, 1024).await?;
    let counter = Counter::start(addr, kind).await?;
    let rt = attack_runtime()?;
    let mut ctx = Ctx {
        addr,
        pid,
        window: Duration::from_secs(p.seconds),
        cap: in_flight_cap(),
        attack: rt.handle().clone(),
        counter,
        legit: Legit {
            sub,
            _pub_reader: pub_reader,
            pub_writer,
        },
    };
    let mut measured = Vec::new();
    let mut failure = None;
    for cond in CONDITIONS {
        match measure(cond, &mut ctx).await {
            Ok(m) => measured.push(m),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Attack tasks still running (only after an error) are dropped with their sockets; a
    // runtime cannot be dropped from inside another one, so it is shut down in the background.
    rt.shutdown_background();
    if let Some(e) = failure {
        return Err(e);
    }
    let window = p.seconds as f64;
    let unloaded_p99 = quantile(&measured[0].samples, 0.99) as f64;
    let mut rows = measured.iter().map(|m| {
        let us = |q: f64| quantile(&m.samples, q) as f64 / 1000.0;
        let p99 = us(0.99);
        let (offered, accepted) = attack_cells(&m.attack, m.attack_secs);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let vs_unloaded = if unloaded_p99 > 0.0 {
            format!("{:.2}", p99 * 1000.0 / unloaded_p99)
        } else {
            "n/a".into()
        };
        Row {
            cells: vec![
                m.cond.label(),
                format!("{:.0}", us(0.50)),
                format!("{p99:.0}"),
                vs_unloaded,
                format!(
                    "{} / {}",
                    thousands(m.delivered as f64 / window),
                    thousands(m.sent as f64 / window)
                ),
                offered,
                accepted,
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    mib(m.broker.rss_start),
                    mib(m.broker.rss_peak),
                    mib(m.broker.rss_end)
                ),
                format!("{:.0} %", m.broker.cpu * 100.0),
            ],
            ratio_keys: vec![p99],
        }
    });
    let first = rows.next().context("no condition measured")?;
    Ok(Outcome {
        cells: first.cells,
        ratio_keys: first.ratio_keys,
        extra_rows: rows.collect(),
    })
}

/// The "attack offered" and "attack accepted / refused" cells.
fn attack_cells(a: &AttackFigures, secs: f64) -> (String, String) {
    match a {
        AttackFigures::None => ("none".into(), "n/a".into()),
        AttackFigures::Connect(c) => {
            let started = c.started();
            let mut offered = format!(
                "{} connections ({}/s)",
                thousands(started as f64),
                thousands(started as f64 / secs)
            );
            if c.skipped > 0 {
                offered.push_str(&format!(
                    ", {} not made (in-flight cap)",
                    thousands(c.skipped as f64)
                ));
            }
            let closed = c.get(Attempt::Closed);
            let code = c.get(Attempt::ConnAckRefused);
            let tcp = c.get(Attempt::TcpFailed);
            let mut why = Vec::new();
            for (n, what) in [
                (closed, "closed before CONNACK"),
                (code, "CONNACK error code"),
                (tcp, "TCP error"),
            ] {
                if n > 0 {
                    why.push(format!("{} {what}", thousands(n as f64)));
                }
            }
            let mut cell = format!(
                "{} / {}",
                thousands(c.get(Attempt::Accepted) as f64),
                thousands((closed + code + tcp) as f64)
            );
            if !why.is_empty() {
                cell.push_str(&format!(" ({})", why.join(", ")));
            }
            for (n, what) in [
                (
                    c.get(Attempt::TimedOut),
                    format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                ),
                (c.get(Attempt::Unexpected), "unexpected reply".into()),
                (
                    c.get(Attempt::LocalError),
                    "load-generator socket errors".into(),
                ),
                (c.unfinished, "unfinished".into()),
            ] {
                if n > 0 {
                    cell.push_str(&format!("; {} {what}", thousands(n as f64)));
                }
            }
            (offered, cell)
        }
        AttackFigures::Flood { written, taken } => {
            let offered = format!(
                "{} msgs written ({}/s)",
                thousands(*written as f64),
                thousands(*written as f64 / secs)
            );
            let cell = match taken {
                Some(t) => format!(
                    "≈ {} taken ({}/s) / ≈ {} unread at the end",
                    thousands(*t),
                    thousands(t / secs),
                    thousands((*written as f64 - t).max(0.0))
                ),
                None => "n/a (no $SYS sample)".into(),
            };
            (offered, cell)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_interpolates_at_the_end_and_steps_at_the_start() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let samples = vec![
            (at(0), 100),
            (at(1000), 100),
            (at(2000), 1100),
            (at(3000), 2100),
        ];
        // Start at 1.5 s: the last value at or before it (100); end at 2.5 s: halfway from
        // 1,100 to 2,100.
        assert_eq!(count_between(&samples, at(1500), at(2500)), Some(1500.0));
        // No sample after the end yet.
        assert_eq!(count_between(&samples, at(500), at(3000)), None);
        // No sample before the start.
        assert_eq!(count_between(&samples[1..], at(500), at(1500)), None);
    }

    #[test]
    fn connect_cells_name_every_outcome() {
        let mut c = ConnectCounts::default();
        c.by_kind[Attempt::Accepted as usize] = 10_000;
        c.by_kind[Attempt::Closed as usize] = 15_000;
        c.by_kind[Attempt::TimedOut as usize] = 3;
        let (offered, cell) = attack_cells(&AttackFigures::Connect(c), 5.0);
        assert_eq!(offered, "25,003 connections (5,001/s)");
        assert_eq!(
            cell,
            "10,000 / 15,000 (15,000 closed before CONNACK); 3 no answer within 1 s"
        );
        let (_, cell) = attack_cells(
            &AttackFigures::Flood {
                written: 1000,
                taken: Some(400.0),
            },
            2.0,
        );
        assert_eq!(cell, "≈ 400 taken (200/s) / ≈ 600 unread at the end");
    }
}
