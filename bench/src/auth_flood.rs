//! auth-flood: a legitimate client's connect latency (user name and the right password) on one
//! broker run, first unloaded, then while one source address sends 1,000 wrong-password
//! CONNECTs as fast as the broker answers them. Bulwark runs with its default brute-force
//! defence (`[auth]` delays and bans), which is what is measured.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio::time::timeout;

use crate::auth::{GUESSED, LEGIT, PASSWORD};
use crate::conn::{self, Transport};
use crate::mqtt::{self, Packet};
use crate::scenario::{join_all, thousands, Outcome, Params, Row};
use crate::system::cpu_seconds;

/// The legitimate client starts a connection this often, whether or not the last one is done.
pub const LEGIT_EVERY: Duration = Duration::from_millis(50);
/// Longest a legitimate attempt may take (TCP connect to CONNACK) before it counts as failed.
pub const LEGIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wrong-password CONNECTs in the flood.
pub const FLOOD_ATTEMPTS: u64 = 1_000;
/// Most flood attempts in flight at once.
pub const FLOOD_IN_FLIGHT: usize = 50;
/// The flood's source address; the legitimate client connects from 127.0.0.1.
pub const FLOOD_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 1);
/// How long a flood attempt waits for its answer: beyond Bulwark's longest delay (8 s).
pub const FLOOD_TIMEOUT: Duration = Duration::from_secs(12);
/// A refusal that took at least this long is counted as slow: Bulwark's first brute-force delay,
/// though waiting for a verification slot can take as long.
pub const SLOW: Duration = Duration::from_millis(250);
const KEEP_ALIVE: u16 = 60;

/// The scenario's paragraph for the report.
pub fn describe(p: &Params) -> String {
    let s = p.seconds;
    format!(
        "MQTT 3.1.1 on the plain listener, both brokers with the same password file and \
         anonymous access off. A legitimate client, `{LEGIT}`, from 127.0.0.1 starts a \
         connection every {every} ms (open loop: it does not wait for the previous one): TCP \
         connect, CONNECT with the right password, CONNACK, DISCONNECT. Latency is TCP connect \
         to CONNACK 0, for the attempts started in each {s} s window; an attempt without \
         CONNACK 0 within {legit} s counts as failed and, in the percentiles, as slower than any \
         other. Two windows on one broker run: **unloaded**, then **flood**: from its start, \
         one source address ({FLOOD_SOURCE}, the socket bound before connecting) sends \
         {attempts} CONNECTs for the identity `{GUESSED}` with wrong passwords, {FLOOD_IN_FLIGHT} \
         in flight, each next one as soon as one is answered, until all are sent or the window \
         ends; each waits up to {flood} s for its answer. *flood answers* counts the CONNACK \
         codes (3.1.1: 4 bad user name or password, 5 not authorised, which is also Bulwark's \
         answer to a banned address), those answered after {slow} ms or more (a brute-force \
         delay, or a wait for a verification slot), closes without CONNACK and timeouts; *flood \
         took* is from its start to its last answer, and how many legitimate attempts started \
         meanwhile (all of them when the flood was not over by the window's end). Bulwark runs with its default `[auth]` \
         brute-force settings (a delay from the 3rd failure, doubling from 250 ms to 8 s; a \
         15-minute ban of the address and of the identity at the 10th) and `max_verifications` \
         {mv}; Mosquitto has no brute-force defence. *broker CPU* is over the window, in % of \
         one core. With {per} attempts per window, p99 is close to the slowest.",
        every = LEGIT_EVERY.as_millis(),
        legit = LEGIT_TIMEOUT.as_secs(),
        attempts = thousands(FLOOD_ATTEMPTS as f64),
        flood = FLOOD_TIMEOUT.as_secs(),
        slow = SLOW.as_millis(),
        mv = crate::auth::MAX_VERIFICATIONS,
        per = s * 1000 / LEGIT_EVERY.as_millis() as u64,
    )
}

/// Method notes for the report when auth-flood runs.
pub fn method_notes() -> Vec<String> {
    vec![format!(
        "auth-flood runs Bulwark with its default `[auth]` brute-force settings \
         (failures_before_delay 3, failures_before_ban 10, failure_window and ban_time 900 s) \
         but with connection admission raised as in the other scenarios: at its default \
         connection_rate_per_address (50 new connections a second from one address) most of the \
         flood would be refused at accept, before any password is checked, and the \
         authentication layer would not be what is measured. The flood guesses the password of \
         another identity than the legitimate client's: a flood against the legitimate client's \
         own identity bans that identity after 10 failures, locking its owner out for \
         ban_time (documented trade-off, not measured here). The legitimate client's \
         connections and the flood run in this tool on the same runtime; the flood keeps at \
         most {FLOOD_IN_FLIGHT} sockets open."
    )]
}

