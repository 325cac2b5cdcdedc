//! Bulwark's identity layer, sans-IO: who a client is and whether it may
//! connect.
//!
//! Nothing here touches sockets, tokio or the clock: callers pass bytes,
//! names and `now` in, and get typed decisions back. The parts:
//!
//! - [`store`]: the credential file (identities, roles, required factors,
//!   client-ID patterns, expiry), parsed and validated with every problem
//!   reported by line.
//! - [`password`]: argon2id PHC hashes (OWASP parameters).
//! - [`scram`]: SCRAM-SHA-256 (RFC 5802/7677) for MQTT 5 enhanced
//!   authentication, as a two-step typed state machine.
//! - [`totp`]: RFC 6238 codes and the replay guard.
//! - [`pattern`]: the client-ID pattern grammar.
//! - [`auth`]: the decision at CONNECT (and after a SCRAM exchange), with
//!   the reason mapped to MQTT reason codes.
//!
//! Invariants:
//! - Secrets (password hashes, SCRAM keys, TOTP secrets, passwords and
//!   codes) are compared in constant time, never appear in `Debug` output or
//!   error messages, and are zeroed on drop where they are owned here.
//! - An unknown identity and a wrong password give the same answer after the
//!   same work (one argon2id verification whenever a password was sent).
//! - Nothing fails open: a file that does not parse is an error, never an
//!   empty store; an identity must satisfy every factor its entry, its roles
//!   and the listener require.
// Tests may index and panic: a failing assertion is what they are for.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod auth;
pub mod factor;
pub mod name;
pub mod password;
pub mod pattern;
mod rfc3339;
pub mod scram;
pub mod store;
pub mod throttle;
pub mod totp;

pub use auth::{
    authenticate, authorize_scram_identity, Decision, DenyReason, Presented, ScramDecision,
    TotpChallenge,
};
pub use factor::{Factor, FactorSet};
pub use pattern::ClientIdPattern;
pub use scram::{ScramCredential, ScramError, ScramServer};
pub use store::{Identity, Kind, Role, Store, StoreError, StoreLoadError};
pub use totp::{TotpGuard, TotpSecret};

/// Parses an RFC 3339 date-time (`2027-01-01T00:00:00Z`) to seconds since
/// the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    rfc3339::parse(s)
}
