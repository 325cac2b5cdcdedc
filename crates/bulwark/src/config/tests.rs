use super::listener::LISTENER_KEYS;
use super::*;

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::parse("test.toml", text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

/// Asserts that each (line, key) was reported among `errs`.
fn assert_reported(errs: &[ConfigError], expected: &[(usize, &str)]) {
    for &(line, key) in expected {
        assert!(
            errs.iter().any(|e| e.line == line && e.key == key),
            "{key} at line {line} not reported: {errs:?}"
        );
    }
}

#[test]
fn embedded_default_is_loopback_only() {
    let cfg = Config::embedded();
    assert_eq!(cfg.listeners.len(), 1);
    assert!(cfg.listeners.iter().all(|l| l.bind.ip().is_loopback()));
    assert_eq!(cfg.limits, Limits::default());
}

#[test]
fn every_problem_is_reported_at_once_with_its_line() {
    let text = "\
[broker]
max_packet_size = 0
receive_maximum = \"many\"
max_qso = 1

[[listener]]
name = \"a\"
bind = \"nonsense\"
colour = \"blue\"
";
    let errs = errors(text);
    assert_reported(
        &errs,
        &[
            (2, "broker.max_packet_size"),
            (3, "broker.receive_maximum"),
            (4, "broker.max_qso"),
            (8, "listener[0].bind"),
            (9, "listener[0].colour"),
        ],
    );
    let typo = errs
        .iter()
        .find(|e| e.key == "broker.max_qso")
        .expect("typo reported");
    assert!(typo.message.contains("did you mean 'max_qos'"), "{typo}");
    let shown = ConfigErrors(errs).to_string();
    assert!(
        shown.contains("test.toml:2: broker.max_packet_size: 0 is out of range"),
        "{shown}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let errs = errors("[broker]\nmax_qos = = 2\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 2);
}

#[test]
fn anonymous_on_the_network_needs_the_loud_override() {
    let open = "[[listener]]\nname = \"x\"\nbind = \"0.0.0.0:1883\"\ninsecure_plaintext_on_network = true\nallow_anonymous = true\n";
    let errs = errors(open);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0]
        .message
        .contains("insecure_allow_anonymous_on_network"));
    let forced = format!("{open}insecure_allow_anonymous_on_network = true\n");
    assert!(errors(&forced).is_empty());
    let closed = "[[listener]]\nname = \"x\"\nbind = \"0.0.0.0:1883\"\ninsecure_plaintext_on_network = true\n";
    assert!(errors(closed).is_empty(), "{:?}", errors(closed));
}

#[test]
fn plaintext_on_the_network_needs_its_own_override() {
    for kind in ["mqtt", "ws"] {
        let text =
            format!("[[listener]]\nname = \"x\"\nbind = \"0.0.0.0:1883\"\nkind = \"{kind}\"\n");
        let errs = errors(&text);
        assert_reported(&errs, &[(1, "listener[0].kind")]);
        assert!(
            errs[0].message.contains("insecure_plaintext_on_network"),
            "{errs:?}"
        );
    }
    let tls = "[[listener]]\nname = \"x\"\nbind = \"0.0.0.0:8883\"\nkind = \"mqtts\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n";
    assert!(errors(tls).is_empty(), "{:?}", errors(tls));
}

