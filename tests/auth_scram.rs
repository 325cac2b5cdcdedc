//! MQTT 5 enhanced authentication: SCRAM-SHA-256 over AUTH packets, with a
//! TOTP step for identities that need one. The client side is
//! `bulwark_security::scram::ScramClient`, checked against the RFC 7677
//! test vector in its own tests; the broker side runs through the real
//! listener and connection task.

use std::sync::Arc;
use std::time::Duration;

use bulwark_codec::{Auth, Connect, Packet, Properties, ProtocolVersion, ReasonCode};
use bulwark_security::scram::{ScramClient, ScramCredential, MECHANISM};
use bulwark_security::store::Store;
use bulwark_security::totp::{code_at, TotpSecret};
use bulwark_tests::mqtt::{connect_packet, Got, RawClient};
use bulwark_tests::{limits, start_with, TestBroker};
use bytes::Bytes;

const PASSWORD: &[u8] = b"correct horse battery";
const TOTP_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn store() -> Arc<Store> {
    let phc = bulwark_security::password::hash(PASSWORD).expect("hash");
    let scram = ScramCredential::derive(PASSWORD, 4096)
        .expect("scram")
        .encode();
    let text = format!(
        r#"
[[identity]]
name = "hmi-1"
kind = "user"
password = "{phc}"
scram = "{scram}"
factors = ["password"]

[[identity]]
name = "op-1"
kind = "user"
password = "{phc}"
scram = "{scram}"
totp_secret = "{TOTP_B32}"
factors = ["password", "totp"]
"#
    );
    Arc::new(Store::parse("test-users.toml", &text).expect("store parses"))
}

async fn broker() -> TestBroker {
    let b = start_with(limits()).await;
    b.broker.auth().set_store(Some(store()));
    b
}

fn auth_packet(data: Vec<u8>) -> Packet {
    Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties {
            authentication_method: Some(MECHANISM.into()),
            authentication_data: Some(Bytes::from(data)),
            ..Properties::default()
        },
    })
}

async fn next(c: &mut RawClient) -> Packet {
    match c.next(Duration::from_secs(5)).await {
        Got::Packet(p) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

/// Runs the exchange as `user` with `password`; `totp` answers a TOTP
/// request. Returns the CONNACK.
async fn scram_connect(
    b: &TestBroker,
    user: &str,
    client_id: &str,
    password: &[u8],
    totp: Option<String>,
) -> bulwark_codec::ConnAck {
    scram_session(b, user, client_id, password, totp).await.1
}

/// As `scram_connect`, keeping the connection.
async fn scram_session(
    b: &TestBroker,
    user: &str,
    client_id: &str,
    password: &[u8],
    totp: Option<String>,
) -> (RawClient, bulwark_codec::ConnAck) {
    let (client, first) = ScramClient::start(user).expect("client-first");
    let mut connect: Connect = connect_packet(client_id, ProtocolVersion::V5);
    connect.properties.authentication_method = Some(MECHANISM.into());
    connect.properties.authentication_data = Some(Bytes::from(first));
    let mut c = RawClient::open(b.addr, ProtocolVersion::V5).await;
    c.send(&Packet::Connect(Box::new(connect))).await;
    let server_first = match next(&mut c).await {
        Packet::Auth(a) => {
            assert_eq!(a.reason, ReasonCode::ContinueAuthentication);
            assert_eq!(
                a.properties.authentication_method.as_deref(),
                Some(MECHANISM)
            );
            a.properties
                .authentication_data
                .expect("server-first")
                .to_vec()
        }
        Packet::ConnAck(ack) => return (c, ack),
        other => panic!("expected AUTH, got {other:?}"),
    };
    let (fin, client_final) = client
        .respond(&server_first, password)
        .expect("client-final");
    c.send(&auth_packet(client_final)).await;
    match next(&mut c).await {
        Packet::ConnAck(ack) => {
            if ack.reason == ReasonCode::Success {
                // The server proved it knows the credential too.
                let data = ack
                    .properties
                    .authentication_data
                    .clone()
                    .expect("server-final");
                let verdict = fin.verify(&data).expect("server signature verifies");
                assert!(!verdict.totp_requested);
                assert_eq!(
                    ack.properties.authentication_method.as_deref(),
                    Some(MECHANISM)
                );
            }
            (c, ack)
        }
        Packet::Auth(a) => {
            let data = a
                .properties
                .authentication_data
                .expect("server-final + t=totp");
            let verdict = fin.verify(&data).expect("server signature verifies");
            assert!(verdict.totp_requested, "AUTH without a TOTP request");
            c.send(&auth_packet(
                totp.expect("a TOTP code was asked for").into_bytes(),
            ))
            .await;
            match next(&mut c).await {
                Packet::ConnAck(ack) => (c, ack),
                other => panic!("expected CONNACK, got {other:?}"),
            }
        }
        other => panic!("expected CONNACK or AUTH, got {other:?}"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test]
async fn scram_proves_the_password_without_sending_it() {
    let b = broker().await;
    let ack = scram_connect(&b, "hmi-1", "hmi-1", PASSWORD, None).await;
    assert_eq!(ack.reason, ReasonCode::Success);
}

#[tokio::test]
async fn scram_refuses_a_wrong_password_and_an_unknown_user_alike() {
    let b = broker().await;
    let wrong = scram_connect(&b, "hmi-1", "hmi-1", b"wrong", None).await;
    let unknown = scram_connect(&b, "nobody", "nobody", PASSWORD, None).await;
    assert_eq!(wrong.reason, ReasonCode::BadUserNameOrPassword);
    assert_eq!(unknown.reason, ReasonCode::BadUserNameOrPassword);
}

#[tokio::test]
async fn scram_then_totp_for_identities_that_need_it() {
    let b = broker().await;
    let secret = TotpSecret::from_base32(TOTP_B32).expect("secret");
    let code = code_at(&secret, now(), 6).expect("code");
    let ack = scram_connect(&b, "op-1", "op-1", PASSWORD, Some(code.clone())).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    // The same code again is a replay.
    let again = scram_connect(&b, "op-1", "op-1-b", PASSWORD, Some(code)).await;
    assert_eq!(again.reason, ReasonCode::BadUserNameOrPassword);
    let wrong = scram_connect(&b, "op-1", "op-1-c", PASSWORD, Some("000000".into())).await;
    assert_ne!(wrong.reason, ReasonCode::Success);
}

#[tokio::test]
async fn scram_still_binds_the_client_id_to_the_identity() {
    let b = broker().await;
    let ack = scram_connect(&b, "hmi-1", "op-1", PASSWORD, None).await;
    assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid);
}

#[tokio::test]
async fn an_unknown_method_is_refused_with_0x8c() {
    let b = broker().await;
    let mut connect = connect_packet("x", ProtocolVersion::V5);
    connect.properties.authentication_method = Some("KERBEROS".into());
    let (_c, ack) = RawClient::connect(b.addr, connect).await;
    assert_eq!(ack.reason, ReasonCode::BadAuthenticationMethod);
}

fn reauth_packet(reason: ReasonCode, data: Vec<u8>) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: Properties {
            authentication_method: Some(MECHANISM.into()),
            authentication_data: Some(Bytes::from(data)),
            ..Properties::default()
        },
    })
}

