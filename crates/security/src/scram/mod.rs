//! SCRAM-SHA-256 (RFC 5802, RFC 7677), sans-IO, for MQTT 5 enhanced
//! authentication.
//!
//! The server side is two typed steps: [`ScramServer::start`] takes the
//! client-first message and answers with the server-first message;
//! [`ScramServer::finish`] consumes that state with the client-final
//! message and answers with the server-final message and the proven
//! identity. The caller moves the bytes (in MQTT: CONNECT/AUTH
//! Authentication Data) and owns the timing.
//!
//! Invariants:
//! - Channel binding is not offered (there is no `-PLUS` mechanism): GS2
//!   flag `n` and `y` are accepted, `p=` is refused, and the `c=` attribute
//!   of the client-final message must repeat the GS2 header exactly.
//! - An authorization identity other than the user name is refused.
//! - An unknown user gets a server-first message indistinguishable from a
//!   real one: its salt is derived from a server secret and the user name
//!   (stable for the life of the secret) and its iteration count is
//!   [`DEFAULT_ITERATIONS`]; the exchange then fails at `finish` with the
//!   same error as a wrong password.
//! - Proofs are compared in constant time; keys are zeroed on drop and never
//!   shown by `Debug`.
//! - Passwords are used as their UTF-8 bytes; SASLprep is not applied, which
//!   only matters for passwords with non-ASCII characters.

mod client;
mod message;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::OnceLock;

use data_encoding::BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

pub use client::{ScramClient, ScramClientFinal, ServerFinal};

/// The SASL mechanism name, used as the MQTT 5 Authentication Method.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// PBKDF2 iterations for new credentials.
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// The fewest iterations accepted (RFC 7677).
pub const MIN_ITERATIONS: u32 = 4096;
/// The most iterations a credential may carry (each login costs the client
/// this many HMACs).
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// The SCRAM extension Bulwark appends to the server-final message to ask
/// for a TOTP code next: `v=...,t=totp` (see `auth`).
pub const TOTP_REQUEST: &str = "t=totp";

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 18;
const KEY_LEN: usize = 32;
/// Longest SCRAM message accepted.
pub const MAX_MESSAGE_LEN: usize = 2048;

/// What the server stores for a user: RFC 5802's salt, iteration count,
/// StoredKey and ServerKey. It cannot be used to log in directly, but it is
/// as sensitive as a password hash (it allows an offline guessing attack at
/// the cost of PBKDF2 with `iterations`).
#[derive(Clone)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; KEY_LEN],
    pub server_key: [u8; KEY_LEN],
}

impl ScramCredential {
    /// Derives a credential with a fresh 16-byte random salt.
    pub fn derive(password: &[u8], iterations: u32) -> Result<ScramCredential, ScramError> {
        let mut salt = vec![0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| ScramError::Random)?;
        ScramCredential::derive_with_salt(password, &salt, iterations)
    }

    /// Derives a credential from a given salt (RFC 5802 section 3).
    pub fn derive_with_salt(
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, ScramError> {
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let salted = salted_password(password, salt, iterations)?;
        let client_key = Zeroizing::new(hmac_sha256(&salted[..], b"Client Key"));
        Ok(ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&client_key[..]),
            server_key: hmac_sha256(&salted[..], b"Server Key"),
        })
    }

    /// The RFC 5803 form kept in the credential file:
    /// `SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY` (base64).
    pub fn encode(&self) -> String {
        format!(
            "{MECHANISM}${}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key)
        )
    }

    /// Reads [`ScramCredential::encode`]'s form. The error does not repeat
    /// the value.
    pub fn decode(s: &str) -> Result<ScramCredential, String> {
        const FORM: &str = "expected SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY (set the password again with `bulwark user passwd NAME`)";
        let rest = s
            .strip_prefix(MECHANISM)
            .and_then(|r| r.strip_prefix('$'))
            .ok_or_else(|| FORM.to_owned())?;
        let (params, keys) = rest.split_once('$').ok_or_else(|| FORM.to_owned())?;
        let (iterations, salt) = params.split_once(':').ok_or_else(|| FORM.to_owned())?;
        let (stored, server) = keys.split_once(':').ok_or_else(|| FORM.to_owned())?;
        let iterations: u32 = iterations.parse().map_err(|_| FORM.to_owned())?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "has {iterations} iterations; use {MIN_ITERATIONS} to {MAX_ITERATIONS} (set the password again with `bulwark user passwd NAME`)"
            ));
        }
        let salt = BASE64
            .decode(salt.as_bytes())
            .map_err(|_| FORM.to_owned())?;
        if salt.is_empty() {
            return Err(FORM.to_owned());
        }
        let key = |k: &str| -> Result<[u8; KEY_LEN], String> {
            let bytes = Zeroizing::new(BASE64.decode(k.as_bytes()).map_err(|_| FORM.to_owned())?);
            <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| FORM.to_owned())
        };
        Ok(ScramCredential {
            salt,
            iterations,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

impl Drop for ScramCredential {
    fn drop(&mut self) {
        self.stored_key.zeroize();
        self.server_key.zeroize();
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// A server secret from which the salts of unknown users are derived. A
/// broker that keeps one across restarts makes the fake salts stable across
/// restarts too; [`ScramServer::start`] uses one random secret per process.
pub struct ScramSecret(Zeroizing<[u8; KEY_LEN]>);

impl ScramSecret {
    pub fn generate() -> Result<ScramSecret, ScramError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| ScramError::Random)?;
        Ok(ScramSecret(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> ScramSecret {
        ScramSecret(Zeroizing::new(bytes))
    }

    /// A plausible credential for a user that does not exist.
    fn fake_credential(&self, username: &str) -> ScramCredential {
        let derive = |label: &[u8]| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0[..]);
            let mut ctx = hmac::Context::with_key(&key);
            ctx.update(label);
            ctx.update(username.as_bytes());
            let tag = ctx.sign();
            let mut out = [0u8; KEY_LEN];
            out.copy_from_slice(tag.as_ref());
            out
        };
        let salt = derive(b"bulwark scram fake salt\0");
        ScramCredential {
            salt: salt.get(..SALT_LEN).unwrap_or(&salt[..]).to_vec(),
            iterations: DEFAULT_ITERATIONS,
            stored_key: derive(b"bulwark scram fake stored key\0"),
            server_key: derive(b"bulwark scram fake server key\0"),
        }
    }
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScramSecret(<redacted>)")
    }
}

fn process_secret() -> Option<&'static ScramSecret> {
    static SECRET: OnceLock<Option<ScramSecret>> = OnceLock::new();
    SECRET.get_or_init(|| ScramSecret::generate().ok()).as_ref()
}

/// Why a SCRAM exchange failed. [`ScramError::AuthenticationFailed`] is the
/// only outcome of a wrong password or an unknown user, so the two cannot
/// be told apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("SCRAM message longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    #[error("channel binding (GS2 flag 'p=') is not supported; use SCRAM-SHA-256 without -PLUS")]
    ChannelBindingNotSupported,
    #[error("a mandatory SCRAM extension ('m=') is not supported")]
    ExtensionNotSupported,
    #[error("an authorization identity different from the user name is not supported")]
    AuthzidNotSupported,
    #[error("the client-final message does not repeat the GS2 header")]
    ChannelBindingMismatch,
    #[error("the client-final message carries a different nonce")]
    NonceMismatch,
    #[error("SCRAM authentication failed")]
    AuthenticationFailed,
    #[error("the server's signature does not verify")]
    ServerSignatureInvalid,
    #[error("the server reported an error: {0}")]
    ServerError(String),
    #[error("{0} iterations; SCRAM needs {MIN_ITERATIONS} to {MAX_ITERATIONS}")]
    Iterations(u32),
    #[error("the system random number generator failed")]
    Random,
}