#[test]
fn tls_listener_keys_are_read_and_checked() {
    let text = "\
[[listener]]
name = \"plant\"
bind = \"0.0.0.0:8883\"
kind = \"mqtts\"
tls_cert = \"server.pem\"
tls_key = \"server.key\"
tls_ca = \"ca.pem\"
tls_crl = [\"a.crl\", \"b.crl\"]
tls_min_version = \"1.3\"
identity_from = \"san_uri\"
handshake_timeout = 5
max_handshakes = 32
";
    let cfg = Config::parse("t.toml", text).expect("valid");
    let l = &cfg.listeners[0];
    let tls = l.tls.as_ref().expect("tls");
    assert_eq!(tls.client_auth, bulwark_transport::ClientAuth::Required);
    assert_eq!(tls.crls.len(), 2);
    assert!(tls.tls13_only);
    assert!(!tls.allow_expired_crl);
    assert_eq!(
        l.identity_from,
        bulwark_transport::identity::IdentitySource::SanUri
    );
    assert_eq!(l.handshake_timeout, Duration::from_secs(5));
    assert_eq!(l.max_handshakes, 32);

    let bad = "\
[[listener]]
name = \"a\"
bind = \"127.0.0.1:8883\"
kind = \"mqtts\"
tls_cert = \"c.pem\"
tls_key = \"k.pem\"
client_auth = \"required\"
tls_min_version = \"1.1\"
identity_from = \"serial\"
[[listener]]
name = \"b\"
bind = \"127.0.0.1:8884\"
kind = \"mqtts\"
[[listener]]
name = \"c\"
bind = \"127.0.0.1:1883\"
tls_cert = \"c.pem\"
ws_path = \"/mqtt\"
alpn_mqtt = true
[[listener]]
name = \"d\"
bind = \"127.0.0.1:8443\"
kind = \"wss\"
tls_cert = \"c.pem\"
tls_key = \"k.pem\"
ws_path = \"mqtt\"
kind2 = 1
";
    let errs = errors(bad);
    assert_reported(
        &errs,
        &[
            (7, "listener[0].client_auth"),
            (8, "listener[0].tls_min_version"),
            (9, "listener[0].identity_from"),
            (10, "listener[1].tls_cert"),
            (17, "listener[2].tls_cert"),
            (18, "listener[2].ws_path"),
            (19, "listener[2].alpn_mqtt"),
            (26, "listener[3].ws_path"),
            (27, "listener[3].kind2"),
        ],
    );
}

#[test]
fn relative_tls_paths_are_resolved_against_the_config_file() {
    let dir = std::env::temp_dir().join(format!("bulwark-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("b.toml");
    std::fs::write(
        &path,
        "[[listener]]\nname = \"t\"\nbind = \"127.0.0.1:8883\"\nkind = \"mqtts\"\ntls_cert = \"pki/s.pem\"\ntls_key = \"/abs/s.key\"\n",
    )
    .expect("write");
    let cfg = Config::load(&path).expect("valid");
    let tls = cfg.listeners[0].tls.as_ref().expect("tls");
    assert_eq!(tls.cert, dir.join("pki/s.pem"));
    assert_eq!(tls.key, std::path::PathBuf::from("/abs/s.key"));
}

#[test]
fn embedded_tls_default_is_loopback_and_parses_paths_with_quotes() {
    let p = std::path::Path::new("/tmp/we\"ird\\dir/ca.pem");
    let cfg = Config::embedded_with_tls(p, p, p);
    assert_eq!(cfg.listeners.len(), 3);
    assert!(cfg.listeners.iter().all(|l| l.bind.ip().is_loopback()));
    let tls = cfg.listeners[1].tls.as_ref().expect("tls");
    assert_eq!(tls.ca.as_deref(), Some(p));
    assert_eq!(tls.client_auth, bulwark_transport::ClientAuth::Optional);
}

#[test]
fn bind_override_refuses_anonymous_network_address() {
    let mut cfg = Config::embedded();
    let err = cfg
        .override_bind(None, "0.0.0.0:1883".parse().expect("addr"))
        .expect_err("refused");
    assert!(err.contains("loopback"), "{err}");
    cfg.override_bind(None, "127.0.0.1:2883".parse().expect("addr"))
        .expect("loopback is fine");
    assert_eq!(cfg.listeners[0].bind.port(), 2883);
    let err = cfg
        .override_bind(Some("nope"), "127.0.0.1:1".parse().expect("addr"))
        .expect_err("unknown name");
    assert!(err.contains("no listener named 'nope'"), "{err}");
}

#[test]
fn duplicate_listeners_and_unknown_sections_are_refused() {
    let text = "\
[[listener]]
name = \"a\"
bind = \"127.0.0.1:1883\"
[[listener]]
name = \"a\"
bind = \"127.0.0.1:1883\"
[tls]
x = 1
";
    let keys: Vec<String> = errors(text).into_iter().map(|e| e.key).collect();
    assert!(keys.contains(&"listener[1].name".to_string()), "{keys:?}");
    assert!(keys.contains(&"listener[1].bind".to_string()), "{keys:?}");
    assert!(keys.contains(&"tls".to_string()), "{keys:?}");
}

/// docs/configuration.md states every key with its default; this keeps the
/// two from drifting apart.
#[test]
fn documented_defaults_match_the_code() {
    let doc = include_str!("../../../../docs/configuration.md");
    let d = Limits::default();
    let expected: Vec<(&str, String)> = vec![
        ("max_packet_size", d.max_packet_size.to_string()),
        ("receive_maximum", d.receive_maximum.to_string()),
        ("max_inflight_out", d.max_inflight_out.to_string()),
        ("max_queued_messages", d.max_queued_messages.to_string()),
        ("max_keep_alive", d.max_keep_alive.to_string()),
        ("min_keep_alive", d.min_keep_alive.to_string()),
        ("max_topic_len", d.max_topic_len.to_string()),
        ("max_queued_bytes", d.max_queued_bytes.to_string()),
        (
            "max_queued_bytes_total",
            d.max_queued_bytes_total.to_string(),
        ),
        (
            "allow_zero_keep_alive_v3",
            d.allow_zero_keep_alive_v3.to_string(),
        ),
        ("topic_alias_maximum", d.topic_alias_maximum.to_string()),
        ("max_session_expiry", d.max_session_expiry.to_string()),
        ("max_client_id_len", d.max_client_id_len.to_string()),
        ("allow_empty_client_id", d.allow_empty_client_id.to_string()),
        ("max_qos", (d.max_qos as u8).to_string()),
        ("retain_available", d.retain_available.to_string()),
        ("connect_timeout", d.connect_timeout.as_secs().to_string()),
        ("max_subscriptions", d.max_subscriptions.to_string()),
        ("max_topic_levels", d.max_topic_levels.to_string()),
        ("sys_interval", d.sys_interval.as_secs().to_string()),
        ("max_connections", d.admission.max_connections.to_string()),
        (
            "max_connections_per_address",
            d.admission.max_connections_per_address.to_string(),
        ),
        (
            "connection_rate_per_address",
            d.admission.connection_rate_per_address.to_string(),
        ),
        (
            "connection_rate_total",
            d.admission.connection_rate_total.to_string(),
        ),
        (
            "max_pending_connects",
            d.admission.max_pending_connects.to_string(),
        ),
        ("max_publish_rate", d.max_publish_rate.to_string()),
        ("max_publish_bandwidth", d.max_publish_bandwidth.to_string()),
        (
            "publish_limit_action",
            format!("\"{}\"", action_name(d.publish_limit_action)),
        ),
    ];
    let listener: Vec<(&str, String)> = vec![
        ("kind", "\"mqtt\"".into()),
        ("allow_anonymous", "false".into()),
        ("insecure_allow_anonymous_on_network", "false".into()),
        ("insecure_plaintext_on_network", "false".into()),
        ("tls_crl_allow_expired", "false".into()),
        ("tls_min_version", "\"1.2\"".into()),
        ("identity_from", "\"cn\"".into()),
        ("alpn_mqtt", "false".into()),
        (
            "handshake_timeout",
            listener::DEFAULT_HANDSHAKE_TIMEOUT.to_string(),
        ),
        (
            "max_handshakes",
            listener::DEFAULT_MAX_HANDSHAKES.to_string(),
        ),
        ("ws_path", format!("\"{}\"", listener::DEFAULT_WS_PATH)),
        (
            "ws_max_frame_size",
            listener::DEFAULT_WS_MAX_FRAME.to_string(),
        ),
        (
            "ws_max_message_size",
            listener::DEFAULT_WS_MAX_MESSAGE.to_string(),
        ),
        ("min_factors", "[]".into()),
        ("max_verifications", d.max_verifications.to_string()),
        (
            "max_pending_per_address",
            d.max_pending_per_address.to_string(),
        ),
        (
            "failures_before_delay",
            d.brute_force.delay_after.to_string(),
        ),
        ("failures_before_ban", d.brute_force.ban_after.to_string()),
        ("failure_window", d.brute_force.window_secs.to_string()),
        ("ban_time", d.brute_force.ban_secs.to_string()),
    ];
    let plain =
        Config::parse("t", "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n").expect("valid");
    let l = &plain.listeners[0];
    assert_eq!(
        l.handshake_timeout.as_secs(),
        listener::DEFAULT_HANDSHAKE_TIMEOUT as u64
    );
    assert_eq!(l.ws.path, listener::DEFAULT_WS_PATH);
    assert_eq!(l.ws.max_frame_size as i64, listener::DEFAULT_WS_MAX_FRAME);
    for (key, value) in expected.into_iter().chain(listener) {
        let row = format!("| `{key}` | `{value}` |");
        assert!(
            doc.contains(&row),
            "docs/configuration.md lacks the row starting {row}"
        );
    }
    for key in BROKER_KEYS
        .iter()
        .chain(LISTENER_KEYS)
        .chain(super::auth::AUTH_KEYS)
    {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/configuration.md does not mention {key}"
        );
    }
}

#[test]
fn admission_keys_are_read_and_zero_is_refused() {
    let cfg = Config::parse(
        "test.toml",
        "[broker]\nmax_connections = 10\nmax_connections_per_address = 2\n\
         connection_rate_per_address = 3\nconnection_rate_total = 4\nmax_pending_connects = 5\n\
         [[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1883\"\n",
    )
    .expect("valid");
    let a = &cfg.limits.admission;
    assert_eq!(
        (
            a.max_connections,
            a.max_connections_per_address,
            a.connection_rate_per_address,
            a.connection_rate_total,
            a.max_pending_connects
        ),
        (10, 2, 3, 4, 5)
    );
    let text = "\
[broker]
max_connections = 0
max_connections_per_address = 0
connection_rate_per_address = 0
connection_rate_total = 0
max_pending_connects = 0
[[listener]]
name = \"a\"
bind = \"127.0.0.1:1883\"
";
    let errs = errors(text);
    assert_reported(
        &errs,
        &[
            (2, "broker.max_connections"),
            (3, "broker.max_connections_per_address"),
            (4, "broker.connection_rate_per_address"),
            (5, "broker.connection_rate_total"),
            (6, "broker.max_pending_connects"),
        ],
    );
    assert!(
        errs.iter().all(|e| e.message.contains("from 1 to")),
        "{errs:?}"
    );
}

fn action_name(a: bulwark_broker::rate::PublishLimitAction) -> &'static str {
    match a {
        bulwark_broker::rate::PublishLimitAction::Throttle => "throttle",
        bulwark_broker::rate::PublishLimitAction::Disconnect => "disconnect",
    }
}

#[test]
fn publish_limit_keys_are_read_and_zero_or_unknown_is_refused() {
    let cfg = Config::parse(
        "test.toml",
        "[broker]\nmax_publish_rate = 7\nmax_publish_bandwidth = 900\n\
         publish_limit_action = \"disconnect\"\n\
         [[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1883\"\n",
    )
    .expect("valid");
    assert_eq!(
        (
            cfg.limits.max_publish_rate,
            cfg.limits.max_publish_bandwidth,
            action_name(cfg.limits.publish_limit_action)
        ),
        (7, 900, "disconnect")
    );
    let text = "\
[broker]
max_publish_rate = 0
max_publish_bandwidth = 0
publish_limit_action = \"drop\"
[[listener]]
name = \"a\"
bind = \"127.0.0.1:1883\"
";
    let errs = errors(text);
    assert_reported(
        &errs,
        &[
            (2, "broker.max_publish_rate"),
            (3, "broker.max_publish_bandwidth"),
            (4, "broker.publish_limit_action"),
        ],
    );
}
