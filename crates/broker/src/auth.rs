//! Authentication at CONNECT: who the client is, decided from its verified
//! certificate identity, its user name and password (with a TOTP code where
//! required) and the credential store, before a session is touched.
//!
//! The decision itself is `bulwark_security::auth` (sans-IO); this module
//! adds what needs the runtime: the current store (swapped whole on
//! reload), the TOTP replay guard that outlives reloads, brute-force delays
//! and bans, and a bounded pool for argon2id verification so a CONNECT
//! flood waits its turn instead of taking every thread.
//!
//! Every success and failure is a `bulwark::security` event with the
//! listener, peer, claimed identity, client ID, method and reason; no
//! password, TOTP code or hash is ever logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bulwark_codec::{Connect, ReasonCode};
use bulwark_security::auth::{
    authenticate, authorize_scram_identity, Decision, DenyReason, Presented, ScramDecision,
    TotpChallenge,
};
use bulwark_security::factor::{Factor, FactorSet};
use bulwark_security::pattern::ClientIdPattern;
use bulwark_security::scram::{with_totp_request, ScramServer};
use bulwark_security::store::Store;
use bulwark_security::throttle::{Gate, Throttle, ThrottleConfig};
use bulwark_security::totp::TotpGuard;
use tokio::sync::Semaphore;

use crate::admission::AddressKey;
use crate::connect::ListenerInfo;

/// The broker's authentication state.
pub struct Auth {
    store: RwLock<Option<Arc<Store>>>,
    totp: Arc<TotpGuard>,
    throttle: Mutex<Throttle<AddressKey>>,
    verifications: Semaphore,
    /// Verifications waiting or running, per source address.
    pending: Mutex<HashMap<AddressKey, u32>>,
    /// Password checks one address may have waiting or running at once.
    max_pending_per_address: u32,
    started: Instant,
}

/// One verification counted against its address until dropped.
struct PendingGuard<'a> {
    map: &'a Mutex<HashMap<AddressKey, u32>>,
    key: AddressKey,
}

impl<'a> PendingGuard<'a> {
    fn take(map: &'a Mutex<HashMap<AddressKey, u32>>, key: AddressKey, max: u32) -> Option<Self> {
        let mut m = map.lock().unwrap_or_else(PoisonError::into_inner);
        let n = m.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PendingGuard { map, key })
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("has_store", &self.store().is_some())
            .finish_non_exhaustive()
    }
}

/// The outcome for one CONNECT.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// No identity presented, and the listener lets such clients in.
    Anonymous,
    Identity(Arc<str>),
    Refused {
        reason: ReasonCode,
        detail: String,
    },
}

fn refused(reason: ReasonCode, detail: impl Into<String>) -> Verdict {
    Verdict::Refused {
        reason,
        detail: detail.into(),
    }
}

impl Auth {
    pub fn new(
        throttle: ThrottleConfig,
        max_verifications: usize,
        max_pending_per_address: u32,
    ) -> Self {
        Auth {
            store: RwLock::new(None),
            totp: Arc::new(TotpGuard::new()),
            throttle: Mutex::new(Throttle::new(throttle)),
            verifications: Semaphore::new(max_verifications.max(1)),
            pending: Mutex::new(HashMap::new()),
            max_pending_per_address: max_pending_per_address.max(1),
            started: Instant::now(),
        }
    }

