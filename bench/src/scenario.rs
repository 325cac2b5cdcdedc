//! The scenario catalogue: names, table columns, and dispatch to the code that runs each one.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use tokio::task::JoinHandle;

use crate::auth::BruteForce;
use crate::broker::Kind;
use crate::conn::Transport;
use crate::handshake::Clients;
use crate::{attack, auth, auth_flood, fanin, fanout, handshake, idle, latency, qos1};

/// What a scenario needs besides the broker's address.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub seconds: u64,
    pub idle_connections: usize,
}

/// The broker under test as a scenario sees it.
pub struct Target {
    pub addr: SocketAddr,
    pub pid: u32,
    pub kind: Kind,
    /// The `mqtts` listener and how to reach it, for the TLS scenarios.
    pub tls: Option<(SocketAddr, Transport)>,
}

/// One table row's figures: display cells, and the values the ratio column compares.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub cells: Vec<String>,
    pub ratio_keys: Vec<f64>,
    /// Further rows for the same broker run, with the same columns (under-attack: one per
    /// condition). Each is compared with the other broker's row at the same position.
    pub extra_rows: Vec<Row>,
}

/// A table row after an outcome's first.
#[derive(Debug, Clone)]
pub struct Row {
    pub cells: Vec<String>,
    pub ratio_keys: Vec<f64>,
}

