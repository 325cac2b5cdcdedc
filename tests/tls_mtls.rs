//! Mutual TLS through the real listener: which client certificates get in,
//! which are refused, and what a reload does to live connections. The
//! client is rustls (a real TLS stack); tests/tls_real_clients.rs repeats
//! the main cases with mosquitto's OpenSSL-based clients.

use std::time::Duration;

use bulwark_tests::pki::{self, Ca, Tweak};
use bulwark_tests::tls::{client_config, connect, mqtt_connect, serve, serve_with, settings, spec};
use bulwark_transport::identity::IdentitySource;
use bulwark_transport::{ClientAuth, Kind};
use tokio::io::AsyncReadExt;

struct Site {
    ca: Ca,
    server: pki::Issued,
}

fn site(tag: &str) -> Site {
    let dir = pki::temp_dir(tag);
    let ca = Ca::new(&dir, "plant-ca");
    let server = ca.server("server");
    Site { ca, server }
}

/// A required-mTLS listener that lets in nobody without a certificate.
fn mtls(s: &Site, crls: Vec<std::path::PathBuf>) -> bulwark_transport::ListenerSpec {
    let mut t = settings(
        &s.server.cert,
        &s.server.key,
        Some(&s.ca.pem),
        ClientAuth::Required,
    );
    t.crls = crls;
    spec(Kind::Mqtts, Some(t), false)
}

/// Connects with `client` and returns the CONNACK code or the failure.
async fn try_client(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    client: Option<&pki::Issued>,
    id: &str,
) -> Result<u8, String> {
    let cfg = client_config(ca, client.map(|c| (c.cert.as_path(), c.key.as_path())));
    let mut tls = connect(addr, cfg)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    mqtt_connect(&mut tls, id).await
}

#[tokio::test]
async fn a_valid_certificate_is_an_identity() {
    let s = site("valid");
    let good = s.ca.client("plc-1", "plc-1", Tweak::None);
    let b = serve(mtls(&s, Vec::new())).await;
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&good), "plc-1").await,
        Ok(0)
    );
}

#[tokio::test]
async fn every_bad_certificate_is_refused() {
    let s = site("bad");
    let other = Ca::new(&s.ca.dir, "rogue-ca");
    let revoked = s.ca.client("revoked", "plc-r", Tweak::None);
    let crl = s.ca.crl("crl", &[&revoked.serial], 7);
    let b = serve(mtls(&s, vec![crl])).await;
    let cases = [
        ("none presented", None),
        (
            "expired",
            Some(s.ca.client("expired", "plc-e", Tweak::Expired)),
        ),
        (
            "not yet valid",
            Some(s.ca.client("future", "plc-f", Tweak::NotYetValid)),
        ),
        (
            "wrong CA",
            Some(other.client("rogue", "plc-1", Tweak::None)),
        ),
        (
            "server usage",
            Some(s.ca.client("usage", "plc-u", Tweak::ServerUsage)),
        ),
        ("revoked", Some(revoked)),
    ];
    for (what, cert) in &cases {
        let got = try_client(b.addr, &s.ca.pem, cert.as_ref(), "x").await;
        assert!(got.is_err(), "{what}: let in with {got:?}");
    }
    // The listener still serves a good client after all those refusals.
    let good = s.ca.client("good", "plc-ok", Tweak::None);
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&good), "plc-ok").await,
        Ok(0)
    );
}

#[tokio::test]
async fn an_expired_crl_fails_closed_unless_allowed() {
    let s = site("stale-crl");
    let good = s.ca.client("good", "plc-1", Tweak::None);
    let stale = s.ca.crl("stale", &[], -1);
    let b = serve(mtls(&s, vec![stale.clone()])).await;
    assert!(try_client(b.addr, &s.ca.pem, Some(&good), "plc-1")
        .await
        .is_err());

    let mut lenient = mtls(&s, vec![stale]);
    if let Some(t) = lenient.tls.as_mut() {
        t.allow_expired_crl = true;
    }
    let b = serve(lenient).await;
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&good), "plc-1").await,
        Ok(0)
    );
}

