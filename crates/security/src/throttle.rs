//! Brute-force defence, sans-IO: authentication failures counted per
//! source address and per claimed identity, answered with growing delays
//! and then a temporary ban.
//!
//! The caller passes `now` (seconds, any monotonic origin) and the key it
//! chose for the address (an IPv4 address or an IPv6 /64 prefix). Memory is
//! bounded: at most `max_entries` keys of each kind are tracked; when full,
//! entries whose window has passed are dropped first, then the oldest.
//!
//! Invariants: a success clears the identity's count (the owner got in) but
//! not the address's (one good login from a NAT gateway must not wash out a
//! guessing campaign behind it); a ban outlasts the window that caused it.

use std::collections::HashMap;
use std::hash::Hash;

/// Tunables; see `docs/configuration.md` (`[auth]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures within `window` after which each further failure is
    /// answered only after a delay (doubling from `base_delay_ms`).
    pub delay_after: u32,
    /// Failures within `window` after which the address or identity is
    /// banned for `ban_secs`.
    pub ban_after: u32,
    pub window_secs: u64,
    pub ban_secs: u64,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            delay_after: 3,
            ban_after: 10,
            window_secs: 900,
            ban_secs: 900,
            base_delay_ms: 250,
            max_delay_ms: 8_000,
            max_entries: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    first_failure: u64,
    banned_until: u64,
}

/// Whether a CONNECT from this address, claiming this identity, may be
/// checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Refuse without checking credentials, until `until` (seconds).
    Banned {
        until: u64,
        by_address: bool,
    },
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// Wait this long before answering the failed CONNECT.
    pub delay_ms: u64,
    /// The failure started a ban (of the address, the identity, or both).
    pub banned_address: bool,
    pub banned_identity: bool,
}

#[derive(Debug)]
pub struct Throttle<A: Eq + Hash + Copy> {
    cfg: ThrottleConfig,
    addresses: HashMap<A, Entry>,
    identities: HashMap<String, Entry>,
}

impl<A: Eq + Hash + Copy> Throttle<A> {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Throttle {
            cfg,
            addresses: HashMap::new(),
            identities: HashMap::new(),
        }
    }

    pub fn config(&self) -> ThrottleConfig {
        self.cfg
    }

    /// Checked before any credential is verified.
    pub fn gate(&self, address: A, identity: Option<&str>, now: u64) -> Gate {
        if let Some(e) = self.addresses.get(&address) {
            if e.banned_until > now {
                return Gate::Banned {
                    until: e.banned_until,
                    by_address: true,
                };
            }
        }
        if let Some(e) = identity.and_then(|i| self.identities.get(i)) {
            if e.banned_until > now {
                return Gate::Banned {
                    until: e.banned_until,
                    by_address: false,
                };
            }
        }
        Gate::Open
    }

    /// Records a failed authentication and says how to answer it.
    pub fn failure(&mut self, address: A, identity: Option<&str>, now: u64) -> Penalty {
        let cfg = self.cfg;
        let a = bump(&mut self.addresses, address, now, &cfg);
        let i = match identity {
            Some(name) => {
                if !self.identities.contains_key(name) {
                    make_room(&mut self.identities, now, &cfg);
                }
                let e = self.identities.entry(name.to_owned()).or_default();
                Some(count(e, now, &cfg))
            }
            None => None,
        };
        let worst = a.0.max(i.map_or(0, |x| x.0));
        Penalty {
            delay_ms: delay(worst, &cfg),
            banned_address: a.1,
            banned_identity: i.is_some_and(|x| x.1),
        }
    }

    /// Records a success: the identity's failures are forgiven.
    pub fn success(&mut self, identity: &str) {
        self.identities.remove(identity);
    }

    pub fn tracked(&self) -> (usize, usize) {
        (self.addresses.len(), self.identities.len())
    }
}

fn bump<K: Eq + Hash + Clone>(
    map: &mut HashMap<K, Entry>,
    key: K,
    now: u64,
    cfg: &ThrottleConfig,
) -> (u32, bool) {
    if !map.contains_key(&key) {
        make_room(map, now, cfg);
    }
    let e = map.entry(key).or_default();
    count(e, now, cfg)
}

