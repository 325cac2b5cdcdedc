//! Sans-IO WebSocket framing (RFC 6455 section 5), server side.
//!
//! The decoder takes raw bytes from the client and yields data payload in
//! pieces as they arrive (unmasked in place), plus whole control frames.
//! It never buffers a data frame: its memory is the header being read and
//! at most 125 bytes of a control frame. Every limit is checked from the
//! frame header, before any payload byte is accepted.
//!
//! The encoder writes server frames: unmasked, FIN set.

use bytes::{Buf, BufMut, BytesMut};

use super::error::WsError;

pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

const MAX_CONTROL_PAYLOAD: u64 = 125;
/// Two fixed bytes, up to eight of extended length, four of mask.
const MAX_HEADER: usize = 14;

/// What the decoder produced from its input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// The input holds no complete item yet.
    NeedMore,
    /// Unmasked payload bytes of a binary message.
    Data(BytesMut),
    /// A ping; the answer is a pong with the same payload.
    Ping(Vec<u8>),
    Pong,
    /// A close frame with its status code, if it carried one. The decoder
    /// yields nothing after it.
    Close(Option<u16>),
}

#[derive(Debug)]
enum State {
    Header,
    /// Inside a binary or continuation frame's payload.
    Data {
        remaining: u64,
        mask: [u8; 4],
        offset: usize,
    },
    /// Collecting a control frame's payload (at most 125 bytes).
    Control {
        opcode: u8,
        len: usize,
        mask: [u8; 4],
        payload: Vec<u8>,
    },
    Closed,
}

#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    max_frame_size: usize,
    max_message_size: usize,
    /// A message was started without FIN: continuation frames are due.
    in_message: bool,
    /// Bytes declared so far by the frames of the current message.
    message_len: u64,
}

impl Decoder {
    pub(crate) fn new(max_frame_size: usize, max_message_size: usize) -> Self {
        Decoder {
            state: State::Header,
            max_frame_size,
            max_message_size,
            in_message: false,
            message_len: 0,
        }
    }

    /// Payload bytes still due in the data frame being read, if any. The
    /// stream uses this to read a large payload straight into the caller's
    /// buffer (then [`Decoder::unmask_payload`]) instead of through `input`.
    pub(crate) fn data_remaining(&self) -> Option<u64> {
        match self.state {
            State::Data { remaining, .. } if remaining > 0 => Some(remaining),
            _ => None,
        }
    }

    /// No frame is partly read: end of stream here loses nothing.
    pub(crate) fn at_frame_boundary(&self) -> bool {
        matches!(self.state, State::Header | State::Closed)
    }

    /// Unmasks payload bytes of the current data frame and counts them
    /// off. The stream calls it for bytes it read straight from the peer
    /// while [`Decoder::data_remaining`] was `Some(n)`, at most `n` of them.
    pub(crate) fn unmask_payload(&mut self, bytes: &mut [u8]) {
        if let State::Data {
            remaining,
            mask,
            offset,
        } = &mut self.state
        {
            let n = bytes
                .len()
                .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            if let Some(head) = bytes.get_mut(..n) {
                apply_mask(head, *mask, *offset);
            }
            *offset = (*offset + n) % 4;
            *remaining -= n as u64;
            if *remaining == 0 {
                self.state = State::Header;
            }
        }
    }