    /// The credential store in force, if one is configured.
    pub fn store(&self) -> Option<Arc<Store>> {
        self.store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Installs a (re)loaded store. New CONNECTs use it at once.
    pub fn set_store(&self, store: Option<Arc<Store>>) {
        *self.store.write().unwrap_or_else(PoisonError::into_inner) = store;
    }

    fn now_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle<AddressKey>> {
        self.throttle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides a CONNECT. `client_id` is the identifier the session will
    /// have (for an empty one: the prefix an assigned one will start with).
    pub(crate) async fn decide(
        &self,
        c: &Connect,
        client_id: &str,
        peer: SocketAddr,
        listener: &ListenerInfo,
        cert_identity: Option<Arc<str>>,
    ) -> Verdict {
        let verdict = self
            .decide_inner(c, client_id, peer, listener, cert_identity.clone())
            .await;
        let method = match (&cert_identity, c.username.is_some(), c.password.is_some()) {
            (Some(_), _, true) => "certificate+password",
            (Some(_), _, false) => "certificate",
            (None, _, true) => "password",
            (None, true, false) => "username",
            (None, false, false) => "none",
        };
        let claimed = cert_identity
            .as_deref()
            .or(c.username.as_deref())
            .unwrap_or("");
        match &verdict {
            Verdict::Refused { reason, detail } => tracing::warn!(
                target: "bulwark::security",
                event = "auth_failure",
                listener = %listener.name,
                %peer,
                identity = claimed,
                client_id = %c.client_id,
                method,
                reason = ?reason,
                detail = %detail,
                "authentication refused"
            ),
            Verdict::Identity(id) => tracing::info!(
                target: "bulwark::security",
                event = "auth_success",
                listener = %listener.name,
                %peer,
                identity = %id,
                client_id = %c.client_id,
                method,
                "authenticated"
            ),
            // Not an authentication (nothing was proven), and on a busy
            // loopback listener a line per connection is noise: debug.
            Verdict::Anonymous => tracing::debug!(
                target: "bulwark::security",
                event = "auth_anonymous",
                listener = %listener.name,
                %peer,
                client_id = %c.client_id,
                "anonymous client let in (listener allows it)"
            ),
        }
        verdict
    }

    async fn decide_inner(
        &self,
        c: &Connect,
        client_id: &str,
        peer: SocketAddr,
        listener: &ListenerInfo,
        cert_identity: Option<Arc<str>>,
    ) -> Verdict {
        if c.properties.authentication_method.is_some() {
            return refused(
                ReasonCode::BadAuthenticationMethod,
                "unsupported authentication method (offered: SCRAM-SHA-256, MQTT 5)",
            );
        }
        if cert_identity.is_none() && c.username.is_none() {
            if c.password.is_some() {
                return refused(
                    ReasonCode::BadUserNameOrPassword,
                    "password without a user name",
                );
            }
            if listener.allow_anonymous && listener.min_factors.is_empty() {
                return Verdict::Anonymous;
            }
            return refused(
                ReasonCode::NotAuthorized,
                "listener requires an authenticated identity",
            );
        }
        let Some(store) = self.store() else {
            return self.without_store(c, client_id, listener, cert_identity);
        };
        let key = AddressKey::of(peer.ip());
        let claimed: Option<String> = cert_identity
            .as_deref()
            .or(c.username.as_deref())
            .map(str::to_owned);
        let now = self.now_secs();
        if let Some(v) = banned(self.throttle().gate(key, claimed.as_deref(), now), now) {
            return v;
        }
        // One address may have only a few verifications waiting: a flood
        // from one source is answered "busy" at once instead of queueing
        // ahead of everyone else for the verification slots.
        let Some(_pending) = PendingGuard::take(&self.pending, key, self.max_pending_per_address)
        else {
            // Evidence of a flood: it counts towards the address's ban
            // (not the identity's, which the flood may not own).
            self.throttle().failure(key, None, now);
            return refused(
                ReasonCode::ServerBusy,
                "too many password checks already waiting for this address",
            );
        };
        // argon2id takes tens of milliseconds of one core: run it on the
        // blocking pool, at most `max_verifications` at once. The slot is
        // held for the verification only, never for a brute-force delay.
        let decision = {
            let Ok(_permit) = self.verifications.acquire().await else {
                return refused(ReasonCode::ServerUnavailable, "shutting down");
            };
            // A ban may have started while this one waited for its slot.
            let now = self.now_secs();
            if let Gate::Banned { .. } = self.throttle().gate(key, claimed.as_deref(), now) {
                return refused(
                    ReasonCode::Banned,
                    "banned while waiting, after repeated authentication failures",
                );
            }
            let totp = self.totp.clone();
            let username = c.username.clone();
            let password = c.password.clone();
            let owned_client_id = client_id.to_owned();
            let min = listener.min_factors;
            let cert = cert_identity.clone();
            let unix = unix_now();
            tokio::task::spawn_blocking(move || {
                authenticate(
                    &store,
                    &totp,
                    &Presented {
                        cert_identity: cert.as_deref(),
                        username: username.as_deref(),
                        password: password.as_deref(),
                        client_id: &owned_client_id,
                        listener_min_factors: min,
                        now_unix: unix,
                    },
                )
            })
            .await
        };
        drop(_pending);
        match decision {
            Ok(Decision::Allow { identity, .. }) => {
                self.throttle().success(&identity);
                Verdict::Identity(Arc::from(identity))
            }
            Ok(Decision::Deny { reason }) => {
                let penalty = self.throttle().failure(key, claimed.as_deref(), now);
                if penalty.banned_address || penalty.banned_identity {
                    tracing::warn!(
                        target: "bulwark::security",
                        event = "ban",
                        %peer,
                        identity = claimed.as_deref().unwrap_or(""),
                        address = penalty.banned_address,
                        identity_banned = penalty.banned_identity,
                        seconds = self.throttle().config().ban_secs,
                        "temporary ban after repeated authentication failures"
                    );
                }
                if penalty.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(penalty.delay_ms)).await;
                }
                let code = ReasonCode::from_code(reason.reason_code_v5())
                    .unwrap_or(ReasonCode::NotAuthorized);
                refused(code, reason.to_string())
            }
            Err(e) => refused(
                ReasonCode::UnspecifiedError,
                format!("verification task failed: {e}"),
            ),
        }
    }

