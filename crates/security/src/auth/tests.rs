use std::time::{Duration, Instant};

use super::*;
use crate::password::VERIFICATIONS;
use crate::scram::{ScramClient, ScramCredential, ScramServer};
use crate::store::tests::{PENCIL_PHC, TOTP_B32};
use crate::totp::TotpSecret;

/// 2005-03-18T01:58:31Z: RFC 6238's vector time; the 6-digit code for the
/// secret "12345678901234567890" is 050471.
const NOW: i64 = 1_111_111_111;
const CODE: &str = "050471";

fn store() -> Store {
    let scram = ScramCredential::derive(b"pencil", 4096).unwrap().encode();
    let text = format!(
        r#"
[[identity]]
name = "dev"
password = "{PENCIL_PHC}"
scram = "{scram}"

[[identity]]
name = "plc"
password = "{PENCIL_PHC}"
scram = "{scram}"
factors = ["certificate", "password"]

[[identity]]
name = "cam"

[[identity]]
name = "op"
kind = "user"
roles = ["operator"]
password = "{PENCIL_PHC}"
scram = "{scram}"
totp_secret = "{TOTP_B32}"

[[identity]]
name = "certop"
totp_secret = "{TOTP_B32}"
factors = ["certificate", "totp"]

[[identity]]
name = "off"
password = "{PENCIL_PHC}"
scram = "{scram}"
enabled = false

[[identity]]
name = "old"
password = "{PENCIL_PHC}"
expires = "2005-01-01T00:00:00Z"

[[identity]]
name = "a.b[c]?"
password = "{PENCIL_PHC}"

[[role]]
name = "operator"
factors = ["password", "totp"]
"#
    );
    Store::parse("users.toml", &text).unwrap()
}

fn connect<'a>(
    cert: Option<&'a str>,
    user: Option<&'a str>,
    password: Option<&'a str>,
    client_id: &'a str,
) -> Presented<'a> {
    Presented {
        cert_identity: cert,
        username: user,
        password: password.map(str::as_bytes),
        client_id,
        listener_min_factors: FactorSet::EMPTY,
        now_unix: NOW,
    }
}

fn run(store: &Store, guard: &TotpGuard, p: Presented) -> (Decision, u32) {
    VERIFICATIONS.with(|n| n.set(0));
    let d = authenticate(store, guard, &p);
    (d, VERIFICATIONS.with(|n| n.get()))
}

fn allow(identity: &str, factors: FactorSet) -> Decision {
    Decision::Allow {
        identity: identity.into(),
        factors,
    }
}

fn denied(reason: DenyReason) -> Decision {
    Decision::Deny { reason }
}

#[test]
fn password_and_unknown_identity_cost_the_same() {
    let s = store();
    let g = TotpGuard::new();
    let p = |user, pw| connect(None, Some(user), pw, user);
    assert_eq!(
        run(&s, &g, p("dev", Some("pencil"))),
        (allow("dev", FactorSet::PASSWORD), 1)
    );
    assert_eq!(
        run(&s, &g, p("dev", Some("pencil!"))),
        (denied(DenyReason::WrongPassword), 1)
    );
    // The unknown name costs one argon2 verification too (the dummy hash).
    assert_eq!(
        run(&s, &g, p("ghost", Some("pencil"))),
        (denied(DenyReason::UnknownIdentity), 1)
    );
    // An identity without a password is verified against the dummy too.
    assert_eq!(
        run(&s, &g, p("cam", Some("pencil"))),
        (denied(DenyReason::WrongPassword), 1)
    );
    assert_eq!(
        run(&s, &g, p("ghost", None)),
        (denied(DenyReason::UnknownIdentity), 0)
    );
    assert_eq!(
        run(&s, &g, p("dev", None)),
        (
            denied(DenyReason::NoCredentials {
                required: FactorSet::PASSWORD
            }),
            0
        )
    );
    // All of them look alike to the client.
    for r in [
        DenyReason::WrongPassword,
        DenyReason::UnknownIdentity,
        DenyReason::NoCredentials {
            required: FactorSet::PASSWORD,
        },
    ] {
        assert_eq!((r.reason_code_v5(), r.return_code_v3()), (0x86, 0x04));
    }

    // And take comparable time (the fastest of three, against noise).
    let time = |user| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let _ = authenticate(&s, &g, &p(user, Some("wrong")));
                t.elapsed()
            })
            .min()
            .unwrap_or(Duration::ZERO)
    };
    let (known, unknown) = (time("dev"), time("ghost"));
    assert!(
        unknown * 2 >= known,
        "unknown identity {unknown:?}, wrong password {known:?}"
    );
}

