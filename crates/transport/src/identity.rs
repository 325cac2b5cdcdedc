//! The identity a verified client certificate stands for.
//!
//! The certificate chain has been verified by rustls before anything here
//! runs; this module only picks the field the listener names and checks
//! that the value is safe to use as an identity: later layers substitute it
//! into ACL patterns and client-ID patterns, so it may never carry topic
//! wildcards, a level separator or control characters.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Longest identity taken from a certificate, in bytes.
pub const MAX_IDENTITY_LEN: usize = 128;

/// Which certificate field becomes the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    CommonName,
    SanDns,
    SanUri,
    SanEmail,
}

impl IdentitySource {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cn" => Self::CommonName,
            "san_dns" => Self::SanDns,
            "san_uri" => Self::SanUri,
            "san_email" => Self::SanEmail,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::CommonName => "subject CN",
            Self::SanDns => "DNS subjectAltName",
            Self::SanUri => "URI subjectAltName",
            Self::SanEmail => "email subjectAltName",
        }
    }
}

/// What the transport learnt from a client certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub identity: String,
    /// Hex serial, for logs and the audit trail.
    pub serial: String,
    /// Seconds since the epoch after which the certificate is expired.
    pub not_after: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("client certificate cannot be parsed: {0}")]
    Parse(String),
    #[error("client certificate has no {0}")]
    Missing(&'static str),
    #[error("identity from the certificate's {field} is {len} bytes; at most {MAX_IDENTITY_LEN} are allowed")]
    TooLong { field: &'static str, len: usize },
    #[error("identity {value:?} from the certificate's {field} contains {what}, which could widen access rules")]
    Unsafe {
        field: &'static str,
        value: String,
        what: &'static str,
    },
}

/// Reads the identity from the end-entity certificate `der`.
pub fn extract(der: &[u8], source: IdentitySource) -> Result<CertInfo, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Parse(e.to_string()))?;
    let field = source.name();
    let value = match source {
        IdentitySource::CommonName => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        san => first_san(&cert, san),
    }
    .ok_or(IdentityError::Missing(field))?;
    validate(field, &value)?;
    Ok(CertInfo {
        identity: value,
        serial: cert.raw_serial_as_string(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn first_san(cert: &X509Certificate<'_>, source: IdentitySource) -> Option<String> {
    let san = cert.subject_alternative_name().ok()??;
    san.value
        .general_names
        .iter()
        .find_map(|n| match (source, n) {
            (IdentitySource::SanDns, GeneralName::DNSName(v))
            | (IdentitySource::SanUri, GeneralName::URI(v))
            | (IdentitySource::SanEmail, GeneralName::RFC822Name(v)) => Some((*v).to_owned()),
            _ => None,
        })
}

/// Refuses values that could act as a pattern or escape a topic level.
pub fn validate(field: &'static str, value: &str) -> Result<(), IdentityError> {
    if value.is_empty() {
        return Err(IdentityError::Missing(field));
    }
    if value.len() > MAX_IDENTITY_LEN {
        return Err(IdentityError::TooLong {
            field,
            len: value.len(),
        });
    }
    let what = value.chars().find_map(|c| match c {
        '+' | '#' | '*' => Some("a wildcard character"),
        '/' => Some("a topic level separator '/'"),
        c if c.is_control() => Some("a control character"),
        _ => None,
    });
    match what {
        Some(what) => Err(IdentityError::Unsafe {
            field,
            value: value.escape_debug().to_string(),
            what,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_identities_are_refused() {
        for bad in ["a+b", "#", "plant/line1", "x*", "a\u{0}b", "a\nb"] {
            assert!(
                matches!(
                    validate("subject CN", bad),
                    Err(IdentityError::Unsafe { .. })
                ),
                "{bad:?} accepted"
            );
        }
        assert_eq!(
            validate("subject CN", ""),
            Err(IdentityError::Missing("subject CN"))
        );
        let long = "a".repeat(MAX_IDENTITY_LEN + 1);
        assert!(matches!(
            validate("subject CN", &long),
            Err(IdentityError::TooLong { .. })
        ));
        for good in ["plc-17", "sensor.hall3@plant", "urn:dev:ops:42", "Ünïcode"] {
            assert_eq!(validate("subject CN", good), Ok(()));
        }
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            extract(b"\x30\x03\x02\x01", IdentitySource::CommonName),
            Err(IdentityError::Parse(_))
        ));
    }
}
