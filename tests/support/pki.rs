//! A throwaway PKI for transport tests: a CA, server and client
//! certificates (good and bad in each way a verifier must catch), CRLs,
//! written as PEM files in a fresh temporary directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub struct Ca {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    pub dir: PathBuf,
    pub pem: PathBuf,
}

/// Files of one issued certificate.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub serial: Vec<u8>,
}

/// A fresh directory under the system temp dir, unique per call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "bulwark-pki-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn serial() -> Vec<u8> {
    static N: AtomicU32 = AtomicU32::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut s = vec![0x11, 0x22];
    s.extend_from_slice(&n.to_be_bytes());
    s.extend_from_slice(&std::process::id().to_be_bytes());
    s
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        p.not_after = OffsetDateTime::now_utc() + Duration::days(365);
        let cert = p.self_signed(&key).expect("CA cert");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).expect("write CA");
        Ca {
            cert,
            key,
            dir: dir.to_owned(),
            pem,
        }
    }

    fn issue(&self, file: &str, p: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("key");
        let serial = p
            .serial_number
            .as_ref()
            .map(|s| s.to_bytes())
            .unwrap_or_default();
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign");
        let cert_path = self.dir.join(format!("{file}.pem"));
        let key_path = self.dir.join(format!("{file}.key"));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        Issued {
            cert: cert_path,
            key: key_path,
            serial,
        }
    }

    fn params(&self, cn: &str, sans: &[&str]) -> CertificateParams {
        let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial()));
        p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        p.not_after = OffsetDateTime::now_utc() + Duration::days(30);
        p.use_authority_key_identifier_extension = true;
        p
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self, file: &str) -> Issued {
        let mut p = self.params("localhost", &["localhost", "127.0.0.1"]);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(file, p)
    }

    /// A client certificate; `tweak` makes it bad in one way.
    pub fn client(&self, file: &str, cn: &str, tweak: Tweak) -> Issued {
        let mut p = self.params(cn, &[]);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = OffsetDateTime::now_utc();
        match tweak {
            Tweak::None => {}
            Tweak::Expired => {
                p.not_before = now - Duration::days(30);
                p.not_after = now - Duration::days(1);
            }
            Tweak::NotYetValid => {
                p.not_before = now + Duration::days(1);
                p.not_after = now + Duration::days(30);
            }
            Tweak::ServerUsage => p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
            Tweak::SanUri(uri) => {
                p.subject_alt_names = vec![rcgen::SanType::URI(
                    rcgen::Ia5String::try_from(uri).expect("uri"),
                )];
            }
        }
        self.issue(file, p)
    }

    /// Writes a CRL revoking `serials`, valid from now for `days` (negative:
    /// already past its next update).
    pub fn crl(&self, file: &str, serials: &[&[u8]], days: i64) -> PathBuf {
        static NUMBER: AtomicU32 = AtomicU32::new(1);
        let now = OffsetDateTime::now_utc();
        let (this_update, next_update) = if days >= 0 {
            (now - Duration::minutes(5), now + Duration::days(days))
        } else {
            (now + Duration::days(days * 2), now + Duration::days(days))
        };
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(u64::from(NUMBER.fetch_add(1, Ordering::Relaxed))),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(s.to_vec()),
                    revocation_time: now - Duration::minutes(1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.cert, &self.key).expect("sign CRL");
        let path = self.dir.join(format!("{file}.pem"));
        std::fs::write(&path, crl.pem().expect("CRL pem")).expect("write CRL");
        path
    }
}

pub enum Tweak {
    None,
    Expired,
    NotYetValid,
    /// Extended key usage serverAuth only.
    ServerUsage,
    SanUri(&'static str),
}

/// Replaces `dst` atomically with `src`'s content (what an operator's
/// deployment tool should do), so a watcher never reads half a file.
pub fn replace(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("tmp");
    std::fs::copy(src, &tmp).expect("copy");
    std::fs::rename(&tmp, dst).expect("rename");
}
