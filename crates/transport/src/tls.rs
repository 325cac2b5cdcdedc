//! TLS material: certificate, key, CA bundle and CRLs read from files into
//! a rustls `ServerConfig`, and the reasons a handshake fails, put in words
//! an operator can act on.
//!
//! Invariants: only TLS 1.2 and 1.3, and with the ring provider every 1.2
//! suite is ECDHE with an AEAD cipher (Mozilla "intermediate"); a listener
//! that names a CA, key or CRL it cannot read or parse does not start (and
//! on reload keeps the material it had); a CRL past its next update is a
//! failure unless the operator allows it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// Whether a listener asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client must present a certificate that chains to the CA.
    Required,
    /// A certificate is verified if presented; clients without one go on
    /// to other authentication.
    Optional,
    None,
}

/// What a TLS listener is configured with; paths are already resolved.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub crls: Vec<PathBuf>,
    pub client_auth: ClientAuth,
    pub tls13_only: bool,
    /// Accept a CRL whose next-update time has passed.
    pub allow_expired_crl: bool,
    /// ALPN protocols offered, in preference order (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
}

impl TlsSettings {
    /// Every file the material is read from, to watch for changes.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.cert.clone(), self.key.clone()];
        v.extend(self.ca.iter().cloned());
        v.extend(self.crls.iter().cloned());
        v
    }
}

/// A failure to build TLS material, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: {detail}")]
    Parse {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{0}")]
    Config(String),
}

/// Built material: the config new handshakes use and the verifier that
/// live connections are checked against again after a reload.
pub struct Material {
    pub server: Arc<ServerConfig>,
    pub verifier: Option<Arc<dyn ClientCertVerifier>>,
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn parse_err(what: &'static str, path: &Path, detail: impl Into<String>) -> TlsError {
    TlsError::Parse {
        what,
        path: path.to_owned(),
        detail: detail.into(),
    }
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse_err(what, path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(parse_err(
            what,
            path,
            "holds no PEM \"CERTIFICATE\" block; give a PEM file (DER files can be converted with `openssl x509 -inform der`)",
        ));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("private key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        parse_err(
            "private key",
            path,
            format!("no usable PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC): {e}"),
        )
    })
}

fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read("CRL", path)?;
    if !bytes.starts_with(b"-----") && bytes.first() == Some(&0x30) {
        // A DER file (what `openssl ca -gencrl -outform der` writes).
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let list = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse_err("CRL", path, format!("not valid PEM: {e}")))?;
    if list.is_empty() {
        return Err(parse_err(
            "CRL",
            path,
            "holds no \"X509 CRL\" block (PEM) and is not DER",
        ));
    }
    Ok(list)
}

/// Reads every file and builds the server config. Nothing is half-applied:
/// either all of it parses or the caller keeps what it had.
pub fn load(s: &TlsSettings) -> Result<Material, TlsError> {
    let provider = provider();
    let chain = certs("certificate", &s.cert)?;
    let key = key(&s.key)?;
    let verifier = match (&s.ca, s.client_auth) {
        (None, ClientAuth::None) => None,
        (None, _) => {
            return Err(TlsError::Config(
                "client_auth asks for client certificates but no tls_ca bundle is set to verify them against".into(),
            ))
        }
        (Some(_), ClientAuth::None) => None,
        (Some(ca), auth) => Some(client_verifier(s, ca, auth, &provider)?),
    };
    let versions: &[&rustls::SupportedProtocolVersion] = if s.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("TLS versions: {e}")))?;
    let builder = match &verifier {
        Some(v) => builder.with_client_cert_verifier(v.clone()),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| {
        parse_err(
            "certificate/key pair",
            &s.cert,
            format!(
                "{e} (does {} hold the key of this certificate?)",
                s.key.display()
            ),
        )
    })?;
    server.alpn_protocols = s.alpn.clone();
    // The server picks the suite: a client that lists a weak-but-allowed
    // one first does not get it.
    server.ignore_client_order = true;
    Ok(Material {
        server: Arc::new(server),
        verifier,
    })
}

fn client_verifier(
    s: &TlsSettings,
    ca: &Path,
    auth: ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs("CA bundle", ca)? {
        roots
            .add(c)
            .map_err(|e| parse_err("CA bundle", ca, format!("unusable CA certificate: {e}")))?;
    }
    let mut list = Vec::new();
    for path in &s.crls {
        list.extend(crls(path)?);
    }
    let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if !list.is_empty() {
        // The default checks the whole chain and treats a certificate whose
        // issuer has no CRL as unknown, which fails: that is what we want.
        b = b.with_crls(list);
        if !s.allow_expired_crl {
            b = b.enforce_revocation_expiration();
        }
    }
    if auth == ClientAuth::Optional {
        b = b.allow_unauthenticated();
    }
    b.build().map_err(|e| {
        let path = s.crls.first().map_or(ca, PathBuf::as_path);
        parse_err("CA bundle or CRL", path, e.to_string())
    })
}

/// Why a handshake failed, in an operator's words.
pub fn describe_handshake_error(e: &std::io::Error) -> String {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "peer closed the connection during the handshake".into()
            }
            _ => format!("I/O error during the handshake: {e}"),
        };
    };
    describe(tls)
}

fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => format!(
            "client certificate refused: {}",
            describe_certificate_error(c)
        ),
        E::NoCertificatesPresented => {
            "client certificate refused: none presented, and this listener requires one".into()
        }
        E::PeerIncompatible(p) => format!(
            "client offers nothing we accept (TLS 1.2 with ECDHE-AEAD or TLS 1.3 only): {p:?}"
        ),
        E::InvalidMessage(m) => format!(
            "not a TLS handshake ({m:?}); is the client speaking plain MQTT or HTTP to a TLS port?"
        ),
        E::AlertReceived(a) => format!(
            "client aborted the handshake with alert {a:?} (it may not trust our certificate)"
        ),
        other => format!("handshake failed: {other}"),
    }
}

/// Why a certificate failed verification, in an operator's words.
pub fn describe_certificate_error(e: &CertificateError) -> String {
    use CertificateError as C;
    match e {
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "not yet valid".into(),
        C::Revoked => "revoked by the CRL".into(),
        C::UnknownIssuer => "not issued by a CA in this listener's tls_ca bundle".into(),
        C::UnknownRevocationStatus => {
            "revocation status unknown: no CRL covers its issuer; add the issuer's CRL to tls_crl"
                .into()
        }
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
            "the CRL is past its next update; publish a fresh CRL (or set tls_crl_allow_expired)"
                .into()
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "not valid for client authentication (extended key usage lacks clientAuth)".into()
        }
        C::BadSignature => "bad signature".into(),
        C::BadEncoding => "malformed certificate".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
