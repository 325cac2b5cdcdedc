//! The authentication scenarios' shared parts: the bench identities, the credential files both
//! brokers are given, and the method notes. auth-connect itself runs in `handshake` (the same
//! connection loop, with a login); auth-flood is `auth_flood`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// auth-connect's client tasks, each with an identity of its own: enough to keep Mosquitto
/// (about 0.1 ms of CPU a connection) busy rather than waiting on round trips (16 left it half
/// idle). Bulwark verifies at most `max_verifications` (2) passwords at once, so there most
/// tasks wait in its queue: latency is about tasks / rate.
pub const TASKS: usize = 64;
/// Every bench identity's password. Not a secret: the files live in the run's temp directory.
pub const PASSWORD: &str = "bench-password-0123456789";
/// auth-flood's legitimate client.
pub const LEGIT: &str = "bench-legit";
/// The identity auth-flood's attacker guesses passwords for (another identity than the
/// legitimate client's: a flood against its own would ban it, see the method notes).
pub const GUESSED: &str = "bench-guessed";
/// The argon2id parameters `bulwark user` writes, checked against the file it made.
pub const ARGON2_PARAMS: &str = "m=19456,t=2,p=1";
/// Bulwark's default number of concurrent password verifications.
pub const MAX_VERIFICATIONS: u32 = 2;

/// auth-connect's identity for client task `t`.
pub fn identity(t: usize) -> String {
    format!("bench-auth-{t}")
}

fn identities() -> Vec<String> {
    (0..TASKS)
        .map(identity)
        .chain([LEGIT.to_string(), GUESSED.to_string()])
        .collect()
}

/// The credential files of one run: the same identities and password for both brokers.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Bulwark's credential file, made with `bulwark user add` (argon2id + SCRAM).
    pub bulwark: PathBuf,
    /// Mosquitto's `password_file`, made with `mosquitto_passwd -b`.
    pub mosquitto: PathBuf,
    /// The hash format `mosquitto_passwd` wrote, e.g. `$7$101$` (PBKDF2-SHA512, 101 rounds).
    pub mosquitto_format: String,
}

/// Whether Bulwark's brute-force defence is out of the way or at its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BruteForce {
    /// auth-connect: delays and bans raised far above anything the bench does.
    Raised,
    /// auth-flood: the defaults, which are what it measures.
    Defaults,
}

/// A broker's authentication setup for one scenario.
#[derive(Debug, Clone, Copy)]
pub struct BrokerAuth<'a> {
    pub creds: &'a Credentials,
    pub brute_force: BruteForce,
}

impl BrokerAuth<'_> {
    /// Bulwark's `[auth]` section. The listener gets `allow_anonymous = false` (broker.rs).
    pub fn bulwark_section(&self) -> String {
        let mut s = format!(
            "\n[auth]\ncredentials = {:?}\n",
            self.creds.bulwark.display().to_string()
        );
        if self.brute_force == BruteForce::Raised {
            s.push_str(
                "failures_before_delay = 1000\nfailures_before_ban = 10000\nmax_pending_per_address = 1000\n",
            );
        }
        s
    }

    /// Mosquitto's lines, after its `listener` line (replacing `allow_anonymous true`).
    pub fn mosquitto_lines(&self) -> String {
        format!(
            "allow_anonymous false\npassword_file {}\n",
            self.creds.mosquitto.display()
        )
    }
}