/// How one flood attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A CONNACK with this return code, after this long.
    Code(u8, Duration),
    /// The broker closed or reset the connection before any CONNACK.
    Closed,
    TcpFailed,
    TimedOut,
    /// The load generator could not make the socket.
    LocalError,
    /// Something other than a CONNACK came back.
    Unexpected,
}

/// The flood's figures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct FloodCounts {
    /// Per CONNACK code: (answered within [`SLOW`], answered after it).
    codes: BTreeMap<u8, (u64, u64)>,
    closed: u64,
    tcp_failed: u64,
    timed_out: u64,
    local_error: u64,
    unexpected: u64,
    /// Attempts not sent by the window's end.
    not_sent: u64,
    /// Attempts still running when the bench stopped waiting.
    unfinished: u64,
    /// From the flood's start to its last answer.
    took: Duration,
}

impl FloodCounts {
    /// Whether every attempt was sent and answered.
    fn over(&self) -> bool {
        self.not_sent == 0 && self.timed_out == 0 && self.unfinished == 0 && self.local_error == 0
    }

    fn add(&mut self, a: Answer) {
        match a {
            Answer::Code(code, took) => {
                let e = self.codes.entry(code).or_default();
                if took >= SLOW {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
            Answer::Closed => self.closed += 1,
            Answer::TcpFailed => self.tcp_failed += 1,
            Answer::TimedOut => self.timed_out += 1,
            Answer::LocalError => self.local_error += 1,
            Answer::Unexpected => self.unexpected += 1,
        }
    }

    /// The "flood answers" cell.
    fn answers_cell(&self) -> String {
        let mut parts: Vec<String> = self
            .codes
            .iter()
            .map(|(code, (fast, slow))| {
                let what = if *code == 0 {
                    "accepted (code 0)".to_string()
                } else {
                    format!("code {code}")
                };
                let mut s = format!("{what}: {}", thousands((fast + slow) as f64));
                if *slow > 0 {
                    s.push_str(&format!(
                        " ({} after ≥ {} ms)",
                        thousands(*slow as f64),
                        SLOW.as_millis()
                    ));
                }
                s
            })
            .collect();
        for (n, what) in [
            (self.closed, "closed before CONNACK".to_string()),
            (self.tcp_failed, "TCP error".into()),
            (
                self.timed_out,
                format!("no answer within {} s", FLOOD_TIMEOUT.as_secs()),
            ),
            (self.unexpected, "unexpected reply".into()),
            (self.local_error, "load-generator socket errors".into()),
            (self.not_sent, "not sent by the window's end".into()),
            (self.unfinished, "unfinished".into()),
        ] {
            if n > 0 {
                parts.push(format!("{what}: {}", thousands(n as f64)));
            }
        }
        parts.join("; ")
    }
}

fn bound_socket(src: Ipv4Addr) -> std::io::Result<TcpSocket> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(SocketAddr::from((src, 0)))?;
    Ok(s)
}

/// One wrong-password CONNECT from [`FLOOD_SOURCE`] and its answer.
async fn flood_attempt(addr: SocketAddr, n: u64) -> Answer {
    let Ok(socket) = bound_socket(FLOOD_SOURCE) else {
        return Answer::LocalError;
    };
    let started = Instant::now();
    let exchange = async {
        let Ok(mut stream) = socket.connect(addr).await else {
            return Answer::TcpFailed;
        };
        let _ = stream.set_nodelay(true);
        let mut out = BytesMut::with_capacity(96);
        let password = format!("wrong-password-{n}");
        mqtt::connect_login(
            &mut out,
            &format!("{GUESSED}-{n}"),
            KEEP_ALIVE,
            Some((GUESSED, &password)),
        );
        if stream.write_all(&out).await.is_err() {
            return Answer::Closed;
        }
        let mut buf = [0u8; 64];
        let mut len = 0;
        loop {
            match stream.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return Answer::Closed,
                Ok(k) => len += k,
            }
            match mqtt::decode(&buf[..len]) {
                Ok(Some((Packet::ConnAck { return_code }, _))) => {
                    return Answer::Code(return_code, started.elapsed())
                }
                Ok(None) if len < buf.len() => {}
                _ => return Answer::Unexpected,
            }
        }
    };
    timeout(FLOOD_TIMEOUT, exchange)
        .await
        .unwrap_or(Answer::TimedOut)
}

