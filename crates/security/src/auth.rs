//! The authentication decision at CONNECT, sans-IO.
//!
//! The broker gathers what the client presented ([`Presented`]) and calls
//! [`authenticate`]; after an MQTT 5 SCRAM exchange it calls
//! [`authorize_scram_identity`] instead. Both apply the same rules:
//!
//! 1. The claimed identity is the certificate identity when there is one (a
//!    user name sent alongside must equal it), else the user name.
//! 2. Exactly one argon2id verification runs whenever a password was sent,
//!    against the identity's hash or, for an unknown identity or one
//!    without a password, against a dummy hash of the same cost: the time
//!    and the answer (0x86 / 0x04) are the same for an unknown identity and
//!    a wrong password. A password that was sent must be right, even when
//!    not required.
//! 3. Until a certificate or the password has proven the identity, every
//!    failure is reported as bad credentials, so nothing about an identity
//!    (its existence, whether it is disabled, which factors it needs) is
//!    revealed to someone who has not proven it.
//! 4. Then: a TOTP code when required; enabled; not expired; the client ID
//!    allowed by the identity's pattern; every required factor (the
//!    identity's, its roles' and the listener's minimum) proven. The TOTP
//!    step is recorded in the [`TotpGuard`] last, so a code spent on a
//!    refused CONNECT can still be used (once) for a corrected one.
//!
//! ## TOTP from MQTT 3.1.1 tools (password field)
//!
//! When the identity (with its roles and the listener) requires `totp`, the
//! CONNECT password field carries the code: `PASSWORD:CODE`, where CODE is
//! the 6 digits after the *last* `:` (the password itself may contain
//! colons). If `totp` is required but `password` is not, the whole field is
//! the 6-digit code. Example: `mosquitto_pub -u op1 -P 'secret:492039' ...`.
//! When `totp` is not required the field is the password, whatever it
//! contains.
//!
//! ## SCRAM-SHA-256 and TOTP over MQTT 5 AUTH
//!
//! Authentication Method `SCRAM-SHA-256`:
//!
//! 1. CONNECT, Authentication Data = client-first-message.
//! 2. AUTH 0x18 (Continue authentication), data = server-first-message
//!    ([`crate::ScramServer::start`], lookup [`Store::scram_credential`]).
//! 3. AUTH 0x18 from the client, data = client-final-message.
//! 4. [`crate::ScramServer::finish`], then [`authorize_scram_identity`]:
//!    - `Allow`: CONNACK 0x00 with data = server-final-message (`v=...`).
//!    - `TotpRequired`: AUTH 0x18 with data = server-final-message followed
//!      by the SCRAM extension `,t=totp` ([`crate::scram::with_totp_request`]).
//!      The client checks the server signature first, then answers with
//!      AUTH 0x18, data = the 6 ASCII digits of the current code; the
//!      broker calls [`TotpChallenge::complete`] and answers CONNACK 0x00
//!      (no data) or the refusal.
//!    - `Deny`: CONNACK with [`DenyReason::reason_code_v5`].
//!
//! A SCRAM failure, an unknown user included, is CONNACK 0x86. Any other
//! Authentication Method is 0x8C. Re-authentication (AUTH 0x19) runs the
//! same exchange; the broker must also check that the identity is the
//! connection's.
//!
//! Reason codes (v5 / v3 return code): bad credentials 0x86 / 0x04, not
//! authorized 0x87 / 0x05, client identifier not valid 0x85 / 0x02, bad
//! authentication method 0x8C / 0x05. Send only the code to the client; the
//! [`DenyReason`] text is for the log.

#[cfg(test)]
mod tests;

use std::fmt;

use crate::factor::{Factor, FactorSet};
use crate::password::{self, DUMMY_PHC};
use crate::scram::ScramError;
use crate::store::{Identity, Store};
use crate::totp::{self, TotpGuard};

/// Separates the password from the TOTP code in the CONNECT password field.
pub const TOTP_SEPARATOR: u8 = b':';

/// What a client presented at CONNECT.
#[derive(Clone, Copy)]
pub struct Presented<'a> {
    /// The identity from a verified client certificate.
    pub cert_identity: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    pub client_id: &'a str,
    /// The listener's minimum factor set.
    pub listener_min_factors: FactorSet,
    pub now_unix: i64,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("cert_identity", &self.cert_identity)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("client_id", &self.client_id)
            .field("listener_min_factors", &self.listener_min_factors)
            .field("now_unix", &self.now_unix)
            .finish()
    }
}

/// The outcome of [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        identity: String,
        /// The factors the client proved.
        factors: FactorSet,
    },
    Deny {
        reason: DenyReason,
    },
}