/// Makes both credential files in `workdir`: [`TASKS`] auth-connect identities, [`LEGIT`] and
/// [`GUESSED`], all with [`PASSWORD`].
pub fn make(workdir: &Path, bulwark: &Path, mosquitto: &Path) -> Result<Credentials> {
    let b_file = workdir.join("bench-users.toml");
    let m_file = workdir.join("bench-mosquitto.passwd");
    let passwd = mosquitto_passwd(mosquitto);
    for (i, name) in identities().iter().enumerate() {
        let mut child = Command::new(bulwark)
            .args(["user", "add", name, "--file"])
            .arg(&b_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {} user add", bulwark.display()))?;
        child
            .stdin
            .take()
            .context("bulwark user add: no stdin")?
            .write_all(format!("{PASSWORD}\n").as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "bulwark user add {name} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // -b takes the password from the command line: mosquitto_passwd has no stdin mode,
        // and this password is no secret.
        let mut cmd = Command::new(&passwd);
        if i == 0 {
            cmd.arg("-c");
        }
        let out = cmd
            .arg("-b")
            .arg(&m_file)
            .arg(name)
            .arg(PASSWORD)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", passwd.display()))?;
        if !out.status.success() {
            bail!(
                "{} -b {name} failed ({}): {}",
                passwd.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let text = std::fs::read_to_string(&b_file)?;
    if !text.contains(&format!("$argon2id$v=19${ARGON2_PARAMS}$")) {
        bail!(
            "{} does not hold argon2id {ARGON2_PARAMS} hashes",
            b_file.display()
        );
    }
    let m_text = std::fs::read_to_string(&m_file)?;
    let mosquitto_format = m_text
        .lines()
        .next()
        .and_then(|l| l.split_once(':'))
        .map(|(_, hash)| {
            // `$7$101$salt$hash`: keep the algorithm and the iteration count.
            let fields: Vec<&str> = hash.split('$').collect();
            match fields.as_slice() {
                ["", alg, rounds, ..] => format!("${alg}${rounds}$"),
                _ => "unknown".into(),
            }
        })
        .unwrap_or_else(|| "unknown".into());
    Ok(Credentials {
        bulwark: b_file,
        mosquitto: m_file,
        mosquitto_format,
    })
}

/// `mosquitto_passwd` next to the broker (Debian: /usr/bin while mosquitto is in /usr/sbin),
/// else from PATH.
fn mosquitto_passwd(mosquitto: &Path) -> PathBuf {
    let candidates = [
        mosquitto.with_file_name("mosquitto_passwd"),
        PathBuf::from("/usr/bin/mosquitto_passwd"),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("mosquitto_passwd"))
}

/// What `$7$101$` and the like mean, for the notes.
fn describe_format(format: &str) -> String {
    match format.strip_prefix("$7$").and_then(|r| r.strip_suffix('$')) {
        Some(rounds) => format!("`{format}…`: PBKDF2-SHA512 with {rounds} iterations"),
        None if format.starts_with("$6$") => format!("`{format}…`: one round of salted SHA-512"),
        None => format!("`{format}…`"),
    }
}

/// Method notes when an authentication scenario runs.
pub fn method_notes(creds: &Credentials) -> Vec<String> {
    vec![format!(
        "Authentication scenarios: MQTT 3.1.1 CONNECT with user name and password on the plain \
         TCP listener (no TLS, so the figure is the authentication's cost). {n} identities \
         (bench-auth-0…{last}, {LEGIT}, {GUESSED}), one password, in both brokers' files. \
         Bulwark: a credential file made with `bulwark user add NAME --file FILE` (password on \
         stdin): argon2id, {ARGON2_PARAMS} (19 MiB, 2 passes, 1 lane; OWASP's minimum) plus the \
         SCRAM-SHA-256 credential; `[auth] credentials = FILE`, `max_verifications` at its \
         default {MAX_VERIFICATIONS} (at most {MAX_VERIFICATIONS} argon2id verifications at \
         once, the rest wait), listener `allow_anonymous = false`; connection admission raised \
         as in the other scenarios. Client IDs follow the identity's default pattern \
         (`IDENTITY-…`). Mosquitto: `allow_anonymous false` and `password_file FILE` made with \
         `mosquitto_passwd -b`; the file holds {fmt}. Bulwark's hash is deliberately about a \
         thousand times as costly as Mosquitto's: that is what makes a stolen file slow to \
         crack, and the auth-connect ratio is the price of it.",
        n = TASKS + 2,
        last = TASKS - 1,
        fmt = describe_format(&creds.mosquitto_format),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_formats_are_named() {
        assert_eq!(
            describe_format("$7$101$"),
            "`$7$101$…`: PBKDF2-SHA512 with 101 iterations"
        );
        assert_eq!(describe_format("unknown"), "`unknown…`");
    }

    #[test]
    fn identities_are_unique() {
        let mut ids = identities();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), TASKS + 2);
    }
}
