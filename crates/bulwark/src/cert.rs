//! `bulwark cert`: a small certificate authority for tests and small sites,
//! and the development PKI that `serve` sets up on first run.
//!
//! The CA lives in one directory (layout in [`ca`]). Private keys are
//! created with mode 0600 and directories with 0700 by the call that creates
//! them ([`files`]); nothing is ever overwritten except the files that are
//! meant to be rewritten (CRL, CRL number, a renewed development
//! certificate), and those are replaced atomically.
//!
//! Inputs are checked before anything changes on disk: names are validated
//! before a key is generated, and `revoke` checks that every certificate was
//! issued by this CA before it records any of them.

mod ca;
mod files;
mod names;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rcgen::{ExtendedKeyUsagePurpose, SanType};
use time::Duration;

use self::ca::{Ca, KeyType, Leaf};

pub const USAGE: &str = "\
usage:
  bulwark cert ca --dir DIR [--name NAME] [--days 3650]
      Create a CA (ECDSA P-256) in DIR: ca.pem and ca.key (mode 0600).
  bulwark cert server --ca DIR --name HOST [--san HOST-OR-IP]... [--days 365]
                      [--key-type ecdsa|ed25519] --out PREFIX
      Issue a server certificate for HOST (and each --san): PREFIX.pem and
      PREFIX.key.
  bulwark cert client --ca DIR --name CN [--san-dns NAME]... [--san-uri URI]...
                      [--san-email ADDR]... [--days 365]
                      [--key-type ecdsa|ed25519] --out PREFIX
      Issue a client certificate with common name CN.
  bulwark cert revoke --ca DIR [--days 7] CERT.pem...
      Record the certificates as revoked and rewrite DIR/crl.pem.
  bulwark cert crl --ca DIR [--days 7]
      Rewrite DIR/crl.pem from DIR/revoked.txt, valid for --days.
Issued certificates are listed in DIR/issued.txt.";

const DEFAULT_CA_NAME: &str = "Bulwark Dev CA";
const DEFAULT_CA_DAYS: u32 = 3650;
/// Under 366 days, as the Mozilla guidelines and browsers require.
const DEFAULT_SERVER_DAYS: u32 = 365;
const DEFAULT_CLIENT_DAYS: u32 = 365;
const DEFAULT_CRL_DAYS: u32 = 7;