#[tokio::test]
async fn optional_client_auth_lets_anonymous_in_only_where_allowed() {
    let s = site("optional");
    let t = settings(
        &s.server.cert,
        &s.server.key,
        Some(&s.ca.pem),
        ClientAuth::Optional,
    );
    let closed = serve(spec(Kind::Mqtts, Some(t.clone()), false)).await;
    // TLS succeeds, but without an identity CONNECT is refused (3.1.1: 5).
    assert_eq!(
        try_client(closed.addr, &s.ca.pem, None, "anon").await,
        Ok(5)
    );
    let open = serve(spec(Kind::Mqtts, Some(t), true)).await;
    assert_eq!(try_client(open.addr, &s.ca.pem, None, "anon").await, Ok(0));
    // A presented certificate is still verified.
    let expired = s.ca.client("expired", "plc-e", Tweak::Expired);
    assert!(try_client(open.addr, &s.ca.pem, Some(&expired), "x")
        .await
        .is_err());
}

#[tokio::test]
async fn identity_comes_from_the_chosen_field_and_unsafe_values_are_refused() {
    let s = site("identity");
    let mut by_uri = mtls(&s, Vec::new());
    by_uri.identity_from = IdentitySource::SanUri;
    let b = serve(by_uri).await;
    let with_uri =
        s.ca.client("uri", "ignored", Tweak::SanUri("urn:plant:plc-7"));
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&with_uri), "urn:plant:plc-7-a").await,
        Ok(0)
    );
    // The client ID is bound to the identity: another one is refused
    // (3.1.1 return code 2).
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&with_uri), "plc-8").await,
        Ok(2)
    );
    let without = s.ca.client("nouri", "plc-8", Tweak::None);
    assert!(try_client(b.addr, &s.ca.pem, Some(&without), "c")
        .await
        .is_err());

    let by_cn = serve(mtls(&s, Vec::new())).await;
    for cn in ["plant/#", "a+b"] {
        let bad = s.ca.client("wild", cn, Tweak::None);
        let got = try_client(by_cn.addr, &s.ca.pem, Some(&bad), "c").await;
        assert!(got.is_err(), "CN {cn:?} accepted: {got:?}");
    }
}

#[tokio::test]
async fn a_reloaded_crl_cuts_a_live_revoked_connection_within_5s() {
    let s = site("crl-reload");
    let victim = s.ca.client("victim", "plc-v", Tweak::None);
    let bystander = s.ca.client("bystander", "plc-b", Tweak::None);
    let crl_path = s.ca.dir.join("live-crl.pem");
    pki::replace(&s.ca.crl("empty", &[], 7), &crl_path);
    let b = serve(mtls(&s, vec![crl_path.clone()])).await;
    let tls = b.tls.clone().expect("tls state");

    let cfg = client_config(&s.ca.pem, Some((&victim.cert, &victim.key)));
    let mut v = connect(b.addr, cfg).await.expect("handshake");
    assert_eq!(mqtt_connect(&mut v, "plc-v").await, Ok(0));
    let cfg = client_config(&s.ca.pem, Some((&bystander.cert, &bystander.key)));
    let mut by = connect(b.addr, cfg).await.expect("handshake");
    assert_eq!(mqtt_connect(&mut by, "plc-b").await, Ok(0));
    assert_eq!(tls.live.len(), 2);

    // The operator publishes a CRL revoking the victim; the watcher of the
    // test listener is driven here by calling reload, as SIGHUP does.
    pki::replace(&s.ca.crl("revoking", &[&victim.serial], 7), &crl_path);
    let started = std::time::Instant::now();
    tls.reload().await.expect("reload");
    let mut buf = [0u8; 16];
    let cut = tokio::time::timeout(Duration::from_secs(5), v.read(&mut buf)).await;
    assert!(
        matches!(cut, Ok(Ok(0)) | Ok(Err(_))),
        "victim not cut: {cut:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The bystander is untouched: a PINGREQ still gets its PINGRESP.
    use tokio::io::AsyncWriteExt;
    by.write_all(&[0xc0, 0]).await.expect("ping");
    let mut resp = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), by.read_exact(&mut resp))
        .await
        .expect("pingresp in time")
        .expect("pingresp");
    assert_eq!(resp, [0xd0, 0]);
    assert_eq!(tls.live.len(), 1);
    // And the victim cannot come back.
    assert!(try_client(b.addr, &s.ca.pem, Some(&victim), "plc-v")
        .await
        .is_err());
}