#[test]
fn identity_comes_from_the_certificate() {
    let s = store();
    let g = TotpGuard::new();
    assert_eq!(
        run(&s, &g, connect(None, None, None, "x")).0,
        denied(DenyReason::NoIdentity)
    );
    assert_eq!(
        run(
            &s,
            &g,
            connect(Some("cam"), Some("dev"), Some("pencil"), "cam")
        )
        .0,
        denied(DenyReason::UsernameMismatch)
    );
    assert_eq!(
        run(&s, &g, connect(Some("cam"), None, None, "cam-1")).0,
        allow("cam", FactorSet::CERTIFICATE)
    );
    assert_eq!(
        run(&s, &g, connect(Some("cam"), Some("cam"), None, "cam")).0,
        allow("cam", FactorSet::CERTIFICATE)
    );
    assert_eq!(
        run(&s, &g, connect(Some("ghost"), None, None, "ghost")).0,
        denied(DenyReason::UnknownIdentity)
    );
}

#[test]
fn every_required_factor_is_needed() {
    let s = store();
    let g = TotpGuard::new();
    let both = FactorSet::CERTIFICATE | FactorSet::PASSWORD;
    assert_eq!(
        run(&s, &g, connect(Some("plc"), None, Some("pencil"), "plc")).0,
        allow("plc", both)
    );
    let d = run(&s, &g, connect(None, Some("plc"), Some("pencil"), "plc")).0;
    assert_eq!(
        d,
        denied(DenyReason::MissingFactors {
            missing: FactorSet::CERTIFICATE
        })
    );
    assert_eq!(
        run(&s, &g, connect(Some("plc"), None, None, "plc")).0,
        denied(DenyReason::MissingFactors {
            missing: FactorSet::PASSWORD
        })
    );
    // The listener's minimum adds to the identity's.
    let mut p = connect(None, Some("dev"), Some("pencil"), "dev");
    p.listener_min_factors = FactorSet::CERTIFICATE;
    assert_eq!(
        run(&s, &g, p).0,
        denied(DenyReason::MissingFactors {
            missing: FactorSet::CERTIFICATE
        })
    );
    p.listener_min_factors = FactorSet::TOTP;
    assert_eq!(
        run(&s, &g, p).0,
        denied(DenyReason::MissingFactors {
            missing: FactorSet::TOTP
        })
    );
    let missing = DenyReason::MissingFactors {
        missing: FactorSet::TOTP,
    };
    assert_eq!(
        (missing.reason_code_v5(), missing.return_code_v3()),
        (0x87, 0x05)
    );
}

#[test]
fn disabled_and_expired_only_after_proof() {
    let s = store();
    let g = TotpGuard::new();
    assert_eq!(
        run(&s, &g, connect(None, Some("off"), Some("pencil"), "off")).0,
        denied(DenyReason::Disabled)
    );
    assert_eq!(
        run(&s, &g, connect(None, Some("off"), Some("wrong"), "off")).0,
        denied(DenyReason::WrongPassword)
    );
    assert_eq!(
        run(&s, &g, connect(None, Some("old"), Some("pencil"), "old")).0,
        denied(DenyReason::Expired)
    );
    assert_eq!(DenyReason::Expired.reason_code_v5(), 0x87);
    assert_eq!(DenyReason::Disabled.return_code_v3(), 0x05);
}

