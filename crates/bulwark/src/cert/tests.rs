//! The CA is judged by the verifier the broker uses: rustls' webpki
//! verifiers with the ring provider, given `ca.pem` and `crl.pem` exactly as
//! written to disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{ExtendedKeyUsagePurpose, SanType};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use time::Duration;

use super::ca::{self, Ca, KeyType, Leaf};
use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bulwark-cert-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn der(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read certificate");
    ca::certificate_der(path, &bytes).expect("certificate")
}

fn crl_der(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read CRL");
    x509_parser::pem::Pem::iter_from_buffer(&bytes)
        .filter_map(Result::ok)
        .find(|p| p.label == "X509 CRL")
        .expect("a PEM X509 CRL block")
        .contents
}

fn roots(ca_pem: &Path) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(der(ca_pem)))
        .expect("CA accepted as a trust anchor");
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verify_client(ca_pem: &Path, cert: &Path, crl: Option<&Path>) -> Result<(), rustls::Error> {
    let crls = crl
        .map(|p| vec![CertificateRevocationListDer::from(crl_der(p))])
        .unwrap_or_default();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca_pem), provider())
        .with_crls(crls)
        .build()
        .expect("client verifier");
    verifier
        .verify_client_cert(&CertificateDer::from(der(cert)), &[], UnixTime::now())
        .map(|_| ())
}

fn verify_server(ca_pem: &Path, cert: &Path, name: &str) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca_pem), provider())
        .build()
        .expect("server verifier");
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    verifier
        .verify_server_cert(
            &CertificateDer::from(der(cert)),
            &[],
            &name,
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

fn client_leaf(cn: &str) -> Leaf {
    Leaf {
        common_name: cn.into(),
        sans: vec![names::uri("urn:dev:test").expect("uri")],
        usage: ExtendedKeyUsagePurpose::ClientAuth,
        days: 365,
        key_type: KeyType::Ecdsa,
    }
}

fn server_leaf(key_type: KeyType) -> Leaf {
    Leaf {
        common_name: "broker.test".into(),
        sans: ["broker.test", "127.0.0.1", "::1"]
            .into_iter()
            .map(|s| names::host(s).expect("host"))
            .collect(),
        usage: ExtendedKeyUsagePurpose::ServerAuth,
        days: 825,
        key_type,
    }
}

#[test]
fn ca_files_are_private_and_never_overwritten() {
    let dir = temp_dir("ca").join("nested");
    let authority = ca::create(&dir, "Test CA", 30).expect("create CA");
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
    }
    let ca_der = der(&authority.cert_path());
    let (_, x) = x509_parser::parse_x509_certificate(&ca_der).expect("parse");
    assert!(x.is_ca());
    let ku = x.key_usage().expect("ku").expect("key usage present").value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    assert_eq!(
        x.subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok()),
        Some("Test CA")
    );

    let before = std::fs::read(dir.join("ca.key")).expect("key");
    let err = ca::create(&dir, "Other", 30).err().expect("refused");
    assert!(err.contains("ca.key already exists"), "{err}");
    assert_eq!(std::fs::read(dir.join("ca.key")).expect("key"), before);
}

