//! Listeners: bind, accept, admit, spawn; then, inside the connection's own
//! task and under `handshake_timeout` and a cap on concurrent handshakes,
//! TLS and the WebSocket upgrade; then the broker's connection task.
//!
//! Nothing slow runs in the accept loop: admission is decided from the
//! source address before any byte is read, so a flood of connections is
//! refused without paying for a TLS handshake, and one slow handshake
//! never delays another client's accept.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use bulwark_broker::admission::Ticket;
use bulwark_broker::{Broker, ListenerInfo};
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::gate::gated;
use crate::identity::{self, IdentitySource};
use crate::live::Registration;
use crate::prefixed::Prefixed;
use crate::reload::TlsState;
use crate::tls::{describe_handshake_error, TlsError, TlsSettings};
use crate::ws::{self, WsOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mqtt,
    Mqtts,
    Ws,
    Wss,
}

impl Kind {
    pub fn scheme(self) -> &'static str {
        match self {
            Kind::Mqtt => "mqtt",
            Kind::Mqtts => "mqtts",
            Kind::Ws => "ws",
            Kind::Wss => "wss",
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Kind::Mqtts | Kind::Wss)
    }
}

/// A listener as configured.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub info: Arc<ListenerInfo>,
    pub bind: SocketAddr,
    pub kind: Kind,
    /// Set exactly when `kind` is TLS.
    pub tls: Option<TlsSettings>,
    pub identity_from: IdentitySource,
    pub ws: WsOptions,
    /// `wss` only: raw MQTT over TLS on the same port, chosen by ALPN
    /// `mqtt` (or, without ALPN, by the first byte the client sends).
    pub mqtt_on_wss: bool,
    pub handshake_timeout: Duration,
    pub max_handshakes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("listener '{name}': TLS: {source}")]
    Tls { name: String, source: TlsError },
    #[error("listener '{name}': cannot listen on {bind}: {source} (is another broker running, or is the port privileged?)")]
    Bind {
        name: String,
        bind: SocketAddr,
        source: std::io::Error,
    },
}

struct Shared {
    spec: ListenerSpec,
    tls: Option<Arc<TlsState>>,
    handshakes: Arc<Semaphore>,
}

/// A bound listener, ready to run.
pub struct Bound {
    shared: Arc<Shared>,
    tcp: TcpListener,
    local: SocketAddr,
}

