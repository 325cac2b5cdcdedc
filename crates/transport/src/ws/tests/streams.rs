use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{client_frame, header_only, parse_server_frame, ServerFrame};
use crate::ws::frame::{OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};
use crate::ws::{accept, WsOptions, WsStream};

const M: [u8; 4] = [0xa1, 0x02, 0xf3, 0x44];

const HANDSHAKE: &str = "GET /mqtt HTTP/1.1\r\n\
    Host: localhost\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Protocol: mqtt\r\n\r\n";

/// The client side: sends raw frames, reads the server's frames back.
struct Client {
    io: DuplexStream,
    inbox: Vec<u8>,
}

impl Client {
    async fn frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some(f) = parse_server_frame(&mut self.inbox) {
                return Some(f);
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.io.read(&mut buf))
                .await
                .expect("server sent nothing")
                .unwrap();
            if n == 0 {
                assert!(self.inbox.is_empty(), "stream ended inside a frame");
                return None;
            }
            self.inbox.extend_from_slice(&buf[..n]);
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }
}

/// Upgrades a duplex pair, sending `pipelined` right behind the request.
async fn connect(
    opts: WsOptions,
    pipelined: &[u8],
    cap: usize,
) -> (Client, WsStream<DuplexStream>) {
    let (client, server) = tokio::io::duplex(cap);
    let mut c = Client {
        io: client,
        inbox: Vec::new(),
    };
    let mut first = HANDSHAKE.as_bytes().to_vec();
    first.extend_from_slice(pipelined);
    let server = tokio::spawn(async move { accept(server, &opts).await });
    c.send(&first).await;
    let ws = server.await.unwrap().unwrap();
    // The 101 head, then frames.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(c.io.read(&mut b).await.unwrap(), 1);
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(head.contains("Sec-WebSocket-Protocol: mqtt\r\n"));
    (c, ws)
}

async fn read_exact(ws: &mut WsStream<DuplexStream>, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), ws.read_exact(&mut got))
        .await
        .expect("read timed out")
        .unwrap();
    got
}

#[tokio::test]
async fn mqtt_bytes_through_frames_both_ways() {
    // CONNECT (MQTT 3.1.1, client id "c"), split across three frames, the
    // first of them pipelined behind the handshake.
    let connect_pkt: &[u8] = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c";
    let (a, rest) = connect_pkt.split_at(3);
    let (b, c) = rest.split_at(6);
    let (mut client, mut ws) = connect(
        WsOptions::default(),
        &client_frame(false, OP_BINARY, M, a),
        64 * 1024,
    )
    .await;
    assert_eq!(ws.subprotocol(), "mqtt");
    client
        .send(&client_frame(false, OP_CONTINUATION, M, b))
        .await;
    client
        .send(&client_frame(true, OP_CONTINUATION, M, c))
        .await;
    // PINGREQ, SUBSCRIBE and PINGREQ packed in one frame.
    let packed: &[u8] = b"\xc0\x00\x82\x06\x00\x01\x00\x01t\x00\xc0\x00";
    client.send(&client_frame(true, OP_BINARY, M, packed)).await;

    assert_eq!(read_exact(&mut ws, connect_pkt.len()).await, connect_pkt);
    assert_eq!(read_exact(&mut ws, packed.len()).await, packed);

    // The server writes a CONNACK and a 40 KB PUBLISH.
    let mut publish = vec![0x30, 0x86, 0xb8, 0x02, 0x00, 0x01, b't'];
    publish.resize(3 + 40_000 + 3, 0x5a);
    ws.write_all(b"\x20\x02\x00\x00").await.unwrap();
    ws.write_all(&publish).await.unwrap();
    ws.flush().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 4 + publish.len() {
        let f = client.frame().await.expect("stream ended");
        assert!(f.fin, "server frames are whole messages");
        assert_eq!(f.opcode, OP_BINARY);
        assert!(!f.payload.is_empty());
        got.extend(f.payload);
    }
    assert_eq!(&got[..4], b"\x20\x02\x00\x00");
    assert_eq!(&got[4..], &publish[..]);
}

#[tokio::test]
async fn large_frame_read_in_small_pieces() {
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (mut client, mut ws) = connect(WsOptions::default(), b"", 64 * 1024).await;
    let frame = client_frame(true, OP_BINARY, M, &payload);
    let writer = tokio::spawn(async move {
        for piece in frame.chunks(1000) {
            client.send(piece).await;
        }
        client
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 777];
    while got.len() < payload.len() {
        let n = ws.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, payload);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn ping_is_answered_while_the_broker_only_reads() {
    let (mut client, ws) = connect(WsOptions::default(), b"", 64 * 1024).await;
    // As the broker uses it: split, and only the read half is busy.
    let (mut rd, _wr) = tokio::io::split(ws);
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 16];
        let n = rd.read(&mut buf).await.unwrap();
        buf[..n].to_vec()
    });
    client
        .send(&client_frame(true, OP_PING, M, b"are you there"))
        .await;
    let pong = client.frame().await.unwrap();
    assert_eq!(
        pong,
        ServerFrame {
            fin: true,
            opcode: OP_PONG,
            payload: b"are you there".to_vec()
        }
    );
    client
        .send(&client_frame(true, OP_PONG, M, b"unsolicited"))
        .await;
    client
        .send(&client_frame(true, OP_BINARY, M, b"\xc0\x00"))
        .await;
    assert_eq!(reader.await.unwrap(), b"\xc0\x00");
}

