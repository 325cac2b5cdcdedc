//! The accept loop shared by the binary's listeners and the test harness:
//! admission first, then one task per admitted connection.
//!
//! A refused socket is dropped (closed) at once, without reading from it:
//! before CONNECT neither MQTT version can be told anything useful, and
//! closing is the cheapest answer. Nothing here waits on a client, so one
//! slow or hostile peer cannot hold up the accepts of others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::admission::{Refusal, Refused, Ticket};
use crate::broker::Broker;
use crate::connect::ListenerInfo;
use crate::limit_hits::LimitKind;
use crate::stats::Stats;

/// Accepts connections on `listener` forever, admitting each before it is
/// served. Spawn it; abort the task to stop accepting.
pub async fn accept_loop(broker: Broker, listener: TcpListener, info: Arc<ListenerInfo>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => spawn_connection(&broker, stream, peer, &info),
            Err(e) => {
                // Out of file descriptors and similar: back off instead of
                // spinning, and keep serving the connections we have.
                tracing::warn!(listener = %info.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Admits `stream` and spawns its connection task, or closes it at once.
pub fn spawn_connection(
    broker: &Broker,
    stream: TcpStream,
    peer: SocketAddr,
    info: &Arc<ListenerInfo>,
) {
    let Some(ticket) = admit(broker, peer, info) else {
        // Dropping the stream closes it; nothing was read.
        drop(stream);
        return;
    };
    // Nagle would hold small MQTT packets back by up to 40 ms.
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    // The connection future itself is the task: no wrapper keeping a second
    // copy of its arguments for the connection's whole life.
    tokio::spawn(crate::connection::serve_admitted(
        broker.clone(),
        r,
        w,
        peer,
        info.clone(),
        ticket,
        None,
    ));
}

/// The admission decision for a new connection from `peer`, counted in the
/// stats and logged at most once per second per reason. Transports call it
/// before any handshake (TLS included).
pub fn admit(broker: &Broker, peer: SocketAddr, info: &ListenerInfo) -> Option<Ticket> {
    match broker.admission().admit(peer.ip(), Instant::now()) {
        Ok(ticket) => Some(ticket),
        Err(Refused { reason, log }) => {
            let stats = broker.stats();
            let (counter, kind) = match reason {
                Refusal::MaxConnections => {
                    (&stats.refused_max_connections, LimitKind::MaxConnections)
                }
                Refusal::PendingConnects => {
                    (&stats.refused_pending_connects, LimitKind::PendingConnects)
                }
                Refusal::ConnectionsPerAddress => (
                    &stats.refused_connections_per_address,
                    LimitKind::ConnectionsPerAddress,
                ),
                Refusal::ConnectionRate => {
                    (&stats.refused_connection_rate, LimitKind::ConnectionRate)
                }
            };
            Stats::add(counter, 1);
            // The security event (rate-limited per kind) is the log line;
            // this one adds the listener, at most once a second per reason.
            stats.limits.hit(kind, Some(peer), None);
            if let Some(unlogged) = log {
                tracing::debug!(%peer, listener = %info.name, limit = reason.key(), unlogged_since_last = unlogged, "connection refused at admission; closed without reading");
            }
            None
        }
    }
}