#[cfg(unix)]
#[test]
fn a_ca_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("loose");
    ca::create(&dir, "Test CA", 30).expect("create CA");
    let key = dir.join("ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Ca::load(&dir).err().expect("refused");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn issued_certificates_chain_to_the_original_ca_pem() {
    let dir = temp_dir("chain");
    ca::create(&dir, "Test CA", 30).expect("create CA");
    // Load again, as every `bulwark cert` invocation does.
    let authority = Ca::load(&dir).expect("load CA");
    let ca_pem = dir.join("ca.pem");

    for (key_type, prefix) in [(KeyType::Ecdsa, "srv-ec"), (KeyType::Ed25519, "srv-ed")] {
        let issued = authority
            .issue(&server_leaf(key_type), &dir.join(prefix), false)
            .expect("issue server");
        for name in ["broker.test", "127.0.0.1", "::1"] {
            verify_server(&ca_pem, &issued.cert, name).expect("server chains to ca.pem");
        }
        assert!(verify_server(&ca_pem, &issued.cert, "other.test").is_err());
        // Server authentication only: not usable as a client certificate.
        assert!(verify_client(&ca_pem, &issued.cert, None).is_err());
        #[cfg(unix)]
        assert_eq!(mode(&issued.key), 0o600);
    }

    let client = authority
        .issue(&client_leaf("dev-1"), &dir.join("dev-1"), false)
        .expect("issue client");
    verify_client(&ca_pem, &client.cert, None).expect("client chains to ca.pem");

    let leaf_der = der(&client.cert);
    let (_, x) = x509_parser::parse_x509_certificate(&leaf_der).expect("parse");
    let serial = x.raw_serial();
    assert_eq!(serial.len(), 16);
    assert!(serial.first().is_some_and(|b| b & 0x80 == 0 && *b != 0));
    assert_eq!(ca::hex(serial), client.serial);

    let issued = std::fs::read_to_string(dir.join("issued.txt")).expect("issued.txt");
    assert_eq!(issued.lines().count(), 3);
    let expected = format!("{}  {}  dev-1", client.serial, client.cert.display());
    assert!(issued.lines().any(|l| l == expected), "{issued}");

    let err = authority
        .issue(&client_leaf("dev-1"), &dir.join("dev-1"), false)
        .err()
        .expect("no overwrite");
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn revocation_lists_the_serial_and_the_verifier_refuses_it() {
    let dir = temp_dir("revoke");
    let authority = ca::create(&dir, "Test CA", 30).expect("create CA");
    let ca_pem = dir.join("ca.pem");
    let bad = authority
        .issue(&client_leaf("stolen"), &dir.join("stolen"), false)
        .expect("issue");
    let good = authority
        .issue(&client_leaf("fine"), &dir.join("fine"), false)
        .expect("issue");

    let (revoked, crl) = authority
        .revoke(std::slice::from_ref(&bad.cert), 7)
        .expect("revoke");
    assert_eq!(revoked.len(), 1);
    assert!(!revoked[0].already_revoked);
    assert_eq!(revoked[0].serial, bad.serial);
    assert_eq!((crl.number, crl.entries), (1, 1));

    let crl_bytes = crl_der(&crl.path);
    let (_, parsed) = x509_parser::parse_x509_crl(&crl_bytes).expect("parse CRL");
    let serials: Vec<String> = parsed
        .iter_revoked_certificates()
        .map(|r| ca::hex(r.raw_serial()))
        .collect();
    assert_eq!(serials, vec![bad.serial.clone()]);
    let ca_der = der(&ca_pem);
    let (_, ca_x) = x509_parser::parse_x509_certificate(&ca_der).expect("parse CA");
    assert_eq!(parsed.issuer().as_raw(), ca_x.subject().as_raw());
    assert!(parsed.verify_signature(ca_x.public_key()).is_ok());

    let err = verify_client(&ca_pem, &bad.cert, Some(&crl.path)).expect_err("revoked");
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
        ),
        "{err:?}"
    );
    verify_client(&ca_pem, &good.cert, Some(&crl.path)).expect("not revoked");

    // Revoking again changes nothing but the CRL number.
    let (again, crl) = authority
        .revoke(std::slice::from_ref(&bad.cert), 7)
        .expect("revoke again");
    assert!(again[0].already_revoked);
    assert_eq!((crl.number, crl.entries), (2, 1));
    let listed = std::fs::read_to_string(dir.join("revoked.txt")).expect("revoked.txt");
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.starts_with(&bad.serial), "{listed}");
}

#[test]
fn an_empty_crl_is_written_and_accepted() {
    let dir = temp_dir("empty-crl");
    let authority = ca::create(&dir, "Test CA", 30).expect("create CA");
    let client = authority
        .issue(&client_leaf("c"), &dir.join("c"), false)
        .expect("issue");
    let crl = authority.write_crl(7).expect("crl");
    assert_eq!((crl.number, crl.entries), (1, 0));
    let bytes = crl_der(&crl.path);
    let (_, parsed) = x509_parser::parse_x509_crl(&bytes).expect("parse CRL");
    assert_eq!(parsed.iter_revoked_certificates().count(), 0);
    let next = parsed.next_update().expect("next update").timestamp();
    let this = parsed.last_update().timestamp();
    assert_eq!(next - this, 7 * 86_400);
    verify_client(&dir.join("ca.pem"), &client.cert, Some(&crl.path)).expect("accepted");
    assert_eq!(authority.write_crl(7).expect("crl").number, 2);
}