#[tokio::test]
async fn the_file_watcher_reloads_without_a_signal() {
    let s = site("watch");
    let victim = s.ca.client("victim", "plc-v", Tweak::None);
    let crl_path = s.ca.dir.join("watched-crl.pem");
    pki::replace(&s.ca.crl("empty", &[], 7), &crl_path);
    let b = serve(mtls(&s, vec![crl_path.clone()])).await;
    let tls = b.tls.clone().expect("tls state");
    tokio::spawn(tls.clone().watch(
        bulwark_transport::ReloadTrigger::default(),
        Duration::from_millis(200),
    ));
    let cfg = client_config(&s.ca.pem, Some((&victim.cert, &victim.key)));
    let mut v = connect(b.addr, cfg).await.expect("handshake");
    assert_eq!(mqtt_connect(&mut v, "plc-v").await, Ok(0));
    tokio::time::sleep(Duration::from_millis(50)).await;
    pki::replace(&s.ca.crl("revoking", &[&victim.serial], 7), &crl_path);
    let mut buf = [0u8; 16];
    let cut = tokio::time::timeout(Duration::from_secs(5), v.read(&mut buf)).await;
    assert!(
        matches!(cut, Ok(Ok(0)) | Ok(Err(_))),
        "victim not cut: {cut:?}"
    );
}

#[tokio::test]
async fn a_bad_file_on_reload_keeps_the_old_material() {
    let s = site("bad-reload");
    let good = s.ca.client("good", "plc-1", Tweak::None);
    let crl_path = s.ca.dir.join("crl-live.pem");
    pki::replace(&s.ca.crl("empty", &[], 7), &crl_path);
    let b = serve(mtls(&s, vec![crl_path.clone()])).await;
    std::fs::write(&crl_path, "garbage").expect("corrupt");
    let err = b
        .tls
        .as_ref()
        .expect("tls")
        .reload()
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("crl-live.pem"), "{err}");
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&good), "plc-1").await,
        Ok(0)
    );
}

#[tokio::test]
async fn a_server_certificate_reload_reaches_new_handshakes_only() {
    let s = site("server-reload");
    let new_ca = Ca::new(&s.ca.dir, "new-ca");
    let cert = s.ca.dir.join("live-server.pem");
    let key = s.ca.dir.join("live-server.key");
    pki::replace(&s.server.cert, &cert);
    pki::replace(&s.server.key, &key);
    let t = settings(&cert, &key, None, ClientAuth::None);
    let b = serve(spec(Kind::Mqtts, Some(t), true)).await;
    let mut old = connect(b.addr, client_config(&s.ca.pem, None))
        .await
        .expect("old");
    assert_eq!(mqtt_connect(&mut old, "old").await, Ok(0));

    let next = new_ca.server("next-server");
    pki::replace(&next.key, &key);
    pki::replace(&next.cert, &cert);
    b.tls.as_ref().expect("tls").reload().await.expect("reload");

    // New handshakes present the new certificate: a client trusting only
    // the old CA now fails, one trusting the new CA succeeds.
    assert!(connect(b.addr, client_config(&s.ca.pem, None))
        .await
        .is_err());
    let mut fresh = connect(b.addr, client_config(&new_ca.pem, None))
        .await
        .expect("new");
    assert_eq!(mqtt_connect(&mut fresh, "fresh").await, Ok(0));
    // The old connection keeps working.
    use tokio::io::AsyncWriteExt;
    old.write_all(&[0xc0, 0]).await.expect("ping");
    let mut resp = [0u8; 2];
    old.read_exact(&mut resp).await.expect("pingresp");
    assert_eq!(resp, [0xd0, 0]);
}