    /// Consumes bytes from `input` until one item is complete, returning
    /// data in pieces of at most `max_data` bytes. An error is final: the
    /// connection must be closed with [`WsError::close_code`].
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        max_data: usize,
    ) -> Result<Decoded, WsError> {
        loop {
            match &mut self.state {
                State::Closed => return Ok(Decoded::NeedMore),
                State::Header => {
                    if !self.header(input)? {
                        return Ok(Decoded::NeedMore);
                    }
                }
                State::Data { remaining, .. } => {
                    let avail = input.len().min(max_data);
                    let n = usize::try_from(*remaining).map_or(avail, |r| r.min(avail));
                    if n == 0 {
                        return Ok(Decoded::NeedMore);
                    }
                    let mut chunk = input.split_to(n);
                    self.unmask_payload(&mut chunk);
                    return Ok(Decoded::Data(chunk));
                }
                State::Control {
                    opcode,
                    len,
                    mask,
                    payload,
                } => {
                    let want = len.saturating_sub(payload.len()).min(input.len());
                    payload.extend_from_slice(&input.split_to(want));
                    if payload.len() < *len {
                        return Ok(Decoded::NeedMore);
                    }
                    apply_mask(payload, *mask, 0);
                    let opcode = *opcode;
                    let payload = std::mem::take(payload);
                    self.state = State::Header;
                    return self.control(opcode, payload);
                }
            }
        }
    }

    /// Parses one frame header from `input` and enters the payload state;
    /// `Ok(false)` if the header is not complete yet. Each field is checked
    /// as soon as its bytes are there, so a bad frame fails early.
    fn header(&mut self, input: &mut BytesMut) -> Result<bool, WsError> {
        let Some(&b0) = input.first() else {
            return Ok(false);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = b0 & 0x0f;
        if rsv != 0 {
            return Err(WsError::ReservedBits(rsv));
        }
        let is_control = match opcode {
            OP_CLOSE | OP_PING | OP_PONG => true,
            OP_TEXT => return Err(WsError::TextFrame),
            OP_BINARY | OP_CONTINUATION => false,
            other => return Err(WsError::UnknownOpcode(other)),
        };
        if is_control && !fin {
            return Err(WsError::FragmentedControl(opcode));
        }
        let Some(&b1) = input.get(1) else {
            return Ok(false);
        };
        if b1 & 0x80 == 0 {
            return Err(WsError::UnmaskedFrame);
        }
        let (len, ext) = match b1 & 0x7f {
            126 => match input.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 2),
                _ => return Ok(false),
            },
            127 => match input.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                Some(b) => (u64::from_be_bytes(b), 8),
                None => return Ok(false),
            },
            short => (u64::from(short), 0),
        };
        if len >> 63 != 0 {
            return Err(WsError::LengthMsbSet);
        }
        if is_control {
            if len > MAX_CONTROL_PAYLOAD {
                return Err(WsError::ControlTooLong { opcode, len });
            }
        } else {
            self.check_data_frame(opcode, len)?;
        }
        let header_len = 2 + ext + 4;
        let Some(mask) = input
            .get(2 + ext..header_len)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
        else {
            return Ok(false);
        };
        input.advance(header_len);
        self.state = if is_control {
            // `len` is at most 125 here.
            let len = len as usize;
            State::Control {
                opcode,
                len,
                mask,
                payload: Vec::with_capacity(len),
            }
        } else {
            self.message_len = if opcode == OP_BINARY {
                len
            } else {
                self.message_len.saturating_add(len)
            };
            self.in_message = !fin;
            if len == 0 {
                // An empty data frame carries nothing to deliver.
                State::Header
            } else {
                State::Data {
                    remaining: len,
                    mask,
                    offset: 0,
                }
            }
        };
        Ok(true)
    }

    /// Fragmentation order and size limits of a data frame, from its header.
    fn check_data_frame(&self, opcode: u8, len: u64) -> Result<(), WsError> {
        match (opcode, self.in_message) {
            (OP_CONTINUATION, false) => return Err(WsError::UnexpectedContinuation),
            (OP_BINARY, true) => return Err(WsError::ExpectedContinuation),
            _ => {}
        }
        if len > self.max_frame_size as u64 {
            return Err(WsError::FrameTooLarge {
                len,
                max: self.max_frame_size,
            });
        }
        let message = if opcode == OP_BINARY {
            len
        } else {
            self.message_len.saturating_add(len)
        };
        if message > self.max_message_size as u64 {
            return Err(WsError::MessageTooLarge {
                len: message,
                max: self.max_message_size,
            });
        }
        Ok(())
    }

    fn control(&mut self, opcode: u8, payload: Vec<u8>) -> Result<Decoded, WsError> {
        match opcode {
            OP_PING => Ok(Decoded::Ping(payload)),
            OP_PONG => Ok(Decoded::Pong),
            _ => {
                let code = parse_close(&payload)?;
                self.state = State::Closed;
                Ok(Decoded::Close(code))
            }
        }
    }
}

/// The status code of a close frame's payload, checked as RFC 6455 5.5.1
/// and 7.4 require.
fn parse_close(payload: &[u8]) -> Result<Option<u16>, WsError> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [_] => return Err(WsError::CloseTooShort),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
    };
    let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
    if !valid {
        return Err(WsError::InvalidCloseCode(code));
    }
    if std::str::from_utf8(reason).is_err() {
        return Err(WsError::CloseReasonNotUtf8);
    }
    Ok(Some(code))
}

/// XORs `data` with `mask`, where `offset` is the position of `data`'s first
/// byte within the frame payload (mod 4).
pub(crate) fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = mask;
    key.rotate_left(offset % 4);
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        if let Ok(bytes) = <[u8; 4]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u32::from_ne_bytes(bytes) ^ word).to_ne_bytes());
        }
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// Appends one server frame (FIN set, unmasked) to `out`.
pub(crate) fn encode(opcode: u8, payload: &[u8], out: &mut BytesMut) {
    out.reserve(MAX_HEADER + payload.len());
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.put_u8(n as u8),
        n @ 126..=0xffff => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(payload);
}

/// Appends a close frame with `code` (none for a close without status).
pub(crate) fn encode_close(code: Option<u16>, out: &mut BytesMut) {
    match code {
        Some(c) => encode(OP_CLOSE, &c.to_be_bytes(), out),
        None => encode(OP_CLOSE, &[], out),
    }
}
