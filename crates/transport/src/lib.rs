//! Bulwark's transports: the only code that touches sockets and
//! certificate files. A listener accepts, passes admission, spawns the
//! connection task, and only then runs the slow parts (TLS handshake,
//! WebSocket upgrade) inside that task under a timeout, before handing a
//! byte stream and the peer's verified identity to the broker.
//!
//! Ownership: [`listener::Bound`] owns the socket and its [`reload::TlsState`]
//! (current rustls config + the registry of live certificate connections);
//! the binary owns the [`reload::ReloadTrigger`] it fires on SIGHUP.

mod gate;
pub mod identity;
pub mod listener;
pub mod live;
mod prefixed;
pub mod reload;
pub mod tls;
pub mod ws;

pub use listener::{bind, Bound, Kind, ListenerSpec};
pub use reload::{ReloadTrigger, TlsState};
pub use tls::{ClientAuth, TlsSettings};
