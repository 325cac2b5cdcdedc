use bytes::BytesMut;

use super::{client_frame, header_only, XorShift};
use crate::ws::error::WsError;
use crate::ws::frame::{
    self, Decoded, Decoder, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
};

const M: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What decoding a whole input produced.
#[derive(Debug, Default)]
struct Outcome {
    data: Vec<u8>,
    /// Control items in order (Data is folded into `data`).
    controls: Vec<Decoded>,
    error: Option<WsError>,
    /// Input bytes left undecoded.
    left: usize,
}

/// Feeds `input` to `dec` in pieces of `step` bytes, draining each.
fn run_stepped(dec: &mut Decoder, input: &[u8], step: usize, max_data: usize) -> Outcome {
    let mut out = Outcome::default();
    let mut buf = BytesMut::new();
    for piece in input.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf, max_data) {
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::Data(d)) => {
                    assert!(!d.is_empty() && d.len() <= max_data);
                    out.data.extend_from_slice(&d);
                }
                Ok(other) => out.controls.push(other),
                Err(e) => {
                    out.error = Some(e);
                    out.left = buf.len();
                    return out;
                }
            }
        }
    }
    out.left = buf.len();
    out
}

fn run(input: &[u8]) -> Outcome {
    run_stepped(
        &mut Decoder::new(1 << 20, 4 << 20),
        input,
        usize::MAX,
        usize::MAX,
    )
}

fn error_of(input: &[u8]) -> WsError {
    run(input).error.expect("decoder accepted the input")
}

#[test]
fn masked_binary_frame_is_unmasked() {
    let o = run(&client_frame(true, OP_BINARY, M, b"\x10\x0c\x00\x04MQTT"));
    assert_eq!(o.data, b"\x10\x0c\x00\x04MQTT");
    assert!(o.controls.is_empty() && o.error.is_none() && o.left == 0);
}

#[test]
fn unmasked_client_frame_is_refused() {
    let mut f = vec![0x82, 0x02, 0xc0, 0x00];
    let e = error_of(&f);
    assert!(matches!(e, WsError::UnmaskedFrame));
    assert_eq!(e.to_string(), "client frame not masked (RFC 6455 5.1)");
    assert_eq!(e.close_code(), Some(1002));
    // Refused from the header alone, before any payload.
    f.truncate(2);
    assert!(matches!(error_of(&f), WsError::UnmaskedFrame));
}

#[test]
fn length_encodings() {
    for len in [0usize, 1, 125, 126, 127, 300, 65535, 65536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let o = run(&client_frame(true, OP_BINARY, M, &payload));
        assert!(o.error.is_none(), "len {len}: {:?}", o.error);
        assert_eq!(o.data, payload, "len {len}");
    }
    // A 16-bit and a 64-bit length field declaring small sizes (non-minimal
    // encodings) are accepted.
    let mut f = vec![0x82, 0x80 | 126, 0, 3, 0, 0, 0, 0, b'a', b'b', b'c'];
    assert_eq!(run(&f).data, b"abc");
    f = vec![
        0x82,
        0x80 | 127,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        2,
        0,
        0,
        0,
        0,
        b'x',
        b'y',
    ];
    assert_eq!(run(&f).data, b"xy");
}

#[test]
fn length_with_msb_set_is_refused() {
    let f = header_only(0x82, true, 1 << 63);
    assert!(matches!(error_of(&f), WsError::LengthMsbSet));
}

#[test]
fn fragments_with_control_frames_between() {
    let mut input = client_frame(false, OP_BINARY, M, b"\x30\x0a\x00");
    input.extend(client_frame(true, OP_PING, M, b"hi"));
    input.extend(client_frame(false, OP_CONTINUATION, M, b"\x03a/b"));
    input.extend(client_frame(true, OP_PONG, M, b""));
    input.extend(client_frame(false, OP_CONTINUATION, M, b""));
    input.extend(client_frame(true, OP_CONTINUATION, M, b"hello"));
    input.extend(client_frame(true, OP_BINARY, M, b"\xc0\x00"));
    for step in [1, 2, 3, 5, 7, usize::MAX] {
        for max_data in [1, 3, usize::MAX] {
            let mut dec = Decoder::new(1024, 1024);
            let o = run_stepped(&mut dec, &input, step, max_data);
            assert!(o.error.is_none(), "{:?}", o.error);
            assert_eq!(o.data, b"\x30\x0a\x00\x03a/bhello\xc0\x00");
            assert_eq!(
                o.controls,
                vec![Decoded::Ping(b"hi".to_vec()), Decoded::Pong]
            );
        }
    }
}