/// The server waiting for the client-final message.
pub struct ScramServer {
    identity: String,
    credential: ScramCredential,
    /// False for an unknown user: the exchange runs on a fake credential
    /// and fails at the end.
    known: bool,
    gs2_header: String,
    nonce: String,
    /// client-first-message-bare "," server-first-message
    auth_prefix: String,
}

impl ScramServer {
    /// Reads the client-first message, looks the user up and returns the
    /// server-first message. Salts of unknown users come from a random
    /// per-process secret; see [`ScramServer::start_with_secret`].
    pub fn start(
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        let secret = process_secret().ok_or(ScramError::Random)?;
        ScramServer::start_with_secret(secret, client_first, lookup)
    }

    /// [`ScramServer::start`] with the caller's secret for fake salts.
    pub fn start_with_secret(
        secret: &ScramSecret,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ScramError::Random)?;
        ScramServer::start_with_nonce(secret, client_first, &BASE64.encode(&nonce), lookup)
    }

    fn start_with_nonce(
        secret: &ScramSecret,
        client_first: &[u8],
        server_nonce: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        let first = message::parse_client_first(client_first)?;
        let (credential, known) = match lookup(&first.username) {
            Some(c) => (c, true),
            None => (secret.fake_credential(&first.username), false),
        };
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let state = ScramServer {
            auth_prefix: format!("{},{server_first}", first.bare),
            identity: first.username,
            credential,
            known,
            gs2_header: first.gs2_header,
            nonce,
        };
        Ok((state, server_first.into_bytes()))
    }

    /// The user name the client claimed (not yet proven).
    pub fn claimed_identity(&self) -> &str {
        &self.identity
    }

    /// Checks the client's proof; on success returns the proven identity
    /// and the server-final message (`v=...`).
    pub fn finish(self, client_final: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let fin = message::parse_client_final(client_final)?;
        if fin.channel_binding != self.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if fin.nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let auth_message = format!("{},{}", self.auth_prefix, fin.without_proof);
        let signature = hmac_sha256(&self.credential.stored_key, auth_message.as_bytes());
        let mut client_key = Zeroizing::new([0u8; KEY_LEN]);
        for ((k, p), s) in client_key.iter_mut().zip(fin.proof.iter()).zip(signature) {
            *k = p ^ s;
        }
        let matches = sha256(&client_key[..]).ct_eq(&self.credential.stored_key);
        if !(bool::from(matches) && self.known) {
            return Err(ScramError::AuthenticationFailed);
        }
        let server_signature = hmac_sha256(&self.credential.server_key, auth_message.as_bytes());
        let server_final = format!("v={}", BASE64.encode(&server_signature));
        Ok((self.identity, server_final.into_bytes()))
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Appends Bulwark's TOTP request (`,t=totp`) to a server-final message.
pub fn with_totp_request(mut server_final: Vec<u8>) -> Vec<u8> {
    server_final.push(b',');
    server_final.extend_from_slice(TOTP_REQUEST.as_bytes());
    server_final
}

fn salted_password(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Zeroizing<[u8; KEY_LEN]>, ScramError> {
    let n = std::num::NonZeroU32::new(iterations).ok_or(ScramError::Iterations(iterations))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, n, salt, password, &mut out[..]);
    Ok(out)
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; KEY_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(d.as_ref());
    out
}