impl Outcome {
    /// Every row: the first, then the extra ones.
    pub fn rows(&self) -> impl Iterator<Item = (&[String], &[f64])> {
        std::iter::once((self.cells.as_slice(), self.ratio_keys.as_slice())).chain(
            self.extra_rows
                .iter()
                .map(|r| (r.cells.as_slice(), r.ratio_keys.as_slice())),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    FaninQos0,
    FaninQos1,
    Fanout,
    Latency,
    IdleMemory,
    TlsHandshake,
    MtlsHandshake,
    FaninQos0Tls,
    UnderAttack,
    AuthConnect,
    AuthFlood,
}

pub const ALL: [Scenario; 11] = [
    Scenario::FaninQos0,
    Scenario::FaninQos1,
    Scenario::Fanout,
    Scenario::Latency,
    Scenario::IdleMemory,
    Scenario::TlsHandshake,
    Scenario::MtlsHandshake,
    Scenario::FaninQos0Tls,
    Scenario::UnderAttack,
    Scenario::AuthConnect,
    Scenario::AuthFlood,
];

impl Scenario {
    pub fn parse(name: &str) -> Result<Self> {
        ALL.into_iter().find(|s| s.name() == name).with_context(|| {
            let names: Vec<_> = ALL.iter().map(|s| s.name()).collect();
            format!("unknown scenario {name:?}; known: {}", names.join(","))
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::FaninQos0 => "fanin-qos0",
            Scenario::FaninQos1 => "fanin-qos1",
            Scenario::Fanout => "fanout",
            Scenario::Latency => "latency",
            Scenario::IdleMemory => "idle-memory",
            Scenario::TlsHandshake => "tls-handshake",
            Scenario::MtlsHandshake => "mtls-handshake",
            Scenario::FaninQos0Tls => "fanin-qos0-tls",
            Scenario::UnderAttack => "under-attack",
            Scenario::AuthConnect => "auth-connect",
            Scenario::AuthFlood => "auth-flood",
        }
    }

    /// Whether the broker needs an `mqtts` listener, and if so whether it requires client
    /// certificates (and the bench presents one).
    pub fn tls(self) -> Option<bool> {
        match self {
            Scenario::TlsHandshake | Scenario::FaninQos0Tls => Some(false),
            Scenario::MtlsHandshake => Some(true),
            _ => None,
        }
    }

    /// Whether the broker checks user names and passwords, and with which brute-force defence.
    pub fn auth(self) -> Option<BruteForce> {
        match self {
            Scenario::AuthConnect => Some(BruteForce::Raised),
            Scenario::AuthFlood => Some(BruteForce::Defaults),
            _ => None,
        }
    }

    /// Whether the broker runs with its default abuse limits (under-attack measures them)
    /// rather than the bench's raised admission and publish limits.
    pub fn default_limits(self) -> bool {
        self == Scenario::UnderAttack
    }

    /// How many `--seconds` windows the scenario measures, for its time limit.
    pub fn windows(self) -> u64 {
        match self {
            Scenario::UnderAttack => attack::CONDITIONS.len() as u64,
            Scenario::AuthFlood => 2,
            _ => 1,
        }
    }

    /// One paragraph saying exactly what is measured, printed above the table.
    pub fn describe(self, p: &Params) -> String {
        let s = p.seconds;
        match self {
            Scenario::FaninQos0 => format!(
                "{} publishers send 64-byte QoS 0 messages to `bench/p<i>` as fast as the broker \
                 takes them for {s} s; one subscriber on `bench/#`. *received/s* counts what the \
                 subscriber got within the {s} s window; *loss* compares everything received \
                 (after a drain) with everything sent.",
                fanin::PUBLISHERS
            ),
            Scenario::FaninQos1 => format!(
                "As fanin-qos0 at QoS 1: each publisher keeps up to {} unacknowledged messages in \
                 flight; the subscriber subscribes at QoS 1 and PUBACKs every read. After {s} s \
                 the publishers stop and the subscriber drains. *dropped* counts messages whose \
                 PUBACK the publisher received but which never reached the subscriber.",
                qos1::WINDOW
            ),
            Scenario::Fanout => format!(
                "1 publisher sends 64-byte QoS 0 messages to one topic for {s} s; {} \
                 subscribers. The publisher runs as fast as the broker fans out but stays at \
                 most {} messages ahead of the slowest subscriber, so the figure is fan-out \
                 speed, not a socket-buffer backlog. *deliveries/s* is the sum over subscribers \
                 within the window; loss compares each subscriber's total (after a drain) with \
                 what was sent.",
                fanout::SUBSCRIBERS,
                fanout::AHEAD
            ),
            Scenario::Latency => format!(
                "1 publisher at a paced {} msg/s (a batch per 1 ms tick) of QoS 0, 64-byte \
                 messages carrying their send time; 1 subscriber. Latency is publish-write to \
                 subscriber-read, over {s} s minus a {} ms warm-up. Lower is better.",
                latency::RATE,
                latency::WARMUP.as_millis()
            ),
            Scenario::IdleMemory => format!(
                "{} connections (unique client ids, keep-alive 300 s: Bulwark refuses 3.1.1 keep-alive 0 by default) each wait for CONNACK; the \
                 broker's VmRSS is read before and 1 s after. Lower is better.",
                p.idle_connections
            ),
            Scenario::TlsHandshake => format!(
                "{} client tasks open connections back to back for {s} s to the broker's TLS \
                 listener, each: TCP connect, a full TLS 1.3 handshake (ECDSA P-256 server \
                 certificate, no session resumption, no client certificate), CONNECT/CONNACK \
                 with a unique client id, then DISCONNECT; the client closes once the broker \
                 has. *connections/s* counts CONNACKs received within the \
                 window; p50/p99 are TCP connect to CONNACK; *broker CPU* and *load-gen CPU* \
                 are CPU time (user + system, from /proc) used during the window, in % of one \
                 core; *broker CPU µs/conn* is the broker's CPU time divided by the completed \
                 connections. One verified connection checks the setup first; the measured \
                 loop's client skips verifying the server's certificate and signature (see \
                 Method).",
                handshake::TASKS
            ),
            Scenario::MtlsHandshake => "As tls-handshake with mutual TLS: the listener requires a \
                 client certificate (ECDSA P-256, from the same CA) and the client presents one, \
                 so the broker also verifies a certificate chain and a signature per connection. \
                 Bulwark: `client_auth = \"required\"` with `tls_ca`, `allow_anonymous = false` \
                 (the certificate's common name is the identity). Mosquitto: `cafile`, \
                 `require_certificate true`, `use_identity_as_username true`."
                .to_string(),
            Scenario::FaninQos0Tls => format!(
                "As fanin-qos0 ({} publishers, 64-byte QoS 0 messages, one subscriber on \
                 `bench/#`, {s} s), with every connection over TLS 1.3 to the broker's TLS \
                 listener (no client certificates).",
                fanin::PUBLISHERS
            ),
            Scenario::UnderAttack => attack::describe(p),
            Scenario::AuthConnect => format!(
                "Successful authenticated connections per second: {} client tasks (task *t* is \
                 identity `bench-auth-t`, client IDs `bench-auth-t-N`) open connections back to \
                 back for {s} s on the plain listener, each: TCP connect, CONNECT (MQTT 3.1.1) \
                 with user name and the right password, CONNACK 0, DISCONNECT; the client closes \
                 once the broker has. Columns as in tls-handshake: *connections/s* counts \
                 CONNACKs within the window, p50/p99 are TCP connect to CONNACK, *broker CPU \
                 µs/conn* is the broker's CPU time per completed connection. Bulwark verifies \
                 argon2id ({}) hashes, at most {} at once; Mosquitto PBKDF2-SHA512 hashes (see \
                 Method). When the broker is the bottleneck, every task waits its turn: latency \
                 is then about tasks / rate (for Bulwark mostly the wait for a verification \
                 slot); auth-flood's unloaded row shows one connection alone.",
                auth::TASKS,
                auth::ARGON2_PARAMS,
                auth::MAX_VERIFICATIONS
            ),
            Scenario::AuthFlood => auth_flood::describe(p),
        }
    }

    /// Column headers after "Pinning" and "Broker", and the ratio column's header.
    pub fn headers(self) -> (&'static [&'static str], &'static str) {
        match self {
            Scenario::FaninQos0 => (
                &["received msg/s", "sent msg/s", "loss"],
                "bulwark/mosquitto received (higher is better)",
            ),
            Scenario::FaninQos1 => (
                &[
                    "delivered msg/s",
                    "acked msg/s",
                    "dropped after ack",
                    "unacked at end",
                ],
                "bulwark/mosquitto delivered (higher is better)",
            ),
            Scenario::Fanout => (
                &["deliveries/s", "sent msg/s", "loss avg", "loss worst sub"],
                "bulwark/mosquitto deliveries (higher is better)",
            ),
            Scenario::Latency => (
                &["p50 µs", "p99 µs", "p99.9 µs", "max µs", "samples / sent"],
                "bulwark/mosquitto p50 / p99 (lower is better)",
            ),
            Scenario::IdleMemory => (
                &["bytes/conn", "RSS before", "RSS after", "connections"],
                "bulwark/mosquitto bytes/conn (lower is better)",
            ),
            Scenario::TlsHandshake | Scenario::MtlsHandshake | Scenario::AuthConnect => (
                &[
                    "connections/s",
                    "p50 ms",
                    "p99 ms",
                    "failed",
                    "broker CPU",
                    "broker CPU µs/conn",
                    "load-gen CPU",
                ],
                "bulwark/mosquitto connections/s (higher is better) / CPU µs/conn (lower is better)",
            ),
            Scenario::FaninQos0Tls => (
                &["received msg/s", "sent msg/s", "loss"],
                "bulwark/mosquitto received (higher is better)",
            ),
            Scenario::UnderAttack => (
                &[
                    "condition",
                    "legit p50 µs",
                    "legit p99 µs",
                    "p99 / unloaded p99",
                    "legit delivered / offered msg/s",
                    "attack offered",
                    "attack accepted / refused",
                    "RSS start / peak / end MiB",
                    "broker CPU",
                ],
                "bulwark/mosquitto legit p99 (lower is better)",
            ),
            Scenario::AuthFlood => (
                &[
                    "condition",
                    "legit p50 ms",
                    "legit p99 ms",
                    "p99 / unloaded p99",
                    "legit CONNACK 0 / attempts",
                    "flood answers",
                    "flood took",
                    "broker CPU",
                ],
                "bulwark/mosquitto legit p99 (lower is better)",
            ),
        }
    }

    /// Runs the scenario against a started broker.
    pub async fn run(self, t: &Target, p: &Params) -> Result<Outcome> {
        let addr = t.addr;
        let tls = || {
            t.tls
                .as_ref()
                .context("the broker was started without a TLS listener")
        };
        match self {
            Scenario::FaninQos0 => fanin::run(addr, &Transport::Plain, p, self.name()).await,
            Scenario::FaninQos1 => qos1::run(addr, p).await,
            Scenario::Fanout => fanout::run(addr, p).await,
            Scenario::Latency => latency::run(addr, p).await,
            Scenario::IdleMemory => idle::run(addr, t.pid, p).await,
            Scenario::TlsHandshake | Scenario::MtlsHandshake => {
                let (at, transport) = tls()?;
                handshake::run(*at, transport, t.pid, p, self.name(), Clients::Anonymous).await
            }
            Scenario::AuthConnect => {
                let plain = Transport::Plain;
                handshake::run(addr, &plain, t.pid, p, self.name(), Clients::Login).await
            }
            Scenario::AuthFlood => auth_flood::run(addr, t.pid, p).await,
            Scenario::FaninQos0Tls => {
                let (at, transport) = tls()?;
                fanin::run(*at, transport, p, self.name()).await
            }
            Scenario::UnderAttack => attack::run(addr, t.pid, t.kind, p).await,
        }
    }
}

/// Awaits every task, returning the first error (a panic counts as one).
pub async fn join_all<T>(handles: Vec<JoinHandle<Result<T>>>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(handles.len());
    let mut first_err = None;
    for h in handles {
        match h.await {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("client task failed: {e}"));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Formats a rate with thousands separators, e.g. `1,234,567`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let mut reversed = String::new();
    for (i, c) in n.to_string().chars().rev().enumerate() {
        if i > 0 && i % 3 == 0 {
            reversed.push(',');
        }
        reversed.push(c);
    }
    reversed.chars().rev().collect()
}

/// Percentage with two decimals.
pub fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "n/a".into();
    }
    format!("{:.2} %", 100.0 * part / whole)
}

/// Fails early with a clear message when a scenario got nothing through at all.
pub fn ensure_traffic(received: u64, what: &str) -> Result<()> {
    if received == 0 {
        bail!("{what}: no message reached the subscriber");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.4), "1,234,567");
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in ALL {
            assert_eq!(Scenario::parse(s.name()).unwrap(), s);
        }
        assert!(Scenario::parse("nope").is_err());
    }
}