/// Why a client was refused: precise, for the log; the reason code sent to
/// the client is coarser ([`DenyReason::reason_code_v5`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    #[error("no certificate identity and no user name")]
    NoIdentity,
    #[error("the user name differs from the certificate identity")]
    UsernameMismatch,
    #[error("unknown identity")]
    UnknownIdentity,
    #[error("wrong password")]
    WrongPassword,
    #[error("nothing proven: no certificate and no password (required: {required})")]
    NoCredentials { required: FactorSet },
    #[error("TOTP required but no code sent (send PASSWORD:CODE)")]
    TotpMissing,
    #[error("wrong TOTP code")]
    WrongTotp,
    #[error("TOTP code already used")]
    TotpReplayed,
    #[error("identity is disabled")]
    Disabled,
    #[error("identity has expired")]
    Expired,
    #[error("client identifier not allowed for this identity")]
    ClientIdNotAllowed,
    #[error("required factors not presented: {missing}")]
    MissingFactors { missing: FactorSet },
    #[error("unsupported authentication method")]
    BadAuthMethod,
    #[error("SCRAM: {0}")]
    Scram(ScramError),
}

impl DenyReason {
    /// The MQTT 5 CONNACK reason code.
    pub fn reason_code_v5(&self) -> u8 {
        match self {
            DenyReason::UsernameMismatch
            | DenyReason::UnknownIdentity
            | DenyReason::WrongPassword
            | DenyReason::NoCredentials { .. }
            | DenyReason::TotpMissing
            | DenyReason::WrongTotp
            | DenyReason::TotpReplayed
            | DenyReason::Scram(ScramError::AuthenticationFailed) => 0x86,
            DenyReason::ClientIdNotAllowed => 0x85,
            DenyReason::BadAuthMethod
            | DenyReason::Scram(
                ScramError::ChannelBindingNotSupported
                | ScramError::ExtensionNotSupported
                | ScramError::AuthzidNotSupported,
            ) => 0x8C,
            DenyReason::NoIdentity
            | DenyReason::Disabled
            | DenyReason::Expired
            | DenyReason::MissingFactors { .. }
            | DenyReason::Scram(_) => 0x87,
        }
    }

    /// The MQTT 3.1.1 CONNACK return code.
    pub fn return_code_v3(&self) -> u8 {
        match self.reason_code_v5() {
            0x86 => 0x04,
            0x85 => 0x02,
            _ => 0x05,
        }
    }
}

fn deny(reason: DenyReason) -> Decision {
    Decision::Deny { reason }
}

/// Splits the CONNECT password field into the password and the TOTP code
/// by the convention in the module documentation.
pub fn split_password_field(field: &[u8], required: FactorSet) -> (Option<&[u8]>, Option<&[u8]>) {
    if !required.has(Factor::Totp) {
        return (Some(field), None);
    }
    if !required.has(Factor::Password) {
        return (None, Some(field));
    }
    let mut parts = field.rsplitn(2, |b| *b == TOTP_SEPARATOR);
    match (parts.next(), parts.next()) {
        (Some(code), Some(password))
            if code.len() == totp::DIGITS as usize && code.iter().all(u8::is_ascii_digit) =>
        {
            (Some(password), Some(code))
        }
        _ => (Some(field), None),
    }
}

/// Decides a CONNECT. See the module documentation for the rules.
pub fn authenticate(store: &Store, totp: &TotpGuard, p: &Presented) -> Decision {
    let name = match (p.cert_identity, p.username) {
        (Some(c), Some(u)) if c != u => return deny(DenyReason::UsernameMismatch),
        (Some(c), _) => c,
        (None, Some(u)) => u,
        (None, None) => return deny(DenyReason::NoIdentity),
    };
    let ident = store.get(name);
    let required =
        ident.map_or(FactorSet::PASSWORD, |i| i.required_factors(store)) | p.listener_min_factors;
    let (password, code) = match p.password {
        Some(field) => split_password_field(field, required),
        None => (None, None),
    };
    // One argon2 verification whenever a password was sent, known identity
    // or not: see rule 2.
    let password_ok = password.map(|pw| {
        let phc = ident.and_then(Identity::password_phc);
        password::verify(phc.unwrap_or(DUMMY_PHC), pw) && phc.is_some()
    });
    let Some(ident) = ident else {
        return deny(DenyReason::UnknownIdentity);
    };
    if password_ok == Some(false) {
        return deny(DenyReason::WrongPassword);
    }
    let mut proven = FactorSet::EMPTY;
    if p.cert_identity.is_some() {
        proven = proven.with(Factor::Certificate);
    }
    if password_ok == Some(true) {
        proven = proven.with(Factor::Password);
    }
    if proven.is_empty() {
        return deny(DenyReason::NoCredentials { required });
    }
    let step = if required.has(Factor::Totp) {
        match check_code(ident, code, p.now_unix) {
            Ok(step) => Some(step),
            Err(reason) => return deny(reason),
        }
    } else {
        None
    };
    finish(totp, ident, proven, required, step, p.client_id, p.now_unix)
}

