use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ws::error::WsError;
use crate::ws::handshake::{self, Upgrade};
use crate::ws::{accept, WsOptions};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn opts() -> WsOptions {
    WsOptions {
        allowed_origins: vec!["https://hmi.plant.example".into()],
        ..WsOptions::default()
    }
}

/// A valid request with `edit` applied to its header lines.
fn request(edit: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = [
        "GET /mqtt HTTP/1.1",
        "Host: broker.plant.example",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: mqtt",
        "Origin: https://hmi.plant.example",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    edit(&mut lines);
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    s
}

fn check(req: &str) -> Result<Upgrade, WsError> {
    let end = handshake::head_end(req.as_bytes(), 0)?.expect("head not complete");
    handshake::check_request(&req.as_bytes()[..end], &opts())
}

fn set(lines: &mut Vec<String>, name: &str, value: Option<&str>) {
    lines.retain(|l| {
        !l.to_ascii_lowercase()
            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
    });
    if let Some(v) = value {
        lines.push(format!("{name}: {v}"));
    }
}

#[test]
fn rfc6455_sample_key() {
    assert_eq!(
        handshake::accept_key(KEY.as_bytes()),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let up = check(&request(|_| {})).unwrap();
    assert_eq!(
        up,
        Upgrade {
            accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
            protocol: "mqtt"
        }
    );
}

#[test]
fn accepted_variants() {
    type Edit = Box<dyn FnOnce(&mut Vec<String>)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "query string ignored",
            Box::new(|l| l[0] = "GET /mqtt?client=a HTTP/1.1".into()),
            "mqtt",
        ),
        ("no Origin", Box::new(|l| set(l, "Origin", None)), "mqtt"),
        (
            "Origin case",
            Box::new(|l| set(l, "Origin", Some("HTTPS://HMI.Plant.Example"))),
            "mqtt",
        ),
        (
            "header name case",
            Box::new(|l| {
                set(l, "Upgrade", None);
                l.push("UPGRADE: WebSocket".into());
            }),
            "mqtt",
        ),
        (
            "Connection list",
            Box::new(|l| set(l, "Connection", Some("keep-alive, Upgrade"))),
            "mqtt",
        ),
        (
            "old subprotocol",
            Box::new(|l| set(l, "Sec-WebSocket-Protocol", Some("mqttv3.1"))),
            "mqttv3.1",
        ),
        (
            "mqtt preferred",
            Box::new(|l| set(l, "Sec-WebSocket-Protocol", Some("mqttv3.1, mqtt"))),
            "mqtt",
        ),
        (
            "protocol split over headers",
            Box::new(|l| {
                set(l, "Sec-WebSocket-Protocol", Some("wamp"));
                l.push("Sec-WebSocket-Protocol: mqtt".into());
            }),
            "mqtt",
        ),
        (
            "HTTP/1.2",
            Box::new(|l| l[0] = "GET /mqtt HTTP/1.2".into()),
            "mqtt",
        ),
        (
            "OWS around values",
            Box::new(|l| set(l, "Sec-WebSocket-Version", Some(" 13\t"))),
            "mqtt",
        ),
    ];
    for (name, edit, protocol) in cases {
        let up = check(&request(edit)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(up.protocol, protocol, "{name}");
    }
}

#[test]
fn refusals() {
    type Edit = Box<dyn FnOnce(&mut Vec<String>)>;
    let cases: Vec<(Edit, u16, &str)> = vec![
        (
            Box::new(|l| l[0] = "POST /mqtt HTTP/1.1".into()),
            405,
            "method 'POST' is not GET",
        ),
        (
            Box::new(|l| l[0] = "GET /mqtt HTTP/1.0".into()),
            400,
            "'HTTP/1.0' is not HTTP/1.1",
        ),
        (
            Box::new(|l| l[0] = "GET /mqtt  HTTP/1.1".into()),
            400,
            "request line",
        ),
        (
            Box::new(|l| l[0] = "GET mqtt HTTP/1.1".into()),
            400,
            "request line",
        ),
        (
            Box::new(|l| l[0] = "GET /x HTTP/1.1".into()),
            404,
            "upgrade request path '/x' is not the configured '/mqtt'",
        ),
        (
            Box::new(|l| l[0] = "GET /mqtt/ HTTP/1.1".into()),
            404,
            "path",
        ),
        (Box::new(|l| set(l, "Host", None)), 400, "no Host"),
        (
            Box::new(|l| l.push("Host: other".into())),
            400,
            "more than one 'Host'",
        ),
        (
            Box::new(|l| set(l, "Upgrade", Some("h2c"))),
            400,
            "'websocket'",
        ),
        (Box::new(|l| set(l, "Upgrade", None)), 400, "'websocket'"),
        (
            Box::new(|l| set(l, "Connection", Some("keep-alive"))),
            400,
            "'upgrade' token",
        ),
        (
            Box::new(|l| set(l, "Sec-WebSocket-Version", Some("8"))),
            426,
            "'8' is not 13",
        ),
        (
            Box::new(|l| set(l, "Sec-WebSocket-Version", None)),
            426,
            "no Sec-WebSocket-Version",
        ),
        (
            Box::new(|l| set(l, "Sec-WebSocket-Key", None)),
            400,
            "no Sec-WebSocket-Key",
        ),
        (
            Box::new(|l| set(l, "Sec-WebSocket-Key", Some("abc"))),
            400,
            "not base64 of 16",
        ),
        // Base64 of 15 bytes.
        (
            Box::new(|l| set(l, "Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25j"))),
            400,
            "16 bytes",
        ),
        (
            Box::new(|l| l.push("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==".into())),
            400,
            "more than one 'Sec-WebSocket-Key'",
        ),
        (
            Box::new(|l| set(l, "Origin", Some("https://evil.example"))),
            403,
            "Origin 'https://evil.example' is not in the listener's allowed_origins",
        ),
        (
            Box::new(|l| set(l, "Origin", Some("https://hmi.plant.example.evil"))),
            403,
            "Origin",
        ),
        (
            Box::new(|l| set(l, "Sec-WebSocket-Protocol", None)),
            400,
            "requires 'mqtt'",
        ),
        (
            Box::new(|l| set(l, "Sec-WebSocket-Protocol", Some("mqttv5, MQTT"))),
            400,
            "'mqttv5, MQTT' offers neither",
        ),
        (
            Box::new(|l| l.push(" folded-continuation".into())),
            400,
            "obs-fold",
        ),
        (
            Box::new(|l| l.push("X-Thing : value".into())),
            400,
            "header line 9",
        ),
        (
            Box::new(|l| l.push("X-Thing value".into())),
            400,
            "header line 9",
        ),
        (
            Box::new(|l| l.push("X-Thing: a\u{1}b".into())),
            400,
            "header line 9",
        ),
        (
            Box::new(|l| l.push("X-Thing: a\rb".into())),
            400,
            "header line 9",
        ),
    ];
    for (edit, status, text) in cases {
        let req = request(edit);
        let e = check(&req).expect_err(&req);
        assert_eq!(e.http_status(), Some(status), "{req:?}: {e}");
        assert!(e.to_string().contains(text), "{req:?}: {e}");
    }
}