/// Runs `bulwark cert ARGS...`: 0 on success, 1 when the operation failed,
/// 2 for a usage error.
pub fn run(args: &[String]) -> ExitCode {
    let command = match parse(args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bulwark cert: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match execute(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulwark cert: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Cmd {
    Ca {
        dir: PathBuf,
        name: String,
        days: u32,
    },
    Issue {
        ca: PathBuf,
        out: PathBuf,
        leaf: Leaf,
    },
    Revoke {
        ca: PathBuf,
        certs: Vec<PathBuf>,
        days: u32,
    },
    Crl {
        ca: PathBuf,
        days: u32,
    },
}

type SanCheck = fn(&str) -> Result<SanType, String>;

/// `Ok(None)` asks for help.
fn parse(args: &[String]) -> Result<Option<Cmd>, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Ok(None);
    };
    let cmd = match sub.as_str() {
        "-h" | "--help" | "help" => return Ok(None),
        "ca" => {
            let f = Flags::parse(sub, rest, &["--dir", "--name", "--days"], &[], false)?;
            let name = names::common_name(f.one("--name").unwrap_or(DEFAULT_CA_NAME))
                .map_err(|e| format!("--name: {e}"))?;
            Cmd::Ca {
                dir: PathBuf::from(f.required("--dir")?),
                name,
                days: f.days(DEFAULT_CA_DAYS)?,
            }
        }
        "server" => {
            let single = ["--ca", "--name", "--days", "--key-type", "--out"];
            let f = Flags::parse(sub, rest, &single, &["--san"], false)?;
            let name = f.required("--name")?;
            let mut sans = Vec::new();
            names::push_unique(
                &mut sans,
                names::host(name).map_err(|e| format!("--name: {e}"))?,
            );
            for s in f.all("--san") {
                names::push_unique(
                    &mut sans,
                    names::host(s).map_err(|e| format!("--san: {e}"))?,
                );
            }
            issue_cmd(
                &f,
                name,
                sans,
                ExtendedKeyUsagePurpose::ServerAuth,
                DEFAULT_SERVER_DAYS,
            )?
        }
        "client" => {
            let single = ["--ca", "--name", "--days", "--key-type", "--out"];
            let multi = ["--san-dns", "--san-uri", "--san-email"];
            let f = Flags::parse(sub, rest, &single, &multi, false)?;
            let mut sans = Vec::new();
            let checks: [(&str, SanCheck); 3] = [
                ("--san-dns", names::dns),
                ("--san-uri", names::uri),
                ("--san-email", names::email),
            ];
            for (flag, check) in checks {
                for s in f.all(flag) {
                    names::push_unique(&mut sans, check(s).map_err(|e| format!("{flag}: {e}"))?);
                }
            }
            let name = f.required("--name")?;
            issue_cmd(
                &f,
                name,
                sans,
                ExtendedKeyUsagePurpose::ClientAuth,
                DEFAULT_CLIENT_DAYS,
            )?
        }
        "revoke" => {
            let f = Flags::parse(sub, rest, &["--ca", "--days"], &[], true)?;
            if f.positional.is_empty() {
                return Err("revoke: name at least one certificate file (PREFIX.pem)".into());
            }
            Cmd::Revoke {
                ca: PathBuf::from(f.required("--ca")?),
                certs: f.positional.iter().map(PathBuf::from).collect(),
                days: f.days(DEFAULT_CRL_DAYS)?,
            }
        }
        "crl" => {
            let f = Flags::parse(sub, rest, &["--ca", "--days"], &[], false)?;
            Cmd::Crl {
                ca: PathBuf::from(f.required("--ca")?),
                days: f.days(DEFAULT_CRL_DAYS)?,
            }
        }
        other => {
            return Err(format!(
                "unknown subcommand '{other}'; use ca, server, client, revoke or crl"
            ))
        }
    };
    Ok(Some(cmd))
}

fn issue_cmd(
    f: &Flags,
    name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    default_days: u32,
) -> Result<Cmd, String> {
    Ok(Cmd::Issue {
        ca: PathBuf::from(f.required("--ca")?),
        out: PathBuf::from(f.required("--out")?),
        leaf: Leaf {
            common_name: names::common_name(name).map_err(|e| format!("--name: {e}"))?,
            sans,
            usage,
            days: f.days(default_days)?,
            key_type: f
                .one("--key-type")
                .map_or(Ok(KeyType::Ecdsa), KeyType::parse)?,
        },
    })
}

fn execute(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Ca { dir, name, days } => {
            let ca = ca::create(&dir, &name, days)?;
            println!(
                "created CA '{name}' in {} (valid until {})",
                dir.display(),
                ca.not_after().date()
            );
            println!(
                "  certificate: {}  (trust this in clients and brokers)",
                ca.cert_path().display()
            );
            println!(
                "  private key: {}  (mode 0600; keep it off the broker if you can)",
                dir.join(ca::CA_KEY).display()
            );
        }
        Cmd::Issue { ca, out, leaf } => {
            let ca = Ca::load(&ca)?;
            let issued = ca.issue(&leaf, &out, false)?;
            let kind = match leaf.usage {
                ExtendedKeyUsagePurpose::ServerAuth => "server",
                _ => "client",
            };
            println!(
                "issued {kind} certificate '{}' (serial {}, valid until {})",
                leaf.common_name,
                issued.serial,
                issued.not_after.date()
            );
            println!("  certificate: {}", issued.cert.display());
            println!("  private key: {}  (mode 0600)", issued.key.display());
        }
        Cmd::Revoke { ca, certs, days } => {
            let ca = Ca::load(&ca)?;
            let (revocations, crl) = ca.revoke(&certs, days)?;
            for r in &revocations {
                let state = if r.already_revoked {
                    "was already revoked"
                } else {
                    "revoked"
                };
                println!(
                    "{}: serial {} ('{}') {state}",
                    r.path.display(),
                    r.serial,
                    r.subject
                );
            }
            print_crl(&crl);
        }
        Cmd::Crl { ca, days } => print_crl(&Ca::load(&ca)?.write_crl(days)?),
    }
    Ok(())
}

fn print_crl(crl: &ca::CrlInfo) {
    println!(
        "wrote {} (CRL number {}, {} revoked, next update due {}; run `bulwark cert crl` again before then)",
        crl.path.display(),
        crl.number,
        crl.entries,
        crl.next_update.date()
    );
}