#[tokio::test]
async fn re_authentication_runs_the_exchange_again_on_the_live_connection() {
    let b = broker().await;
    let (mut c, ack) = scram_session(&b, "hmi-1", "hmi-1", PASSWORD, None).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    let (client, first) = ScramClient::start("hmi-1").expect("client-first");
    c.send(&reauth_packet(ReasonCode::ReAuthenticate, first))
        .await;
    let server_first = match next(&mut c).await {
        Packet::Auth(a) if a.reason == ReasonCode::ContinueAuthentication => {
            a.properties.authentication_data.expect("data").to_vec()
        }
        other => panic!("expected AUTH 0x18, got {other:?}"),
    };
    let (fin, client_final) = client.respond(&server_first, PASSWORD).expect("final");
    c.send(&reauth_packet(
        ReasonCode::ContinueAuthentication,
        client_final,
    ))
    .await;
    match next(&mut c).await {
        Packet::Auth(a) if a.reason == ReasonCode::Success => {
            fin.verify(&a.properties.authentication_data.expect("server-final"))
                .expect("server signature");
        }
        other => panic!("expected AUTH 0x00, got {other:?}"),
    }
    // Still connected and served.
    c.send(&Packet::PingReq).await;
    assert!(matches!(next(&mut c).await, Packet::PingResp));
}

#[tokio::test]
async fn failed_re_authentication_closes_the_connection() {
    let b = broker().await;
    let (mut c, _) = scram_session(&b, "hmi-1", "hmi-1", PASSWORD, None).await;
    let (client, first) = ScramClient::start("hmi-1").expect("client-first");
    c.send(&reauth_packet(ReasonCode::ReAuthenticate, first))
        .await;
    let server_first = match next(&mut c).await {
        Packet::Auth(a) => a.properties.authentication_data.expect("data").to_vec(),
        other => panic!("expected AUTH, got {other:?}"),
    };
    let (_fin, client_final) = client.respond(&server_first, b"wrong").expect("final");
    c.send(&reauth_packet(
        ReasonCode::ContinueAuthentication,
        client_final,
    ))
    .await;
    assert_eq!(
        c.expect_close(Duration::from_secs(3)).await,
        Some(ReasonCode::NotAuthorized)
    );
    // Another identity cannot be assumed either.
    let (mut c, _) = scram_session(&b, "hmi-1", "hmi-1", PASSWORD, None).await;
    let (_client, first) = ScramClient::start("op-1").expect("client-first");
    c.send(&reauth_packet(ReasonCode::ReAuthenticate, first))
        .await;
    assert_eq!(
        c.expect_close(Duration::from_secs(3)).await,
        Some(ReasonCode::NotAuthorized)
    );
}

#[tokio::test]
async fn auth_on_a_connection_without_enhanced_authentication_is_a_protocol_error() {
    let b = broker().await;
    let mut c = RawClient::connected(b.addr, "plain", ProtocolVersion::V5).await;
    c.send(&reauth_packet(
        ReasonCode::ReAuthenticate,
        b"n,,n=hmi-1,r=abc".to_vec(),
    ))
    .await;
    assert_eq!(
        c.expect_close(Duration::from_secs(3)).await,
        Some(ReasonCode::ProtocolError)
    );
}