#[test]
fn revoke_refuses_a_certificate_from_another_ca_and_changes_nothing() {
    let ours = ca::create(&temp_dir("ours"), "Ours", 30).expect("CA");
    let theirs_dir = temp_dir("theirs");
    let theirs = ca::create(&theirs_dir, "Ours", 30).expect("CA with the same name");
    let foreign = theirs
        .issue(&client_leaf("x"), &theirs_dir.join("x"), false)
        .expect("issue");
    let err = ours.revoke(&[foreign.cert], 7).err().expect("refused");
    assert!(err.contains("was not issued by the CA"), "{err}");
    assert!(!temp_dir("ours").join("revoked.txt").exists());
}

#[test]
fn hand_written_revocation_lines_are_honoured() {
    let dir = temp_dir("hand");
    let authority = ca::create(&dir, "Test CA", 30).expect("create CA");
    std::fs::write(dir.join("revoked.txt"), "# lost device\n0a0b\n").expect("write");
    let crl = authority.write_crl(7).expect("crl");
    assert_eq!(crl.entries, 1);
    std::fs::write(dir.join("revoked.txt"), "zz 12\n").expect("write");
    let err = authority.write_crl(7).err().expect("bad line");
    assert!(err.contains("revoked.txt:1:"), "{err}");
}

#[test]
fn dev_pki_is_created_once_and_reused() {
    let dir = temp_dir("dev");
    let first = ensure_dev_pki(&dir).expect("dev pki");
    assert!(first.created && !first.renewed);
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&first.dir), 0o700);
        for key in [
            &first.server_key,
            &first.client_key,
            &first.dir.join("ca.key"),
        ] {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
    }
    for name in ["localhost", "127.0.0.1", "::1"] {
        verify_server(&first.ca, &first.server_cert, name).expect("server cert");
    }
    verify_client(&first.ca, &first.client_cert, None).expect("client cert");
    let ca_der = der(&first.ca);
    let (_, x) = x509_parser::parse_x509_certificate(&ca_der).expect("parse CA");
    let cn = x
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok());
    assert!(
        cn.is_some_and(|c| c.starts_with("Bulwark development CA (")),
        "{cn:?}"
    );

    let snapshot = |p: &DevPki| {
        [
            &p.ca,
            &p.server_cert,
            &p.server_key,
            &p.client_cert,
            &p.client_key,
        ]
        .map(|f| std::fs::read(f).expect("read"))
    };
    let before = snapshot(&first);
    let second = ensure_dev_pki(&dir).expect("dev pki again");
    assert!(!second.created && !second.renewed);
    assert_eq!(snapshot(&second), before);
}

#[test]
fn dev_pki_renews_a_server_certificate_close_to_expiry() {
    let dir = temp_dir("dev-renew");
    let pki = ensure_dev_pki(&dir).expect("dev pki");
    let ca_before = std::fs::read(&pki.ca).expect("ca");
    let authority = Ca::load(&pki.dir).expect("load");
    let prefix = pki.dir.join("server");
    let mut short = server_leaf(KeyType::Ecdsa);
    short.days = 10;
    authority.issue(&short, &prefix, true).expect("short-lived");
    assert!(!authority.leaf_is_fresh(&prefix, Duration::days(30)));

    let again = ensure_dev_pki(&dir).expect("dev pki again");
    assert!(!again.created && again.renewed);
    assert_eq!(std::fs::read(&again.ca).expect("ca"), ca_before);
    assert!(authority.leaf_is_fresh(&prefix, Duration::days(30)));
    verify_server(&again.ca, &again.server_cert, "localhost").expect("renewed cert");

    // A key that no longer matches its certificate is also replaced.
    std::fs::copy(&again.client_key, &again.server_key).expect("copy");
    assert!(ensure_dev_pki(&dir).expect("third").renewed);
    assert!(authority.leaf_is_fresh(&prefix, Duration::days(30)));
}

