//! Frames and decodes arbitrary bytes in both protocol versions. Whatever
//! decodes must re-encode and decode to the same packet.
#![no_main]

use bulwark_codec::{
    decode, encode, frame_len, peek_connect_version, DecodeLimits, ProtocolVersion,
};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = peek_connect_version(data);
    let limits = DecodeLimits {
        max_packet_size: 1 << 20,
    };
    let Ok(Some(n)) = frame_len(data, &limits) else {
        return;
    };
    let frame = Bytes::copy_from_slice(data.get(..n).expect("frame_len stays in bounds"));
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let Ok(packet) = decode(frame.clone(), version) else {
            continue;
        };
        let mut out = BytesMut::new();
        encode(&packet, version, &mut out).expect("a decoded packet encodes");
        assert_eq!(frame_len(&out, &limits), Ok(Some(out.len())));
        let again = decode(out.freeze(), version).expect("a re-encoded packet decodes");
        assert_eq!(again, packet);
    }
});
