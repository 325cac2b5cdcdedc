//! From configured listeners to bound ones, and the banner that tells the
//! user how to connect. The listeners themselves live in
//! `bulwark-transport`.

use std::path::Path;
use std::sync::Arc;

use bulwark_broker::ListenerInfo;
use bulwark_transport::ws::WsOptions;
use bulwark_transport::{Bound, Kind, ListenerSpec, TlsSettings};

use crate::config::{Config, Listener};

/// WebSocket upgrade requests larger than this are refused (431): browsers
/// send well under 2 KiB.
const MAX_UPGRADE_REQUEST: usize = 8 * 1024;

pub fn spec(l: &Listener) -> ListenerSpec {
    let tls = l.tls.as_ref().map(|t| TlsSettings {
        cert: t.cert.clone(),
        key: t.key.clone(),
        ca: t.ca.clone(),
        crls: t.crls.clone(),
        client_auth: t.client_auth,
        tls13_only: t.tls13_only,
        allow_expired_crl: t.allow_expired_crl,
        alpn: match (l.kind, l.alpn_mqtt) {
            (Kind::Wss, true) => vec![b"mqtt".to_vec(), b"http/1.1".to_vec()],
            (Kind::Wss, false) => vec![b"http/1.1".to_vec()],
            // No ALPN on mqtts: rustls then ignores what a client offers
            // instead of refusing one that offers something else.
            _ => Vec::new(),
        },
    });
    ListenerSpec {
        info: Arc::new(ListenerInfo {
            name: Arc::from(l.name.as_str()),
            allow_anonymous: l.allow_anonymous,
            min_factors: l.min_factors,
        }),
        bind: l.bind,
        kind: l.kind,
        tls,
        identity_from: l.identity_from,
        ws: WsOptions {
            path: l.ws.path.clone(),
            allowed_origins: l.ws.allowed_origins.clone(),
            max_frame_size: l.ws.max_frame_size,
            max_message_size: l.ws.max_message_size,
            max_request_bytes: MAX_UPGRADE_REQUEST,
        },
        mqtt_on_wss: l.alpn_mqtt,
        handshake_timeout: l.handshake_timeout,
        max_handshakes: l.max_handshakes,
    }
}

/// Loads every TLS listener's material as `serve` would, without binding.
pub fn check_tls_files(cfg: &Config) -> Vec<String> {
    cfg.listeners
        .iter()
        .filter_map(|l| {
            let tls = spec(l).tls?;
            bulwark_transport::tls::load(&tls)
                .err()
                .map(|e| format!("{}:{}: listener '{}': {e}", cfg.source, l.line, l.name))
        })
        .collect()
}

pub async fn bind_all(cfg: &Config) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for l in &cfg.listeners {
        let bound = bulwark_transport::bind(spec(l))
            .await
            .map_err(|e| format!("{}:{}: {e}", cfg.source, l.line))?;
        out.push(bound);
    }
    Ok(out)
}

pub fn print_banner(cfg: &Config, bound: &[Bound], dev_ca: Option<&Path>) {
    println!(
        "bulwark {} running ({})",
        env!("CARGO_PKG_VERSION"),
        cfg.source
    );
    for b in bound {
        let spec = b.spec();
        let access = if spec.info.allow_anonymous {
            "anonymous access allowed"
        } else {
            "authentication required"
        };
        let path = match spec.kind {
            Kind::Ws | Kind::Wss => spec.ws.path.as_str(),
            _ => "",
        };
        println!(
            "  listener '{}': {}://{}{path} ({access})",
            spec.info.name,
            spec.kind.scheme(),
            b.local_addr()
        );
    }
    println!("try it:");
    if let Some(b) = bound.iter().find(|b| b.spec().kind == Kind::Mqtt) {
        let (host, port) = (b.local_addr().ip(), b.local_addr().port());
        println!("  mosquitto_sub -h {host} -p {port} -t 'demo/#' -v");
        println!("  mosquitto_pub -h {host} -p {port} -t demo/hello -m 'hello from bulwark'");
    }
    if let Some(b) = bound.iter().find(|b| b.spec().kind == Kind::Mqtts) {
        let port = b.local_addr().port();
        let ca = dev_ca.map_or_else(|| "CA.pem".to_owned(), |p| p.display().to_string());
        println!("  mosquitto_pub -h localhost -p {port} --cafile {ca} -t demo/hello -m 'hello over TLS'");
    }
    println!("stop with Ctrl-C; reload certificates with SIGHUP (they are also watched)");
}