/// Options of one subcommand: each `single` flag at most once, `multi`
/// flags any number of times, `--flag value` or `--flag=value`.
struct Flags {
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Flags {
    fn parse(
        sub: &str,
        args: &[String],
        single: &[&str],
        multi: &[&str],
        positional: bool,
    ) -> Result<Flags, String> {
        let mut out = Flags {
            values: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter();
        let mut options_done = false;
        while let Some(arg) = it.next() {
            if options_done || !arg.starts_with('-') {
                if !positional {
                    return Err(format!("{sub}: unexpected argument '{arg}'"));
                }
                out.positional.push(arg.clone());
                continue;
            }
            if arg == "--" {
                options_done = true;
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            if !single.contains(&flag) && !multi.contains(&flag) {
                return Err(format!("{sub}: unknown option '{flag}'"));
            }
            if single.contains(&flag) && out.one(flag).is_some() {
                return Err(format!("{sub}: {flag} given twice"));
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{sub}: {flag} needs a value"))?,
            };
            out.values.push((flag.to_owned(), value));
        }
        Ok(out)
    }

    fn one(&self, flag: &str) -> Option<&str> {
        self.all(flag).into_iter().next()
    }

    fn all(&self, flag: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn required(&self, flag: &str) -> Result<&str, String> {
        self.one(flag).ok_or_else(|| format!("{flag} is required"))
    }

    fn days(&self, default: u32) -> Result<u32, String> {
        let Some(v) = self.one("--days") else {
            return Ok(default);
        };
        v.parse::<u32>()
            .ok()
            .filter(|d| (1..=ca::MAX_DAYS).contains(d))
            .ok_or_else(|| {
                format!(
                    "--days {v}: give a whole number of days from 1 to {}",
                    ca::MAX_DAYS
                )
            })
    }
}

/// The development PKI under `DIR/dev-pki/`, ready for a TLS listener with
/// client certificates.
// Not every path is read by `serve`; the client pair is for the operator.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct DevPki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A new CA was made, so clients must be given the new `ca` file.
    pub created: bool,
    /// The CA was kept but a certificate near expiry was re-issued.
    pub renewed: bool,
}

/// Certificates closer than this to expiry are re-issued, so a broker
/// restarted now does not fail in the middle of next month.
const RENEW_BEFORE: Duration = Duration::days(30);

/// Makes sure `DIR/dev-pki/` holds a CA, a server certificate for
/// localhost, 127.0.0.1 and ::1, and a client certificate `dev-client`.
/// Existing files are reused; a certificate that expires within 30 days,
/// no longer matches its key, or was not issued by the CA is re-issued.
pub fn ensure_dev_pki(dir: &Path) -> Result<DevPki, String> {
    files::create_private_dir(dir)?;
    let pki = dir.join("dev-pki");
    files::create_private_dir(&pki)?;
    let has = |name: &str| pki.join(name).symlink_metadata().is_ok();
    let (authority, created) = match (has(ca::CA_CERT), has(ca::CA_KEY)) {
        (true, true) => (Ca::load(&pki)?, false),
        (false, false) => (ca::create(&pki, &dev_ca_name(), DEFAULT_CA_DAYS)?, true),
        _ => {
            return Err(format!(
                "{} holds only half of the development CA (ca.pem or ca.key is missing); \
                 remove the directory to start over",
                pki.display()
            ))
        }
    };
    let server = pki.join("server");
    let client = pki.join("client");
    let server_leaf = Leaf {
        common_name: "localhost".into(),
        sans: ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(names::host)
            .collect::<Result<_, _>>()?,
        usage: ExtendedKeyUsagePurpose::ServerAuth,
        days: DEFAULT_SERVER_DAYS,
        key_type: KeyType::Ecdsa,
    };
    let client_leaf = Leaf {
        common_name: "dev-client".into(),
        sans: Vec::new(),
        usage: ExtendedKeyUsagePurpose::ClientAuth,
        days: DEFAULT_CLIENT_DAYS,
        key_type: KeyType::Ecdsa,
    };
    let mut renewed = false;
    for (prefix, leaf) in [(&server, &server_leaf), (&client, &client_leaf)] {
        if created || !authority.leaf_is_fresh(prefix, RENEW_BEFORE) {
            authority.issue(leaf, prefix, true)?;
            renewed |= !created;
        }
    }
    Ok(DevPki {
        ca: authority.cert_path(),
        server_cert: files::with_suffix(&server, ".pem"),
        server_key: files::with_suffix(&server, ".key"),
        client_cert: files::with_suffix(&client, ".pem"),
        client_key: files::with_suffix(&client, ".key"),
        dir: pki,
        created,
        renewed,
    })
}

/// Names the machine in the CA so that two developers' CAs are told apart
/// in a trust store.
fn dev_ca_name() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        // Short enough to keep the whole name within the 64-character limit.
        .find(|h| !h.is_empty() && h.len() <= 32 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "local".to_owned());
    format!("Bulwark development CA ({host})")
}
