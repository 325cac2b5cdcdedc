//! Password hashes: argon2id in PHC string format.
//!
//! New hashes use the OWASP parameters (m = 19456 KiB, t = 2, p = 1) with a
//! 16-byte random salt. The store accepts only argon2id PHC strings whose
//! cost is at least one of the OWASP configurations ([`check_phc`]), so a
//! plaintext password, an MD5/SHA-512 "hash" or a cheapened argon2 string in
//! the file is a load error, never a credential. Verification recomputes
//! the hash with the stored parameters and compares in constant time
//! (inside `argon2`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

/// OWASP memory cost, KiB.
pub const M_COST: u32 = 19_456;
/// OWASP time cost (passes).
pub const T_COST: u32 = 2;
/// OWASP parallelism.
pub const P_COST: u32 = 1;

/// The weakest accepted cost: OWASP's cheapest configuration is
/// m = 7168 KiB with t = 5; each of its five trades memory for passes so
/// that m·t stays at or above this.
const MIN_M_TIMES_T: u64 = 35_840;
const MIN_M: u32 = 7_168;
/// Upper bounds keep one CONNECT from costing seconds or gigabytes, even
/// with a file written by hand.
const MAX_M: u32 = 1_048_576;
const MAX_T: u32 = 16;
const MAX_P: u32 = 16;

/// A hash of a password nobody knows, with the same parameters as new
/// hashes: verified instead of a real one when the identity is unknown, so
/// an unknown name costs the same time as a wrong password.
pub(crate) const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$YnVsd2Fyay1kdW1teS1zYWx0$vhWG0cb0U43GWAh7cF2f0zGl9z9odge0NiifWKYSPwU";

// Counts calls to `verify` on this thread, so tests can check that every
// authentication path does the same argon2 work.
#[cfg(test)]
thread_local! {
    pub(crate) static VERIFICATIONS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the system random number generator failed")]
    Random,
    #[error("argon2 failed: {0}")]
    Hash(String),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id and the OWASP parameters: the PHC
/// string to store.
pub fn hash(password: &[u8]) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    hasher()?
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. Anything but a valid
/// argon2id string is `false`. The comparison is constant-time.
pub fn verify(phc: &str, password: &[u8]) -> bool {
    #[cfg(test)]
    VERIFICATIONS.with(|n| n.set(n.get() + 1));
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    Argon2::default().verify_password(password, &parsed).is_ok()
}

/// Checks that `phc` is an argon2id PHC string (version 19) whose
/// parameters are at least as costly as an OWASP configuration and within
/// sane bounds. The error does not repeat the value: it may be a plaintext
/// password someone pasted into the file.
pub fn check_phc(phc: &str) -> Result<(), String> {
    const HINT: &str = "set it with `bulwark user passwd NAME`";
    if !phc.starts_with('$') {
        return Err(format!(
            "is not a password hash; a plaintext password in the file is refused: {HINT}"
        ));
    }
    let parsed =
        PasswordHash::new(phc).map_err(|_| format!("is not a valid PHC hash string: {HINT}"))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!(
            "is a '{}' hash; only argon2id is accepted: {HINT}",
            parsed.algorithm
        ));
    }
    if parsed.version != Some(0x13) {
        return Err(format!("must be argon2id version 19 (v=19): {HINT}"));
    }
    let params =
        Params::try_from(&parsed).map_err(|_| format!("has invalid argon2 parameters: {HINT}"))?;
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m < MIN_M || u64::from(m) * u64::from(t) < MIN_M_TIMES_T {
        return Err(format!(
            "uses argon2id m={m},t={t}, weaker than the OWASP minimum (m=19456,t=2 or an equivalent): {HINT}"
        ));
    }
    if m > MAX_M || t > MAX_T || p > MAX_P {
        return Err(format!(
            "uses argon2id m={m},t={t},p={p}; at most m={MAX_M},t={MAX_T},p={MAX_P} are accepted"
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(format!("has no salt or no hash: {HINT}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(check_phc(&phc), Ok(()));
        assert!(verify(&phc, b"correct horse"));
        assert!(!verify(&phc, b"correct horsE"));
        assert!(!verify("not a hash", b"correct horse"));
    }

    #[test]
    fn dummy_hash_has_the_default_cost() {
        assert_eq!(check_phc(DUMMY_PHC), Ok(()));
        assert!(DUMMY_PHC.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify(DUMMY_PHC, b""));
        // It is a real hash (of a phrase no client is told), so verifying
        // against it costs a full argon2id computation.
        assert!(verify(DUMMY_PHC, b"bulwark: no such identity"));
    }

    #[test]
    fn other_hashes_are_refused() {
        let sha512 = "$6$rounds=5000$saltsalt$Jx.fakehash";
        let argon2i =
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        let weak =
            "$argon2id$v=19$m=4096,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        let huge = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        for (bad, expect) in [
            ("hunter2", "plaintext"),
            ("0a1b2c3d4e5f", "plaintext"),
            (sha512, "hash"),
            (argon2i, "only argon2id"),
            (weak, "weaker"),
            (huge, "at most"),
        ] {
            let e = check_phc(bad).unwrap_err();
            assert!(e.contains(expect), "{bad}: {e}");
            assert!(!e.contains("hunter2"));
        }
    }
}
