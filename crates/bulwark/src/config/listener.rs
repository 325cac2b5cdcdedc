//! `[[listener]]` tables: kind, address, TLS and WebSocket settings, and the
//! safety rules that need the whole list (no anonymous or plaintext access
//! from the network without a loud override).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bulwark_security::factor::FactorSet;
use bulwark_transport::identity::IdentitySource;
use bulwark_transport::{ClientAuth, Kind};
use toml_edit::Table;

use super::{cast, Ctx, Section};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub crls: Vec<PathBuf>,
    pub client_auth: ClientAuth,
    pub tls13_only: bool,
    pub allow_expired_crl: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    pub path: String,
    pub allowed_origins: Vec<String>,
    pub max_frame_size: usize,
    pub max_message_size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    pub kind: Kind,
    pub allow_anonymous: bool,
    pub insecure_allow_anonymous_on_network: bool,
    pub insecure_plaintext_on_network: bool,
    pub tls: Option<TlsConfig>,
    pub identity_from: IdentitySource,
    pub ws: WsConfig,
    pub alpn_mqtt: bool,
    pub handshake_timeout: Duration,
    pub max_handshakes: usize,
    pub min_factors: FactorSet,
    /// Line of the listener's table, for errors found after parsing
    /// (a `--bind` override, a port in use).
    pub line: usize,
}

/// Listener defaults, named so the documentation test can check them.
pub const DEFAULT_HANDSHAKE_TIMEOUT: i64 = 10;
pub const DEFAULT_MAX_HANDSHAKES: i64 = 1;
pub const DEFAULT_WS_PATH: &str = "/mqtt";
pub const DEFAULT_WS_MAX_FRAME: i64 = 1_048_576;
pub const DEFAULT_WS_MAX_MESSAGE: i64 = 16_777_216;

pub const LISTENER_KEYS: &[&str] = &[
    "name",
    "bind",
    "kind",
    "allow_anonymous",
    "insecure_allow_anonymous_on_network",
    "insecure_plaintext_on_network",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_crl",
    "tls_crl_allow_expired",
    "tls_min_version",
    "client_auth",
    "identity_from",
    "ws_path",
    "ws_allowed_origins",
    "ws_max_frame_size",
    "ws_max_message_size",
    "alpn_mqtt",
    "handshake_timeout",
    "max_handshakes",
    "min_factors",
];

const TLS_KEYS: &[&str] = &[
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_crl",
    "tls_crl_allow_expired",
    "tls_min_version",
    "client_auth",
    "identity_from",
    "alpn_mqtt",
];

const WS_KEYS: &[&str] = &[
    "ws_path",
    "ws_allowed_origins",
    "ws_max_frame_size",
    "ws_max_message_size",
];

fn parse_kind(s: &str) -> Option<Kind> {
    Some(match s {
        "mqtt" => Kind::Mqtt,
        "mqtts" => Kind::Mqtts,
        "ws" => Kind::Ws,
        "wss" => Kind::Wss,
        _ => return None,
    })
}

