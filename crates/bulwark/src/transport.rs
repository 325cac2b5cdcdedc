//! Listeners: bind, accept, hand each socket to its own connection task.
//! Accepting never waits on a client: admission is decided from the source
//! address alone, the task is spawned next, and everything slow (reading
//! CONNECT) happens inside it under a timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use bulwark_broker::{Broker, ListenerInfo};
use tokio::net::TcpListener;

use crate::config::{Config, Listener};

pub struct Bound {
    pub listener: TcpListener,
    pub info: Arc<ListenerInfo>,
    pub local: SocketAddr,
}

pub async fn bind_all(cfg: &Config) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for l in &cfg.listeners {
        out.push(bind(cfg, l).await?);
    }
    Ok(out)
}

async fn bind(cfg: &Config, l: &Listener) -> Result<Bound, String> {
    let listener = TcpListener::bind(l.bind).await.map_err(|e| {
        format!(
            "{}:{}: listener '{}': cannot listen on {}: {e} (is another broker running, or is the port privileged?)",
            cfg.source, l.line, l.name, l.bind
        )
    })?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    Ok(Bound {
        listener,
        info: Arc::new(ListenerInfo {
            name: Arc::from(l.name.as_str()),
            allow_anonymous: l.allow_anonymous,
        }),
        local,
    })
}

pub fn print_banner(cfg: &Config, bound: &[Bound]) {
    println!(
        "bulwark {} running ({})",
        env!("CARGO_PKG_VERSION"),
        cfg.source
    );
    for b in bound {
        let access = if b.info.allow_anonymous {
            "anonymous access allowed"
        } else {
            "authentication required"
        };
        println!(
            "  listener '{}': mqtt://{} ({access})",
            b.info.name, b.local
        );
    }
    if let Some(b) = bound.first() {
        let (host, port) = (b.local.ip(), b.local.port());
        println!("try it:");
        println!("  mosquitto_sub -h {host} -p {port} -t 'demo/#' -v");
        println!("  mosquitto_pub -h {host} -p {port} -t demo/hello -m 'hello from bulwark'");
    }
    println!("stop with Ctrl-C");
}

/// Connection admission (caps and rates per source address and in total)
/// runs in the shared loop before anything is read from a socket, so a
/// flood is answered by closing, never by protocol or handshake work.
pub async fn accept_loop(broker: Broker, bound: Bound) {
    bulwark_broker::accept::accept_loop(broker, bound.listener, bound.info).await;
}
