//! The broker's tunables, as a plain value: the binary builds it from the
//! validated configuration, tests build their own. Every limit is explicit and
//! every default is safe; `docs/configuration.md` lists them and a test checks
//! that it agrees with [`Limits::default`].

use std::time::Duration;

use bulwark_codec::QoS;

pub use crate::admission::AdmissionLimits;
pub use crate::rate::PublishLimitAction;
pub use bulwark_security::throttle::ThrottleConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest packet accepted from a client, fixed header included. Refused
    /// from the declared length, before the body is buffered.
    pub max_packet_size: u32,
    /// How many QoS 1/2 PUBLISH a client may have unacknowledged towards us
    /// (v5 Receive Maximum we announce; enforced for QoS 2 in both versions).
    pub receive_maximum: u16,
    /// Cap on QoS 1/2 messages we keep in flight to one client, whatever
    /// Receive Maximum it announces.
    pub max_inflight_out: u16,
    /// Messages queued for one session (online or offline) beyond which new
    /// messages for it are dropped and counted, so one slow subscriber cannot
    /// hold unbounded memory or delay anyone else.
    pub max_queued_messages: usize,
    /// Largest keep-alive granted. v5 clients asking for more (or for 0) are
    /// told this value as Server Keep Alive; 3.1.1 clients asking for more are
    /// refused, since 3.1.1 has no way to tell them (SlowITe, CVE-2020-13849).
    pub max_keep_alive: u16,
    /// Smallest keep-alive granted: v5 clients asking for less are told
    /// this value; 3.1.1 clients asking for less (but not 0) are refused.
    pub min_keep_alive: u16,
    /// Whether a 3.1.1 client may disable keep-alive with 0. Off by default:
    /// a connection nobody checks can hold a slot forever.
    pub allow_zero_keep_alive_v3: bool,
    /// Topic aliases a v5 client may use towards us.
    pub topic_alias_maximum: u16,
    /// Cap on the session expiry a client may ask for, in seconds; also the
    /// expiry of 3.1.1 persistent sessions.
    pub max_session_expiry: u32,
    pub max_client_id_len: usize,
    /// An empty client ID gets a server-assigned one when true.
    pub allow_empty_client_id: bool,
    pub max_qos: QoS,
    pub retain_available: bool,
    /// Time from accept to a complete CONNECT.
    pub connect_timeout: Duration,
    /// Subscriptions one session may hold.
    pub max_subscriptions: usize,
    /// Topic levels in a name or filter.
    pub max_topic_levels: usize,
    /// Bytes in a topic name or filter.
    pub max_topic_len: usize,
    /// Bytes (payload and topic, plus a fixed overhead per message) queued
    /// and in flight for one session; beyond it new messages for that
    /// session are dropped and counted, as with `max_queued_messages`.
    pub max_queued_bytes: usize,
    /// Bytes queued and in flight for all sessions together. At the budget,
    /// the broker stops reading PUBLISH from clients until it is back under,
    /// instead of growing.
    pub max_queued_bytes_total: usize,
    /// How often `$SYS/broker/...` statistics are published; zero turns it off.
    pub sys_interval: Duration,
    /// Who may open a connection at all, checked at accept before anything
    /// is read (see [`crate::admission`]).
    pub admission: AdmissionLimits,
    /// PUBLISH packets per second from one connection; burst = rate.
    pub max_publish_rate: u32,
    /// Bytes of PUBLISH (whole packets) per second from one connection;
    /// burst = rate.
    pub max_publish_bandwidth: u32,
    /// What happens to a connection over either publish limit.
    pub publish_limit_action: PublishLimitAction,
    /// Delays and temporary bans after authentication failures, per source
    /// address and per claimed identity.
    pub brute_force: ThrottleConfig,
    /// Password verifications (argon2id, tens of milliseconds of CPU each)
    /// running at once; more wait their turn.
    pub max_verifications: usize,
    /// Password checks one source address may have waiting or running at
    /// once; more are answered "server busy" and count towards its ban.
    pub max_pending_per_address: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_size: 1024 * 1024,
            receive_maximum: 128,
            max_inflight_out: 128,
            max_queued_messages: 10_000,
            max_keep_alive: 300,
            min_keep_alive: 5,
            allow_zero_keep_alive_v3: false,
            topic_alias_maximum: 64,
            max_session_expiry: 7 * 24 * 3600,
            max_client_id_len: 256,
            allow_empty_client_id: true,
            max_qos: QoS::ExactlyOnce,
            retain_available: true,
            connect_timeout: Duration::from_secs(10),
            max_subscriptions: 1_000,
            max_topic_levels: 32,
            max_topic_len: 1024,
            max_queued_bytes: 16 * 1024 * 1024,
            max_queued_bytes_total: 1024 * 1024 * 1024,
            sys_interval: Duration::from_secs(10),
            admission: AdmissionLimits::default(),
            max_publish_rate: 1_000,
            max_publish_bandwidth: 1024 * 1024,
            publish_limit_action: PublishLimitAction::Throttle,
            brute_force: ThrottleConfig::default(),
            max_verifications: 2,
            max_pending_per_address: 4,
        }
    }
}
