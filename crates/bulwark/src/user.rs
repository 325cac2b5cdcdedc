//! `bulwark user`: manage the credential file (identities, passwords,
//! TOTP enrolment) that the broker authenticates against.
//!
//! Passwords come from a hidden prompt when stdin is a terminal and from
//! one line of stdin otherwise, never from the command line (where `ps` and
//! shell history would keep them). Every input is validated with the same
//! rules the broker applies when it loads the file, before anything is
//! written; the file is then rewritten atomically with mode 0600, keeping
//! comments and every other entry, and the result is checked as a whole.

mod edit;
mod file;
#[cfg(test)]
mod tests;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bulwark_security::name::check_name;
use bulwark_security::scram::{ScramCredential, DEFAULT_ITERATIONS};
use bulwark_security::totp::{otpauth_uri, TotpSecret};
use bulwark_security::{password, ClientIdPattern, Factor, FactorSet, Kind, Store};
use zeroize::Zeroizing;

use self::edit::{NewIdentity, StoreDoc};

pub const USAGE: &str = "\
usage:
  bulwark user add NAME [--kind device|user] [--role ROLE]... [--factor FACTOR]...
                        [--client-id-pattern PATTERN] [--expires RFC3339] [--file FILE]
      Add an identity. FACTOR is certificate, password or totp (default:
      password). When the factors (with those of its roles) include password,
      asks for the password; when they include totp, enrols it as `totp` does.
      PATTERN: client IDs it may use (default '{identity}|{identity}-*').
  bulwark user passwd NAME [--file FILE]
      Set a new password (argon2id hash and SCRAM-SHA-256 credential).
  bulwark user disable NAME | enable NAME | remove NAME [--file FILE]
  bulwark user totp NAME [--file FILE]
      Enrol (or re-enrol) TOTP: store a new secret, require totp, and print
      the otpauth:// URI to load into an authenticator app.
  bulwark user list [--file FILE]
      Show identities, their factors and state; never secrets.
Passwords are read from a hidden prompt on a terminal, else one line of
stdin; never from the command line. FILE defaults to ./users.toml; it is
created with mode 0600 and replaced atomically.";

const DEFAULT_FILE: &str = "users.toml";
const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_BYTES: usize = 1024;

/// Runs `bulwark user ARGS...`: 0 on success, 1 when the operation failed,
/// 2 for a usage error.
pub fn run(args: &[String]) -> ExitCode {
    let cmd = match parse(args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bulwark user: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    match execute(cmd, &mut read_password, now, &mut out, &mut err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "bulwark user: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Add {
        kind: Kind,
        roles: Vec<String>,
        factors: Option<FactorSet>,
        client_id_pattern: Option<String>,
        expires: Option<String>,
    },
    Passwd,
    Disable,
    Enable,
    Remove,
    Totp,
    List,
}

#[derive(Debug, PartialEq, Eq)]
struct Cmd {
    action: Action,
    /// Empty for `list`.
    name: String,
    file: PathBuf,
}

/// `Ok(None)` asks for help.
fn parse(args: &[String]) -> Result<Option<Cmd>, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Ok(None);
    };
    let mut file = PathBuf::from(DEFAULT_FILE);
    let mut name = None;
    let (mut kind, mut roles, mut factors) = (Kind::Device, Vec::new(), None::<FactorSet>);
    let (mut pattern, mut expires) = (None, None);
    let is_add = sub == "add";
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--file" | "-f" => file = PathBuf::from(value()?),
            "--password" | "-p" | "-P" | "--pass" => {
                return Err("passwords are never taken from the command line (ps and shell history would keep them): type it at the prompt or pipe it on stdin".into());
            }
            "--kind" if is_add => {
                let v = value()?;
                kind = Kind::parse(&v).ok_or_else(|| format!("--kind {v}: use device or user"))?;
            }
            "--role" if is_add => {
                let v = value()?;
                check_name(&v).map_err(|why| format!("--role '{v}': the name {why}"))?;
                roles.push(v);
            }
            "--factor" if is_add => {
                let v = value()?;
                let f = Factor::parse(&v)
                    .ok_or_else(|| format!("--factor {v}: use certificate, password or totp"))?;
                factors = Some(factors.unwrap_or_default().with(f));
            }
            "--client-id-pattern" if is_add => {
                let v = value()?;
                ClientIdPattern::parse(&v)
                    .map_err(|why| format!("--client-id-pattern '{v}': the pattern {why}"))?;
                pattern = Some(v);
            }
            "--expires" if is_add => {
                let v = value()?;
                if bulwark_security::parse_rfc3339(&v).is_none() {
                    return Err(format!(
                        "--expires {v}: not an RFC 3339 date-time such as 2027-01-01T00:00:00Z"
                    ));
                }
                expires = Some(v);
            }
            flag if flag.starts_with('-') => {
                return Err(format!("{sub}: unknown option '{flag}'"));
            }
            positional if name.is_none() => name = Some(positional.to_owned()),
            extra => return Err(format!("{sub}: unexpected argument '{extra}'")),
        }
    }
    let action = match sub.as_str() {
        "-h" | "--help" | "help" => return Ok(None),
        "add" => Action::Add {
            kind,
            roles,
            factors,
            client_id_pattern: pattern,
            expires,
        },
        "passwd" => Action::Passwd,
        "disable" => Action::Disable,
        "enable" => Action::Enable,
        "remove" => Action::Remove,
        "totp" => Action::Totp,
        "list" => Action::List,
        other => return Err(format!("unknown subcommand '{other}'")),
    };
    let name = match (&action, name) {
        (Action::List, None) => String::new(),
        (Action::List, Some(n)) => return Err(format!("list: unexpected argument '{n}'")),
        (_, None) => return Err(format!("{sub} needs the identity's NAME")),
        (_, Some(n)) => {
            check_name(&n).map_err(|why| format!("identity name '{n}': the name {why}"))?;
            n
        }
    };
    Ok(Some(Cmd { action, name, file }))
}

