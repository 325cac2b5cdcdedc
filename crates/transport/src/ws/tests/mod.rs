//! Tests of the WebSocket module: handshake tables, frame decoder tables, a
//! random-input run of the decoder, and end-to-end runs through
//! `tokio::io::duplex` with a hand-written client.

mod frames;
mod handshakes;
mod streams;

/// A client frame: masked with `mask`, FIN and opcode as given.
pub(super) fn client_frame(fin: bool, opcode: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    push_len(&mut out, 0x80, payload.len() as u64);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A frame header with a chosen length field, for lengths no test sends.
pub(super) fn header_only(b0: u8, masked: bool, len: u64) -> Vec<u8> {
    let mut out = vec![b0];
    push_len(&mut out, if masked { 0x80 } else { 0 }, len);
    if masked {
        out.extend_from_slice(&[1, 2, 3, 4]);
    }
    out
}

fn push_len(out: &mut Vec<u8>, mask_bit: u8, len: u64) {
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A frame the server sent, as the client parses it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ServerFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Parses one server frame from the front of `buf`, checking that it is not
/// masked and has no RSV bits; `None` if incomplete.
pub(super) fn parse_server_frame(buf: &mut Vec<u8>) -> Option<ServerFrame> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[0] & 0x70, 0, "server frame has RSV bits");
    assert_eq!(buf[1] & 0x80, 0, "server frame is masked");
    let (len, hdr) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < hdr + len {
        return None;
    }
    let frame = ServerFrame {
        fin: buf[0] & 0x80 != 0,
        opcode: buf[0] & 0x0f,
        payload: buf[hdr..hdr + len].to_vec(),
    };
    buf.drain(..hdr + len);
    Some(frame)
}

/// xorshift64: random enough to shake out panics, with no dependency.
pub(super) struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