#[test]
fn text_frame_is_refused_with_1003() {
    let e = error_of(&client_frame(true, OP_TEXT, M, b"{}"));
    assert!(matches!(e, WsError::TextFrame));
    assert_eq!(e.close_code(), Some(1003));
}

#[test]
fn header_refusals() {
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("RSV1", vec![0xc2, 0x80], 1002, "reserved bits 0b100"),
        ("RSV3", vec![0x92, 0x80], 1002, "reserved bits 0b001"),
        ("opcode 3", vec![0x83, 0x80], 1002, "opcode 0x3 is reserved"),
        (
            "opcode 0xB",
            vec![0x8b, 0x80],
            1002,
            "opcode 0xb is reserved",
        ),
        ("fragmented ping", vec![0x09, 0x80], 1002, "fragmented"),
        (
            "long ping",
            header_only(0x89, true, 126),
            1002,
            "126 bytes exceeds 125",
        ),
        (
            "stray continuation",
            client_frame(true, OP_CONTINUATION, M, b"x"),
            1002,
            "without",
        ),
        ("masked text", vec![0x81, 0x80], 1003, "text frame"),
    ];
    for (name, input, code, text) in cases {
        let e = error_of(&input);
        assert_eq!(e.close_code(), Some(code), "{name}: {e}");
        assert!(e.to_string().contains(text), "{name}: {e}");
    }
}

#[test]
fn new_message_inside_a_fragmented_one_is_refused() {
    let mut input = client_frame(false, OP_BINARY, M, b"ab");
    input.extend(client_frame(true, OP_BINARY, M, b"cd"));
    let o = run(&input);
    assert_eq!(o.data, b"ab");
    assert!(matches!(o.error, Some(WsError::ExpectedContinuation)));
}

#[test]
fn oversize_frame_is_refused_from_its_header() {
    // Only the header: the 2 MB payload never arrives, and need not.
    let header = header_only(0x82, true, 2_000_000);
    let e = error_of(&header);
    assert_eq!(
        e.to_string(),
        "frame of 2000000 bytes exceeds max_frame_size 1048576"
    );
    assert_eq!(e.close_code(), Some(1009));
    // The length is checked even before the mask key arrives.
    let e = error_of(&header[..10]);
    assert!(matches!(e, WsError::FrameTooLarge { len: 2_000_000, .. }));
    // At the limit is fine.
    let mut dec = Decoder::new(8, 100);
    let o = run_stepped(
        &mut dec,
        &client_frame(true, OP_BINARY, M, &[7; 8]),
        100,
        100,
    );
    assert!(o.error.is_none() && o.data == [7; 8]);
}

#[test]
fn oversize_message_across_fragments_is_refused() {
    let mut dec = Decoder::new(100, 250);
    let mut input = client_frame(false, OP_BINARY, M, &[1; 100]);
    input.extend(client_frame(false, OP_CONTINUATION, M, &[2; 100]));
    let third = client_frame(true, OP_CONTINUATION, M, &[3; 51]);
    input.extend(&third);
    let o = run_stepped(&mut dec, &input, usize::MAX, usize::MAX);
    assert_eq!(o.data.len(), 200);
    let e = o.error.expect("third fragment accepted");
    assert_eq!(
        e.to_string(),
        "fragmented message of 251 bytes exceeds max_message_size 250"
    );
    assert_eq!(e.close_code(), Some(1009));
    // Refused before the third fragment's payload was taken.
    assert_eq!(o.left, third.len());

    // A new message starts the count again.
    let mut dec = Decoder::new(100, 150);
    let mut input = client_frame(false, OP_BINARY, M, &[1; 100]);
    input.extend(client_frame(true, OP_CONTINUATION, M, &[2; 50]));
    input.extend(client_frame(true, OP_BINARY, M, &[3; 100]));
    let o = run_stepped(&mut dec, &input, usize::MAX, usize::MAX);
    assert!(o.error.is_none() && o.data.len() == 250);
}

