use super::*;

const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_credential() -> ScramCredential {
    let salt = BASE64.decode(b"W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    ScramCredential::derive_with_salt(b"pencil", &salt, 4096).unwrap()
}

fn secret() -> ScramSecret {
    ScramSecret::from_bytes([7; 32])
}

fn lookup(name: &str) -> Option<ScramCredential> {
    (name == "user").then(rfc_credential)
}

fn start(client_first: &str) -> Result<(ScramServer, Vec<u8>), ScramError> {
    ScramServer::start_with_nonce(&secret(), client_first.as_bytes(), SERVER_NONCE, lookup)
}

/// RFC 7677 section 3, server side.
#[test]
fn rfc7677_server() {
    let (server, first) = start(CLIENT_FIRST).unwrap();
    assert_eq!(String::from_utf8(first).unwrap(), SERVER_FIRST);
    assert_eq!(server.claimed_identity(), "user");
    let (identity, fin) = server.finish(CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(identity, "user");
    assert_eq!(String::from_utf8(fin).unwrap(), SERVER_FINAL);
}

/// RFC 7677 section 3, client side.
#[test]
fn rfc7677_client() {
    let (client, first) = ScramClient::start_with_nonce("user", "rOprNGfwEbeRWgbNEkqO");
    assert_eq!(String::from_utf8(first).unwrap(), CLIENT_FIRST);
    let (client, fin) = client.respond(SERVER_FIRST.as_bytes(), b"pencil").unwrap();
    assert_eq!(String::from_utf8(fin).unwrap(), CLIENT_FINAL);
    assert_eq!(
        client.verify(SERVER_FINAL.as_bytes()),
        Ok(ServerFinal {
            totp_requested: false
        })
    );
}

fn run(user: &str, password: &[u8], gs2: &'static str) -> Result<(String, Vec<u8>), ScramError> {
    let (client, first) = ScramClient::start_with_header(user, "clientnonce123", gs2);
    let (server, server_first) = ScramServer::start(&first, lookup)?;
    let (client, fin) = client.respond(&server_first, password)?;
    let (identity, server_final) = server.finish(&fin)?;
    assert!(client.verify(&server_final).is_ok());
    Ok((identity, server_final))
}

#[test]
fn round_trip_and_wrong_password() {
    let (id, fin) = run("user", b"pencil", "n,,").unwrap();
    assert_eq!(id, "user");
    assert!(fin.starts_with(b"v="));
    assert_eq!(run("user", b"pencil", "y,,").unwrap().0, "user");
    assert_eq!(
        run("user", b"pencil!", "n,,"),
        Err(ScramError::AuthenticationFailed)
    );
}

#[test]
fn unknown_user_gets_a_plausible_exchange_and_the_same_failure() {
    let first = |user: &str| {
        let msg = format!("n,,n={user},r=abcdefgh");
        let (_, sf) =
            ScramServer::start_with_nonce(&secret(), msg.as_bytes(), "XYZ", lookup).unwrap();
        String::from_utf8(sf).unwrap()
    };
    let a = first("nobody");
    let salt = a
        .split(',')
        .find_map(|x| x.strip_prefix("s="))
        .map(|s| BASE64.decode(s.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(salt.len(), 16);
    assert!(a.ends_with(&format!(",i={DEFAULT_ITERATIONS}")), "{a}");
    assert_eq!(a, first("nobody"), "the fake salt is stable");
    assert_ne!(a, first("nobody2"), "and differs per user name");
    assert_eq!(
        run("nobody", b"pencil", "n,,"),
        Err(ScramError::AuthenticationFailed)
    );
}

#[test]
fn refusals() {
    let e = |m: &str| start(m).err();
    assert_eq!(
        e("p=tls-unique,,n=user,r=abc"),
        Some(ScramError::ChannelBindingNotSupported)
    );
    assert_eq!(
        e("n,,m=ext,n=user,r=abc"),
        Some(ScramError::ExtensionNotSupported)
    );
    assert_eq!(
        e("n,a=admin,n=user,r=abc"),
        Some(ScramError::AuthzidNotSupported)
    );
    assert!(start("n,a=user,n=user,r=abc").is_ok());
    for bad in [
        "",
        "n",
        "x,,n=user,r=abc",
        "n,,r=abc",
        "n,,n=user",
        "n,,n=,r=abc",
        "n,,n=us=er,r=abc",
        "n,,n=user,r=a,bc",
        "n,,n=user,r=",
        "n,,n=user,r=abc,junk",
    ] {
        assert!(
            matches!(e(bad), Some(ScramError::Malformed(_))),
            "{bad:?}: {:?}",
            e(bad)
        );
    }
    assert_eq!(
        start(&format!("n,,n=user,r={}", "a".repeat(3000))).err(),
        Some(ScramError::TooLong)
    );
    assert!(ScramServer::start(&[0xff, 0xfe], lookup).is_err());

    let fin = |m: &str| start(CLIENT_FIRST).unwrap().0.finish(m.as_bytes()).err();
    assert_eq!(
        fin(&CLIENT_FINAL.replace("c=biws", "c=eSws")),
        Some(ScramError::ChannelBindingMismatch)
    );
    assert_eq!(
        fin(&CLIENT_FINAL.replace("$k0,", "$k1,")),
        Some(ScramError::NonceMismatch)
    );
    assert!(matches!(
        fin("c=biws,r=x,p=short"),
        Some(ScramError::Malformed(_))
    ));
    assert!(matches!(fin("c=biws"), Some(ScramError::Malformed(_))));
}

#[test]
fn escaped_names() {
    assert_eq!(message::saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
    assert_eq!(message::encode_saslname("a,b=c"), "a=2Cb=3Dc");
    let (server, _) =
        ScramServer::start_with_nonce(&secret(), b"n,,n=a=2Cb,r=abc", SERVER_NONCE, |name| {
            assert_eq!(name, "a,b");
            None
        })
        .unwrap();
    assert_eq!(server.claimed_identity(), "a,b");
}

#[test]
fn credential_encoding_and_redaction() {
    let c = rfc_credential();
    let text = c.encode();
    assert!(
        text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"),
        "{text}"
    );
    let d = ScramCredential::decode(&text).unwrap();
    assert_eq!(d.salt, c.salt);
    assert_eq!(d.iterations, 4096);
    assert_eq!(d.stored_key, c.stored_key);
    assert_eq!(d.server_key, c.server_key);
    let debug = format!("{c:?}");
    assert!(!debug.contains(&BASE64.encode(&c.stored_key)), "{debug}");
    assert!(debug.contains("redacted"));
    for bad in [
        "",
        "SCRAM-SHA-1$4096:c2FsdA==$a:b",
        "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
        "SCRAM-SHA-256$100:c2FsdA==$AAAA:AAAA",
    ] {
        assert!(ScramCredential::decode(bad).is_err(), "{bad}");
    }
    assert_eq!(
        ScramCredential::derive(b"x", 100).err(),
        Some(ScramError::Iterations(100))
    );
    let fresh = ScramCredential::derive(b"pencil", DEFAULT_ITERATIONS).unwrap();
    assert_eq!(fresh.salt.len(), 16);
    assert_eq!(fresh.iterations, DEFAULT_ITERATIONS);
}

#[test]
fn totp_request_extension() {
    let (server, _) = start(CLIENT_FIRST).unwrap();
    let (_, fin) = server.finish(CLIENT_FINAL.as_bytes()).unwrap();
    let fin = with_totp_request(fin);
    assert_eq!(
        String::from_utf8(fin.clone()).unwrap(),
        format!("{SERVER_FINAL},t=totp")
    );
    let (client, _) = ScramClient::start_with_nonce("user", "rOprNGfwEbeRWgbNEkqO");
    let (client, _) = client.respond(SERVER_FIRST.as_bytes(), b"pencil").unwrap();
    assert_eq!(
        client.verify(&fin),
        Ok(ServerFinal {
            totp_requested: true
        })
    );
    let (client, _) = ScramClient::start_with_nonce("user", "rOprNGfwEbeRWgbNEkqO");
    let (client, _) = client.respond(SERVER_FIRST.as_bytes(), b"pencil").unwrap();
    assert_eq!(
        client.verify(b"v=AAAA"),
        Err(ScramError::ServerSignatureInvalid)
    );
}