    /// No credential file: certificates are the only identities, held to
    /// the default client-ID pattern.
    fn without_store(
        &self,
        c: &Connect,
        client_id: &str,
        listener: &ListenerInfo,
        cert_identity: Option<Arc<str>>,
    ) -> Verdict {
        let Some(id) = cert_identity else {
            if listener.allow_anonymous && listener.min_factors.is_empty() {
                // A user name we cannot check proves nothing: the client is
                // anonymous, as if it had sent none.
                return Verdict::Anonymous;
            }
            return refused(
                ReasonCode::BadUserNameOrPassword,
                "no credential file is configured ([auth] credentials), so user names cannot be checked",
            );
        };
        if c.username.as_deref().is_some_and(|u| u != &*id) {
            return refused(
                ReasonCode::BadUserNameOrPassword,
                "the user name differs from the certificate identity",
            );
        }
        if c.password.is_some() {
            return refused(
                ReasonCode::BadUserNameOrPassword,
                "a password was sent but no credential file is configured to check it",
            );
        }
        let missing = listener
            .min_factors
            .without(FactorSet::of(Factor::Certificate));
        if !missing.is_empty() {
            return refused(
                ReasonCode::NotAuthorized,
                format!("listener requires {missing}, which needs a credential file"),
            );
        }
        if !ClientIdPattern::default_pattern().matches(&id, client_id) {
            return refused(
                ReasonCode::ClientIdentifierNotValid,
                "client identifier must be the certificate identity or start with IDENTITY-",
            );
        }
        Verdict::Identity(id)
    }
}

/// What the connection does next in a SCRAM exchange.
pub(crate) enum ScramNext {
    /// Proven: CONNACK with this server-final message as its data.
    Allowed(Arc<str>, Vec<u8>),
    /// Proven but a TOTP code is owed: send AUTH 0x18 with this data, then
    /// read the code.
    Totp(TotpChallenge, Vec<u8>),
    Refused(Verdict),
}

impl Auth {
    /// Step 1: CONNECT carried the client-first message. Returns the
    /// server-first message for AUTH 0x18.
    pub(crate) fn scram_start(
        &self,
        c: &Connect,
        peer: SocketAddr,
    ) -> Result<(ScramServer, Vec<u8>, Arc<Store>), Verdict> {
        let first = c
            .properties
            .authentication_data
            .as_deref()
            .unwrap_or_default();
        self.scram_begin(first, peer)
    }

    /// The first SCRAM step from raw client-first bytes (CONNECT or a
    /// re-authentication AUTH).
    pub(crate) fn scram_begin(
        &self,
        first: &[u8],
        peer: SocketAddr,
    ) -> Result<(ScramServer, Vec<u8>, Arc<Store>), Verdict> {
        let Some(store) = self.store() else {
            return Err(refused(
                ReasonCode::BadAuthenticationMethod,
                "SCRAM-SHA-256 needs a credential file ([auth] credentials)",
            ));
        };
        let lookup_store = store.clone();
        let (server, server_first) =
            ScramServer::start(first, |user| lookup_store.scram_credential(user)).map_err(|e| {
                let reason = DenyReason::Scram(e);
                refused(code_of(&reason), reason.to_string())
            })?;
        let now = self.now_secs();
        let gate = self.throttle().gate(
            AddressKey::of(peer.ip()),
            Some(server.claimed_identity()),
            now,
        );
        if let Some(v) = banned(gate, now) {
            return Err(v);
        }
        Ok((server, server_first, store))
    }