#[tokio::test]
async fn idle_sockets_cannot_hold_handshake_slots() {
    let s = site("flood");
    let good = s.ca.client("good", "plc-1", Tweak::None);
    let mut limits = bulwark_broker::Limits::default();
    limits.admission.max_connections_per_address = 5000;
    limits.admission.max_pending_connects = 5000;
    limits.admission.connection_rate_per_address = 100_000;
    limits.admission.connection_rate_total = 100_000;
    let mut sp = mtls(&s, Vec::new());
    sp.max_handshakes = 8;
    let b = serve_with(sp, limits).await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(
            tokio::net::TcpStream::connect(b.addr)
                .await
                .expect("idle connect"),
        );
    }
    let started = std::time::Instant::now();
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&good), "plc-1").await,
        Ok(0)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    drop(idle);
}

/// The bytes of a real ClientHello, as a client that then stalls sends.
fn client_hello(ca: &std::path::Path) -> Vec<u8> {
    let cfg = client_config(ca, None);
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(cfg, name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("hello");
    }
    out
}

#[tokio::test]
async fn half_open_handshakes_do_not_lock_out_a_real_client() {
    use tokio::io::AsyncWriteExt;
    let s = site("half-open");
    let good = s.ca.client("good", "plc-1", Tweak::None);
    let mut limits = bulwark_broker::Limits::default();
    limits.admission.max_connections_per_address = 5000;
    limits.admission.max_pending_connects = 5000;
    limits.admission.connection_rate_per_address = 100_000;
    limits.admission.connection_rate_total = 100_000;
    let mut sp = mtls(&s, Vec::new());
    sp.max_handshakes = 1;
    let b = serve_with(sp, limits).await;
    let hello = client_hello(&s.ca.pem);
    let mut stalled = Vec::new();
    for _ in 0..1000 {
        let mut t = tokio::net::TcpStream::connect(b.addr)
            .await
            .expect("connect");
        t.write_all(&hello).await.expect("hello");
        stalled.push(t);
    }
    // Let the broker answer every ClientHello; each then waits for a
    // second flight that never comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        try_client(b.addr, &s.ca.pem, Some(&good), "plc-1").await,
        Ok(0)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// Mosquitto PR #3568: a reload there could add trust anchors but never
/// drop one. Here a CA removed from the bundle stops being trusted at once,
/// for new handshakes and for connections it vouched for.
#[tokio::test]
async fn a_ca_dropped_from_the_bundle_is_distrusted_at_once() {
    let s = site("ca-rotation");
    let old = Ca::new(&s.ca.dir, "retired-ca");
    let bundle = s.ca.dir.join("bundle.pem");
    let both = format!(
        "{}{}",
        std::fs::read_to_string(&s.ca.pem).expect("ca"),
        std::fs::read_to_string(&old.pem).expect("old ca")
    );
    std::fs::write(&bundle, both).expect("bundle");
    let t = settings(
        &s.server.cert,
        &s.server.key,
        Some(&bundle),
        ClientAuth::Required,
    );
    let b = serve(spec(Kind::Mqtts, Some(t), false)).await;
    let kept = s.ca.client("kept", "plc-k", Tweak::None);
    let retired = old.client("retired", "plc-r", Tweak::None);
    let mut k = connect(
        b.addr,
        client_config(&s.ca.pem, Some((&kept.cert, &kept.key))),
    )
    .await
    .expect("kept");
    assert_eq!(mqtt_connect(&mut k, "plc-k").await, Ok(0));
    let mut r = connect(
        b.addr,
        client_config(&s.ca.pem, Some((&retired.cert, &retired.key))),
    )
    .await
    .expect("retired");
    assert_eq!(mqtt_connect(&mut r, "plc-r").await, Ok(0));

    pki::replace(&s.ca.pem, &bundle);
    b.tls.as_ref().expect("tls").reload().await.expect("reload");
    let mut buf = [0u8; 8];
    let cut = tokio::time::timeout(Duration::from_secs(5), r.read(&mut buf)).await;
    assert!(
        matches!(cut, Ok(Ok(0)) | Ok(Err(_))),
        "retired CA's client not cut: {cut:?}"
    );
    assert!(try_client(b.addr, &s.ca.pem, Some(&retired), "plc-r")
        .await
        .is_err());
    use tokio::io::AsyncWriteExt;
    k.write_all(&[0xc0, 0]).await.expect("ping");
    let mut resp = [0u8; 2];
    k.read_exact(&mut resp).await.expect("pingresp");
    assert_eq!(resp, [0xd0, 0]);
}