#[test]
fn close_frames() {
    let o = run(&client_frame(true, OP_CLOSE, M, &1001u16.to_be_bytes()));
    assert_eq!(o.controls, vec![Decoded::Close(Some(1001))]);
    let mut with_reason = 1000u16.to_be_bytes().to_vec();
    with_reason.extend_from_slice("bye ✓".as_bytes());
    let o = run(&client_frame(true, OP_CLOSE, M, &with_reason));
    assert_eq!(o.controls, vec![Decoded::Close(Some(1000))]);
    let o = run(&client_frame(true, OP_CLOSE, M, b""));
    assert_eq!(o.controls, vec![Decoded::Close(None)]);

    let bad: Vec<(Vec<u8>, u16)> = vec![
        (vec![3], 1002),
        (1005u16.to_be_bytes().to_vec(), 1002),
        (999u16.to_be_bytes().to_vec(), 1002),
        (5000u16.to_be_bytes().to_vec(), 1002),
        (vec![0x03, 0xe8, 0xff, 0xfe], 1007),
    ];
    for (payload, code) in bad {
        let e = error_of(&client_frame(true, OP_CLOSE, M, &payload));
        assert_eq!(e.close_code(), Some(code), "{payload:?}: {e}");
    }
}

#[test]
fn nothing_is_decoded_after_close() {
    let mut input = client_frame(true, OP_CLOSE, M, b"");
    input.extend(client_frame(true, OP_BINARY, M, b"late"));
    input.extend([0xff; 4]);
    let o = run(&input);
    assert_eq!(o.controls, vec![Decoded::Close(None)]);
    assert!(o.data.is_empty() && o.error.is_none());
}

#[test]
fn direct_unmasking_matches_buffered() {
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
    let f = client_frame(true, OP_BINARY, M, &payload);
    let (header, body) = f.split_at(8);
    let mut dec = Decoder::new(4096, 4096);
    let mut buf = BytesMut::from(header);
    assert_eq!(dec.decode(&mut buf, 100).unwrap(), Decoded::NeedMore);
    assert_eq!(dec.data_remaining(), Some(1000));
    let mut got = Vec::new();
    for piece in body.chunks(3) {
        let mut p = piece.to_vec();
        dec.unmask_payload(&mut p);
        got.extend(p);
    }
    assert_eq!(got, payload);
    assert_eq!(dec.data_remaining(), None);
    assert!(dec.at_frame_boundary());
}

#[test]
fn mask_offsets() {
    let data: Vec<u8> = (0..37).collect();
    for offset in 0..8 {
        let mut fast = data.clone();
        frame::apply_mask(&mut fast, M, offset);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ M[(i + offset) % 4])
            .collect();
        assert_eq!(fast, slow, "offset {offset}");
    }
}

#[test]
fn server_frame_encoding() {
    for (len, header) in [
        (0usize, vec![0x82, 0]),
        (125, vec![0x82, 125]),
        (126, vec![0x82, 126, 0, 126]),
        (65535, vec![0x82, 126, 0xff, 0xff]),
        (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let mut out = BytesMut::new();
        frame::encode(OP_BINARY, &vec![9; len], &mut out);
        assert_eq!(&out[..header.len()], &header[..], "len {len}");
        assert_eq!(out.len(), header.len() + len);
    }
    let mut out = BytesMut::new();
    frame::encode_close(Some(1002), &mut out);
    assert_eq!(&out[..], &[0x88, 2, 0x03, 0xea]);
}

/// Random bytes, and random mutations of valid frames, in random pieces:
/// the decoder must return, never panic, and never yield more data than
/// it was given.
#[test]
fn random_input_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let valid = {
        let mut v = client_frame(false, OP_BINARY, M, &[0x30; 200]);
        v.extend(client_frame(true, OP_PING, M, b"p"));
        v.extend(client_frame(true, OP_CONTINUATION, M, &[1; 70_000]));
        v.extend(client_frame(true, OP_CLOSE, M, &1000u16.to_be_bytes()));
        v
    };
    for round in 0..3000 {
        let input: Vec<u8> = if round % 2 == 0 {
            let len = rng.below(300) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut v = valid.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(v.len() as u64) as usize;
                v[i] = rng.next() as u8;
            }
            v
        };
        let max_frame = 1 + rng.below(100_000) as usize;
        let max_message = 1 + rng.below(200_000) as usize;
        let mut dec = Decoder::new(max_frame, max_message);
        let step = 1 + rng.below(64) as usize;
        let max_data = 1 + rng.below(5000) as usize;
        let o = run_stepped(&mut dec, &input, step, max_data);
        assert!(o.data.len() <= input.len());
        if let Some(e) = o.error {
            assert!(e.close_code().is_some(), "{e}");
        }
    }
}