/// Sends the flood from `start`, at most [`FLOOD_IN_FLIGHT`] at once, until all are sent or
/// `end`; then waits for the answers.
async fn flood(addr: SocketAddr, start: Instant, end: Instant) -> FloodCounts {
    let counts = Arc::new(Mutex::new(FloodCounts::default()));
    let last = Arc::new(Mutex::new(start));
    let permits = Arc::new(Semaphore::new(FLOOD_IN_FLIGHT));
    let mut not_sent = 0;
    for n in 0..FLOOD_ATTEMPTS {
        let permit =
            match tokio::time::timeout_at(end.into(), permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    not_sent = FLOOD_ATTEMPTS - n;
                    break;
                }
            };
        let (counts, last) = (counts.clone(), last.clone());
        tokio::spawn(async move {
            let a = flood_attempt(addr, n).await;
            let now = Instant::now();
            counts.lock().unwrap_or_else(PoisonError::into_inner).add(a);
            if a != Answer::TimedOut && a != Answer::LocalError {
                let mut l = last.lock().unwrap_or_else(PoisonError::into_inner);
                *l = (*l).max(now);
            }
            drop(permit);
        });
    }
    let all = FLOOD_IN_FLIGHT as u32;
    let finished = timeout(
        FLOOD_TIMEOUT + Duration::from_secs(2),
        permits.acquire_many(all),
    )
    .await;
    let mut c = counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    c.not_sent = not_sent;
    if finished.is_err() {
        c.unfinished = permits.available_permits().abs_diff(FLOOD_IN_FLIGHT) as u64;
    }
    c.took = last
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .duration_since(start);
    c
}

/// One legitimate connection: TCP connect to CONNACK 0 (the time returned), then DISCONNECT.
async fn legit_once(addr: SocketAddr, n: u64) -> Result<Duration> {
    let started = Instant::now();
    let id = format!("{LEGIT}-{n}");
    let login = Some((LEGIT, PASSWORD));
    let (_r, mut w) = timeout(
        LEGIT_TIMEOUT,
        conn::open_as(addr, &Transport::Plain, &id, login, KEEP_ALIVE, 256),
    )
    .await
    .with_context(|| format!("no CONNACK within {LEGIT_TIMEOUT:?}"))??;
    let took = started.elapsed();
    let mut out = BytesMut::with_capacity(2);
    mqtt::disconnect(&mut out);
    conn::send(&mut w, &out).await?;
    Ok(took)
}

/// One window's figures.
struct Measured {
    /// Connect-to-CONNACK of each legitimate attempt; `None`: it failed or timed out.
    legit: Vec<Option<Duration>>,
    first_error: Option<anyhow::Error>,
    /// Legitimate attempts started before the flood's last answer.
    during_flood: usize,
    flood: Option<FloodCounts>,
    /// Broker CPU time over the window, 1.0 being one core.
    cpu: f64,
}

impl Measured {
    fn ok(&self) -> usize {
        self.legit.iter().filter(|t| t.is_some()).count()
    }

    /// The `q` quantile, failures counting as slower than any success; `None` if it is one.
    fn quantile(&self, q: f64) -> Option<Duration> {
        let mut v = self.legit.clone();
        v.sort_unstable_by_key(|t| t.unwrap_or(Duration::MAX));
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    }
}