fn p(args: &[&str]) -> Result<Option<Cmd>, String> {
    parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn command_line_errors_say_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&["ca"], "--dir is required"),
        (&["ca", "--dir", "d", "--days", "0"], "--days 0"),
        (&["ca", "--dir", "d", "--dir", "e"], "--dir given twice"),
        (&["server", "--ca", "d", "--out", "o"], "--name is required"),
        (
            &["server", "--ca", "d", "--name", "bad name", "--out", "o"],
            "neither a DNS name",
        ),
        (
            &[
                "server", "--ca", "d", "--name", "h", "--san", "a..b", "--out", "o",
            ],
            "--san",
        ),
        (
            &[
                "server",
                "--ca",
                "d",
                "--name",
                "h",
                "--key-type",
                "rsa",
                "--out",
                "o",
            ],
            "unknown key type",
        ),
        (
            &[
                "client",
                "--ca",
                "d",
                "--name",
                "c",
                "--san-uri",
                "no scheme",
                "--out",
                "o",
            ],
            "not a URI",
        ),
        (
            &[
                "client",
                "--ca",
                "d",
                "--name",
                "c",
                "--san-email",
                "x",
                "--out",
                "o",
            ],
            "not an e-mail",
        ),
        (&["client", "--ca", "d", "--name", "c"], "--out is required"),
        (
            &["client", "--ca", "d", "--name", "c", "--out", "o", "extra"],
            "unexpected argument 'extra'",
        ),
        (&["revoke", "--ca", "d"], "at least one certificate"),
        (&["crl", "--ca", "d", "--frob"], "unknown option '--frob'"),
        (&["mint"], "unknown subcommand 'mint'"),
    ];
    for (args, expected) in cases {
        let err = p(args).err().unwrap_or_else(|| panic!("{args:?} accepted"));
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(matches!(p(&[]), Ok(None)));
    assert!(matches!(p(&["--help"]), Ok(None)));
}

#[test]
fn command_line_builds_the_requested_certificate() {
    let Ok(Some(Cmd::Issue { leaf, out, ca })) = p(&[
        "server",
        "--ca",
        "d",
        "--name",
        "10.0.0.5",
        "--san=broker.local",
        "--san",
        "10.0.0.5",
        "--key-type",
        "ed25519",
        "--out",
        "o",
    ]) else {
        panic!("server command not parsed");
    };
    assert_eq!((ca, out), (PathBuf::from("d"), PathBuf::from("o")));
    assert_eq!(leaf.common_name, "10.0.0.5");
    assert_eq!(leaf.days, 365);
    assert_eq!(leaf.key_type, KeyType::Ed25519);
    assert_eq!(
        leaf.sans,
        vec![
            SanType::IpAddress("10.0.0.5".parse().expect("ip")),
            names::dns("broker.local").expect("dns"),
        ]
    );
    let Ok(Some(Cmd::Revoke { certs, days, .. })) =
        p(&["revoke", "--ca", "d", "--", "-odd.pem", "b.pem"])
    else {
        panic!("revoke not parsed");
    };
    assert_eq!(
        certs,
        vec![PathBuf::from("-odd.pem"), PathBuf::from("b.pem")]
    );
    assert_eq!(days, 7);
}

#[test]
fn names_table() {
    for ok in ["localhost", "a-b.example", "*.plant.example", "x_y.local"] {
        assert!(names::dns(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "a..b",
        "-a.example",
        "a b",
        "1.2.3.4",
        "host.",
        "*",
        "ä.example",
    ] {
        assert!(names::dns(bad).is_err(), "{bad}");
    }
    assert!(names::common_name(&"x".repeat(65)).is_err());
    assert!(names::common_name("line\nbreak").is_err());
    assert!(names::uri("spiffe://site/dev").is_ok());
    assert!(names::email("ops@plant.example").is_ok());
}
