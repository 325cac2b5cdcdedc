//! The async adapter: a [`WsStream`] reads frames from the inner stream and
//! hands their payload to the reader as plain bytes, and wraps what is
//! written in binary frames.
//!
//! Control frames are answered from the read path: a pong or close reply is
//! queued in the same out buffer as written data and flushed from whichever
//! of `poll_read` or `poll_write`/`poll_flush` runs next, so it goes out even
//! when the broker has nothing to write.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::{close, WsError};
use super::frame::{self, Decoded, Decoder};
use super::WsOptions;

/// Above this many queued outgoing bytes, writes wait for the socket and
/// reads stop answering pings until it drains: a peer that does not read
/// cannot make us buffer without bound.
const OUT_HIGH_WATER: usize = 64 * 1024;
/// Largest payload of one outgoing frame; a longer write is accepted in
/// part, as `AsyncWrite` allows.
const MAX_OUT_FRAME: usize = 16 * 1024;
/// How much one read from the socket asks for while frame headers or
/// control frames are being read. Data payload beyond that is read straight
/// into the caller's buffer.
const READ_CHUNK: usize = 4 * 1024;

#[derive(Debug)]
enum ReadState {
    Open,
    /// The peer closed: reads return end of stream.
    Eof,
    /// A protocol violation ended the connection; reads keep reporting it.
    Failed(io::ErrorKind, String),
}

/// A WebSocket connection seen as a byte stream of MQTT bytes.
///
/// Writes are buffered: call `flush` (or `shutdown`) to send them, as with
/// any buffered `AsyncWrite`. Shutdown sends a close frame (1000) first.
#[derive(Debug)]
pub struct WsStream<S> {
    inner: S,
    decoder: Decoder,
    /// Bytes from the peer not yet decoded.
    rbuf: BytesMut,
    /// Encoded frames not yet written to `inner`.
    wbuf: BytesMut,
    read: ReadState,
    /// A close frame is queued or sent; RFC 6455 5.5.1 allows nothing after.
    close_sent: bool,
    protocol: &'static str,
}

impl<S> WsStream<S> {
    pub(crate) fn new(
        inner: S,
        leftover: BytesMut,
        opts: &WsOptions,
        protocol: &'static str,
    ) -> Self {
        WsStream {
            inner,
            decoder: Decoder::new(opts.max_frame_size, opts.max_message_size),
            rbuf: leftover,
            wbuf: BytesMut::new(),
            read: ReadState::Open,
            close_sent: false,
            protocol,
        }
    }

    /// The subprotocol agreed in the handshake: "mqtt" or "mqttv3.1".
    pub fn subprotocol(&self) -> &'static str {
        self.protocol
    }

    /// The underlying stream, e.g. for its peer address.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Bytes queued for the peer, for tests of back-pressure.
    #[cfg(test)]
    pub(crate) fn queued_out(&self) -> usize {
        self.wbuf.len()
    }

    /// Queues a close frame with `code` unless one was queued already.
    fn queue_close(&mut self, code: Option<u16>) {
        if !self.close_sent {
            frame::encode_close(code, &mut self.wbuf);
            self.close_sent = true;
        }
    }

    /// Records a protocol violation: queues the close frame its code calls
    /// for and returns the error the read reports.
    fn fail(&mut self, e: WsError) -> io::Error {
        if let Some(code) = e.close_code() {
            self.queue_close(Some(code));
        }
        self.rbuf = BytesMut::new();
        let err = e.into_io();
        self.read = ReadState::Failed(err.kind(), err.to_string());
        err
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Writes the out buffer to `inner` until it is empty, then releases it.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wbuf.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wbuf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wbuf.advance(n);
        }
        self.wbuf = BytesMut::new();
        Poll::Ready(Ok(()))
    }

    fn poll_read_frames(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            match &self.read {
                ReadState::Open => {}
                ReadState::Eof => return Poll::Ready(Ok(())),
                ReadState::Failed(kind, msg) => {
                    return Poll::Ready(Err(io::Error::new(*kind, msg.clone())))
                }
            }
            if self.wbuf.len() >= OUT_HIGH_WATER {
                ready!(self.poll_flush_out(cx))?;
            }
            match self.decoder.decode(&mut self.rbuf, buf.remaining()) {
                Ok(Decoded::Data(chunk)) => {
                    buf.put_slice(&chunk);
                    return Poll::Ready(Ok(()));
                }
                Ok(Decoded::Ping(payload)) => {
                    if !self.close_sent {
                        frame::encode(frame::OP_PONG, &payload, &mut self.wbuf);
                    }
                    continue;
                }
                Ok(Decoded::Pong) => continue,
                Ok(Decoded::Close(code)) => {
                    self.queue_close(code);
                    self.read = ReadState::Eof;
                    self.rbuf = BytesMut::new();
                    return Poll::Ready(Ok(()));
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => return Poll::Ready(Err(self.fail(e))),
            }
            if let Some(remaining) = self.decoder.data_remaining() {
                return self.poll_read_payload(cx, buf, remaining);
            }
            ready!(self.poll_fill(cx))?;
        }
    }

    /// Reads data payload straight into the caller's buffer, saving a copy
    /// through `rbuf` for large frames. Only called when `rbuf` is empty,
    /// which is what `Decoded::NeedMore` inside a data frame means.
    fn poll_read_payload(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        remaining: u64,
    ) -> Poll<io::Result<()>> {
        let want = usize::try_from(remaining).map_or(buf.remaining(), |r| r.min(buf.remaining()));
        let dst = buf.initialize_unfilled_to(want);
        let mut direct = ReadBuf::new(dst);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut direct))?;
        let n = direct.filled().len();
        if n == 0 {
            return Poll::Ready(Err(self.fail(WsError::TruncatedFrame)));
        }
        self.decoder.unmask_payload(direct.filled_mut());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    /// Reads more raw bytes into `rbuf`. End of stream between frames is
    /// the peer leaving without a close frame; inside one it is an error.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let len = self.rbuf.len();
        self.rbuf.resize(len + READ_CHUNK, 0);
        let res = {
            let spare = self.rbuf.get_mut(len..).unwrap_or_default();
            let mut rb = ReadBuf::new(spare);
            Pin::new(&mut self.inner)
                .poll_read(cx, &mut rb)
                .map_ok(|()| rb.filled().len())
        };
        let n = match res {
            Poll::Ready(Ok(n)) => n,
            other => {
                self.rbuf.truncate(len);
                if self.rbuf.is_empty() {
                    // Idle: give the buffer back until bytes arrive.
                    self.rbuf = BytesMut::new();
                }
                return other.map_ok(|_| ());
            }
        };
        self.rbuf.truncate(len + n);
        if n == 0 {
            if len == 0 && self.decoder.at_frame_boundary() {
                self.read = ReadState::Eof;
            } else {
                return Poll::Ready(Err(self.fail(WsError::TruncatedFrame)));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let res = this.poll_read_frames(cx, buf);
        // A pong or close reply queued above must not wait for the broker
        // to write something. A write error here shows up on the next
        // write; the read result stands on its own.
        if !this.wbuf.is_empty() {
            let _ = this.poll_flush_out(cx);
        }
        res
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.close_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "WebSocket close frame already sent",
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.wbuf.len() >= OUT_HIGH_WATER {
            ready!(this.poll_flush_out(cx))?;
        }
        let n = data.len().min(MAX_OUT_FRAME);
        frame::encode(
            frame::OP_BINARY,
            data.get(..n).unwrap_or(data),
            &mut this.wbuf,
        );
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_out(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.queue_close(Some(close::NORMAL));
        ready!(this.poll_flush_out(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
