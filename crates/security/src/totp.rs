//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP).
//!
//! HMAC-SHA1, 30-second steps from the Unix epoch, 6 digits: what every
//! authenticator app does by default. A code is accepted for the current
//! step and one step either side (clock drift), and [`TotpGuard`]
//! remembers per identity the last step it accepted, so a code can be used
//! once and no older code after it. Codes are compared in constant time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use data_encoding::BASE32_NOPAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds per step.
pub const STEP: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const SKEW: u64 = 1;
/// Bytes of a generated secret (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;
/// Shortest secret accepted from the file (RFC 4226's minimum, 128 bits).
pub const MIN_SECRET_LEN: usize = 16;

/// A shared TOTP secret. Zeroed on drop; never shown by `Debug`.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// 20 random bytes from the system generator.
    pub fn generate() -> Result<TotpSecret, ring::error::Unspecified> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        SystemRandom::new().fill(&mut bytes)?;
        Ok(TotpSecret(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> TotpSecret {
        TotpSecret(Zeroizing::new(bytes.to_vec()))
    }

    /// Reads RFC 4648 base32 as authenticator apps show it: case, spaces
    /// and `=` padding are ignored. Refuses secrets under 128 bits.
    pub fn from_base32(text: &str) -> Result<TotpSecret, String> {
        let clean: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '=')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let bytes = BASE32_NOPAD
            .decode(clean.as_bytes())
            .map_err(|_| "is not base32 (letters A-Z and digits 2-7)".to_owned())?;
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_LEN {
            return Err(format!(
                "is {} bytes; at least {MIN_SECRET_LEN} are required (enrol again with `bulwark user totp NAME`)",
                bytes.len()
            ));
        }
        Ok(TotpSecret(bytes))
    }

    /// Unpadded upper-case base32, as otpauth URIs carry it.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// The RFC 4226 HOTP value of `counter`, truncated to `digits` (1 to 9).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().map_or(0, |b| b & 0x0f));
    let word = mac
        .get(offset..offset + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, u32::from_be_bytes);
    (word & 0x7fff_ffff) % 10u32.pow(digits.clamp(1, 9))
}

/// The time step containing `unix_time`, or `None` before the epoch.
pub fn step_at(unix_time: i64) -> Option<u64> {
    u64::try_from(unix_time.checked_div(STEP)?).ok()
}

/// The code for `unix_time` with `digits` digits, zero-padded.
pub fn code_at(secret: &TotpSecret, unix_time: i64, digits: u32) -> Option<String> {
    let step = step_at(unix_time)?;
    Some(format_code(hotp(secret.as_bytes(), step, digits), digits))
}

fn format_code(value: u32, digits: u32) -> String {
    format!("{value:0width$}", width = digits as usize)
}

/// Checks a 6-digit `code` against the steps around `now_unix`; returns the
/// step it belongs to. Does not record it: see [`TotpGuard`].
pub fn verify(secret: &TotpSecret, code: &[u8], now_unix: i64) -> Option<u64> {
    verify_digits(secret, code, now_unix, DIGITS)
}

/// [`verify`] with another code length (RFC 6238's test vectors use 8).
pub fn verify_digits(secret: &TotpSecret, code: &[u8], now_unix: i64, digits: u32) -> Option<u64> {
    if code.len() != digits as usize || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let now = step_at(now_unix)?;
    let mut found = None;
    // Every candidate is computed and compared, whichever matches.
    for step in now.saturating_sub(SKEW)..=now.saturating_add(SKEW) {
        let expected = format_code(hotp(secret.as_bytes(), step, digits), digits);
        if bool::from(expected.as_bytes().ct_eq(code)) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the TOTP code is wrong or outside the accepted time window")]
    Wrong,
    #[error("the TOTP code was already used (or an equally recent one was)")]
    Replayed,
}

/// The last accepted time step of each identity, so each code works once.
///
/// One guard must outlive credential-store reloads: a reload must not
/// reopen codes already used. Memory grows with the number of identities
/// that have used TOTP, which the store bounds.
#[derive(Default)]
pub struct TotpGuard {
    last: Mutex<HashMap<String, u64>>,
}

impl TotpGuard {
    pub fn new() -> TotpGuard {
        TotpGuard::default()
    }

    /// Records `step` for `identity` if it is later than the last accepted
    /// one; `false` means a replay. Atomic: of two concurrent connections
    /// with the same code, one wins.
    pub fn accept(&self, identity: &str, step: u64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.get_mut(identity) {
            Some(prev) if *prev >= step => false,
            Some(prev) => {
                *prev = step;
                true
            }
            None => {
                last.insert(identity.to_owned(), step);
                true
            }
        }
    }

    /// Verifies and records a code in one call.
    pub fn check(
        &self,
        identity: &str,
        secret: &TotpSecret,
        code: &[u8],
        now_unix: i64,
    ) -> Result<u64, TotpError> {
        let step = verify(secret, code, now_unix).ok_or(TotpError::Wrong)?;
        if self.accept(identity, step) {
            Ok(step)
        } else {
            Err(TotpError::Replayed)
        }
    }
}

impl fmt::Debug for TotpGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.last.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "TotpGuard({n} identities)")
    }
}

