//! Connection admission: whether a freshly accepted socket may be served at
//! all, decided from its source address before a single byte is read (and,
//! once TLS arrives, before any handshake work is spent on it).
//!
//! Sans-IO: no sockets and no clock. [`AdmissionState`] is plain data that is
//! told `now`; [`Admission`] wraps it in a mutex for the accept loops, and
//! hands out a [`Ticket`] whose `Drop` gives back what the connection held.
//!
//! Invariants:
//! - every limit is > 0; none means "unlimited";
//! - `open` and each address's `open` count exactly the live tickets, and
//!   `pending` the live tickets that have not completed CONNECT;
//! - the per-address map is bounded: an address is forgotten as soon as it
//!   holds no connection and its bucket is full again (a full bucket behaves
//!   exactly like a fresh one, so forgetting changes nothing). Buckets refill
//!   in one second (burst = rate), so idle entries come only from admissions
//!   of the last ~2 s: at most `max_connections + 3 × connection_rate_total`
//!   entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use crate::rate::TokenBucket;

/// The admission limits; see `docs/configuration.md` for the reasoning
/// behind each default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Open connections in total, CONNECT completed or not.
    pub max_connections: u32,
    /// Open connections from one source address (IPv6: one /64).
    pub max_connections_per_address: u32,
    /// New connections per second from one source address; burst = rate.
    pub connection_rate_per_address: u32,
    /// New connections per second in total; burst = rate.
    pub connection_rate_total: u32,
    /// Accepted connections that have not completed CONNECT yet.
    pub max_pending_connects: u32,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_connections: 100_000,
            max_connections_per_address: 1_000,
            connection_rate_per_address: 50,
            connection_rate_total: 2_000,
            max_pending_connects: 1_024,
        }
    }
}

/// Why a connection was refused. The order of the variants is the order of
/// the checks: global caps first (cheapest, and they protect everyone), then
/// the per-address ones, rates last so a refused attempt spends no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MaxConnections,
    PendingConnects,
    ConnectionsPerAddress,
    ConnectionRate,
}

impl Refusal {
    fn index(self) -> usize {
        self as usize
    }

    /// The configuration key whose limit was reached, for the log line.
    pub fn key(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::PendingConnects => "max_pending_connects",
            Refusal::ConnectionsPerAddress => "max_connections_per_address",
            Refusal::ConnectionRate => "connection_rate",
        }
    }
}

#[derive(Debug)]
struct Entry {
    open: u32,
    bucket: TokenBucket,
}

/// The key for per-address limits: an IPv4 address, or the /64 of an IPv6
/// one (a single host usually holds a whole /64, so per-/128 limits would
/// cost an attacker nothing). IPv4-mapped IPv6 counts as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4(u32),
    V6Prefix64(u64),
}

impl AddressKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => AddressKey::V6Prefix64((u128::from(v6) >> 64) as u64),
        }
    }
}

/// The sans-IO admission state: counters, the global bucket and the bounded
/// map of per-address buckets.
#[derive(Debug)]
pub struct AdmissionState {
    limits: AdmissionLimits,
    addresses: HashMap<AddressKey, Entry>,
    total: TokenBucket,
    open: u32,
    pending: u32,
    last_sweep: Instant,
    /// When each refusal reason was last logged, and how many refusals
    /// went unlogged since: a flood must not become a log flood.
    last_log: [Option<Instant>; 4],
    unlogged: [u64; 4],
}

/// Interval between sweeps of forgettable addresses, and between two log
/// lines for the same refusal reason.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(1);

impl AdmissionState {
    pub fn new(limits: AdmissionLimits, now: Instant) -> Self {
        let total = TokenBucket::full(limits.connection_rate_total, now);
        AdmissionState {
            limits,
            addresses: HashMap::new(),
            total,
            open: 0,
            pending: 0,
            last_sweep: now,
            last_log: [None; 4],
            unlogged: [0; 4],
        }
    }

