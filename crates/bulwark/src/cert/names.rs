//! Validation of the names an operator puts into a certificate. A name that
//! a TLS peer would reject, or that a later certificate-to-identity mapping
//! could misread, is refused here with the reason, before any key is made.

use std::net::IpAddr;

use rcgen::{Ia5String, SanType};
use rustls_pki_types::DnsName;

/// X.520 upper bound for a common name (ub-common-name).
const MAX_COMMON_NAME: usize = 64;

pub fn common_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the name must not be empty".into());
    }
    if s.chars().count() > MAX_COMMON_NAME {
        return Err(format!(
            "'{s}' is longer than {MAX_COMMON_NAME} characters, the limit for a certificate common name"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "{s:?} contains control characters; use printable text"
        ));
    }
    Ok(s.to_owned())
}

/// A host name or an IP address as a SAN: what a client checks a server
/// certificate against.
pub fn host(s: &str) -> Result<SanType, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    dns(s).map_err(|_| {
        format!("'{s}' is neither a DNS name (such as broker.example.com) nor an IP address")
    })
}

/// A DNS name; a leading `*.` wildcard label is allowed.
pub fn dns(s: &str) -> Result<SanType, String> {
    let bare = s.strip_prefix("*.").unwrap_or(s);
    // DnsName accepts a trailing dot and digits-only labels like "1.2.3.4";
    // neither belongs in a certificate.
    let valid =
        !bare.ends_with('.') && bare.parse::<IpAddr>().is_err() && DnsName::try_from(bare).is_ok();
    if !valid {
        return Err(format!(
            "'{s}' is not a DNS name (letters, digits, '-' and '.', e.g. sensor-7.plant.example)"
        ));
    }
    Ok(SanType::DnsName(ia5(s)?))
}

/// A URI SAN, such as `spiffe://plant.example/line-3/press` or
/// `urn:dev:mac:0024befffe804ff1`.
pub fn uri(s: &str) -> Result<SanType, String> {
    let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok || !printable_ascii(s) {
        return Err(format!(
            "'{s}' is not a URI; write scheme:rest without spaces, e.g. spiffe://site/device or urn:dev:ops:1"
        ));
    }
    Ok(SanType::URI(ia5(s)?))
}

pub fn email(s: &str) -> Result<SanType, String> {
    let ok = s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && printable_ascii(s);
    if !ok {
        return Err(format!(
            "'{s}' is not an e-mail address (ASCII local@domain)"
        ));
    }
    Ok(SanType::Rfc822Name(ia5(s)?))
}

fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

fn ia5(s: &str) -> Result<Ia5String, String> {
    Ia5String::try_from(s).map_err(|_| format!("'{s}' must be ASCII"))
}

/// Appends `san` unless an equal one is already there: `--name localhost
/// --san localhost` should not produce a duplicate entry.
pub fn push_unique(sans: &mut Vec<SanType>, san: SanType) {
    if !sans.contains(&san) {
        sans.push(san);
    }
}
