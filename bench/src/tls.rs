//! TLS for the TLS scenarios: a throwaway PKI written at start-up (a CA, a `localhost` server
//! certificate, one client certificate, all ECDSA P-256) and the bench's rustls client.
//!
//! The client offers TLS 1.3 only, one cipher suite and one key-exchange group, and never
//! resumes a session, so every connection is a full handshake and both brokers negotiate
//! exactly the same thing.
//!
//! The handshake scenarios open thousands of connections per second from a load generator that
//! has one core (or shares the broker's two). Verifying the server's chain and handshake
//! signature costs the client two ECDSA verifications per connection, more than the broker's
//! own share of the handshake, and changes nothing the broker does; so their connection loop
//! uses a client that skips it ([`TlsClient::unverified`]), after one verified connection has
//! checked the setup. Everything else uses the verifying client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring as provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

/// Name in the server certificate and the SNI the client sends.
const SERVER_NAME: &str = "localhost";
/// Common name of the client certificate: Bulwark's identity, Mosquitto's username.
pub const CLIENT_CN: &str = "bench-client";
/// What the client offers, stated in the report's method notes.
pub const OFFER: &str = "TLS 1.3 only, TLS_AES_128_GCM_SHA256, X25519 key exchange";

/// The PEM files both brokers are configured with, and the client's own certificate.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    ca_der: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: Vec<u8>,
}

/// A broker-side TLS listener: which PKI, and whether a client certificate is required.
#[derive(Clone, Copy)]
pub struct ListenerTls<'a> {
    pub pki: &'a Pki,
    pub client_certs: bool,
}

/// A ready client: connectors plus the name to verify the server against (and send as SNI).
pub struct TlsClient {
    /// Verifies the server's certificate against the bench CA.
    pub connector: TlsConnector,
    /// The same offer, but accepts any server certificate and handshake signature.
    pub unverified: TlsConnector,
    pub server_name: ServerName<'static>,
}

/// Accepts whatever the server presents; for the handshake loop only (see the module notes).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Creates the CA, server and client certificates (ECDSA P-256) as PEM files in `dir`.
pub fn make_pki(dir: &Path) -> Result<Pki> {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::CommonName, "bulwark-bench CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = p
        .self_signed(&ca_key)
        .context("self-signing the bench CA")?;

    let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::new(vec![SERVER_NAME.to_string(), "127.0.0.1".to_string()])?;
    p.distinguished_name.push(DnType::CommonName, SERVER_NAME);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    let server = p
        .signed_by(&server_key, &ca, &ca_key)
        .context("issuing the bench server certificate")?;

    let client_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, CLIENT_CN);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    let client = p
        .signed_by(&client_key, &ca, &ca_key)
        .context("issuing the bench client certificate")?;

    let write = |name: &str, pem: String| -> Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    Ok(Pki {
        ca: write("ca.pem", ca.pem())?,
        server_cert: write("server.pem", server.pem())?,
        server_key: write("server.key", server_key.serialize_pem())?,
        ca_der: ca.der().clone(),
        client_cert: client.der().clone(),
        client_key: client_key.serialize_der(),
    })
}

/// The bench's TLS client for `pki`, presenting the client certificate if `client_cert`.
pub fn client(pki: &Pki, client_cert: bool) -> Result<Arc<TlsClient>> {
    let offer = Arc::new(CryptoProvider {
        cipher_suites: vec![provider::cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![provider::kx_group::X25519],
        ..provider::default_provider()
    });
    let mut roots = RootCertStore::empty();
    roots
        .add(pki.ca_der.clone())
        .context("adding the bench CA")?;
    let verifying = config(pki, client_cert, &offer, |b| {
        b.with_root_certificates(roots)
    })?;
    let unverified = config(pki, client_cert, &offer, |b| {
        b.dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(offer.clone())))
    })?;
    Ok(Arc::new(TlsClient {
        connector: TlsConnector::from(Arc::new(verifying)),
        unverified: TlsConnector::from(Arc::new(unverified)),
        server_name: ServerName::try_from(SERVER_NAME)?.to_owned(),
    }))
}

type WantsVerifier = rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>;
type WantsClientCert = rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>;

fn config(
    pki: &Pki,
    client_cert: bool,
    offer: &Arc<CryptoProvider>,
    verifier: impl FnOnce(WantsVerifier) -> WantsClientCert,
) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(offer.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 with the ring provider")?;
    let builder = verifier(builder);
    let mut config = if client_cert {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.client_key.clone()));
        builder
            .with_client_auth_cert(vec![pki.client_cert.clone()], key)
            .context("loading the bench client certificate")?
    } else {
        builder.with_no_client_auth()
    };
    // Every connection a full handshake: no tickets kept, no session ids, no early data.
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}
