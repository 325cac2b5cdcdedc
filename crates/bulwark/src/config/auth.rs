//! `[auth]`: the credential file and the brute-force defence.

use std::path::PathBuf;

use bulwark_broker::limits::ThrottleConfig;
use toml_edit::Table;

use super::{cast, Ctx, Section};

pub const AUTH_KEYS: &[&str] = &[
    "credentials",
    "max_verifications",
    "max_pending_per_address",
    "failures_before_delay",
    "failures_before_ban",
    "failure_window",
    "ban_time",
];

pub const DEFAULT_MAX_VERIFICATIONS: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The credential file (`bulwark user` manages it); `None`: only
    /// certificate identities (and anonymous clients where a listener
    /// allows them).
    pub credentials: Option<PathBuf>,
    pub max_verifications: usize,
    pub max_pending_per_address: u32,
    pub throttle: ThrottleConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            credentials: None,
            max_verifications: cast(DEFAULT_MAX_VERIFICATIONS, 2),
            max_pending_per_address: 4,
            throttle: ThrottleConfig::default(),
        }
    }
}

pub fn read_auth(ctx: &mut Ctx, table: &Table) -> AuthConfig {
    let d = AuthConfig::default();
    let t = d.throttle;
    let mut s = Section::new(table, "auth");
    let credentials = s.string(ctx, "credentials").map(PathBuf::from);
    let max_verifications = cast(
        s.int(ctx, "max_verifications", DEFAULT_MAX_VERIFICATIONS, 1, 256),
        d.max_verifications,
    );
    let max_pending_per_address = cast(
        s.int(
            ctx,
            "max_pending_per_address",
            d.max_pending_per_address.into(),
            1,
            100_000,
        ),
        d.max_pending_per_address,
    );
    let delay_after = cast(
        s.int(ctx, "failures_before_delay", t.delay_after.into(), 1, 1000),
        t.delay_after,
    );
    let ban_line = s.line(ctx, "failures_before_ban");
    let ban_after = cast(
        s.int(ctx, "failures_before_ban", t.ban_after.into(), 1, 10_000),
        t.ban_after,
    );
    if ban_after < delay_after {
        ctx.error(
            ban_line,
            "auth.failures_before_ban",
            format!("{ban_after} is below failures_before_delay ({delay_after}): delays would never apply"),
        );
    }
    let window_secs = cast(
        s.int(
            ctx,
            "failure_window",
            cast(t.window_secs as i64, 900),
            1,
            86_400,
        ),
        t.window_secs,
    );
    let ban_secs = cast(
        s.int(ctx, "ban_time", cast(t.ban_secs as i64, 900), 1, 604_800),
        t.ban_secs,
    );
    s.finish(ctx, AUTH_KEYS);
    AuthConfig {
        credentials,
        max_verifications,
        max_pending_per_address,
        throttle: ThrottleConfig {
            delay_after,
            ban_after,
            window_secs,
            ban_secs,
            ..t
        },
    }
}