type PasswordSource<'a> = dyn FnMut(&str) -> Result<Zeroizing<String>, String> + 'a;

fn execute(
    cmd: Cmd,
    password: &mut PasswordSource,
    now: i64,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), String> {
    let label = cmd.file.display().to_string();
    let existing = file::read(&cmd.file)?;
    if cmd.action == Action::List {
        return list(&label, existing.as_deref(), now, out, err);
    }
    let mut doc = match (&existing, &cmd.action) {
        (Some(text), _) => StoreDoc::parse(&label, text)?,
        (None, Action::Add { .. }) => StoreDoc::new(),
        (None, _) => {
            return Err(format!(
                "{label} does not exist; create it with `bulwark user add NAME --file {label}`"
            ))
        }
    };
    let name = cmd.name.as_str();
    if !matches!(cmd.action, Action::Add { .. }) && !doc.contains(name) {
        return Err(format!(
            "no identity named '{name}' in {label} (see `bulwark user list`)"
        ));
    }
    let (done, enrolled) = match cmd.action {
        Action::Add {
            kind,
            roles,
            factors,
            client_id_pattern,
            expires,
        } => {
            if doc.contains(name) {
                return Err(format!(
                    "identity '{name}' already exists in {label}; use passwd, totp, enable or disable to change it"
                ));
            }
            let new = Add {
                kind,
                roles: &roles,
                factors,
                client_id_pattern: client_id_pattern.as_deref(),
                expires: expires.as_deref(),
            };
            add(&mut doc, name, new, password)?
        }
        Action::Passwd => {
            let (phc, scram) = derive_credentials(&password(name)?)?;
            doc.set_string(name, "password", &phc)?;
            doc.set_string(name, "scram", &scram)?;
            (format!("password of '{name}' changed"), None)
        }
        Action::Disable => {
            doc.set_bool(name, "enabled", false)?;
            (format!("'{name}' disabled"), None)
        }
        Action::Enable => {
            doc.set_bool(name, "enabled", true)?;
            (format!("'{name}' enabled"), None)
        }
        Action::Remove => {
            doc.remove(name)?;
            (format!("'{name}' removed"), None)
        }
        Action::Totp => {
            let secret = new_totp_secret()?;
            doc.set_string(name, "totp_secret", &Zeroizing::new(secret.to_base32()))?;
            doc.add_factor(name, Factor::Totp.name())?;
            let done = format!(
                "TOTP enrolled for '{name}'; any earlier authenticator entry no longer works"
            );
            (done, Some(secret))
        }
        Action::List => (String::new(), None),
    };
    let text = doc.to_text();
    file::replace(&cmd.file, &text)?;
    let _ = writeln!(err, "{label}: {done}");
    if let Some(secret) = enrolled {
        let _ = writeln!(
            err,
            "load this URI into an authenticator app (it contains the secret; do not store or log it):"
        );
        let _ = writeln!(
            out,
            "{}",
            Zeroizing::new(otpauth_uri(name, &secret)).as_str()
        );
    }
    if let Err(problems) = Store::parse(&label, &text) {
        let _ = writeln!(
            err,
            "warning: the broker will refuse {label} until these are fixed:"
        );
        for p in problems {
            let _ = writeln!(err, "  {p}");
        }
    }
    Ok(())
}

