//! Property tests: every valid packet survives encode -> frame_len ->
//! decode, in both versions; encoded_len is exact.

mod common;

use bulwark_codec::*;
use bytes::BytesMut;
use proptest::prelude::*;

const LIMITS: DecodeLimits = DecodeLimits {
    max_packet_size: 268_435_460,
};

fn round_trip(p: &Packet, v: ProtocolVersion) -> Result<Packet, TestCaseError> {
    let mut out = BytesMut::from(&b"garbage before"[..]);
    let before = out.len();
    encode(p, v, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut frame = out.split_off(before);
    prop_assert_eq!(encoded_len(p, v).ok(), Some(frame.len()));
    // A following packet must not be swallowed.
    frame.extend_from_slice(&[0xC0, 0x00]);
    let n = frame_len(&frame, &LIMITS).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(n, Some(frame.len() - 2));
    let frame = frame.freeze().slice(..frame_len_or(n));
    // Every strict prefix is incomplete.
    for cut in [0, 1, frame.len() / 2, frame.len().saturating_sub(1)] {
        if cut < frame.len() {
            prop_assert_eq!(frame_len(&frame[..cut], &LIMITS), Ok(None));
        }
    }
    decode(frame, v).map_err(|e| TestCaseError::fail(e.to_string()))
}

fn frame_len_or(n: Option<usize>) -> usize {
    n.unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn v5_round_trip(p in common::packet(ProtocolVersion::V5)) {
        let got = round_trip(&p, ProtocolVersion::V5)?;
        prop_assert_eq!(got, p);
    }

    #[test]
    fn v311_round_trip(p in common::packet(ProtocolVersion::V311)) {
        let got = round_trip(&p, ProtocolVersion::V311)?;
        prop_assert_eq!(got, common::normalise(p, ProtocolVersion::V311));
    }

    /// 3.1.1 drops v5-only data: a v5 packet encoded for 3.1.1 decodes to
    /// the packet without it.
    #[test]
    fn v5_packets_downgrade(p in common::packet(ProtocolVersion::V5)) {
        prop_assume!(!matches!(p, Packet::Auth(_) | Packet::Connect(_)));
        if let Packet::Publish(ref pb) = p {
            prop_assume!(!pb.topic.is_empty());
        }
        let got = round_trip(&p, ProtocolVersion::V311)?;
        let want = common::normalise(strip(p), ProtocolVersion::V311);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn publish_view_matches_encode(p in common::publish(ProtocolVersion::V5), v5 in any::<bool>()) {
        let v = if v5 { ProtocolVersion::V5 } else { ProtocolVersion::V311 };
        prop_assume!(v5 || !p.topic.is_empty());
        let mut a = BytesMut::new();
        let mut b = BytesMut::new();
        encode(&Packet::Publish(p.clone()), v, &mut a).map_err(|e| TestCaseError::fail(e.to_string()))?;
        encode_publish(&PublishView::of(&p), v, &mut b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(publish_len(&PublishView::of(&p), v).ok(), Some(b.len()));
    }
}

/// Removes every property, as a 3.1.1 trip does.
fn strip(p: Packet) -> Packet {
    let none = Properties::default;
    match p {
        Packet::ConnAck(c) => Packet::ConnAck(ConnAck {
            properties: none(),
            ..c
        }),
        Packet::Publish(x) => Packet::Publish(Publish {
            properties: none(),
            ..x
        }),
        Packet::PubAck(r) => Packet::PubAck(PubResp {
            properties: none(),
            ..r
        }),
        Packet::PubRec(r) => Packet::PubRec(PubResp {
            properties: none(),
            ..r
        }),
        Packet::PubRel(r) => Packet::PubRel(PubResp {
            properties: none(),
            ..r
        }),
        Packet::PubComp(r) => Packet::PubComp(PubResp {
            properties: none(),
            ..r
        }),
        Packet::Subscribe(s) => Packet::Subscribe(Subscribe {
            properties: none(),
            ..s
        }),
        Packet::SubAck(s) => Packet::SubAck(SubAck {
            properties: none(),
            ..s
        }),
        Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            properties: none(),
            ..u
        }),
        Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
            properties: none(),
            ..u
        }),
        other => other,
    }
}