#[test]
fn head_end_rules() {
    let req = request(|_| {});
    let b = req.as_bytes();
    // Found whether scanned at once or resumed piece by piece.
    assert_eq!(handshake::head_end(b, 0).unwrap(), Some(b.len()));
    let mut scanned = 0;
    let mut found = None;
    for end in 1..=b.len() {
        if let Some(n) = handshake::head_end(&b[..end], scanned).unwrap() {
            found = Some(n);
            break;
        }
        scanned = end;
    }
    assert_eq!(found, Some(b.len()));
    assert_eq!(
        handshake::head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0).unwrap(),
        None
    );
    assert!(matches!(
        handshake::head_end(b"GET / HTTP/1.1\nHost: x\n\n", 0),
        Err(WsError::BareLineFeed)
    ));
    assert!(matches!(
        handshake::head_end(b"\n", 0),
        Err(WsError::BareLineFeed)
    ));
}

#[test]
fn refusal_responses() {
    let r = handshake::refusal_response(426, "Sec-WebSocket-Version 13 required");
    assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    assert!(r.contains("\r\nContent-Length: 34\r\n"));
    assert!(r.ends_with("\r\n\r\nSec-WebSocket-Version 13 required\n"));
    assert!(handshake::refusal_response(405, "x").contains("\r\nAllow: GET\r\n"));
}

#[test]
fn documented_defaults() {
    let d = WsOptions::default();
    assert_eq!(d.path, "/mqtt");
    assert!(d.allowed_origins.is_empty());
    assert_eq!(d.max_frame_size, 1024 * 1024);
    assert_eq!(d.max_message_size, 4 * 1024 * 1024);
    assert_eq!(d.max_request_bytes, 8 * 1024);
}

