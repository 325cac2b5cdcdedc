//! The certificate authority kept in one directory:
//!
//! - `ca.pem`, `ca.key`: the CA certificate and its ECDSA P-256 key (0600).
//! - `issued.txt`: one line per issued certificate, `SERIAL_HEX  FILE  CN`.
//! - `revoked.txt`: one line per revoked serial, `SERIAL_HEX  UNIX_TIME  CN`
//!   (lines may be added by hand; a missing time means "now" in the CRL).
//! - `crlnumber`: the number of the last CRL written; `crl.pem`: that CRL.
//!
//! Invariant: everything this module signs chains to `ca.pem` exactly as it
//! is on disk. rcgen can only sign with a `Certificate` value, so the issuer
//! is rebuilt from `ca.pem` (same subject DN, same subject key identifier)
//! and the key in `ca.key`, which is checked to be the key of `ca.pem`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber, SignatureAlgorithm,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;

use super::files::{self, Access};

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
pub const ISSUED: &str = "issued.txt";
pub const REVOKED: &str = "revoked.txt";
pub const CRL: &str = "crl.pem";
pub const CRL_NUMBER: &str = "crlnumber";

/// A hundred years: anything longer is a typo, and dates past 9999 cannot
/// be encoded at all.
pub const MAX_DAYS: u32 = 36_500;

/// Certificates start a few minutes in the past so that a peer whose clock
/// runs slightly behind does not reject a certificate issued a moment ago.
const BACKDATE: Duration = Duration::minutes(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Ecdsa,
    Ed25519,
}

impl KeyType {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "ecdsa" => Ok(KeyType::Ecdsa),
            "ed25519" => Ok(KeyType::Ed25519),
            other => Err(format!(
                "--key-type {other}: unknown key type; use ecdsa (P-256, works everywhere) or ed25519"
            )),
        }
    }

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::Ecdsa => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// What to put into an end-entity certificate.
pub struct Leaf {
    pub common_name: String,
    pub sans: Vec<SanType>,
    pub usage: ExtendedKeyUsagePurpose,
    pub days: u32,
    pub key_type: KeyType,
}

pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub serial: String,
    pub not_after: OffsetDateTime,
}

pub struct Revocation {
    pub path: PathBuf,
    pub serial: String,
    pub subject: String,
    pub already_revoked: bool,
}

pub struct CrlInfo {
    pub path: PathBuf,
    pub number: u64,
    pub entries: usize,
    pub next_update: OffsetDateTime,
}

pub struct Ca {
    dir: PathBuf,
    key: KeyPair,
    issuer: Certificate,
    /// `ca.pem` as read, for comparing certificates against it.
    der: Vec<u8>,
    not_after: OffsetDateTime,
}

struct Revoked {
    serial: Vec<u8>,
    at: Option<OffsetDateTime>,
}