pub fn read_listener(ctx: &mut Ctx, table: &Table, index: usize) -> Option<Listener> {
    let path = format!("listener[{index}]");
    let mut s = Section::new(table, path.clone());
    let line = ctx.line_of(table.span());
    let name = s.string(ctx, "name");
    let bind = s.string(ctx, "bind");
    let kind_name = s.string(ctx, "kind");
    let allow_anonymous = s.bool(ctx, "allow_anonymous", false);
    let insecure_anon = s.bool(ctx, "insecure_allow_anonymous_on_network", false);
    let insecure_plain = s.bool(ctx, "insecure_plaintext_on_network", false);
    let bind_line = s.line(ctx, "bind");
    let kind_line = s.line(ctx, "kind");
    let kind = match kind_name.as_deref() {
        None => Kind::Mqtt,
        Some(k) => parse_kind(k).unwrap_or_else(|| {
            ctx.error(
                kind_line,
                &format!("{path}.kind"),
                format!("unknown kind '{k}': use \"mqtts\" (MQTT over TLS), \"wss\" (WebSocket over TLS), \"mqtt\" or \"ws\" (plaintext, loopback)"),
            );
            Kind::Mqtt
        }),
    };
    let tls = read_tls(ctx, &mut s, kind, &path);
    let identity_line = s.line(ctx, "identity_from");
    let identity_from = match s.string(ctx, "identity_from").as_deref() {
        None => IdentitySource::CommonName,
        Some(v) => IdentitySource::parse(v).unwrap_or_else(|| {
            ctx.error(
                identity_line,
                &format!("{path}.identity_from"),
                format!(
                    "unknown field '{v}': use \"cn\", \"san_dns\", \"san_uri\" or \"san_email\""
                ),
            );
            IdentitySource::CommonName
        }),
    };
    let ws = read_ws(ctx, &mut s, kind, &path);
    let alpn_line = s.line(ctx, "alpn_mqtt");
    let alpn_mqtt = s.bool(ctx, "alpn_mqtt", false);
    if alpn_mqtt && kind != Kind::Wss {
        ctx.error(
            alpn_line,
            &format!("{path}.alpn_mqtt"),
            "only a \"wss\" listener can also serve raw MQTT over TLS by ALPN",
        );
    }
    let handshake_timeout = Duration::from_secs(cast(
        s.int(ctx, "handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT, 1, 300),
        10,
    ));
    let max_handshakes = cast(
        s.int(ctx, "max_handshakes", DEFAULT_MAX_HANDSHAKES, 1, 1024),
        1,
    );
    let factors_line = s.line(ctx, "min_factors");
    let factor_names = s.string_list(ctx, "min_factors");
    let min_factors =
        FactorSet::parse(factor_names.iter().map(String::as_str)).unwrap_or_else(|e| {
            ctx.error(
                factors_line,
                &format!("{path}.min_factors"),
                format!("unknown factor {e:?}; use any of \"certificate\", \"password\", \"totp\""),
            );
            FactorSet::EMPTY
        });
    if min_factors.has(bulwark_security::factor::Factor::Certificate) && !kind.is_tls() {
        ctx.error(
            factors_line,
            &format!("{path}.min_factors"),
            "\"certificate\" needs a TLS listener (kind = \"mqtts\" or \"wss\") with tls_ca",
        );
    }
    // Keys that belong to another kind of listener are mistakes, not noise.
    for (keys, ok, what) in [
        (TLS_KEYS, kind.is_tls(), "TLS"),
        (WS_KEYS, matches!(kind, Kind::Ws | Kind::Wss), "WebSocket"),
    ] {
        for key in keys.iter().filter(|k| table.contains_key(k)) {
            if !ok {
                let l = s.line(ctx, key);
                ctx.error(
                    l,
                    &format!("{path}.{key}"),
                    format!("a {what} setting on a \"{}\" listener has no effect; change kind or remove it", kind.scheme()),
                );
            }
        }
    }
    s.finish(ctx, LISTENER_KEYS);
    let Some(name) = name else {
        ctx.error(
            line,
            &format!("{path}.name"),
            "missing: every listener needs a name, used in logs and audit events",
        );
        return None;
    };
    let bind = match bind.map(|b| b.parse::<SocketAddr>()) {
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            ctx.error(
                bind_line,
                &format!("{path}.bind"),
                "not an address: write IP:PORT, e.g. \"127.0.0.1:1883\" or \"[::1]:8883\"",
            );
            return None;
        }
        None => {
            ctx.error(
                line,
                &format!("{path}.bind"),
                "missing: give the IP:PORT to listen on",
            );
            return None;
        }
    };
    if kind.is_tls() && tls.is_none() {
        return None;
    }
    Some(Listener {
        name,
        bind,
        kind,
        allow_anonymous,
        insecure_allow_anonymous_on_network: insecure_anon,
        insecure_plaintext_on_network: insecure_plain,
        tls,
        identity_from,
        ws,
        alpn_mqtt,
        handshake_timeout,
        max_handshakes,
        min_factors,
        line,
    })
}

fn read_tls(ctx: &mut Ctx, s: &mut Section, kind: Kind, path: &str) -> Option<TlsConfig> {
    let cert = s.string(ctx, "tls_cert");
    let key = s.string(ctx, "tls_key");
    let ca = s.string(ctx, "tls_ca");
    let crl_line = s.line(ctx, "tls_crl");
    let crls = s.string_list(ctx, "tls_crl");
    let allow_expired_crl = s.bool(ctx, "tls_crl_allow_expired", false);
    let version_line = s.line(ctx, "tls_min_version");
    let tls13_only = match s.string(ctx, "tls_min_version").as_deref() {
        None | Some("1.2") => false,
        Some("1.3") => true,
        Some(v) => {
            ctx.error(
                version_line,
                &format!("{path}.tls_min_version"),
                format!("'{v}' is not offered: use \"1.2\" or \"1.3\" (older versions are never enabled)"),
            );
            false
        }
    };
    let auth_line = s.line(ctx, "client_auth");
    let client_auth = match s.string(ctx, "client_auth").as_deref() {
        // With a CA the safe default is to demand certificates.
        None if ca.is_some() => ClientAuth::Required,
        None => ClientAuth::None,
        Some("required") => ClientAuth::Required,
        Some("optional") => ClientAuth::Optional,
        Some("none") => ClientAuth::None,
        Some(v) => {
            ctx.error(
                auth_line,
                &format!("{path}.client_auth"),
                format!("unknown value '{v}': use \"required\", \"optional\" or \"none\""),
            );
            ClientAuth::Required
        }
    };
    if !kind.is_tls() {
        return None;
    }
    if client_auth != ClientAuth::None && ca.is_none() {
        ctx.error(
            auth_line,
            &format!("{path}.client_auth"),
            "client certificates are asked for but tls_ca is not set: name the CA bundle that issued them",
        );
    }
    if !crls.is_empty() && ca.is_none() {
        ctx.error(
            crl_line,
            &format!("{path}.tls_crl"),
            "a CRL without tls_ca has nothing to apply to: set tls_ca",
        );
    }
    let line = ctx.line_of(s.table.span());
    let (Some(cert), Some(key)) = (cert, key) else {
        ctx.error(
            line,
            &format!("{path}.tls_cert"),
            format!(
                "a \"{}\" listener needs tls_cert and tls_key (PEM files); `bulwark cert server` makes a pair for testing",
                kind.scheme()
            ),
        );
        return None;
    };
    Some(TlsConfig {
        cert: cert.into(),
        key: key.into(),
        ca: ca.map(PathBuf::from),
        crls: crls.into_iter().map(PathBuf::from).collect(),
        client_auth,
        tls13_only,
        allow_expired_crl,
    })
}

