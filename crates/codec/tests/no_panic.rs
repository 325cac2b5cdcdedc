//! The decoder never panics: not on arbitrary bytes, not on mutations of
//! valid packets. And whatever decodes re-encodes to the same packet.

mod common;

use bulwark_codec::*;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

const LIMITS: DecodeLimits = DecodeLimits {
    max_packet_size: 1 << 20,
};

/// Frames and decodes `buf` in both versions; whatever decodes must
/// survive a second trip unchanged.
fn check(buf: &[u8]) -> Result<(), TestCaseError> {
    let _ = peek_connect_version(buf);
    let Ok(Some(n)) = frame_len(buf, &LIMITS) else {
        return Ok(());
    };
    let frame = Bytes::copy_from_slice(&buf[..n]);
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        if let Ok(p) = decode(frame.clone(), v) {
            let mut out = BytesMut::new();
            encode(&p, v, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let again = decode(out.freeze(), v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, p);
        }
    }
    Ok(())
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, kind, value) in edits {
        if bytes.is_empty() {
            bytes.push(value);
            continue;
        }
        let at = at % bytes.len();
        match kind % 4 {
            0 => bytes[at] = value,
            1 => bytes[at] ^= 1 << (value % 8),
            2 => bytes.insert(at, value),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..64), first in 0u8..16) {
        // Half the inputs get a plausible fixed header so decode is reached.
        let mut framed = vec![(first << 4) | (buf.first().copied().unwrap_or(0) & 0x0F), buf.len() as u8];
        framed.extend_from_slice(&buf);
        check(&buf)?;
        check(&framed)?;
    }

    #[test]
    fn mutated_packets(
        p in common::packet(ProtocolVersion::V5),
        v5 in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let v = if v5 { ProtocolVersion::V5 } else { ProtocolVersion::V311 };
        let mut out = BytesMut::new();
        if encode(&p, v, &mut out).is_err() {
            return Ok(());
        }
        let mutated = mutate(out.to_vec(), &edits);
        check(&mutated)?;
        // Fix the remaining length so the mutation reaches the body decoder.
        if mutated.len() >= 2 && mutated.len() - 2 < 128 {
            let mut fixed = mutated.clone();
            fixed[1] = (mutated.len() - 2) as u8;
            check(&fixed)?;
        }
    }
}