/// Checks a TOTP code without recording it; the time step it belongs to.
fn check_code(ident: &Identity, code: Option<&[u8]>, now_unix: i64) -> Result<u64, DenyReason> {
    let Some(secret) = ident.totp_secret() else {
        // Required (by the listener) but never enrolled.
        return Err(DenyReason::MissingFactors {
            missing: FactorSet::TOTP,
        });
    };
    let code = code.ok_or(DenyReason::TotpMissing)?;
    totp::verify(secret, code, now_unix).ok_or(DenyReason::WrongTotp)
}

/// The checks after the identity is proven, in order: enabled, expiry,
/// client ID, factors; then the TOTP step is recorded.
fn finish(
    guard: &TotpGuard,
    ident: &Identity,
    mut proven: FactorSet,
    required: FactorSet,
    totp_step: Option<u64>,
    client_id: &str,
    now_unix: i64,
) -> Decision {
    if let Err(reason) = standing(ident, client_id, now_unix) {
        return deny(reason);
    }
    if totp_step.is_some() {
        proven = proven.with(Factor::Totp);
    }
    let missing = required.without(proven);
    if !missing.is_empty() {
        return deny(DenyReason::MissingFactors { missing });
    }
    if let Some(step) = totp_step {
        if !guard.accept(ident.name(), step) {
            return deny(DenyReason::TotpReplayed);
        }
    }
    Decision::Allow {
        identity: ident.name().to_owned(),
        factors: proven,
    }
}

fn standing(ident: &Identity, client_id: &str, now_unix: i64) -> Result<(), DenyReason> {
    if !ident.enabled() {
        return Err(DenyReason::Disabled);
    }
    if ident.is_expired(now_unix) {
        return Err(DenyReason::Expired);
    }
    if !ident.client_id_allowed(client_id) {
        return Err(DenyReason::ClientIdNotAllowed);
    }
    Ok(())
}

/// The outcome of [`authorize_scram_identity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramDecision {
    Allow {
        identity: String,
        factors: FactorSet,
    },
    /// Everything else holds; a TOTP code is still needed (module docs).
    TotpRequired(TotpChallenge),
    Deny {
        reason: DenyReason,
    },
}

/// A SCRAM-authenticated client that still owes a TOTP code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpChallenge {
    identity: String,
    proven: FactorSet,
    client_id: String,
    listener_min_factors: FactorSet,
}

/// Decides a CONNECT whose password factor was proven by a SCRAM exchange
/// for `identity` (the name [`crate::ScramServer::finish`] returned).
pub fn authorize_scram_identity(
    store: &Store,
    identity: &str,
    client_id: &str,
    cert_identity: Option<&str>,
    listener_min_factors: FactorSet,
    now_unix: i64,
) -> ScramDecision {
    if cert_identity.is_some_and(|c| c != identity) {
        return ScramDecision::Deny {
            reason: DenyReason::UsernameMismatch,
        };
    }
    let mut proven = FactorSet::PASSWORD;
    if cert_identity.is_some() {
        proven = proven.with(Factor::Certificate);
    }
    let challenge = TotpChallenge {
        identity: identity.to_owned(),
        proven,
        client_id: client_id.to_owned(),
        listener_min_factors,
    };
    // Everything but the code is checked now, so that a client is only
    // asked for a code when the code is all it lacks.
    let Some(ident) = store.get(identity) else {
        return ScramDecision::Deny {
            reason: DenyReason::UnknownIdentity,
        };
    };
    let required = ident.required_factors(store) | listener_min_factors;
    if !required.has(Factor::Totp) {
        return match finish(
            &TotpGuard::new(),
            ident,
            proven,
            required,
            None,
            client_id,
            now_unix,
        ) {
            Decision::Allow { identity, factors } => ScramDecision::Allow { identity, factors },
            Decision::Deny { reason } => ScramDecision::Deny { reason },
        };
    }
    let reason = match standing(ident, client_id, now_unix) {
        Err(reason) => reason,
        Ok(()) if ident.totp_secret().is_none() => DenyReason::MissingFactors {
            missing: FactorSet::TOTP,
        },
        Ok(()) => match required.without(proven.with(Factor::Totp)) {
            missing if !missing.is_empty() => DenyReason::MissingFactors { missing },
            _ => return ScramDecision::TotpRequired(challenge),
        },
    };
    ScramDecision::Deny { reason }
}

impl TotpChallenge {
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Checks the code the client sent in its AUTH packet and decides. The
    /// store is consulted again: it may have been reloaded meanwhile.
    pub fn complete(
        self,
        store: &Store,
        guard: &TotpGuard,
        code: &[u8],
        now_unix: i64,
    ) -> Decision {
        let Some(ident) = store.get(&self.identity) else {
            return deny(DenyReason::UnknownIdentity);
        };
        let required = ident.required_factors(store) | self.listener_min_factors;
        match check_code(ident, Some(code), now_unix) {
            Ok(step) => finish(
                guard,
                ident,
                self.proven,
                required,
                Some(step),
                &self.client_id,
                now_unix,
            ),
            Err(reason) => deny(reason),
        }
    }
}
