//! MQTT over WebSocket (RFC 6455, MQTT 5 section 6), server side.
//!
//! [`accept`] reads and checks the HTTP upgrade request and answers it;
//! the [`WsStream`] it returns is a plain byte stream of MQTT bytes, so the
//! broker cannot tell it from TCP. The protocol logic is sans-IO
//! (`handshake` parses a request head, `frame` decodes and encodes frames);
//! `stream` only moves bytes between them and the socket.
//!
//! Invariants:
//! - every peer-controlled size is checked before bytes are buffered: the
//!   request head against `max_request_bytes` while it is read, a frame's
//!   declared length against `max_frame_size` and `max_message_size` from
//!   its header;
//! - a data frame is never buffered whole: its payload is unmasked and
//!   handed to the reader as it arrives;
//! - only masked binary frames carry MQTT bytes; anything else RFC 6455 or
//!   MQTT forbids closes the connection with the matching close code;
//! - buffers start empty, grow on demand and are released when drained.

// Tests may index and panic: a failing assertion is what they are for.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

mod base64;
mod error;
mod frame;
mod handshake;
mod stream;
#[cfg(test)]
mod tests;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use error::WsError;
pub use stream::WsStream;

/// What a WebSocket listener accepts. [`WsOptions::default`] gives the
/// documented safe values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsOptions {
    /// Request path that is upgraded, e.g. "/mqtt". Other paths get 404.
    /// Default "/mqtt".
    pub path: String,
    /// Allowed Origin header values (exact, case-insensitive ASCII match,
    /// e.g. `"https://hmi.plant.example"`). Empty = any origin. A request
    /// without an Origin header is allowed: non-browser clients send none,
    /// and the list protects against cross-site WebSocket hijacking from
    /// browsers, which always send it. Default empty.
    pub allowed_origins: Vec<String>,
    /// Largest single frame payload accepted, checked from the frame header
    /// before the payload is read. Default 1 MiB.
    pub max_frame_size: usize,
    /// Largest message (sum of a fragmented message's frames) accepted,
    /// checked from each frame header. Default 4 MiB.
    pub max_message_size: usize,
    /// Largest HTTP upgrade request (request line + headers) read; more is
    /// refused with 431. Default 8 KiB.
    pub max_request_bytes: usize,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            path: "/mqtt".to_owned(),
            allowed_origins: Vec::new(),
            max_frame_size: 1024 * 1024,
            // Frames are not buffered, so this bounds a message's length,
            // not memory; 4 MiB leaves room for a maximum-size MQTT packet
            // and a few more packed into one message.
            max_message_size: 4 * 1024 * 1024,
            max_request_bytes: 8 * 1024,
        }
    }
}

/// How much of the request head one read asks for: small, so that no more
/// than `max_request_bytes` is ever held and a short request costs little.
const HEAD_READ_CHUNK: usize = 512;

/// Reads and checks the HTTP upgrade request from `stream`, answers 101 (or
/// an HTTP error status with a short plain-text body and then returns
/// `Err`), and returns the stream wrapped as a byte stream of MQTT bytes.
/// The caller runs this under its own timeout.
///
/// Bytes the client sent after its request head (a pipelined first frame)
/// are kept as the start of the frame input.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    opts: &WsOptions,
) -> Result<WsStream<S>, WsError> {
    let checked = match read_head(&mut stream, opts.max_request_bytes).await {
        Ok((buf, head_len)) => buf
            .get(..head_len)
            .ok_or(WsError::MalformedRequestLine)
            .and_then(|head| handshake::check_request(head, opts))
            .map(|up| (up, buf.get(head_len..).map(bytes::BytesMut::from))),
        Err(e) => Err(e),
    };
    let (upgrade, leftover) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            refuse(&mut stream, &e).await;
            return Err(e);
        }
    };
    stream
        .write_all(handshake::accept_response(&upgrade).as_bytes())
        .await?;
    stream.flush().await?;
    Ok(WsStream::new(
        stream,
        leftover.unwrap_or_default(),
        opts,
        upgrade.protocol,
    ))
}

/// Reads until the end of the request head, never holding more than
/// `limit` bytes. Returns the bytes read and the head's length.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> Result<(Vec<u8>, usize), WsError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; HEAD_READ_CHUNK];
    loop {
        let want = limit.saturating_sub(buf.len()).min(HEAD_READ_CHUNK);
        if want == 0 {
            return Err(WsError::RequestTooLarge { limit });
        }
        let dst = chunk.get_mut(..want).unwrap_or_default();
        let n = stream.read(dst).await?;
        if n == 0 {
            return Err(WsError::HandshakeEof);
        }
        let scanned = buf.len();
        buf.extend_from_slice(dst.get(..n).unwrap_or_default());
        // Every HTTP method starts with a capital letter; anything else (an
        // MQTT CONNECT sent to a WebSocket port, a TLS record to a plain
        // one) is refused at once instead of waiting out the timeout.
        if !buf.first().is_some_and(u8::is_ascii_uppercase) {
            return Err(WsError::MalformedRequestLine);
        }
        if let Some(end) = handshake::head_end(&buf, scanned)? {
            return Ok((buf, end));
        }
    }
}

/// Answers a refused upgrade, best effort: the peer may already be gone,
/// and the caller reports the original error either way.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, e: &WsError) {
    let Some(status) = e.http_status() else {
        return;
    };
    let response = handshake::refusal_response(status, e.public_reason());
    if stream.write_all(response.as_bytes()).await.is_ok() && stream.flush().await.is_ok() {
        let _ = stream.shutdown().await;
    }
}
