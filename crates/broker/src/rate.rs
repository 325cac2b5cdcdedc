//! Token buckets, sans-IO: no clock, the caller passes `now` in. Shared by
//! connection admission (per address and in total) and by the per-connection
//! publish limits ([`PublishLimiter`]).
//!
//! Invariants: a bucket never holds more than its rate (burst = rate); a
//! bucket may go into debt (negative tokens) only through
//! [`TokenBucket::take_n`], so a packet larger than the burst is still let
//! through once the bucket is positive, and the debt is paid back by waiting.
//! Kept compact (24 bytes) because every connection task carries two.

use std::time::{Duration, Instant};

/// A token bucket holding up to `rate` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u32,
    /// f32 is precise enough for a rate limit (24-bit mantissa) and keeps
    /// the bucket small; arithmetic is done in f64.
    tokens: f32,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket: a newcomer may use its whole burst at once.
    pub fn full(rate: u32, now: Instant) -> Self {
        let rate = rate.max(1);
        TokenBucket {
            rate,
            tokens: rate as f32,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // `now` earlier than `last` (callers racing on the clock) adds
        // nothing rather than panicking.
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let rate = f64::from(self.rate);
        self.tokens = (f64::from(self.tokens) + elapsed * rate).min(rate) as f32;
        self.last = now;
    }

    /// Whether a token is available at `now` (without taking it).
    pub fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes one token; call only after [`TokenBucket::ready`] said yes.
    pub fn take(&mut self) {
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// Takes `n` tokens, going into debt if there are fewer; call only after
    /// [`TokenBucket::ready`] said yes. The debt is bounded by one packet.
    pub fn take_n(&mut self, n: u32) {
        self.tokens -= n as f32;
    }

    /// How long from the last refill until a token is available again.
    pub fn wait(&self) -> Duration {
        let missing = 1.0 - f64::from(self.tokens);
        if missing <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / f64::from(self.rate))
    }

    /// Full again: indistinguishable from a fresh bucket.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.rate as f32
    }
}

/// What a connection does when a client publishes faster than its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishLimitAction {
    /// Stop reading the client until its buckets refill: nothing is lost,
    /// the client is just slowed (TCP back-pressure does the rest).
    #[default]
    Throttle,
    /// Close: v5 DISCONNECT 0x96 (Message rate too high), v3 close.
    Disconnect,
}

/// The per-connection publish limits: one bucket of messages, one of bytes.
#[derive(Debug, Clone)]
pub struct PublishLimiter {
    messages: TokenBucket,
    bytes: TokenBucket,
    /// When a hit was last logged, and how many went unlogged since: a
    /// flooding client must not become a log flood.
    last_log: Option<Instant>,
    unlogged: u32,
    /// Set by a refused PUBLISH: when the buckets will have refilled enough
    /// to try again. The connection reads nothing until then ("throttle").
    paused_until: Option<Instant>,
    /// Set when a PUBLISH waits because the broker is over its memory
    /// budget (`max_queued_bytes_total`). Kept here, with the other reason
    /// a connection stops taking PUBLISH, so that connections that never
    /// publish carry nothing for it.
    pub budget_paused: bool,
}

/// Minimum interval between two log lines about one connection's hits.
const LOG_EVERY: Duration = Duration::from_secs(1);

impl PublishLimiter {
    /// Full buckets: `rate` PUBLISH and `bandwidth` bytes per second, each
    /// with a burst equal to its rate.
    pub fn new(rate: u32, bandwidth: u32, now: Instant) -> Self {
        PublishLimiter {
            messages: TokenBucket::full(rate, now),
            bytes: TokenBucket::full(bandwidth, now),
            last_log: None,
            unlogged: 0,
            paused_until: None,
            budget_paused: false,
        }
    }

