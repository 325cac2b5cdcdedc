//! Validation of identity and role names.
//!
//! The rule is the one the transport applies to certificate identities, so
//! that a name from the credential file and a name from a certificate are
//! interchangeable: later layers substitute identities into ACL topic
//! patterns and client-ID patterns, so a name may never carry topic
//! wildcards (`+`, `#`), `*`, a level separator or control characters.

/// Longest identity name, in bytes (the transport's limit for certificate
/// identities).
pub const MAX_NAME_LEN: usize = 128;

/// `Ok` when `name` is usable as an identity or role name; otherwise the
/// reason, phrased to follow "the name ...".
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        ));
    }
    if name.trim() != name {
        return Err("must not begin or end with white space".into());
    }
    let bad = name.chars().find_map(|c| match c {
        '+' | '#' | '*' => Some("a wildcard character ('+', '#' or '*')"),
        '/' => Some("a topic level separator '/'"),
        c if c.is_control() => Some("a control character"),
        _ => None,
    });
    match bad {
        Some(what) => Err(format!("contains {what}, which could widen access rules")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["plc-hall3-07", "user@example.com", "a.b[c]?", "x|y{z}"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in ["", "a+b", "#", "a/b", "x*", "a\nb", " a", long.as_str()] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