#[test]
fn client_ids_are_bound_to_identities() {
    let s = store();
    let g = TotpGuard::new();
    let p = |user, id| run(&s, &g, connect(None, Some(user), Some("pencil"), id)).0;
    assert_eq!(p("dev", "dev-7"), allow("dev", FactorSet::PASSWORD));
    assert_eq!(p("dev", "plc"), denied(DenyReason::ClientIdNotAllowed));
    assert_eq!(p("dev", "devx"), denied(DenyReason::ClientIdNotAllowed));
    assert_eq!(p("dev", ""), denied(DenyReason::ClientIdNotAllowed));
    // Regex and glob characters in a name are literal.
    assert_eq!(
        p("a.b[c]?", "a.b[c]?-1"),
        allow("a.b[c]?", FactorSet::PASSWORD)
    );
    assert_eq!(p("a.b[c]?", "axbc"), denied(DenyReason::ClientIdNotAllowed));
    let r = DenyReason::ClientIdNotAllowed;
    assert_eq!((r.reason_code_v5(), r.return_code_v3()), (0x85, 0x02));
}

#[test]
fn totp_in_the_password_field() {
    let s = store();
    let g = TotpGuard::new();
    let p = |pw: &'static str, id: &'static str| connect(None, Some("op"), Some(pw), id);
    let ok = allow("op", FactorSet::PASSWORD | FactorSet::TOTP);
    assert_eq!(
        run(&s, &g, p("pencil", "op")).0,
        denied(DenyReason::TotpMissing)
    );
    assert_eq!(
        run(&s, &g, p("pencil:000000", "op")).0,
        denied(DenyReason::WrongTotp)
    );
    assert_eq!(
        run(&s, &g, p("wrong:050471", "op")).0,
        denied(DenyReason::WrongPassword)
    );
    // A refused CONNECT does not spend the code...
    assert_eq!(
        run(&s, &g, p("pencil:050471", "elsewhere")).0,
        denied(DenyReason::ClientIdNotAllowed)
    );
    // ...an accepted one does.
    assert_eq!(run(&s, &g, p("pencil:050471", "op")), (ok.clone(), 1));
    assert_eq!(
        run(&s, &g, p("pencil:050471", "op")).0,
        denied(DenyReason::TotpReplayed)
    );
    for r in [
        DenyReason::TotpMissing,
        DenyReason::WrongTotp,
        DenyReason::TotpReplayed,
    ] {
        assert_eq!((r.reason_code_v5(), r.return_code_v3()), (0x86, 0x04));
    }
    // The next step's code works once its time comes.
    let secret = TotpSecret::from_base32(TOTP_B32).unwrap();
    let next = crate::totp::code_at(&secret, NOW + 30, 6).unwrap();
    let field = format!("pencil:{next}");
    let mut later = connect(None, Some("op"), Some(&field), "op");
    later.now_unix = NOW + 30;
    assert_eq!(run(&s, &g, later).0, ok);

    // Certificate + TOTP: the whole password field is the code.
    assert_eq!(
        run(&s, &g, connect(Some("certop"), None, Some(CODE), "certop")).0,
        allow("certop", FactorSet::CERTIFICATE | FactorSet::TOTP)
    );
}

#[test]
fn password_field_split() {
    let pt = FactorSet::PASSWORD | FactorSet::TOTP;
    let split = |f: &'static str, r| {
        let (a, b) = split_password_field(f.as_bytes(), r);
        (
            a.map(|x| String::from_utf8(x.to_vec()).unwrap()),
            b.map(|x| String::from_utf8(x.to_vec()).unwrap()),
        )
    };
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(split("pa:ss:123456", pt), (s("pa:ss"), s("123456")));
    assert_eq!(split(":123456", pt), (s(""), s("123456")));
    assert_eq!(split("pass:12345", pt), (s("pass:12345"), None));
    assert_eq!(split("pass", pt), (s("pass"), None));
    assert_eq!(
        split("pass:123456", FactorSet::PASSWORD),
        (s("pass:123456"), None)
    );
    assert_eq!(split("123456", FactorSet::TOTP), (None, s("123456")));
}