    /// Step 2: the client-final message. Checks the proof, then everything
    /// else about the identity.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn scram_finish(
        &self,
        server: ScramServer,
        store: &Store,
        client_final: &[u8],
        client_id: &str,
        cert_identity: Option<&str>,
        listener: &ListenerInfo,
        peer: SocketAddr,
    ) -> ScramNext {
        let claimed = server.claimed_identity().to_owned();
        let (identity, server_final) = match server.finish(client_final) {
            Ok(x) => x,
            Err(e) => {
                let reason = DenyReason::Scram(e);
                return ScramNext::Refused(self.failed(peer, Some(&claimed), &reason).await);
            }
        };
        match authorize_scram_identity(
            store,
            &identity,
            client_id,
            cert_identity,
            listener.min_factors,
            unix_now(),
        ) {
            ScramDecision::Allow { identity, .. } => {
                self.throttle().success(&identity);
                ScramNext::Allowed(Arc::from(identity), server_final)
            }
            ScramDecision::TotpRequired(challenge) => {
                ScramNext::Totp(challenge, with_totp_request(server_final))
            }
            ScramDecision::Deny { reason } => {
                ScramNext::Refused(self.failed(peer, Some(&identity), &reason).await)
            }
        }
    }

    /// Step 3 (when required): the TOTP code from the client's AUTH.
    pub(crate) async fn scram_totp(
        &self,
        challenge: TotpChallenge,
        store: &Store,
        code: &[u8],
        peer: SocketAddr,
    ) -> Verdict {
        let name = challenge.identity().to_owned();
        match challenge.complete(store, &self.totp, code, unix_now()) {
            Decision::Allow { identity, .. } => {
                self.throttle().success(&identity);
                Verdict::Identity(Arc::from(identity))
            }
            Decision::Deny { reason } => self.failed(peer, Some(&name), &reason).await,
        }
    }

    /// Counts a failure without a delay (re-authentication inside the
    /// event loop, which closes the connection instead).
    pub(crate) fn record_failure(&self, peer: SocketAddr, claimed: Option<&str>) {
        let now = self.now_secs();
        self.throttle()
            .failure(AddressKey::of(peer.ip()), claimed, now);
    }

    /// Checks a TOTP code owed after a SCRAM exchange.
    pub(crate) fn complete_totp(
        &self,
        challenge: TotpChallenge,
        store: &Store,
        code: &[u8],
    ) -> Decision {
        challenge.complete(store, &self.totp, code, unix_now())
    }

    /// Counts a failure, applies its delay, and says how to refuse.
    async fn failed(
        &self,
        peer: SocketAddr,
        claimed: Option<&str>,
        reason: &DenyReason,
    ) -> Verdict {
        let now = self.now_secs();
        let penalty = self
            .throttle()
            .failure(AddressKey::of(peer.ip()), claimed, now);
        if penalty.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(penalty.delay_ms)).await;
        }
        refused(code_of(reason), reason.to_string())
    }

    /// Logs the outcome of an enhanced-authentication exchange.
    pub(crate) fn log_scram(
        &self,
        verdict: &Verdict,
        c: &Connect,
        peer: SocketAddr,
        listener: &ListenerInfo,
    ) {
        match verdict {
            Verdict::Identity(id) => tracing::info!(
                target: "bulwark::security",
                event = "auth_success",
                listener = %listener.name,
                %peer,
                identity = %id,
                client_id = %c.client_id,
                method = "scram-sha-256",
                "authenticated"
            ),
            Verdict::Refused { reason, detail } => tracing::warn!(
                target: "bulwark::security",
                event = "auth_failure",
                listener = %listener.name,
                %peer,
                client_id = %c.client_id,
                method = "scram-sha-256",
                reason = ?reason,
                detail = %detail,
                "authentication refused"
            ),
            Verdict::Anonymous => {}
        }
    }
}

/// The refusal for a banned address or identity, if `gate` says banned.
fn banned(gate: Gate, now: u64) -> Option<Verdict> {
    match gate {
        Gate::Open => None,
        Gate::Banned { until, by_address } => Some(refused(
            ReasonCode::Banned,
            format!(
                "{} banned for {} more seconds after repeated authentication failures",
                if by_address { "address" } else { "identity" },
                until.saturating_sub(now)
            ),
        )),
    }
}

fn code_of(reason: &DenyReason) -> ReasonCode {
    ReasonCode::from_code(reason.reason_code_v5()).unwrap_or(ReasonCode::NotAuthorized)
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