/// Counts a failure in `e`; returns the count and whether it started a ban.
fn count(e: &mut Entry, now: u64, cfg: &ThrottleConfig) -> (u32, bool) {
    if e.failures == 0 || now.saturating_sub(e.first_failure) > cfg.window_secs {
        e.failures = 0;
        e.first_failure = now;
    }
    e.failures = e.failures.saturating_add(1);
    let ban = e.failures >= cfg.ban_after && e.banned_until <= now;
    if ban {
        e.banned_until = now + cfg.ban_secs;
        // The ban is the answer; counting starts afresh after it.
        e.failures = 0;
    }
    (e.failures.max(u32::from(ban) * cfg.ban_after), ban)
}

fn delay(failures: u32, cfg: &ThrottleConfig) -> u64 {
    if failures < cfg.delay_after {
        return 0;
    }
    let doublings = (failures - cfg.delay_after).min(20);
    cfg.base_delay_ms
        .saturating_mul(1u64 << doublings)
        .min(cfg.max_delay_ms)
}

fn make_room<K: Eq + Hash + Clone>(map: &mut HashMap<K, Entry>, now: u64, cfg: &ThrottleConfig) {
    if map.len() < cfg.max_entries {
        return;
    }
    map.retain(|_, e| {
        e.banned_until > now || now.saturating_sub(e.first_failure) <= cfg.window_secs
    });
    if map.len() >= cfg.max_entries {
        // Still full of live entries: drop the oldest, never a ban.
        let oldest = map
            .iter()
            .filter(|(_, e)| e.banned_until <= now)
            .min_by_key(|(_, e)| e.first_failure)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            delay_after: 3,
            ban_after: 5,
            window_secs: 60,
            ban_secs: 120,
            base_delay_ms: 100,
            max_delay_ms: 1000,
            max_entries: 4,
        }
    }

    #[test]
    fn delays_grow_then_the_address_is_banned() {
        let mut t: Throttle<u32> = Throttle::new(cfg());
        let delays: Vec<u64> = (0..4)
            .map(|i| t.failure(1, Some(&format!("user{i}")), 10).delay_ms)
            .collect();
        assert_eq!(delays, [0, 0, 100, 200]);
        assert_eq!(t.gate(1, None, 10), Gate::Open);
        let p = t.failure(1, Some("user9"), 11);
        assert!(p.banned_address && !p.banned_identity);
        assert_eq!(
            t.gate(1, Some("anyone"), 12),
            Gate::Banned {
                until: 131,
                by_address: true
            }
        );
        assert_eq!(t.gate(2, Some("anyone"), 12), Gate::Open);
        assert_eq!(t.gate(1, None, 131), Gate::Open, "the ban ends");
    }

    #[test]
    fn one_identity_guessed_from_many_addresses_is_banned() {
        let mut t: Throttle<u32> = Throttle::new(cfg());
        for addr in 0..5 {
            t.failure(100 + addr, Some("plc-1"), 10);
        }
        assert!(matches!(
            t.gate(999, Some("plc-1"), 11),
            Gate::Banned {
                by_address: false,
                ..
            }
        ));
        assert_eq!(t.gate(999, Some("plc-2"), 11), Gate::Open);
    }

    #[test]
    fn success_forgives_the_identity_not_the_address() {
        let mut t: Throttle<u32> = Throttle::new(cfg());
        for _ in 0..4 {
            t.failure(1, Some("op"), 10);
        }
        t.success("op");
        // The identity starts over, the address keeps its count.
        let p = t.failure(1, Some("op"), 11);
        assert!(p.banned_address);
        assert!(!p.banned_identity);
    }

    #[test]
    fn the_window_forgets_old_failures() {
        let mut t: Throttle<u32> = Throttle::new(cfg());
        for _ in 0..4 {
            t.failure(1, None, 10);
        }
        assert_eq!(t.failure(1, None, 100).delay_ms, 0);
    }

    #[test]
    fn memory_is_bounded_and_bans_survive_eviction() {
        let mut t: Throttle<u32> = Throttle::new(cfg());
        for _ in 0..5 {
            t.failure(7, None, 10);
        }
        for addr in 0..1000 {
            t.failure(addr + 100, None, 11);
        }
        assert!(t.tracked().0 <= 4);
        assert!(matches!(t.gate(7, None, 12), Gate::Banned { .. }));
    }
}