#[test]
fn scram_then_totp_over_auth() {
    let s = store();
    let g = TotpGuard::new();
    // The full exchange for "op": SCRAM, then the TOTP step.
    let (client, first) = ScramClient::start("op").unwrap();
    let (server, server_first) = ScramServer::start(&first, |n| s.scram_credential(n)).unwrap();
    let (client, client_final) = client.respond(&server_first, b"pencil").unwrap();
    let (identity, server_final) = server.finish(&client_final).unwrap();
    let decision = authorize_scram_identity(&s, &identity, "op", None, FactorSet::EMPTY, NOW);
    let ScramDecision::TotpRequired(challenge) = decision else {
        panic!("expected a TOTP step, got {decision:?}");
    };
    assert_eq!(challenge.identity(), "op");
    let to_client = crate::scram::with_totp_request(server_final);
    assert!(client.verify(&to_client).unwrap().totp_requested);
    assert_eq!(
        challenge.clone().complete(&s, &g, b"123456", NOW),
        denied(DenyReason::WrongTotp)
    );
    assert_eq!(
        challenge.clone().complete(&s, &g, CODE.as_bytes(), NOW),
        allow("op", FactorSet::PASSWORD | FactorSet::TOTP)
    );
    assert_eq!(
        challenge.complete(&s, &g, CODE.as_bytes(), NOW),
        denied(DenyReason::TotpReplayed)
    );

    let scram = |id: &str, cid: &str, cert| {
        authorize_scram_identity(&s, id, cid, cert, FactorSet::EMPTY, NOW)
    };
    assert_eq!(
        scram("dev", "dev", None),
        ScramDecision::Allow {
            identity: "dev".into(),
            factors: FactorSet::PASSWORD
        }
    );
    assert_eq!(
        scram("plc", "plc", Some("plc")),
        ScramDecision::Allow {
            identity: "plc".into(),
            factors: FactorSet::CERTIFICATE | FactorSet::PASSWORD
        }
    );
    let deny = |reason| ScramDecision::Deny { reason };
    assert_eq!(
        scram("plc", "plc", None),
        deny(DenyReason::MissingFactors {
            missing: FactorSet::CERTIFICATE
        })
    );
    assert_eq!(
        scram("dev", "dev", Some("plc")),
        deny(DenyReason::UsernameMismatch)
    );
    assert_eq!(scram("off", "off", None), deny(DenyReason::Disabled));
    assert_eq!(
        scram("dev", "x", None),
        deny(DenyReason::ClientIdNotAllowed)
    );
    assert_eq!(scram("op", "x", None), deny(DenyReason::ClientIdNotAllowed));
    assert_eq!(
        scram("ghost", "ghost", None),
        deny(DenyReason::UnknownIdentity)
    );

    // An unknown user fails inside SCRAM, exactly like a wrong password.
    let (client, first) = ScramClient::start("ghost").unwrap();
    let (server, server_first) = ScramServer::start(&first, |n| s.scram_credential(n)).unwrap();
    let (_, client_final) = client.respond(&server_first, b"pencil").unwrap();
    let e = server.finish(&client_final).unwrap_err();
    let r = DenyReason::Scram(e);
    assert_eq!(r.reason_code_v5(), 0x86);
    assert_eq!(DenyReason::BadAuthMethod.reason_code_v5(), 0x8C);
    assert_eq!(
        DenyReason::Scram(crate::ScramError::ChannelBindingNotSupported).reason_code_v5(),
        0x8C
    );
}

#[test]
fn presented_debug_hides_the_password() {
    let p = connect(None, Some("dev"), Some("pencil:050471"), "dev");
    let d = format!("{p:?}");
    assert!(!d.contains("pencil") && !d.contains("050471"), "{d}");
}
