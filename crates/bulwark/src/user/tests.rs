use std::path::{Path, PathBuf};

use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bulwark-user-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs a subcommand against `file` with `pw` as the typed password;
/// returns stdout and stderr.
fn exec(file: &Path, a: &[&str], pw: &str) -> Result<(String, String), String> {
    let mut all = args(a);
    all.push("--file".into());
    all.push(file.display().to_string());
    let cmd = parse(&all)?.expect("a command");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut source = |_: &str| -> Result<Zeroizing<String>, String> {
        check_password(pw)?;
        Ok(Zeroizing::new(pw.to_owned()))
    };
    execute(cmd, &mut source, 1_700_000_000, &mut out, &mut err)?;
    Ok((
        String::from_utf8(out).expect("utf-8"),
        String::from_utf8(err).expect("utf-8"),
    ))
}

#[test]
fn arguments() {
    assert_eq!(parse(&[]), Ok(None));
    assert_eq!(parse(&args(&["--help"])), Ok(None));
    let cmd = parse(&args(&[
        "add",
        "op1",
        "--kind",
        "user",
        "--role",
        "operator",
        "--factor",
        "password",
        "--factor",
        "totp",
        "--expires",
        "2027-01-01T00:00:00Z",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(cmd.name, "op1");
    assert_eq!(cmd.file, PathBuf::from("users.toml"));
    assert_eq!(
        cmd.action,
        Action::Add {
            kind: Kind::User,
            roles: vec!["operator".into()],
            factors: Some(FactorSet::PASSWORD | FactorSet::TOTP),
            client_id_pattern: None,
            expires: Some("2027-01-01T00:00:00Z".into()),
        }
    );
    let e = parse(&args(&["add", "dev", "--password", "x"])).unwrap_err();
    assert!(e.contains("never taken from the command line"), "{e}");
    for (bad, expect) in [
        (&["add"][..], "needs the identity's NAME"),
        (&["add", "a/b"], "level separator"),
        (&["add", "a", "--kind", "robot"], "device or user"),
        (
            &["add", "a", "--factor", "pin"],
            "certificate, password or totp",
        ),
        (&["add", "a", "--client-id-pattern", "a*b"], "'*'"),
        (&["add", "a", "--expires", "tomorrow"], "RFC 3339"),
        (&["passwd", "a", "--role", "x"], "unknown option"),
        (&["list", "a"], "unexpected argument"),
        (&["frob", "a"], "unknown subcommand"),
    ] {
        let e = parse(&args(bad)).unwrap_err();
        assert!(e.contains(expect), "{bad:?}: {e}");
    }
}

#[test]
fn add_passwd_disable_enable_remove() {
    let dir = temp_dir("cycle");
    let file = dir.join("users.toml");
    let (out, err) = exec(&file, &["add", "plc-7", "--role", "writer"], "s3cret-pass").unwrap();
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("added device 'plc-7' (requires password)"),
        "{err}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# Bulwark credential store"), "{text}");
    assert!(
        text.contains("password = \"$argon2id$v=19$m=19456,t=2,p=1$"),
        "{text}"
    );
    assert!(text.contains("scram = \"SCRAM-SHA-256$10000:"), "{text}");
    assert!(!text.contains("s3cret-pass"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let store = Store::parse("t", &text).unwrap();
    let id = store.get("plc-7").unwrap();
    assert!(password::verify(id.password_phc().unwrap(), b"s3cret-pass"));

    // A hand-written comment and entry survive every rewrite.
    let edited = format!("{text}\n# the camera, by hand\n[[identity]]\nname = \"cam\"\n");
    std::fs::write(&file, edited).unwrap();
    let e = exec(&file, &["add", "plc-7"], "another-pass").unwrap_err();
    assert!(e.contains("already exists"), "{e}");
    exec(&file, &["passwd", "plc-7"], "another-pass").unwrap();
    exec(&file, &["disable", "plc-7"], "").unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# the camera, by hand"), "{text}");
    let store = Store::parse("t", &text).unwrap();
    let id = store.get("plc-7").unwrap();
    assert!(password::verify(
        id.password_phc().unwrap(),
        b"another-pass"
    ));
    assert!(!id.enabled());
    assert!(store.get("cam").is_some());
    exec(&file, &["enable", "plc-7"], "").unwrap();
    let store = Store::parse("t", &std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(store.get("plc-7").unwrap().enabled());
    exec(&file, &["remove", "plc-7"], "").unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("plc-7") && text.contains("cam"), "{text}");
    let e = exec(&file, &["remove", "plc-7"], "").unwrap_err();
    assert!(e.contains("no identity named 'plc-7'"), "{e}");
    let e = exec(&dir.join("absent.toml"), &["passwd", "x"], "pw-is-long").unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
    // A short password changes nothing.
    let e = exec(&file, &["add", "x"], "short").unwrap_err();
    assert!(e.contains("at least 8"), "{e}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("\"x\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn totp_enrolment_and_list() {
    let dir = temp_dir("totp");
    let file = dir.join("users.toml");
    std::fs::write(
        &file,
        "[[role]]\nname = \"operator\"\nfactors = [\"password\", \"totp\"]\n",
    )
    .unwrap();
    // The role requires TOTP: add enrols right away.
    let (out, _) = exec(
        &file,
        &["add", "op1", "--kind", "user", "--role", "operator"],
        "operator-pass",
    )
    .unwrap();
    assert!(
        out.starts_with("otpauth://totp/Bulwark:op1?secret="),
        "{out}"
    );
    assert!(out
        .trim_end()
        .ends_with("&issuer=Bulwark&algorithm=SHA1&digits=6&period=30"));
    // Certificate only: no password asked for, none stored.
    exec(&file, &["add", "cam-2", "--factor", "certificate"], "").unwrap();
    exec(
        &file,
        &["add", "hmi", "--expires", "2020-01-01T00:00:00Z"],
        "hmi-password",
    )
    .unwrap();
    let (out, err) = exec(&file, &["totp", "hmi"], "").unwrap();
    assert!(err.contains("TOTP enrolled for 'hmi'"), "{err}");
    let secret = out
        .trim()
        .split_once("secret=")
        .and_then(|(_, r)| r.split_once('&'))
        .map(|(s, _)| s.to_owned())
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("totp_secret = \"{secret}\"")));
    let store = Store::parse("t", &text).unwrap();
    assert_eq!(
        store.get("hmi").unwrap().factors(),
        FactorSet::PASSWORD | FactorSet::TOTP
    );
    assert_eq!(store.get("cam-2").unwrap().password_phc(), None);

    let (out, _) = exec(&file, &["list"], "").unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("NAME"), "{out}");
    assert!(
        lines[1].contains("op1") && lines[1].contains("password+totp"),
        "{out}"
    );
    assert!(
        lines[1].contains("password,scram,totp") && lines[1].contains("operator"),
        "{out}"
    );
    assert!(lines[2].contains("cam-2") && lines[2].contains("certificate"));
    assert!(lines[3].contains("expired") && lines[3].contains("2020-01-01T00:00:00Z"));
    assert!(!out.contains("argon2") && !out.contains(&secret) && !out.contains("SCRAM"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dates_format_back() {
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_rfc3339(1_798_761_600), "2027-01-01T00:00:00Z");
    assert_eq!(format_rfc3339(1_709_164_799), "2024-02-28T23:59:59Z");
    for t in [-86_400, 951_782_400, 4_102_444_800] {
        assert_eq!(bulwark_security::parse_rfc3339(&format_rfc3339(t)), Some(t));
    }
}