/// Runs `accept` on `req` and returns its result and what the client got.
async fn accept_raw(req: Vec<u8>, opts: WsOptions) -> (Result<(), WsError>, String) {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move { accept(server, &opts).await.map(|_| ()) });
    client.write_all(&req).await.unwrap();
    let mut answer = Vec::new();
    // The server shuts its side down after a refusal; after a 101 the
    // stream stays open, so read just the head.
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        answer.push(byte[0]);
    }
    let res = task.await.unwrap();
    if res.is_err() {
        client.read_to_end(&mut answer).await.unwrap();
    }
    (res, String::from_utf8(answer).unwrap())
}

#[tokio::test]
async fn accept_answers_each_status() {
    let big = request(|l| l.push(format!("X-Pad: {}", "a".repeat(9000))));
    let cases: Vec<(String, u16)> = vec![
        (request(|l| l[0] = "PUT /mqtt HTTP/1.1".into()), 405),
        (request(|l| l[0] = "GET /other HTTP/1.1".into()), 404),
        (
            request(|l| set(l, "Origin", Some("https://evil.example"))),
            403,
        ),
        (
            request(|l| set(l, "Sec-WebSocket-Version", Some("12"))),
            426,
        ),
        (
            request(|l| set(l, "Sec-WebSocket-Protocol", Some("wamp"))),
            400,
        ),
        (big, 431),
        ("GET /mqtt HTTP/1.1\nHost: x\n\n".to_string(), 400),
    ];
    for (req, status) in cases {
        let (res, answer) = accept_raw(req.clone().into_bytes(), opts()).await;
        let e = res.expect_err(&req);
        assert_eq!(e.http_status(), Some(status), "{e}");
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer:?}"
        );
        assert!(answer.contains("Content-Type: text/plain"), "{answer:?}");
        if status == 426 {
            assert!(answer.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        }
        // The body names the rule but echoes neither input nor config.
        assert!(
            !answer.contains("evil") && !answer.contains("/other"),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn accept_answers_101() {
    let (res, answer) = accept_raw(request(|_| {}).into_bytes(), opts()).await;
    res.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(answer.contains("\r\nSec-WebSocket-Protocol: mqtt\r\n"));
    assert!(answer
        .to_ascii_lowercase()
        .contains("\r\nupgrade: websocket\r\n"));
}

#[tokio::test]
async fn request_limit_is_exact() {
    let req = request(|_| {});
    let fits = WsOptions {
        max_request_bytes: req.len(),
        ..opts()
    };
    accept_raw(req.clone().into_bytes(), fits).await.0.unwrap();
    let short = WsOptions {
        max_request_bytes: req.len() - 1,
        ..opts()
    };
    let e = accept_raw(req.into_bytes(), short).await.0.unwrap_err();
    assert!(matches!(e, WsError::RequestTooLarge { .. }), "{e}");
}

#[tokio::test]
async fn client_leaving_mid_request_is_an_error_without_answer() {
    let (mut client, server) = tokio::io::duplex(1024);
    client
        .write_all(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    drop(client);
    let e = accept(server, &opts()).await.map(|_| ()).unwrap_err();
    assert!(matches!(e, WsError::HandshakeEof), "{e}");
}

/// Random bytes and random mutations of a valid request: the parser must
/// answer every input with a result, never a panic.
#[test]
fn random_requests_never_panic() {
    let mut rng = super::XorShift(0x2545_f491_4f6c_dd1d);
    let valid = request(|_| {}).into_bytes();
    let alphabet = b" :\r\n\t,/?=aGET13mqtHTP.";
    for round in 0..5000 {
        let input: Vec<u8> = if round % 3 == 0 {
            let len = rng.below(200) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut v = valid.clone();
            for _ in 0..=rng.below(6) {
                let i = rng.below(v.len() as u64) as usize;
                v[i] = if rng.below(2) == 0 {
                    rng.next() as u8
                } else {
                    alphabet[rng.below(alphabet.len() as u64) as usize]
                };
            }
            v
        };
        if let Ok(Some(end)) =
            handshake::head_end(&input, rng.below(input.len() as u64 + 1) as usize)
        {
            if let Err(e) = handshake::check_request(&input[..end], &opts()) {
                assert!(e.http_status().is_some(), "{e}");
            }
        }
    }
}