/// The options of `bulwark user add`.
struct Add<'a> {
    kind: Kind,
    roles: &'a [String],
    factors: Option<FactorSet>,
    client_id_pattern: Option<&'a str>,
    expires: Option<&'a str>,
}

/// Adds an identity: asks for a password and enrols TOTP when its factors
/// (with its roles') require them. Returns the report line and the new
/// TOTP secret.
fn add(
    doc: &mut StoreDoc,
    name: &str,
    new: Add,
    password: &mut PasswordSource,
) -> Result<(String, Option<TotpSecret>), String> {
    let factors = new.factors.unwrap_or(FactorSet::PASSWORD);
    let required = factors | doc.role_factors(new.roles);
    let credentials = if required.has(Factor::Password) {
        Some(derive_credentials(&password(name)?)?)
    } else {
        None
    };
    let totp = if required.has(Factor::Totp) {
        Some(new_totp_secret()?)
    } else {
        None
    };
    let b32 = totp.as_ref().map(|s| Zeroizing::new(s.to_base32()));
    doc.add(&NewIdentity {
        name,
        kind: new.kind.name(),
        roles: new.roles,
        password_phc: credentials.as_ref().map(|(p, _)| p.as_str()),
        scram: credentials.as_ref().map(|(_, s)| s.as_str()),
        totp_secret: b32.as_ref().map(|s| s.as_str()),
        factors,
        client_id_pattern: new.client_id_pattern,
        expires: new.expires,
    })?;
    let done = format!("added {} '{name}' (requires {required})", new.kind.name());
    Ok((done, totp))
}

fn new_totp_secret() -> Result<TotpSecret, String> {
    TotpSecret::generate().map_err(|_| "the system random number generator failed".into())
}

/// The argon2id PHC string and the SCRAM credential for a password.
fn derive_credentials(pw: &str) -> Result<(String, String), String> {
    let phc = password::hash(pw.as_bytes()).map_err(|e| e.to_string())?;
    let scram = ScramCredential::derive(pw.as_bytes(), DEFAULT_ITERATIONS)
        .map_err(|e| e.to_string())?
        .encode();
    Ok((phc, scram))
}

/// A hidden prompt (asked twice) on a terminal; otherwise one line of
/// stdin, without its line ending.
fn read_password(name: &str) -> Result<Zeroizing<String>, String> {
    let pw = if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("password for {name}: "))
                .map_err(|e| format!("cannot read the password: {e}"))?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("repeat the password: ")
                .map_err(|e| format!("cannot read the password: {e}"))?,
        );
        if *first != *again {
            return Err("the two passwords differ; nothing was changed".into());
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    check_password(&pw)?;
    Ok(pw)
}

fn check_password(pw: &str) -> Result<(), String> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters; nothing was changed"
        ));
    }
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes; nothing was changed"
        ));
    }
    if pw.chars().any(char::is_control) {
        return Err("the password must not contain control characters".into());
    }
    Ok(())
}

fn list(
    label: &str,
    text: Option<&str>,
    now: i64,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), String> {
    let text = text.ok_or_else(|| format!("{label} does not exist"))?;
    let store = Store::parse(label, text).map_err(|problems| {
        for p in &problems {
            let _ = writeln!(err, "  {p}");
        }
        format!(
            "{label} has {} problem(s), listed above; the broker refuses it until they are fixed",
            problems.len()
        )
    })?;
    if store.is_empty() {
        let _ = writeln!(err, "{label}: no identities");
        return Ok(());
    }
    let mut rows = vec![[
        "NAME".to_owned(),
        "KIND".to_owned(),
        "STATE".to_owned(),
        "FACTORS".to_owned(),
        "CREDENTIALS".to_owned(),
        "ROLES".to_owned(),
        "EXPIRES".to_owned(),
    ]];
    for id in store.identities() {
        let state = if !id.enabled() {
            "disabled"
        } else if id.is_expired(now) {
            "expired"
        } else {
            "enabled"
        };
        let credentials: Vec<&str> = [
            id.password_phc().map(|_| "password"),
            id.scram().map(|_| "scram"),
            id.totp_secret().map(|_| "totp"),
        ]
        .into_iter()
        .flatten()
        .collect();
        rows.push([
            id.name().to_owned(),
            id.kind().name().to_owned(),
            state.to_owned(),
            id.required_factors(&store).to_string(),
            dash_if_empty(credentials.join(",")),
            dash_if_empty(id.roles().join(",")),
            id.expires().map_or_else(|| "-".to_owned(), format_rfc3339),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    Ok(())
}

fn dash_if_empty(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn format_rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
