//! The fuzz corpus seeds (../../fuzz/corpus/decode/seed-*) stay valid:
//! each decodes in at least one version and round-trips there.

use bulwark_codec::*;
use bytes::{Bytes, BytesMut};

#[test]
fn seeds_decode_and_round_trip() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/decode");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut seen = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let bytes = Bytes::from(std::fs::read(entry.path()).expect("readable seed"));
        let limits = DecodeLimits::default();
        assert_eq!(frame_len(&bytes, &limits), Ok(Some(bytes.len())), "{name}");
        let decoded: Vec<_> = [ProtocolVersion::V311, ProtocolVersion::V5]
            .into_iter()
            .filter_map(|v| decode(bytes.clone(), v).ok().map(|p| (v, p)))
            .collect();
        assert!(!decoded.is_empty(), "{name} decodes in neither version");
        for (v, p) in decoded {
            let mut out = BytesMut::new();
            encode(&p, v, &mut out).expect("encodes");
            assert_eq!(decode(out.freeze(), v).as_ref(), Ok(&p), "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 12, "only {seen} seeds");
}