    /// Admits a new connection from `ip` at `now`, counting it as open and
    /// pending, or says why not. A refusal changes no count and spends no
    /// token.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        if now.saturating_duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.sweep(now);
        }
        if self.open >= self.limits.max_connections {
            return Err(Refusal::MaxConnections);
        }
        if self.pending >= self.limits.max_pending_connects {
            return Err(Refusal::PendingConnects);
        }
        let key = AddressKey::of(ip);
        let rate = self.limits.connection_rate_per_address;
        if let Some(entry) = self.addresses.get_mut(&key) {
            if entry.open >= self.limits.max_connections_per_address {
                return Err(Refusal::ConnectionsPerAddress);
            }
            if !entry.bucket.ready(now) {
                return Err(Refusal::ConnectionRate);
            }
        }
        // Unknown addresses have a full bucket; the global bucket is checked
        // before an entry is created, so refused strangers leave no trace.
        if !self.total.ready(now) {
            return Err(Refusal::ConnectionRate);
        }
        self.total.take();
        let entry = self.addresses.entry(key).or_insert_with(|| Entry {
            open: 0,
            bucket: TokenBucket::full(rate, now),
        });
        entry.bucket.take();
        entry.open += 1;
        self.open += 1;
        self.pending += 1;
        Ok(())
    }

    /// The connection completed CONNECT: it no longer counts as pending.
    pub fn connected(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// The connection ended; `pending` if it never completed CONNECT.
    pub fn release(&mut self, ip: IpAddr, pending: bool) {
        if pending {
            self.pending = self.pending.saturating_sub(1);
        }
        self.open = self.open.saturating_sub(1);
        if let Some(entry) = self.addresses.get_mut(&AddressKey::of(ip)) {
            entry.open = entry.open.saturating_sub(1);
        }
    }

    /// Forgets addresses that hold nothing: no connection and a full bucket.
    pub fn sweep(&mut self, now: Instant) {
        self.addresses
            .retain(|_, e| e.open > 0 || !e.bucket.is_full(now));
        self.last_sweep = now;
    }

    /// Whether to log a refusal for `reason` now: at most once per
    /// [`LOG_EVERY`] per reason. `Some(n)`: log, mentioning the `n`
    /// refusals for this reason that were not logged since the last line.
    pub fn log_refusal(&mut self, reason: Refusal, now: Instant) -> Option<u64> {
        let i = reason.index();
        let (Some(last), Some(unlogged)) = (self.last_log.get_mut(i), self.unlogged.get_mut(i))
        else {
            return None;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY) {
            *unlogged += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(unlogged))
    }

    /// Addresses currently tracked (for tests and the bound above).
    pub fn tracked_addresses(&self) -> usize {
        self.addresses.len()
    }

    pub fn open(&self) -> u32 {
        self.open
    }

    pub fn pending(&self) -> u32 {
        self.pending
    }
}

/// The shared admission state of one broker, for every listener.
#[derive(Debug)]
pub struct Admission {
    state: Mutex<AdmissionState>,
}

/// A refused connection, with what the caller should log.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    pub reason: Refusal,
    /// `Some(n)`: log this refusal (and that `n` others went unlogged).
    pub log: Option<u64>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Arc<Admission> {
        Arc::new(Admission {
            state: Mutex::new(AdmissionState::new(limits, Instant::now())),
        })
    }

    fn lock(&self) -> MutexGuard<'_, AdmissionState> {
        // The state stays consistent across a panic in another holder (every
        // update is a few integer steps), so a poisoned lock is still used.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip`; the ticket holds its counts until
    /// dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Ticket, Refused> {
        let mut state = self.lock();
        match state.admit(ip, now) {
            Ok(()) => Ok(Ticket {
                admission: Arc::clone(self),
                ip,
                pending: true,
            }),
            Err(reason) => Err(Refused {
                reason,
                log: state.log_refusal(reason, now),
            }),
        }
    }

    /// (open, pending) connections, for tests and diagnostics.
    pub fn counts(&self) -> (u32, u32) {
        let s = self.lock();
        (s.open(), s.pending())
    }

    pub fn tracked_addresses(&self) -> usize {
        self.lock().tracked_addresses()
    }
}

/// One admitted connection's share of the limits. Dropping it gives them
/// back, however the connection ends.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    pending: bool,
}

impl Ticket {
    /// CONNECT completed: frees the pending-connect slot early.
    pub fn connected(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.admission.lock().connected();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.lock().release(self.ip, self.pending);
    }
}

#[cfg(test)]
mod tests;
