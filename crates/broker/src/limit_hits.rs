//! Every time a client runs into a limit: counted per kind (for `$SYS` and
//! metrics) and reported as a security event.
//!
//! Security events go to the `bulwark::security` tracing target at `warn`,
//! one line per kind per second at most, with how many hits that line
//! stands for: a flood must be visible without the log becoming the next
//! thing it exhausts. The audit log subscribes to this target.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::now_ms;

/// The limits a client can hit, named by their configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    MaxConnections,
    ConnectionsPerAddress,
    ConnectionRate,
    PendingConnects,
    HandshakeTimeout,
    ConnectTimeout,
    PacketSize,
    KeepAlive,
    ClientIdLength,
    TopicLength,
    TopicLevels,
    Subscriptions,
    ReceiveMaximum,
    QueuedMessages,
    QueuedBytes,
    MemoryBudget,
    PublishRate,
}

impl LimitKind {
    pub const ALL: [LimitKind; 17] = [
        LimitKind::MaxConnections,
        LimitKind::ConnectionsPerAddress,
        LimitKind::ConnectionRate,
        LimitKind::PendingConnects,
        LimitKind::HandshakeTimeout,
        LimitKind::ConnectTimeout,
        LimitKind::PacketSize,
        LimitKind::KeepAlive,
        LimitKind::ClientIdLength,
        LimitKind::TopicLength,
        LimitKind::TopicLevels,
        LimitKind::Subscriptions,
        LimitKind::ReceiveMaximum,
        LimitKind::QueuedMessages,
        LimitKind::QueuedBytes,
        LimitKind::MemoryBudget,
        LimitKind::PublishRate,
    ];

    /// The configuration key that sets this limit.
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::MaxConnections => "max_connections",
            LimitKind::ConnectionsPerAddress => "max_connections_per_address",
            LimitKind::ConnectionRate => "connection_rate",
            LimitKind::PendingConnects => "max_pending_connects",
            LimitKind::HandshakeTimeout => "handshake_timeout",
            LimitKind::ConnectTimeout => "connect_timeout",
            LimitKind::PacketSize => "max_packet_size",
            LimitKind::KeepAlive => "keep_alive",
            LimitKind::ClientIdLength => "max_client_id_len",
            LimitKind::TopicLength => "max_topic_len",
            LimitKind::TopicLevels => "max_topic_levels",
            LimitKind::Subscriptions => "max_subscriptions",
            LimitKind::ReceiveMaximum => "receive_maximum",
            LimitKind::QueuedMessages => "max_queued_messages",
            LimitKind::QueuedBytes => "max_queued_bytes",
            LimitKind::MemoryBudget => "max_queued_bytes_total",
            LimitKind::PublishRate => "max_publish_rate",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const KINDS: usize = LimitKind::ALL.len();

#[derive(Debug, Default)]
pub struct LimitHits {
    counts: [AtomicU64; KINDS],
    /// Milliseconds since the process started of the last line logged, per
    /// kind, and hits since then that were not logged.
    last_logged: [AtomicU64; KINDS],
    unlogged: [AtomicU64; KINDS],
}

impl LimitHits {
    pub fn count(&self, kind: LimitKind) -> u64 {
        self.counts
            .get(kind.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts a hit and reports it as a security event (rate-limited).
    pub fn hit(&self, kind: LimitKind, peer: Option<SocketAddr>, client_id: Option<&str>) {
        let i = kind.index();
        let (Some(count), Some(last), Some(unlogged)) = (
            self.counts.get(i),
            self.last_logged.get(i),
            self.unlogged.get(i),
        ) else {
            return;
        };
        count.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let prev = last.load(Ordering::Relaxed);
        let due = prev == 0 || now.saturating_sub(prev) >= 1000;
        // Only the caller that moves the timestamp logs, so concurrent hits
        // in the same second produce one line.
        if !due
            || last
                .compare_exchange(prev, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let also = unlogged.swap(0, Ordering::Relaxed);
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        tracing::warn!(
            target: "bulwark::security",
            event = "limit_hit",
            limit = kind.key(),
            peer = %peer,
            client_id = client_id.unwrap_or(""),
            hits_since_last_line = also,
            total = count.load(Ordering::Relaxed),
            "client hit a limit"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_per_kind() {
        let h = LimitHits::default();
        for _ in 0..5 {
            h.hit(LimitKind::QueuedBytes, None, Some("c"));
        }
        h.hit(LimitKind::PublishRate, None, None);
        assert_eq!(h.count(LimitKind::QueuedBytes), 5);
        assert_eq!(h.count(LimitKind::PublishRate), 1);
        assert_eq!(h.count(LimitKind::MemoryBudget), 0);
        // Four of the five were folded into the next line, not logged.
        assert_eq!(
            h.unlogged[LimitKind::QueuedBytes.index()].load(Ordering::Relaxed),
            4
        );
    }

    #[test]
    fn every_kind_has_a_distinct_index_and_key() {
        let mut keys: Vec<&str> = LimitKind::ALL.iter().map(|k| k.key()).collect();
        for (i, k) in LimitKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), KINDS);
    }
}