/// Creates a new CA in `dir`, which is created with mode 0700 if needed.
/// Refuses to touch an existing `ca.key` or `ca.pem`.
pub fn create(dir: &Path, name: &str, days: u32) -> Result<Ca, String> {
    files::create_private_dir(dir)?;
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    // symlink_metadata, so that a dangling symlink also counts as present.
    if key_path.symlink_metadata().is_ok() {
        return Err(format!(
            "{} already exists; refusing to overwrite a CA key. Issue certificates from it \
             with --ca {}, or choose another --dir for a new CA",
            key_path.display(),
            dir.display()
        ));
    }
    if cert_path.symlink_metadata().is_ok() {
        return Err(format!(
            "{} already exists without its key {}; move it away or choose another --dir",
            cert_path.display(),
            key_path.display()
        ));
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("cannot generate the CA key: {e}"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(name);
    // Path length 0: this CA signs end-entity certificates only, so a leaked
    // leaf key can never be used as an intermediate CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(random_serial()?);
    (params.not_before, params.not_after) = validity(days)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign the CA certificate: {e}"))?;
    files::write_new(&key_path, key.serialize_pem().as_bytes(), Access::Private)?;
    files::write_new(&cert_path, cert.pem().as_bytes(), Access::Public)?;
    Ca::load(dir)
}

impl Ca {
    /// Loads the CA in `dir` and checks that key and certificate belong
    /// together.
    pub fn load(dir: &Path) -> Result<Ca, String> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let hint = format!(
            "create a CA first with `bulwark cert ca --dir {}`",
            dir.display()
        );
        let der = certificate_der(&cert_path, &files::read(&cert_path, &hint)?)?;
        let key_pem = files::read(&key_path, &hint)?;
        files::check_private(&key_path)?;
        let key = std::str::from_utf8(&key_pem)
            .ok()
            .and_then(|pem| KeyPair::from_pem(pem).ok())
            .ok_or_else(|| {
                format!(
                    "{}: not a PEM private key that bulwark can use (expected an ECDSA or Ed25519 PKCS#8 key)",
                    key_path.display()
                )
            })?;
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("{}: not an X.509 certificate ({e})", cert_path.display()))?;
        if !x509.is_ca() {
            return Err(format!(
                "{} is not a CA certificate (basicConstraints CA:true is missing)",
                cert_path.display()
            ));
        }
        if x509.public_key().raw != key.public_key_der().as_slice() {
            return Err(format!(
                "{} is not the key of {}; restore the matching pair",
                key_path.display(),
                cert_path.display()
            ));
        }
        let params = CertificateParams::from_ca_cert_der(&CertificateDer::from(der.as_slice()))
            .map_err(|e| format!("{}: cannot use as a CA ({e})", cert_path.display()))?;
        let not_after = params.not_after;
        // Re-signed only to obtain rcgen's issuer value; the result is never
        // written anywhere.
        let issuer = params
            .self_signed(&key)
            .map_err(|e| format!("{}: cannot use as a CA ({e})", cert_path.display()))?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            key,
            issuer,
            der,
            not_after,
        })
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// Issues a certificate and writes `PREFIX.pem` and `PREFIX.key` (0600),
    /// then records it in `issued.txt`. Without `replace`, existing files
    /// are refused rather than overwritten.
    pub fn issue(&self, leaf: &Leaf, prefix: &Path, replace: bool) -> Result<Issued, String> {
        let cert_path = files::with_suffix(prefix, ".pem");
        let key_path = files::with_suffix(prefix, ".key");
        if !replace {
            for p in [&cert_path, &key_path] {
                if p.symlink_metadata().is_ok() {
                    return Err(format!(
                        "{} already exists; refusing to overwrite it (move it away or choose another --out)",
                        p.display()
                    ));
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        if self.not_after <= now {
            return Err(format!(
                "the CA in {} expired on {}; create a new CA",
                self.dir.display(),
                self.not_after.date()
            ));
        }
        let key = KeyPair::generate_for(leaf.key_type.algorithm())
            .map_err(|e| format!("cannot generate a key: {e}"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&leaf.common_name);
        params.subject_alt_names = leaf.sans.clone();
        // No basicConstraints at all on a leaf: an explicit cA FALSE is a
        // DER default written out, which strict parsers (Python's
        // cryptography, so sslyze) refuse.
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![leaf.usage.clone()];
        params.use_authority_key_identifier_extension = true;
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        let (not_before, not_after) = validity(leaf.days)?;
        // A certificate cannot usefully outlive the CA that vouches for it.
        let not_after = not_after.min(self.not_after);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(|e| format!("cannot sign the certificate: {e}"))?;
        let write = if replace {
            files::replace
        } else {
            files::write_new
        };
        write(&key_path, key.serialize_pem().as_bytes(), Access::Private)?;
        write(&cert_path, cert.pem().as_bytes(), Access::Public)?;
        let serial = hex(serial.as_ref());
        files::append_line(
            &self.dir.join(ISSUED),
            &format!("{serial}  {}  {}", cert_path.display(), leaf.common_name),
        )?;
        Ok(Issued {
            cert: cert_path,
            key: key_path,
            serial,
            not_after,
        })
    }

    /// Checks that `der` was signed by this CA and returns its serial
    /// (big-endian magnitude) and subject.
    pub fn check_issued(&self, path: &Path, der: &[u8]) -> Result<(Vec<u8>, String), String> {
        let (_, ca) = x509_parser::parse_x509_certificate(&self.der)
            .map_err(|e| format!("{}: {e}", self.cert_path().display()))?;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("{}: not an X.509 certificate ({e})", path.display()))?;
        if cert.issuer().as_raw() != ca.subject().as_raw()
            || cert.verify_signature(Some(ca.public_key())).is_err()
        {
            return Err(format!(
                "{} was not issued by the CA in {} (its issuer is '{}'); use the CA that issued it",
                path.display(),
                self.dir.display(),
                cert.issuer()
            ));
        }
        if cert.tbs_certificate.subject_pki.raw == ca.public_key().raw {
            return Err(format!(
                "{} is the CA certificate itself; to retire a CA, stop trusting it",
                path.display()
            ));
        }
        let serial = serial_magnitude(cert.raw_serial()).ok_or_else(|| {
            format!(
                "{}: the serial number is zero or negative, which this CA never issues",
                path.display()
            )
        })?;
        Ok((serial, subject_cn(&cert)))
    }

    /// Adds each certificate's serial to `revoked.txt` (once) and rewrites
    /// the CRL. Every file is checked before anything is changed.
    pub fn revoke(
        &self,
        certs: &[PathBuf],
        crl_days: u32,
    ) -> Result<(Vec<Revocation>, CrlInfo), String> {
        let mut checked = Vec::with_capacity(certs.len());
        for path in certs {
            let bytes = files::read(path, "give the certificate file (PREFIX.pem) to revoke")?;
            let der = certificate_der(path, &bytes)?;
            let (serial, subject) = self.check_issued(path, &der)?;
            checked.push((path, serial, subject));
        }
        let mut known: Vec<Vec<u8>> = self.revoked()?.into_iter().map(|r| r.serial).collect();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut lines = String::new();
        let mut out = Vec::with_capacity(checked.len());
        for (path, serial, subject) in checked {
            let already_revoked = known.contains(&serial);
            if !already_revoked {
                lines.push_str(&format!("{}  {now}  {subject}\n", hex(&serial)));
                known.push(serial.clone());
            }
            out.push(Revocation {
                path: path.clone(),
                serial: hex(&serial),
                subject,
                already_revoked,
            });
        }
        if !lines.is_empty() {
            files::append_line(&self.dir.join(REVOKED), lines.trim_end())?;
        }
        let crl = self.write_crl(crl_days)?;
        Ok((out, crl))
    }

    /// Writes `crl.pem` listing every serial in `revoked.txt`, valid for
    /// `days`, with the next CRL number.
    pub fn write_crl(&self, days: u32) -> Result<CrlInfo, String> {
        let revoked = self.revoked()?;
        let number_path = self.dir.join(CRL_NUMBER);
        let last = match files::read_optional(&number_path)? {
            None => 0,
            Some(text) => text.trim().parse::<u64>().map_err(|_| {
                format!(
                    "{}: expected the number of the last CRL, found '{}'; fix the file \
                     (or delete it if no CRL was ever published)",
                    number_path.display(),
                    text.trim()
                )
            })?,
        };
        let number = last.checked_add(1).ok_or_else(|| {
            format!(
                "{}: the CRL number cannot grow any further",
                number_path.display()
            )
        })?;
        let (this_update, next_update) = from_now(days)?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.at.unwrap_or(this_update),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            // The CA's own identifier, so the CRL's authority key identifier
            // matches ca.pem even if that was made by another tool.
            key_identifier_method: self.issuer.params().key_identifier_method.clone(),
        };
        let crl = params
            .signed_by(&self.issuer, &self.key)
            .and_then(|c| c.pem())
            .map_err(|e| format!("cannot sign the CRL: {e}"))?;
        // The number is saved first: a crash in between skips a number,
        // which is allowed, instead of reusing one, which is not.
        files::replace(
            &number_path,
            format!("{number}\n").as_bytes(),
            Access::Public,
        )?;
        let path = self.dir.join(CRL);
        files::replace(&path, crl.as_bytes(), Access::Public)?;
        Ok(CrlInfo {
            path,
            number,
            entries: revoked.len(),
            next_update,
        })
    }

    fn revoked(&self) -> Result<Vec<Revoked>, String> {
        let path = self.dir.join(REVOKED);
        let Some(text) = files::read_optional(&path)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Revoked> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let at = |what: &str| format!("{}:{}: {what}", path.display(), n + 1);
            let serial = fields
                .next()
                .and_then(unhex)
                .and_then(|s| without_leading_zeros(&s))
                .filter(|s| s.len() <= 20)
                .ok_or_else(|| at("expected a serial number in hexadecimal (at most 20 bytes)"))?;
            let time = match fields.next() {
                None => None,
                Some(t) => Some(
                    t.parse::<i64>()
                        .ok()
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                        .ok_or_else(|| {
                            at(&format!("'{t}' is not a revocation time in Unix seconds"))
                        })?,
                ),
            };
            if !out.iter().any(|r| r.serial == serial) {
                out.push(Revoked { serial, at: time });
            }
        }
        Ok(out)
    }

    /// Whether the certificate at `prefix` (with its key) was issued by this
    /// CA and stays valid for at least `margin`; any doubt answers no.
    pub fn leaf_is_fresh(&self, prefix: &Path, margin: Duration) -> bool {
        let cert_path = files::with_suffix(prefix, ".pem");
        let key_path = files::with_suffix(prefix, ".key");
        let (Ok(cert_pem), Ok(key_pem)) = (
            std::fs::read(&cert_path),
            std::fs::read_to_string(&key_path),
        ) else {
            return false;
        };
        let Ok(der) = certificate_der(&cert_path, &cert_pem) else {
            return false;
        };
        let Ok(key) = KeyPair::from_pem(&key_pem) else {
            return false;
        };
        if self.check_issued(&cert_path, &der).is_err() {
            return false;
        }
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
            return false;
        };
        let remaining =
            cert.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
        cert.public_key().raw == key.public_key_der().as_slice()
            && remaining > margin.whole_seconds()
    }
}