    /// Admits a PUBLISH of `size` bytes at `now`, taking its tokens, or
    /// says how long to wait before trying again (taking nothing, and
    /// pausing until then: see [`PublishLimiter::paused_until`]).
    pub fn admit(&mut self, size: usize, now: Instant) -> Result<(), Duration> {
        let messages = self.messages.ready(now);
        let bytes = self.bytes.ready(now);
        if !messages || !bytes {
            // At least a millisecond: the timer's granularity, and no busy
            // loop on a wait that rounds to zero.
            let wait = self
                .messages
                .wait()
                .max(self.bytes.wait())
                .max(Duration::from_millis(1));
            self.paused_until = Some(now + wait);
            return Err(wait);
        }
        self.messages.take();
        self.bytes.take_n(u32::try_from(size).unwrap_or(u32::MAX));
        Ok(())
    }

    /// Until when input stays paused after a refused PUBLISH; `None` once
    /// that time has come (or nothing was refused).
    pub fn paused_until(&mut self, now: Instant) -> Option<Instant> {
        if self.paused_until.is_some_and(|until| now >= until) {
            self.paused_until = None;
        }
        self.paused_until
    }

    /// The current pause, without checking whether it is over (a pause in
    /// the past makes a waiter return at once).
    pub fn pause(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Whether to log a hit now: at most once per [`LOG_EVERY`]. `Some(n)`:
    /// log, mentioning the `n` hits not logged since the last line.
    pub fn log_hit(&mut self, now: Instant) -> Option<u32> {
        if self
            .last_log
            .is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY)
        {
            self.unlogged = self.unlogged.saturating_add(1);
            return None;
        }
        self.last_log = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bucket_lets_the_burst_through_then_asks_to_wait() {
        let t0 = Instant::now();
        let mut l = PublishLimiter::new(50, 1_000_000, t0);
        for _ in 0..50 {
            assert_eq!(l.admit(10, t0), Ok(()));
        }
        let wait = l.admit(10, t0).expect_err("burst spent");
        // One message token comes back every 20 ms.
        assert!(wait > Duration::from_millis(15) && wait <= Duration::from_millis(21));
        assert_eq!(l.paused_until(t0), Some(t0 + wait));
        assert_eq!(l.paused_until(t0 + wait), None);
        assert_eq!(l.admit(10, t0 + Duration::from_millis(20)), Ok(()));
        assert!(l.admit(10, t0 + Duration::from_millis(21)).is_err());
    }

    #[test]
    fn byte_bucket_limits_bandwidth_and_lets_an_oversized_packet_through_once() {
        let t0 = Instant::now();
        let mut l = PublishLimiter::new(1_000, 1_000, t0);
        // Larger than the whole burst: allowed, leaving a debt.
        assert_eq!(l.admit(3_000, t0), Ok(()));
        let wait = l.admit(1, t0).expect_err("in debt");
        assert!(wait >= Duration::from_millis(2000), "{wait:?}");
        assert!(l.admit(1, t0 + Duration::from_millis(1_500)).is_err());
        assert_eq!(l.admit(1, t0 + Duration::from_millis(2_001)), Ok(()));
    }

    #[test]
    fn a_refused_publish_takes_no_token() {
        let t0 = Instant::now();
        let mut l = PublishLimiter::new(1, 100, t0);
        assert_eq!(l.admit(10, t0), Ok(()));
        for _ in 0..10 {
            assert!(l.admit(10, t0).is_err());
        }
        // Had the refusals taken byte tokens, this would still be in debt.
        assert_eq!(l.admit(10, t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn hits_are_logged_at_most_once_per_second() {
        let t0 = Instant::now();
        let mut l = PublishLimiter::new(1, 1, t0);
        assert_eq!(l.log_hit(t0), Some(0));
        assert_eq!(l.log_hit(t0 + Duration::from_millis(10)), None);
        assert_eq!(l.log_hit(t0 + Duration::from_millis(500)), None);
        assert_eq!(l.log_hit(t0 + Duration::from_secs(1)), Some(2));
    }

    #[test]
    fn bucket_stays_compact() {
        assert!(std::mem::size_of::<TokenBucket>() <= 24);
    }
}
