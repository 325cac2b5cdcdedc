//! Listeners: bind, accept, hand each socket to its own connection task.
//! Accepting never waits on a client: the task is spawned first, and
//! everything slow (reading CONNECT) happens inside it under a timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

pub async fn accept_loop(broker: Broker, bound: Bound) {
    loop {
        match bound.listener.accept().await {
            Ok((stream, peer)) => {
                // Nagle would hold small MQTT packets back by up to 40 ms.
                let _ = stream.set_nodelay(true);
                let broker = broker.clone();
                let info = bound.info.clone();
                tokio::spawn(async move {
                    let (r, w) = stream.into_split();
                    bulwark_broker::serve(broker, r, w, peer, info).await;
                });
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of
                // spinning, and keep serving the connections we have.
                tracing::warn!(listener = %bound.info.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
