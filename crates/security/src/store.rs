//! The credential store: a TOML file of identities and roles.
//!
//! ```toml
//! [[identity]]
//! name = "plc-hall3-07"            # unique; no + # * / or control characters, at most 128 bytes
//! kind = "device"                  # or "user"; default "device"
//! roles = ["telemetry-writer"]     # optional
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."   # optional; argon2id PHC only
//! scram = "SCRAM-SHA-256$10000:SALT$STOREDKEY:SERVERKEY" # optional; RFC 5803 form
//! totp_secret = "BASE32..."        # optional; at least 128 bits
//! factors = ["certificate", "password"]  # optional; certificate, password, totp
//! client_id_pattern = "{identity}|{identity}-*"     # optional; this is the default
//! enabled = true                   # optional; default true
//! expires = "2027-01-01T00:00:00Z" # optional; RFC 3339 string or TOML date-time
//!
//! [[role]]
//! name = "operator"
//! factors = ["password", "totp"]
//! ```
//!
//! When `factors` is absent an identity must present every credential it
//! has: `password` if it has a password (or SCRAM credential), `totp` if it
//! has a TOTP secret, and `certificate` if it has no password. The factors
//! required at CONNECT are the identity's, those of each of its roles that
//! has a `[[role]]` entry, and the listener's minimum. A role named by an
//! identity without a `[[role]]` entry requires nothing (it may still be
//! used by access rules).
//!
//! Invariants: a store that parsed holds only argon2id hashes within the
//! accepted cost bounds, valid SCRAM credentials and TOTP secrets, unique
//! names, valid client-ID patterns, and identities that can satisfy their
//! own required factors (a required password or TOTP has its credential).
//! Errors name the file, the line, the identity and the key, never a
//! secret value.

mod read;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::factor::FactorSet;
use crate::pattern::ClientIdPattern;
use crate::scram::ScramCredential;
use crate::totp::TotpSecret;

/// What an identity is; informational, for access rules and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Device,
    User,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Device => "device",
            Kind::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "device" => Some(Kind::Device),
            "user" => Some(Kind::User),
            _ => None,
        }
    }
}

/// A `[[role]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    name: String,
    factors: FactorSet,
    line: usize,
}

impl Role {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Factors every identity with this role must present.
    pub fn factors(&self) -> FactorSet {
        self.factors
    }

    pub fn line(&self) -> usize {
        self.line
    }
}

/// An `[[identity]]` entry, validated.
#[derive(Clone)]
pub struct Identity {
    name: String,
    kind: Kind,
    roles: Vec<String>,
    password: Option<String>,
    scram: Option<ScramCredential>,
    totp_secret: Option<TotpSecret>,
    factors: FactorSet,
    client_id_pattern: ClientIdPattern,
    enabled: bool,
    expires: Option<i64>,
    line: usize,
}

impl Identity {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The argon2id PHC string, if the identity has a password.
    pub fn password_phc(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn scram(&self) -> Option<&ScramCredential> {
        self.scram.as_ref()
    }

    pub fn totp_secret(&self) -> Option<&TotpSecret> {
        self.totp_secret.as_ref()
    }

    /// The identity's own factors (explicit, or the default for what it has).
    pub fn factors(&self) -> FactorSet {
        self.factors
    }

    /// The identity's factors and those of its roles.
    pub fn required_factors(&self, store: &Store) -> FactorSet {
        self.roles
            .iter()
            .filter_map(|r| store.role(r))
            .fold(self.factors, |acc, r| acc | r.factors)
    }

    pub fn client_id_pattern(&self) -> &ClientIdPattern {
        &self.client_id_pattern
    }

    pub fn client_id_allowed(&self, client_id: &str) -> bool {
        self.client_id_pattern.matches(&self.name, client_id)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Expiry, in seconds since the epoch.
    pub fn expires(&self) -> Option<i64> {
        self.expires
    }

    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.expires.is_some_and(|e| now_unix >= e)
    }

    /// Enabled and not expired.
    pub fn is_active(&self, now_unix: i64) -> bool {
        self.enabled && !self.is_expired(now_unix)
    }

    /// The line of the `[[identity]]` header.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("roles", &self.roles)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("scram", &self.scram.as_ref().map(|_| "<redacted>"))
            .field(
                "totp_secret",
                &self.totp_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("factors", &self.factors)
            .field("client_id_pattern", &self.client_id_pattern)
            .field("enabled", &self.enabled)
            .field("expires", &self.expires)
            .finish()
    }
}

/// A parsed, validated credential store.
#[derive(Clone, Default)]
pub struct Store {
    source: String,
    identities: Vec<Identity>,
    index: HashMap<String, usize>,
    roles: HashMap<String, Role>,
}

impl Store {
    /// Parses `text`; `file` labels errors. Every problem is reported.
    pub fn parse(file: &str, text: &str) -> Result<Store, Vec<StoreError>> {
        let (identities, roles) = read::parse(file, text)?;
        let index = identities
            .iter()
            .enumerate()
            .map(|(i, id)| (id.name.clone(), i))
            .collect();
        Ok(Store {
            source: file.to_owned(),
            identities,
            index,
            roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect(),
        })
    }

    /// Reads and parses the file at `path`. A file that group or others may
    /// access is refused, as ssh refuses a private key: password hashes and
    /// TOTP secrets must stay with the broker's user.
    pub fn load(path: &Path) -> Result<Store, StoreLoadError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| StoreLoadError::Io {
            path: shown.clone(),
            message: e.to_string(),
        };
        // One open file for the checks and the read, so what is checked is
        // what is read.
        let mut file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(StoreLoadError::Io {
                path: shown,
                message: "not a regular file".into(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(StoreLoadError::Permissions { path: shown, mode });
            }
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map_err(io)?;
        Store::parse(&shown, &text).map_err(StoreLoadError::Invalid)
    }

    /// The file (or label) the store was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn get(&self, name: &str) -> Option<&Identity> {
        self.index.get(name).and_then(|&i| self.identities.get(i))
    }

    /// Identities in file order.
    pub fn identities(&self) -> impl Iterator<Item = &Identity> {
        self.identities.iter()
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn len(&self) -> usize {
        self.identities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// The SCRAM credential of `name`: the lookup for
    /// [`crate::ScramServer::start`].
    pub fn scram_credential(&self, name: &str) -> Option<ScramCredential> {
        self.get(name).and_then(|i| i.scram.clone())
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("source", &self.source)
            .field("identities", &self.identities)
            .field("roles", &self.roles)
            .finish()
    }
}

/// One problem with the credential file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub file: String,
    pub line: usize,
    /// The identity (or role) the problem belongs to, when known.
    pub entry: Option<String>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(entry) = &self.entry {
            write!(f, "{entry}: ")?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a credential file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLoadError {
    Io {
        path: String,
        message: String,
    },
    /// Group or others have some access to the file.
    Permissions {
        path: String,
        mode: u32,
    },
    Invalid(Vec<StoreError>),
}

impl fmt::Display for StoreLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLoadError::Io { path, message } => {
                write!(f, "cannot read credential file {path}: {message}")
            }
            StoreLoadError::Permissions { path, mode } => write!(
                f,
                "credential file {path} is accessible by group or others (mode {mode:04o}); \
                 it holds password hashes and TOTP secrets: run `chmod 600 {path}`"
            ),
            StoreLoadError::Invalid(errors) => {
                let n = errors.len();
                write!(
                    f,
                    "credential file has {n} problem{}:",
                    if n == 1 { "" } else { "s" }
                )?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StoreLoadError {}
