//! Sans-IO codec for MQTT 3.1.1 and 5.0.
//!
//! Responsibilities: turn bytes into validated [`Packet`]s and packets into
//! bytes. Nothing here touches sockets, clocks or tokio.
//!
//! The data path: [`frame_len`] delimits a packet in the connection's
//! buffer (refusing an over-size one from its declared length), [`decode`]
//! turns that frame into a [`Packet`], [`encode`] / [`encode_publish`]
//! append packets to an output buffer. One module per packet; `read` is the
//! bounded reader all decoders go through, `write` the encoding primitives,
//! `properties` the MQTT 5 property table.
//!
//! Invariants:
//! - The decoder never indexes past its input and never allocates from a
//!   length the peer declared before checking it against the input actually
//!   present and against [`DecodeLimits::max_packet_size`].
//! - A value that decodes is well formed: strings are valid UTF-8 without
//!   U+0000, packet identifiers of QoS > 0 packets are non-zero, reserved flag
//!   bits are as the spec demands, each v5 property appears at most once
//!   (except those the spec lets repeat) and only on packets that allow it.
//! - Every error names the clause of the specification it violates and maps
//!   to the reason code the broker must answer with ([`DecodeError::reason_code`]).
//! - Anything that decodes re-encodes to a frame that decodes to the same
//!   value (checked by property tests and the fuzz target).
//!
//! Interpretations: a variable byte integer in non-minimal form (e.g.
//! `0x80 0x00` for 0) is accepted, as most peers do; topic filter syntax and
//! the client/server direction of packets and properties are left to the
//! layers above.
// Tests may index and panic: a failing assertion is what they are for.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

mod codec;
mod connack;
mod connect;
mod disconnect;
mod error;
mod frame;
mod properties;
mod publish;
mod pubresp;
mod read;
mod reason;
mod suback;
mod subscribe;
mod types;
mod unsubscribe;
mod write;

pub use codec::{decode, encode, encoded_len};
pub use connect::peek_connect_version;
pub use error::{DecodeError, EncodeError};
pub use frame::{frame_len, DecodeLimits, PacketType};
pub use publish::{encode_publish, publish_len, PublishView};
pub use types::*;

#[cfg(test)]
mod test_util {
    //! Helpers for the per-packet table tests.
    use bytes::{Bytes, BytesMut};

    use crate::{DecodeError, Packet, ProtocolVersion};

    /// A frame: first byte, remaining length, body.
    pub(crate) fn frame(byte1: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![byte1];
        crate::write::put_vbi(&mut f, body.len());
        f.extend_from_slice(body);
        f
    }

    pub(crate) fn dec(frame: &[u8], v: ProtocolVersion) -> Result<Packet, DecodeError> {
        crate::decode(Bytes::copy_from_slice(frame), v)
    }

    pub(crate) fn enc(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        crate::encode(p, v, &mut out).expect("encodes");
        assert_eq!(crate::encoded_len(p, v).ok(), Some(out.len()));
        out.to_vec()
    }
}