/// The first certificate in a PEM file, or the file itself if it is DER.
pub fn certificate_der(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, String> {
    for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        match pem {
            Ok(p) if p.label == "CERTIFICATE" => return Ok(p.contents),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    if x509_parser::parse_x509_certificate(bytes).is_ok() {
        return Ok(bytes.to_vec());
    }
    Err(format!(
        "{}: no certificate found (expected a PEM file with a CERTIFICATE block)",
        path.display()
    ))
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn subject_cn(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// (not_before, not_after) for a certificate valid from now for `days`.
fn validity(days: u32) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let (now, end) = from_now(days)?;
    Ok((now - BACKDATE, end))
}

/// (now, now + days), with `days` checked against [`MAX_DAYS`].
fn from_now(days: u32) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    if days == 0 || days > MAX_DAYS {
        return Err(format!("--days {days}: must be between 1 and {MAX_DAYS}"));
    }
    let now = OffsetDateTime::now_utc();
    let end = now
        .checked_add(Duration::days(i64::from(days)))
        .ok_or_else(|| format!("--days {days}: the end date is out of range"))?;
    Ok((now, end))
}

/// 16 random bytes as a positive serial. RFC 5280 asks for unpredictable
/// serials of at most 20 octets; unpredictability is what defeats
/// chosen-prefix collision attacks on the signature.
fn random_serial() -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| format!("cannot get random bytes from the operating system: {e}"))?;
    // Sign bit clear (positive) and first octet non-zero, so the DER INTEGER
    // is exactly 16 octets and hex printed here matches what openssl shows.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A DER INTEGER's content as an unsigned magnitude without leading zeros;
/// `None` for zero or a negative number.
fn serial_magnitude(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    without_leading_zeros(raw)
}

/// `None` when every byte is zero: serial zero is never issued.
fn without_leading_zeros(bytes: &[u8]) -> Option<Vec<u8>> {
    let start = bytes.iter().position(|&b| b != 0)?;
    bytes.get(start..).map(<[u8]>::to_vec)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let digits: Vec<u8> = s
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if digits.is_empty() {
        return None;
    }
    // An odd count gets an implicit leading zero nibble.
    let pad = usize::from(digits.len() % 2 == 1);
    let mut out = vec![0u8; (digits.len() + pad) / 2];
    for (i, d) in digits.iter().enumerate() {
        let pos = i + pad;
        let byte = out.get_mut(pos / 2)?;
        *byte |= if pos % 2 == 0 { d << 4 } else { *d };
    }
    Some(out)
}