#[tokio::test]
async fn close_is_echoed_and_reads_end() {
    let (mut client, mut ws) = connect(WsOptions::default(), b"", 64 * 1024).await;
    client
        .send(&client_frame(true, OP_BINARY, M, b"\xe0\x00"))
        .await;
    client
        .send(&client_frame(true, OP_CLOSE, M, &1001u16.to_be_bytes()))
        .await;
    assert_eq!(read_exact(&mut ws, 2).await, b"\xe0\x00");
    let mut buf = [0u8; 8];
    assert_eq!(ws.read(&mut buf).await.unwrap(), 0);
    assert_eq!(ws.read(&mut buf).await.unwrap(), 0);
    let close = client.frame().await.unwrap();
    assert_eq!(
        close,
        ServerFrame {
            fin: true,
            opcode: OP_CLOSE,
            payload: vec![0x03, 0xe9]
        }
    );
    // Nothing may follow a close frame.
    assert!(ws.write_all(b"\x30\x00").await.is_err());
    ws.shutdown().await.unwrap();
    assert_eq!(client.frame().await, None);
}

#[tokio::test]
async fn shutdown_sends_close_1000() {
    let (mut client, mut ws) = connect(WsOptions::default(), b"", 64 * 1024).await;
    ws.write_all(b"\xd0\x00").await.unwrap();
    ws.shutdown().await.unwrap();
    assert_eq!(client.frame().await.unwrap().payload, b"\xd0\x00");
    let close = client.frame().await.unwrap();
    assert_eq!(
        close,
        ServerFrame {
            fin: true,
            opcode: OP_CLOSE,
            payload: vec![0x03, 0xe8]
        }
    );
    assert_eq!(client.frame().await, None);
}

/// Each violation fails the read with InvalidData naming it, and the client
/// gets a close frame with the matching code.
#[tokio::test]
async fn violations_close_with_their_code() {
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            vec![0x82, 0x02, 0xc0, 0x00],
            1002,
            "client frame not masked (RFC 6455 5.1)",
        ),
        (client_frame(true, OP_TEXT, M, b"hi"), 1003, "text frame"),
        (vec![0xa2, 0x80, 0, 0, 0, 0], 1002, "reserved bits"),
        (
            header_only(0x82, true, 2_000_000),
            1009,
            "frame of 2000000 bytes exceeds max_frame_size 1048576",
        ),
    ];
    for (bytes, code, text) in cases {
        let (mut client, mut ws) = connect(WsOptions::default(), b"", 64 * 1024).await;
        client.send(&bytes).await;
        let mut buf = [0u8; 64];
        let e = ws.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains(text), "{e}");
        // The failure sticks.
        assert_eq!(
            ws.read(&mut buf).await.unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        let close = client.frame().await.unwrap();
        assert_eq!(close.opcode, OP_CLOSE);
        assert_eq!(close.payload, code.to_be_bytes(), "{text}");
    }
}

#[tokio::test]
async fn end_of_stream_inside_a_frame_is_an_error() {
    let (mut client, mut ws) = connect(WsOptions::default(), b"", 64 * 1024).await;
    let frame = client_frame(true, OP_BINARY, M, b"\x30\x05\x00\x01tab");
    client.send(&frame[..frame.len() - 2]).await;
    drop(client);
    let mut got = Vec::new();
    let e = ws.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(got, b"\x30\x05\x00\x01t");

    // Between frames it is a plain end of stream.
    let (mut client, mut ws) = connect(WsOptions::default(), b"", 64 * 1024).await;
    client
        .send(&client_frame(true, OP_BINARY, M, b"\xe0\x00"))
        .await;
    drop(client);
    let mut got = Vec::new();
    ws.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"\xe0\x00");
}

/// A client that never reads cannot make the server buffer without bound.
#[tokio::test]
async fn writes_are_back_pressured() {
    let (_client, mut ws) = connect(WsOptions::default(), b"", 4096).await;
    let chunk = vec![0x42u8; 10_000];
    let mut accepted = 0usize;
    let mut stalled = false;
    for _ in 0..1000 {
        match tokio::time::timeout(Duration::from_millis(50), ws.write(&chunk)).await {
            Ok(n) => accepted += n.unwrap(),
            Err(_) => {
                stalled = true;
                break;
            }
        }
        assert!(
            ws.queued_out() <= 64 * 1024 + 16 * 1024 + 14,
            "{}",
            ws.queued_out()
        );
    }
    assert!(stalled, "writes never waited; {accepted} bytes accepted");
    assert!(accepted < 100 * 1024, "{accepted}");
}

/// A peer flooding pings without reading gets no more than the out buffer
/// holds: reading stops until the pongs drain.
#[tokio::test]
async fn ping_flood_is_back_pressured() {
    let (mut client, mut ws) = connect(WsOptions::default(), b"", 4096).await;
    let ping = client_frame(true, OP_PING, M, &[7; 125]);
    let flood = tokio::spawn(async move {
        for _ in 0..5000 {
            client.send(&ping).await;
        }
        client
    });
    let mut buf = [0u8; 64];
    let res = tokio::time::timeout(Duration::from_millis(300), ws.read(&mut buf)).await;
    assert!(res.is_err(), "read returned while pongs were stuck");
    assert!(ws.queued_out() <= 64 * 1024 + 200, "{}", ws.queued_out());
    flood.abort();
}
