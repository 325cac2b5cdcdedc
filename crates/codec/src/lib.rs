//! Sans-IO codec for MQTT 3.1.1 and 5.0.
//!
//! Responsibilities: turn bytes into validated [`Packet`]s and packets into
//! bytes. Nothing here touches sockets, clocks or tokio.
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
#![deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod types;
pub use types::*;