fn read_ws(ctx: &mut Ctx, s: &mut Section, kind: Kind, path: &str) -> WsConfig {
    let path_line = s.line(ctx, "ws_path");
    let ws_path = s
        .string(ctx, "ws_path")
        .unwrap_or_else(|| DEFAULT_WS_PATH.into());
    if matches!(kind, Kind::Ws | Kind::Wss) && !ws_path.starts_with('/') {
        ctx.error(
            path_line,
            &format!("{path}.ws_path"),
            format!("'{ws_path}' must start with '/', e.g. \"/mqtt\""),
        );
    }
    let allowed_origins = s.string_list(ctx, "ws_allowed_origins");
    let max_frame_size = cast(
        s.int(
            ctx,
            "ws_max_frame_size",
            DEFAULT_WS_MAX_FRAME,
            256,
            268_435_456,
        ),
        1_048_576,
    );
    let max_message_size = cast(
        s.int(
            ctx,
            "ws_max_message_size",
            DEFAULT_WS_MAX_MESSAGE,
            256,
            1_073_741_824,
        ),
        16_777_216,
    );
    WsConfig {
        path: ws_path,
        allowed_origins,
        max_frame_size,
        max_message_size,
    }
}

/// Checks that need the whole listener list or concern safety.
pub fn check_listeners(ctx: &mut Ctx, listeners: &[Listener]) {
    let mut names = HashSet::new();
    let mut binds = HashSet::new();
    for (i, l) in listeners.iter().enumerate() {
        if !names.insert(l.name.clone()) {
            ctx.error(
                l.line,
                &format!("listener[{i}].name"),
                format!("'{}' is used by another listener", l.name),
            );
        }
        if !binds.insert(l.bind) {
            ctx.error(
                l.line,
                &format!("listener[{i}].bind"),
                format!("{} is used by another listener", l.bind),
            );
        }
        if let Some(problem) = anonymous_problem(l) {
            ctx.error(l.line, &format!("listener[{i}].allow_anonymous"), problem);
        }
        if let Some(problem) = plaintext_problem(l) {
            ctx.error(l.line, &format!("listener[{i}].kind"), problem);
        }
    }
    if listeners.is_empty() {
        ctx.error(1, "listener", "no listener: add a [[listener]] table");
    }
}

/// Anonymous access beyond this machine needs an override that says what it
/// is, so it never happens by a copied line.
pub fn anonymous_problem(l: &Listener) -> Option<String> {
    (l.allow_anonymous && !l.bind.ip().is_loopback() && !l.insecure_allow_anonymous_on_network)
        .then(|| {
            format!(
                "anonymous access on {}, which is reachable from the network, is refused: \
             bind it to loopback (127.0.0.1 or [::1]), or set \
             insecure_allow_anonymous_on_network = true if you really mean it",
                l.bind
            )
        })
}

/// Plaintext (credentials and commands readable on the wire) beyond this
/// machine also needs its own override.
pub fn plaintext_problem(l: &Listener) -> Option<String> {
    (!l.kind.is_tls() && !l.bind.ip().is_loopback() && !l.insecure_plaintext_on_network).then(
        || {
            format!(
                "plaintext \"{}\" on {}, which is reachable from the network, is refused: \
                 use kind = \"{}\" with a certificate, bind it to loopback, or set \
                 insecure_plaintext_on_network = true if the network is otherwise protected",
                l.kind.scheme(),
                l.bind,
                if l.kind == Kind::Ws { "wss" } else { "mqtts" }
            )
        },
    )
}