/// The enrolment URI authenticator apps read (usually from a QR code):
/// `otpauth://totp/Bulwark:NAME?secret=...&issuer=Bulwark&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(name: &str, secret: &TotpSecret) -> String {
    format!(
        "otpauth://totp/Bulwark:{}?secret={}&issuer=Bulwark&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        percent_encode(name),
        secret.to_base32()
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column (secret "12345678901234567890").
    #[test]
    fn rfc6238_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, code) in vectors {
            assert_eq!(code_at(&secret, t, 8).as_deref(), Some(code), "t={t}");
            assert_eq!(
                verify_digits(&secret, code.as_bytes(), t, 8),
                step_at(t),
                "t={t}"
            );
        }
        // RFC 4226 Appendix D: the 6-digit HOTP values for counters 0 and 1.
        assert_eq!(hotp(b"12345678901234567890", 0, 6), 755_224);
        assert_eq!(hotp(b"12345678901234567890", 1, 6), 287_082);
    }

    #[test]
    fn window_and_format() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        let t = 1_111_111_111;
        let code = code_at(&secret, t, 6).unwrap();
        assert_eq!(code, "050471");
        assert_eq!(verify(&secret, code.as_bytes(), t), step_at(t));
        assert_eq!(verify(&secret, code.as_bytes(), t + 30), step_at(t));
        assert_eq!(verify(&secret, code.as_bytes(), t - 30), step_at(t));
        assert_eq!(verify(&secret, code.as_bytes(), t + 60), None);
        assert_eq!(verify(&secret, b"05047", t), None);
        assert_eq!(verify(&secret, b"0504711", t), None);
        assert_eq!(verify(&secret, b"05047a", t), None);
        assert_eq!(verify(&secret, code.as_bytes(), -1), None);
    }

    #[test]
    fn replay_is_refused() {
        let guard = TotpGuard::new();
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        let t = 1_111_111_111;
        let now = code_at(&secret, t, 6).unwrap();
        let before = code_at(&secret, t - 30, 6).unwrap();
        let next = code_at(&secret, t + 30, 6).unwrap();
        assert!(guard.check("op", &secret, now.as_bytes(), t).is_ok());
        assert_eq!(
            guard.check("op", &secret, now.as_bytes(), t),
            Err(TotpError::Replayed)
        );
        // An older code, still inside the window, is a replay too.
        assert_eq!(
            guard.check("op", &secret, before.as_bytes(), t),
            Err(TotpError::Replayed)
        );
        // Another identity has its own history.
        assert!(guard.check("op2", &secret, now.as_bytes(), t).is_ok());
        assert_eq!(
            guard.check("op", &secret, b"000000", t + 200),
            Err(TotpError::Wrong)
        );
        assert!(guard.check("op", &secret, next.as_bytes(), t + 30).is_ok());
    }

    #[test]
    fn secrets_and_uri() {
        let s = TotpSecret::generate().unwrap();
        assert_eq!(s.as_bytes().len(), SECRET_LEN);
        let b32 = s.to_base32();
        assert_eq!(b32.len(), 32);
        assert_eq!(
            TotpSecret::from_base32(&b32).unwrap().as_bytes(),
            s.as_bytes()
        );
        assert_eq!(
            TotpSecret::from_base32(&b32.to_lowercase())
                .unwrap()
                .as_bytes(),
            s.as_bytes(),
            "case is ignored"
        );
        assert!(TotpSecret::from_base32("GEZDGNBV").is_err(), "too short");
        assert!(TotpSecret::from_base32("not base32!").is_err());
        assert_eq!(format!("{s:?}"), "TotpSecret(<redacted>)");
        let uri = otpauth_uri("op 1:a", &s);
        assert_eq!(
            uri,
            format!("otpauth://totp/Bulwark:op%201%3Aa?secret={b32}&issuer=Bulwark&algorithm=SHA1&digits=6&period=30")
        );
    }
}
