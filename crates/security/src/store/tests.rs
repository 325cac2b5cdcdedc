use super::*;
use crate::factor::Factor;

/// A real argon2id hash of "pencil" (computed once; hashing is slow).
pub(crate) const PENCIL_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$godah6A7c9lv7ALB5p1frEO6MWDS7zXrznzcowD+4Uw";
pub(crate) const TOTP_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn parse(text: &str) -> Result<Store, Vec<StoreError>> {
    Store::parse("users.toml", text)
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("should not parse")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn full_example() {
    let text = format!(
        r#"
[[identity]]
name = "plc-hall3-07"
kind = "device"
roles = ["telemetry-writer"]
password = "{PENCIL_PHC}"
factors = ["certificate", "password"]
expires = "2027-01-01T00:00:00Z"

[[identity]]
name = "op1"
kind = "user"
roles = ["operator"]
password = "{PENCIL_PHC}"
totp_secret = "{TOTP_B32}"
client_id_pattern = "hmi-{{identity}}-*"
enabled = false
expires = 2027-01-01T01:00:00+01:00

[[identity]]
name = "cam-1"

[[role]]
name = "operator"
factors = ["password", "totp"]
"#
    );
    let store = parse(&text).unwrap();
    assert_eq!(store.len(), 3);
    let plc = store.get("plc-hall3-07").unwrap();
    assert_eq!(plc.kind(), Kind::Device);
    assert_eq!(plc.line(), 2);
    assert_eq!(
        plc.required_factors(&store),
        FactorSet::CERTIFICATE | FactorSet::PASSWORD
    );
    assert_eq!(plc.expires(), Some(1_798_761_600));
    assert!(plc.is_active(1_798_761_599));
    assert!(!plc.is_active(1_798_761_600));
    assert!(plc.client_id_allowed("plc-hall3-07-a"));
    let op = store.get("op1").unwrap();
    // Default factors for what it has (password, TOTP), plus the role's.
    assert_eq!(op.factors(), FactorSet::PASSWORD | FactorSet::TOTP);
    assert_eq!(
        op.required_factors(&store),
        FactorSet::PASSWORD | FactorSet::TOTP
    );
    assert!(!op.is_active(0), "disabled");
    assert_eq!(op.expires(), Some(1_798_761_600));
    assert!(op.client_id_allowed("hmi-op1-3"));
    assert!(!op.client_id_allowed("op1"));
    // No credentials at all: a certificate is the only possible proof.
    assert_eq!(
        store.get("cam-1").unwrap().factors(),
        FactorSet::CERTIFICATE
    );
    assert!(store.get("nobody").is_none());
    assert_eq!(
        store.role("operator").unwrap().factors(),
        FactorSet::PASSWORD | FactorSet::TOTP
    );
    // Debug output carries no secret.
    let debug = format!("{store:?}");
    assert!(!debug.contains("argon2id"), "{debug}");
    assert!(!debug.contains(TOTP_B32), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = r#"
[[identity]]
name = "a"
password = "hunter2"

[[identity]]
name = "b/c"
kind = "robot"

[[identity]]
name = "d"
password = "$6$rounds=5000$salt$abcdefghijklmnopqrstuvwxyz"
factors = ["password", "pin"]
client_id_pattern = "x*y"
expires = "next year"
enabeld = true

[[identity]]
name = "a"
factors = ["certificate"]

[[identity]]
kind = "user"

[general]
x = 1
"#;
    let e = errors(text);
    let expect = [
        "users.toml:4: identity 'a': password: the value is not a password hash; a plaintext password in the file is refused",
        "users.toml:7: identity #2: name: the name contains a topic level separator",
        "users.toml:8: identity #2: kind: unknown kind 'robot'; use device or user",
        "users.toml:12: identity 'd': password: the value",
        "users.toml:13: identity 'd': factors: unknown factor 'pin'",
        "users.toml:14: identity 'd': client_id_pattern: the pattern has '*' before the end",
        "users.toml:15: identity 'd': expires: 'next year' is not an RFC 3339 date-time",
        "users.toml:16: identity 'd': enabeld: unknown key; did you mean 'enabled'?",
        "users.toml:18: identity 'a': name: a second identity with this name (the first is at line 2)",
        "users.toml:22: identity #5: name: every identity needs a name",
        "users.toml:25: general: unknown section or key",
    ];
    for x in expect {
        assert!(
            e.iter().any(|m| m.starts_with(x)),
            "missing {x:?} in\n{e:#?}"
        );
    }
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    // A plaintext password is never echoed back.
    assert!(e.iter().all(|m| !m.contains("hunter2")));
}

#[test]
fn required_factors_must_be_satisfiable() {
    let text = r#"
[[identity]]
name = "op"
roles = ["operator"]
factors = ["certificate"]

[[identity]]
name = "dev"
factors = ["password"]

[[role]]
name = "operator"
factors = ["totp"]
"#;
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].starts_with("users.toml:2: identity 'op': totp_secret: role 'operator' requires TOTP, but it has no secret: run `bulwark user totp op`"), "{}", e[0]);
    assert!(
        e[1].starts_with("users.toml:7: identity 'dev': password: its factors require a password"),
        "{}",
        e[1]
    );
}

