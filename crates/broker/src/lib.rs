//! Bulwark's broker core.
//!
//! Data path: a transport hands a byte stream to [`connection::serve`], which
//! frames and decodes packets with `bulwark-codec`, keeps the per-connection
//! protocol state, and calls into the [`Broker`]: the session registry,
//! the subscription index (`bulwark-topic`'s trie), retained messages and
//! wills. A PUBLISH is routed once into the queues of the sessions that
//! match; each session's connection task drains its own queue, so a slow
//! subscriber only ever delays itself.
//!
//! Ownership: the broker owns sessions and the index; a connection task owns
//! its socket and its per-connection state (topic aliases, keep-alive); the
//! sans-IO [`session::SessionState`] owns what a session keeps between
//! connections. What must outlive the process goes through [`store::Store`].

pub mod accept;
pub mod admission;
pub mod auth;
pub mod broker;
mod connect;
pub mod connection;
mod enhanced_auth;
mod inbound;
pub mod limit_hits;
pub mod limits;
pub mod message;
mod outbound;
pub mod rate;
pub mod registry;
mod router;
pub mod session;
pub mod stats;
pub mod store;
mod sys;

pub use broker::{Broker, NEVER_EXPIRES};
pub use connection::{serve, serve_admitted, ListenerInfo};
pub use limits::Limits;
pub use store::{MemoryStore, Store};