/// Loads TLS material (failing closed) and binds the socket.
pub async fn bind(spec: ListenerSpec) -> Result<Bound, BindError> {
    let name = spec.info.name.to_string();
    let tls = match &spec.tls {
        Some(settings) => Some(
            TlsState::load(spec.info.name.clone(), settings.clone()).map_err(|source| {
                BindError::Tls {
                    name: name.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let tcp = TcpListener::bind(spec.bind)
        .await
        .map_err(|source| BindError::Bind {
            name: name.clone(),
            bind: spec.bind,
            source,
        })?;
    let local = tcp.local_addr().map_err(|source| BindError::Bind {
        name,
        bind: spec.bind,
        source,
    })?;
    let handshakes = Arc::new(Semaphore::new(spec.max_handshakes));
    Ok(Bound {
        shared: Arc::new(Shared {
            spec,
            tls,
            handshakes,
        }),
        tcp,
        local,
    })
}

impl Bound {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn spec(&self) -> &ListenerSpec {
        &self.shared.spec
    }

    pub fn tls(&self) -> Option<Arc<TlsState>> {
        self.shared.tls.clone()
    }

    /// Accepts forever. Spawn it; abort the task to stop accepting.
    pub async fn run(self, broker: Broker) {
        let info = self.shared.spec.info.clone();
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: back off rather
                    // than spin, and keep serving existing connections.
                    tracing::warn!(listener = %info.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if self.shared.spec.kind == Kind::Mqtt {
                bulwark_broker::accept::spawn_connection(&broker, stream, peer, &info);
                continue;
            }
            // Admission before any handshake: a refused flood costs a
            // close, not a TLS handshake.
            let Some(ticket) = bulwark_broker::accept::admit(&broker, peer, &info) else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_secured(
                broker.clone(),
                self.shared.clone(),
                stream,
                peer,
                ticket,
            ));
        }
    }
}

/// A connection after its handshakes, ready for MQTT.
enum Ready {
    Tls(TlsStream<TcpStream>),
    TlsSniffed(Prefixed<TlsStream<TcpStream>>),
    Ws(ws::WsStream<TcpStream>),
    Wss(ws::WsStream<TlsStream<TcpStream>>),
    WssSniffed(ws::WsStream<Prefixed<TlsStream<TcpStream>>>),
}

struct Verified {
    identity: Option<Arc<str>>,
    _registration: Option<Registration>,
}

async fn serve_secured(
    broker: Broker,
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
) {
    let name = shared.spec.info.name.clone();
    let outcome = tokio::time::timeout(
        shared.spec.handshake_timeout,
        handshake(&shared, stream, peer),
    )
    .await;
    let (ready, verified) = match outcome {
        Ok(Ok(x)) => x,
        Ok(Err(reason)) => {
            tracing::info!(listener = %name, %peer, reason, "handshake refused; connection closed");
            return;
        }
        Err(_) => {
            tracing::info!(listener = %name, %peer, timeout = ?shared.spec.handshake_timeout,
                "handshake not completed within handshake_timeout; connection closed");
            return;
        }
    };
    let info = shared.spec.info.clone();
    drop(shared);
    let identity = verified.identity.clone();
    match ready {
        Ready::Tls(s) => serve_stream(broker, s, peer, info, ticket, identity).await,
        Ready::TlsSniffed(s) => serve_stream(broker, s, peer, info, ticket, identity).await,
        Ready::Ws(s) => serve_stream(broker, s, peer, info, ticket, identity).await,
        Ready::Wss(s) => serve_stream(broker, s, peer, info, ticket, identity).await,
        Ready::WssSniffed(s) => serve_stream(broker, s, peer, info, ticket, identity).await,
    }
    drop(verified);
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    broker: Broker,
    stream: S,
    peer: SocketAddr,
    info: Arc<ListenerInfo>,
    ticket: Ticket,
    identity: Option<Arc<str>>,
) {
    let (r, w) = tokio::io::split(stream);
    bulwark_broker::serve_admitted(broker, r, w, peer, info, ticket, identity).await;
}

async fn handshake(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
) -> Result<(Ready, Verified), String> {
    let spec = &shared.spec;
    let Some(tls) = &shared.tls else {
        // Plain `ws`: no crypto to ration.
        let ws = ws::accept(stream, &spec.ws)
            .await
            .map_err(|e| e.to_string())?;
        let none = Verified {
            identity: None,
            _registration: None,
        };
        return Ok((Ready::Ws(ws), none));
    };
    // The ClientHello is read and parsed without a slot (cheap); the rest
    // of the handshake is polled only while holding one (see `gate`), so
    // stalled handshakes hold no slot and at most `max_handshakes` compute
    // at once.
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
        .await
        .map_err(|e| describe_handshake_error(&e))?;
    let stream = gated(
        start.into_stream(tls.server_config()),
        shared.handshakes.clone(),
    )
    .await
    .ok_or_else(|| "listener is shutting down".to_string())?
    .map_err(|e| describe_handshake_error(&e))?;
    let verified = verify_peer(tls, &stream, spec.identity_from, peer)?;
    if spec.kind == Kind::Mqtts {
        return Ok((Ready::Tls(stream), verified));
    }
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let mqtt = match alpn.as_deref() {
        Some(b"mqtt") => true,
        Some(_) => false,
        None if spec.mqtt_on_wss => {
            // No ALPN: look at the first byte. CONNECT is 0x10; an HTTP
            // upgrade starts with a letter.
            let mut stream = stream;
            let mut first = [0u8; 1];
            let n = stream
                .read(&mut first)
                .await
                .map_err(|e| format!("read after TLS handshake: {e}"))?;
            let prefix = first.get(..n).unwrap_or_default().to_vec();
            let sniffed = Prefixed::new(prefix, stream);
            if first.first() == Some(&0x10) && n == 1 {
                return Ok((Ready::TlsSniffed(sniffed), verified));
            }
            let ws = ws::accept(sniffed, &spec.ws)
                .await
                .map_err(|e| e.to_string())?;
            return Ok((Ready::WssSniffed(ws), verified));
        }
        None => false,
    };
    if mqtt {
        return Ok((Ready::Tls(stream), verified));
    }
    let ws = ws::accept(stream, &spec.ws)
        .await
        .map_err(|e| e.to_string())?;
    Ok((Ready::Wss(ws), verified))
}

/// Takes the identity from a presented certificate and registers the
/// connection for revocation checks on reload.
fn verify_peer(
    tls: &Arc<TlsState>,
    stream: &TlsStream<TcpStream>,
    source: IdentitySource,
    peer: SocketAddr,
) -> Result<Verified, String> {
    let (tcp, conn) = stream.get_ref();
    let Some(chain) = conn.peer_certificates().filter(|c| !c.is_empty()) else {
        return Ok(Verified {
            identity: None,
            _registration: None,
        });
    };
    let end = chain.first().ok_or("empty certificate chain")?;
    let cert = identity::extract(end, source).map_err(|e| e.to_string())?;
    // A second descriptor for the same socket, so a reload can cut this
    // connection without reaching into its task.
    let ctl = tcp
        .as_fd()
        .try_clone_to_owned()
        .map(std::net::TcpStream::from)
        .map_err(|e| format!("cannot duplicate the socket for revocation checks: {e}"))?;
    tracing::debug!(listener = %tls.listener, %peer, identity = %cert.identity, serial = %cert.serial, "client certificate verified");
    let chain = chain.iter().map(|c| c.clone().into_owned()).collect();
    let registration = tls.live.register(
        peer,
        cert.identity.clone(),
        cert.serial,
        cert.not_after,
        chain,
        ctl,
    );
    Ok(Verified {
        identity: Some(Arc::from(cert.identity)),
        _registration: Some(registration),
    })
}