async fn measure(
    addr: SocketAddr,
    pid: u32,
    window: Duration,
    with_flood: bool,
) -> Result<Measured> {
    let pid_s = pid.to_string();
    let cpu0 = cpu_seconds(&pid_s)?;
    let start = Instant::now();
    let end = start + window;
    let flood = with_flood.then(|| tokio::spawn(flood(addr, start, end)));
    let mut tick = tokio::time::interval(LEGIT_EVERY);
    let mut legit = Vec::new();
    let mut n = 0u64;
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        n += 1;
        let h = tokio::spawn(async move { anyhow::Ok((now, legit_once(addr, n).await)) });
        legit.push(h);
    }
    let cpu = (cpu_seconds(&pid_s)? - cpu0) / start.elapsed().as_secs_f64();
    let results = join_all(legit).await?;
    let flood = match flood {
        Some(h) => Some(h.await.context("flood task")?),
        None => None,
    };
    // A flood still on at the window's end had every legitimate attempt during it.
    let flood_end = flood
        .as_ref()
        .map(|f| if f.over() { start + f.took } else { end });
    let mut first_error = None;
    let mut times = Vec::with_capacity(results.len());
    let mut during_flood = 0;
    for (at, r) in results {
        if flood_end.is_some_and(|e| at <= e) {
            during_flood += 1;
        }
        match r {
            Ok(t) => times.push(Some(t)),
            Err(e) => {
                first_error.get_or_insert(e);
                times.push(None);
            }
        }
    }
    Ok(Measured {
        legit: times,
        first_error,
        during_flood,
        flood,
        cpu,
    })
}

fn ms(t: Option<Duration>) -> String {
    match t {
        Some(t) => format!("{:.1}", t.as_secs_f64() * 1000.0),
        None => "failed".into(),
    }
}

pub async fn run(addr: SocketAddr, pid: u32, p: &Params) -> Result<Outcome> {
    legit_once(addr, 0)
        .await
        .context("auth-flood: legitimate probe connection")?;
    let window = Duration::from_secs(p.seconds);
    let unloaded = measure(addr, pid, window, false).await?;
    let flooded = measure(addr, pid, window, true).await?;
    let base_p99 = unloaded.quantile(0.99);
    let rows: Vec<Row> = [&unloaded, &flooded]
        .into_iter()
        .map(|m| {
            let p99 = m.quantile(0.99);
            let vs = match (p99, base_p99) {
                (Some(a), Some(b)) if !b.is_zero() => {
                    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
                }
                _ => "n/a".into(),
            };
            let (label, answers, took) = match &m.flood {
                None => ("unloaded".to_string(), "none".into(), "n/a".into()),
                Some(f) => (
                    format!(
                        "flood: {} wrong passwords from {FLOOD_SOURCE}",
                        thousands(FLOOD_ATTEMPTS as f64)
                    ),
                    f.answers_cell(),
                    if f.over() {
                        format!(
                            "{:.2} s ({} legit attempts during it)",
                            f.took.as_secs_f64(),
                            m.during_flood
                        )
                    } else {
                        format!(
                            "not over by the window's end (last answer at {:.2} s)",
                            f.took.as_secs_f64()
                        )
                    },
                ),
            };
            let mut ok = format!("{} / {}", m.ok(), m.legit.len());
            if let Some(e) = &m.first_error {
                ok.push_str(&format!(" (first failure: {e:#})"));
            }
            Row {
                cells: vec![
                    label,
                    ms(m.quantile(0.5)),
                    ms(p99),
                    vs,
                    ok,
                    answers,
                    took,
                    format!("{:.0} %", m.cpu * 100.0),
                ],
                ratio_keys: vec![p99.map_or(f64::INFINITY, |t| t.as_secs_f64() * 1000.0)],
            }
        })
        .collect();
    let mut rows = rows.into_iter();
    let first = rows.next().context("no window measured")?;
    Ok(Outcome {
        cells: first.cells,
        ratio_keys: first.ratio_keys,
        extra_rows: rows.collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_cell_names_codes_and_slow_answers() {
        let mut c = FloodCounts::default();
        c.add(Answer::Code(4, Duration::from_millis(30)));
        c.add(Answer::Code(4, Duration::from_millis(400)));
        c.add(Answer::Code(5, Duration::from_millis(1)));
        c.add(Answer::Closed);
        c.not_sent = 3;
        assert_eq!(
            c.answers_cell(),
            "code 4: 2 (1 after ≥ 250 ms); code 5: 1; closed before CONNACK: 1; \
             not sent by the window's end: 3"
        );
    }

    #[test]
    fn failures_rank_slowest() {
        let m = Measured {
            legit: vec![
                Some(Duration::from_millis(5)),
                None,
                Some(Duration::from_millis(1)),
            ],
            first_error: None,
            during_flood: 0,
            flood: None,
            cpu: 0.0,
        };
        assert_eq!(m.quantile(0.5), Some(Duration::from_millis(5)));
        assert_eq!(m.quantile(0.99), None);
        assert_eq!(m.ok(), 2);
    }
}
