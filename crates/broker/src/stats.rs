//! Broker-wide counters, published under `$SYS/broker/...` and later
//! exported as metrics. Relaxed atomics: each is a monotonic count or a gauge
//! read for reporting, never used to synchronise anything.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    pub clients_connected: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// A session's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// QoS 0 for a session with no connection (not queued, by design).
    pub dropped_offline_qos0: AtomicU64,
    /// Message expiry interval passed before delivery.
    pub dropped_expired: AtomicU64,
    /// Larger than the Maximum Packet Size the subscriber announced.
    pub dropped_too_large: AtomicU64,
    pub malformed_packets: AtomicU64,
    /// CONNECTs refused by authentication (including session takeovers
    /// across identities).
    pub auth_failures: AtomicU64,
    pub protocol_errors: AtomicU64,
    /// Connections closed at accept, before anything was read, by reason
    /// (see `admission`).
    pub refused_max_connections: AtomicU64,
    pub refused_pending_connects: AtomicU64,
    pub refused_connections_per_address: AtomicU64,
    pub refused_connection_rate: AtomicU64,
    /// PUBLISH over a connection's rate or bandwidth limit: each time a
    /// connection had to wait ("throttle"), or was closed ("disconnect").
    pub publish_rate_limited: AtomicU64,
    pub publish_rate_disconnects: AtomicU64,
    /// Every limit a client ran into, by kind; each hit is also a security
    /// event.
    pub limits: crate::limit_hits::LimitHits,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn refused_total(&self) -> u64 {
        Self::get(&self.refused_max_connections)
            + Self::get(&self.refused_pending_connects)
            + Self::get(&self.refused_connections_per_address)
            + Self::get(&self.refused_connection_rate)
    }

    pub fn dropped_total(&self) -> u64 {
        Self::get(&self.dropped_queue_full)
            + Self::get(&self.dropped_offline_qos0)
            + Self::get(&self.dropped_expired)
            + Self::get(&self.dropped_too_large)
    }
}