#[test]
fn secrets_are_checked() {
    let e = errors(
        r#"
[[identity]]
name = "a"
scram = "SCRAM-SHA-256$1000:c2FsdA==$AAAA:AAAA"
totp_secret = "GEZDGNBV"
factors = []
"#,
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].contains("scram: the value has 1000 iterations"),
        "{}",
        e[0]
    );
    assert!(
        e[1].contains("totp_secret: the value is 5 bytes"),
        "{}",
        e[1]
    );
    assert!(
        e[2].contains("factors: must name at least one factor"),
        "{}",
        e[2]
    );
}

#[test]
fn syntax_errors_and_wrong_types() {
    let e = errors("[[identity]]\nname = \"a\"\nroles = \n");
    assert!(e[0].starts_with("users.toml:3: (syntax)"), "{e:#?}");
    let e = errors("identity = 3\n[[role]]\nname = \"r\"\n");
    assert!(
        e.iter()
            .any(|m| m.starts_with("users.toml:1: identity: expected [[identity]] tables")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("role 'r': factors: a [[role]] entry exists to require factors")),
        "{e:#?}"
    );
    let e = errors("[[identity]]\nname = \"a\"\nroles = \"r\"\nenabled = \"yes\"\n");
    assert!(
        e.iter()
            .any(|m| m.contains("roles: expected an array of strings")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("enabled: expected true or false")),
        "{e:#?}"
    );
}

#[test]
fn an_empty_file_is_an_empty_store() {
    let store = parse("# no identities yet\n").unwrap();
    assert!(store.is_empty());
}

#[cfg(unix)]
#[test]
fn load_refuses_a_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("bulwark-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.toml");
    std::fs::write(&path, "[[identity]]\nname = \"cam\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = Store::load(&path).unwrap_err();
    assert!(matches!(e, StoreLoadError::Permissions { mode: 0o640, .. }));
    assert!(e.to_string().contains("chmod 600"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let store = Store::load(&path).unwrap();
    assert!(store.get("cam").is_some());
    assert_eq!(store.source(), path.display().to_string());
    let missing = Store::load(&dir.join("absent.toml")).unwrap_err();
    assert!(matches!(missing, StoreLoadError::Io { .. }));
    std::fs::write(&path, "[[identity]]\nnam = \"cam\"\n").unwrap();
    let invalid = Store::load(&path).unwrap_err().to_string();
    assert!(
        invalid.contains("credential file has 2 problems"),
        "{invalid}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn factor_names() {
    assert_eq!(Factor::parse("totp"), Some(Factor::Totp));
}
