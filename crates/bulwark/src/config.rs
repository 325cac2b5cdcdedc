//! Configuration: TOML text → validated [`Config`], or every problem at once.
//!
//! The file is read with a span-keeping TOML parser and walked against the
//! schema by hand, so each error names the file, the line and the key, and an
//! unknown key, a wrong type and an out-of-range value are all reported in
//! the same run instead of one per attempt. No key is optional by accident:
//! each has a default here, documented in `docs/configuration.md` (a test
//! checks the two agree).

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bulwark_broker::admission::AdmissionLimits;
use bulwark_broker::rate::PublishLimitAction;
use bulwark_broker::Limits;
use bulwark_codec::QoS;
use toml_edit::{ImDocument, Item, Table, Value};

mod auth;
mod listener;

pub use auth::AuthConfig;

pub use listener::{anonymous_problem, Listener};
use listener::{check_listeners, read_listener};

/// The embedded default: one plain listener on loopback, anonymous access
/// allowed only because nothing off this machine can reach it.
pub const EMBEDDED_DEFAULT: &str = r#"# Bulwark's embedded default configuration.
[[listener]]
name = "local"
bind = "127.0.0.1:1883"
kind = "mqtt"
allow_anonymous = true
"#;

#[derive(Debug, Clone)]
pub struct Config {
    pub source: String,
    pub limits: Limits,
    /// Threads that run connections; 0 means one per available core.
    pub worker_threads: usize,
    pub listeners: Vec<Listener>,
    pub log_level: String,
    pub auth: AuthConfig,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.key, self.message
        )
    }
}

/// All problems found, one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "configuration has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn line_of(&self, item: Option<std::ops::Range<usize>>) -> usize {
        let at = item.map(|r| r.start).unwrap_or(0);
        self.text
            .get(..at)
            .map(|s| s.bytes().filter(|&b| b == b'\n').count() + 1)
            .unwrap_or(1)
    }

    fn error(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            key: key.to_owned(),
            message: message.into(),
        });
    }
}

/// A table being read: remembers which keys were used so the rest can be
/// reported as unknown.
struct Section<'t> {
    table: &'t Table,
    path: String,
    used: HashSet<&'static str>,
}

impl<'t> Section<'t> {
    fn new(table: &'t Table, path: impl Into<String>) -> Self {
        Section {
            table,
            path: path.into(),
            used: HashSet::new(),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn value(&mut self, key: &'static str) -> Option<&'t Value> {
        self.used.insert(key);
        self.table.get(key).and_then(Item::as_value)
    }

    fn line(&self, ctx: &Ctx, key: &str) -> usize {
        let span = self
            .table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| self.table.span());
        ctx.line_of(span)
    }

    fn int(&mut self, ctx: &mut Ctx, key: &'static str, default: i64, min: i64, max: i64) -> i64 {
        let Some(v) = self.value(key) else {
            return default;
        };
        let line = self.line(ctx, key);
        match v.as_integer() {
            Some(n) if (min..=max).contains(&n) => n,
            Some(n) => {
                ctx.error(
                    line,
                    &self.key_path(key),
                    format!("{n} is out of range: use a value from {min} to {max}"),
                );
                default
            }
            None => {
                ctx.error(
                    line,
                    &self.key_path(key),
                    format!("expected an integer, found {}", v.type_name()),
                );
                default
            }
        }
    }

    fn bool(&mut self, ctx: &mut Ctx, key: &'static str, default: bool) -> bool {
        let Some(v) = self.value(key) else {
            return default;
        };
        let line = self.line(ctx, key);
        v.as_bool().unwrap_or_else(|| {
            ctx.error(
                line,
                &self.key_path(key),
                format!("expected true or false, found {}", v.type_name()),
            );
            default
        })
    }

    fn string(&mut self, ctx: &mut Ctx, key: &'static str) -> Option<String> {
        let v = self.value(key)?;
        let line = self.line(ctx, key);
        match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                ctx.error(
                    line,
                    &self.key_path(key),
                    format!("expected a string, found {}", v.type_name()),
                );
                None
            }
        }
    }

    /// A string or an array of strings.
    fn string_list(&mut self, ctx: &mut Ctx, key: &'static str) -> Vec<String> {
        let Some(v) = self.value(key) else {
            return Vec::new();
        };
        let line = self.line(ctx, key);
        if let Some(s) = v.as_str() {
            return vec![s.to_owned()];
        }
        let items = v.as_array().map(|a| {
            a.iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        });
        match items {
            Some(Some(list)) => list,
            _ => {
                ctx.error(
                    line,
                    &self.key_path(key),
                    format!(
                        "expected a string or an array of strings, found {}",
                        v.type_name()
                    ),
                );
                Vec::new()
            }
        }
    }

    /// Reports every key of the table that the schema does not know.
    fn finish(self, ctx: &mut Ctx, known: &[&str]) {
        for (key, _) in self.table.iter() {
            if !self.used.contains(key) {
                let line = self.line(ctx, key);
                let hint = closest(key, known)
                    .map(|k| format!("; did you mean '{k}'?"))
                    .unwrap_or_default();
                ctx.error(line, &self.key_path(key), format!("unknown key{hint}"));
            }
        }
    }
}

/// The known key nearest to a misspelt one (edit distance), if it is near
/// enough to be a likely typo.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(0);
            let left = row.get(j).copied().unwrap_or(0);
            let value = (prev + usize::from(ca != *cb)).min(above + 1).min(left + 1);
            prev = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = value;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

const BROKER_KEYS: &[&str] = &[
    "worker_threads",
    "max_packet_size",
    "receive_maximum",
    "max_inflight_out",
    "max_queued_messages",
    "max_keep_alive",
    "min_keep_alive",
    "allow_zero_keep_alive_v3",
    "topic_alias_maximum",
    "max_session_expiry",
    "max_client_id_len",
    "allow_empty_client_id",
    "max_qos",
    "retain_available",
    "connect_timeout",
    "max_subscriptions",
    "max_topic_levels",
    "max_topic_len",
    "max_queued_bytes",
    "max_queued_bytes_total",
    "sys_interval",
    "max_connections",
    "max_connections_per_address",
    "connection_rate_per_address",
    "connection_rate_total",
    "max_pending_connects",
    "max_publish_rate",
    "max_publish_bandwidth",
    "publish_limit_action",
];

/// Casts a range-checked configuration integer. The range check happened in
/// [`Section::int`], so the fallback is never taken.
fn cast<T: TryFrom<i64> + Copy>(n: i64, fallback: T) -> T {
    T::try_from(n).unwrap_or(fallback)
}

fn read_broker(ctx: &mut Ctx, table: &Table) -> (Limits, usize) {
    let d = Limits::default();
    let mut s = Section::new(table, "broker");
    let worker_threads = cast(s.int(ctx, "worker_threads", 0, 0, 1024), 0);
    let max_qos = s.int(ctx, "max_qos", d.max_qos as i64, 0, 2);
    let limits = Limits {
        max_packet_size: cast(
            s.int(
                ctx,
                "max_packet_size",
                d.max_packet_size.into(),
                64,
                268_435_460,
            ),
            d.max_packet_size,
        ),
        receive_maximum: cast(
            s.int(ctx, "receive_maximum", d.receive_maximum.into(), 1, 65_535),
            d.receive_maximum,
        ),
        max_inflight_out: cast(
            s.int(
                ctx,
                "max_inflight_out",
                d.max_inflight_out.into(),
                1,
                65_535,
            ),
            d.max_inflight_out,
        ),
        max_queued_messages: cast(
            s.int(
                ctx,
                "max_queued_messages",
                cast(d.max_queued_messages as i64, 0),
                1,
                10_000_000,
            ),
            d.max_queued_messages,
        ),
        max_keep_alive: cast(
            s.int(ctx, "max_keep_alive", d.max_keep_alive.into(), 1, 65_535),
            d.max_keep_alive,
        ),
        min_keep_alive: cast(
            s.int(ctx, "min_keep_alive", d.min_keep_alive.into(), 0, 65_535),
            d.min_keep_alive,
        ),
        max_topic_len: cast(
            s.int(
                ctx,
                "max_topic_len",
                cast(d.max_topic_len as i64, 0),
                1,
                65_535,
            ),
            d.max_topic_len,
        ),
        max_queued_bytes: cast(
            s.int(
                ctx,
                "max_queued_bytes",
                cast(d.max_queued_bytes as i64, 0),
                1024,
                1 << 40,
            ),
            d.max_queued_bytes,
        ),
        max_queued_bytes_total: cast(
            s.int(
                ctx,
                "max_queued_bytes_total",
                cast(d.max_queued_bytes_total as i64, 0),
                1024,
                1 << 44,
            ),
            d.max_queued_bytes_total,
        ),
        allow_zero_keep_alive_v3: s.bool(
            ctx,
            "allow_zero_keep_alive_v3",
            d.allow_zero_keep_alive_v3,
        ),
        topic_alias_maximum: cast(
            s.int(
                ctx,
                "topic_alias_maximum",
                d.topic_alias_maximum.into(),
                0,
                65_535,
            ),
            d.topic_alias_maximum,
        ),
        max_session_expiry: cast(
            s.int(
                ctx,
                "max_session_expiry",
                d.max_session_expiry.into(),
                0,
                u32::MAX.into(),
            ),
            d.max_session_expiry,
        ),
        max_client_id_len: cast(
            s.int(
                ctx,
                "max_client_id_len",
                cast(d.max_client_id_len as i64, 0),
                1,
                65_535,
            ),
            d.max_client_id_len,
        ),
        allow_empty_client_id: s.bool(ctx, "allow_empty_client_id", d.allow_empty_client_id),
        max_qos: QoS::from_u8(cast(max_qos, 2)).unwrap_or(QoS::ExactlyOnce),
        retain_available: s.bool(ctx, "retain_available", d.retain_available),
        connect_timeout: Duration::from_secs(cast(s.int(ctx, "connect_timeout", 10, 1, 300), 10)),
        max_subscriptions: cast(
            s.int(
                ctx,
                "max_subscriptions",
                cast(d.max_subscriptions as i64, 0),
                1,
                1_000_000,
            ),
            d.max_subscriptions,
        ),
        max_topic_levels: cast(
            s.int(
                ctx,
                "max_topic_levels",
                cast(d.max_topic_levels as i64, 0),
                1,
                1024,
            ),
            d.max_topic_levels,
        ),
        sys_interval: Duration::from_secs(cast(s.int(ctx, "sys_interval", 10, 0, 86_400), 10)),
        admission: read_admission(ctx, &mut s),
        max_publish_rate: cast(
            s.int(
                ctx,
                "max_publish_rate",
                d.max_publish_rate.into(),
                1,
                100_000_000,
            ),
            d.max_publish_rate,
        ),
        max_publish_bandwidth: cast(
            s.int(
                ctx,
                "max_publish_bandwidth",
                d.max_publish_bandwidth.into(),
                1,
                4_000_000_000,
            ),
            d.max_publish_bandwidth,
        ),
        publish_limit_action: read_publish_limit_action(ctx, &mut s),
        // Set from [auth] by the caller.
        brute_force: d.brute_force,
        max_verifications: d.max_verifications,
        max_pending_per_address: d.max_pending_per_address,
    };
    s.finish(ctx, BROKER_KEYS);
    (limits, worker_threads)
}

/// `publish_limit_action`: "throttle" (the default) or "disconnect".
fn read_publish_limit_action(ctx: &mut Ctx, s: &mut Section) -> PublishLimitAction {
    let key = "publish_limit_action";
    let line = s.line(ctx, key);
    match s.string(ctx, key).as_deref() {
        None => PublishLimitAction::default(),
        Some("throttle") => PublishLimitAction::Throttle,
        Some("disconnect") => PublishLimitAction::Disconnect,
        Some(other) => {
            ctx.error(
                line,
                "broker.publish_limit_action",
                format!("unknown action {other:?}: use \"throttle\" or \"disconnect\""),
            );
            PublishLimitAction::default()
        }
    }
}

/// The connection admission keys, in `[broker]`. Each must be at least 1:
/// there is no "0 means unlimited".
fn read_admission(ctx: &mut Ctx, s: &mut Section) -> AdmissionLimits {
    let d = AdmissionLimits::default();
    let mut count = |key: &'static str, default: u32, max: i64| {
        cast(s.int(ctx, key, default.into(), 1, max), default)
    };
    AdmissionLimits {
        max_connections: count("max_connections", d.max_connections, 10_000_000),
        max_connections_per_address: count(
            "max_connections_per_address",
            d.max_connections_per_address,
            10_000_000,
        ),
        connection_rate_per_address: count(
            "connection_rate_per_address",
            d.connection_rate_per_address,
            1_000_000,
        ),
        connection_rate_total: count("connection_rate_total", d.connection_rate_total, 1_000_000),
        max_pending_connects: count("max_pending_connects", d.max_pending_connects, 10_000_000),
    }
}

impl Config {
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
        let mut ctx = Ctx {
            file,
            text,
            errors: Vec::new(),
        };
        let doc = match ImDocument::parse(text.to_owned()) {
            Ok(d) => d,
            Err(e) => {
                let line = ctx.line_of(e.span());
                let message = e.message().trim().to_owned();
                ctx.error(line, "(syntax)", message);
                return Err(ConfigErrors(ctx.errors));
            }
        };
        let root = doc.as_table();
        let empty = Table::new();
        let used = ["broker", "listener", "log", "auth"];
        let broker_table = match root.get("broker") {
            Some(Item::Table(t)) => t,
            Some(_) => {
                let line = ctx.line_of(root.key("broker").and_then(|k| k.span()));
                ctx.error(line, "broker", "expected a [broker] table");
                &empty
            }
            None => &empty,
        };
        let (mut limits, worker_threads) = read_broker(&mut ctx, broker_table);
        let auth = match root.get("auth") {
            Some(Item::Table(t)) => auth::read_auth(&mut ctx, t),
            Some(_) => {
                let line = ctx.line_of(root.key("auth").and_then(|k| k.span()));
                ctx.error(line, "auth", "expected an [auth] table");
                AuthConfig::default()
            }
            None => AuthConfig::default(),
        };
        limits.brute_force = auth.throttle;
        limits.max_verifications = auth.max_verifications;
        limits.max_pending_per_address = auth.max_pending_per_address;
        let mut listeners = Vec::new();
        match root.get("listener") {
            Some(Item::ArrayOfTables(arr)) => {
                for (i, t) in arr.iter().enumerate() {
                    if let Some(l) = read_listener(&mut ctx, t, i) {
                        listeners.push(l);
                    }
                }
            }
            Some(_) => {
                let line = ctx.line_of(root.key("listener").and_then(|k| k.span()));
                ctx.error(line, "listener", "expected [[listener]] tables");
            }
            None => {}
        }
        check_listeners(&mut ctx, &listeners);
        let log_level = match root.get("log") {
            Some(Item::Table(t)) => {
                let mut s = Section::new(t, "log");
                let level = s.string(&mut ctx, "level").unwrap_or_else(|| "info".into());
                let line = s.line(&ctx, "level");
                if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
                    ctx.error(
                        line,
                        "log.level",
                        format!("unknown level '{level}': use error, warn, info, debug or trace"),
                    );
                }
                s.finish(&mut ctx, &["level"]);
                level
            }
            _ => "info".into(),
        };
        for (key, _) in root.iter() {
            if !used.contains(&key) {
                let line = ctx.line_of(root.key(key).and_then(|k| k.span()));
                ctx.error(
                    line,
                    key,
                    "unknown section or key; known: [broker], [auth], [[listener]], [log]",
                );
            }
        }
        if ctx.errors.is_empty() {
            Ok(Config {
                source: file.to_owned(),
                limits,
                worker_threads,
                listeners,
                log_level,
                auth,
            })
        } else {
            Err(ConfigErrors(ctx.errors))
        }
    }

    pub fn load(path: &Path) -> Result<Config, anyhow::Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read configuration file {}: {e}", path.display())
        })?;
        let mut cfg = Config::parse(&path.display().to_string(), &text)?;
        // Files named in the configuration are relative to it, not to
        // wherever the broker happens to be started from.
        if let Some(dir) = path.parent() {
            cfg.resolve_paths(dir);
        }
        Ok(cfg)
    }

    fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(c) = self.auth.credentials.as_mut() {
            fix(c);
        }
        for tls in self.listeners.iter_mut().filter_map(|l| l.tls.as_mut()) {
            fix(&mut tls.cert);
            fix(&mut tls.key);
            if let Some(ca) = tls.ca.as_mut() {
                fix(ca);
            }
            tls.crls.iter_mut().for_each(fix);
        }
    }

    /// The embedded default with only its plain loopback listener.
    #[cfg(test)]
    pub fn embedded() -> Config {
        Self::parse_embedded(EMBEDDED_DEFAULT.to_owned())
    }

    /// The embedded default with TLS and WSS listeners on loopback as well,
    /// using the development PKI the binary created.
    pub fn embedded_with_tls(ca: &Path, cert: &Path, key: &Path) -> Config {
        let q = |p: &Path| {
            let s = p.display().to_string();
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        };
        let tls = format!(
            "allow_anonymous = true\nclient_auth = \"optional\"\ntls_ca = {}\ntls_cert = {}\ntls_key = {}\n",
            q(ca),
            q(cert),
            q(key)
        );
        let text = format!(
            "{EMBEDDED_DEFAULT}\n[[listener]]\nname = \"local-tls\"\nbind = \"127.0.0.1:8883\"\nkind = \"mqtts\"\n{tls}\n[[listener]]\nname = \"local-wss\"\nbind = \"127.0.0.1:8443\"\nkind = \"wss\"\n{tls}"
        );
        Self::parse_embedded(text)
    }

    fn parse_embedded(text: String) -> Config {
        // The embedded text is ours and covered by a test; failing to parse
        // it is a build defect, reported like any configuration error.
        Config::parse("(embedded default)", &text).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        })
    }

    /// `--bind [NAME=]ADDR`: replaces the address of the named listener (by
    /// default the first plain one), and runs the safety checks again.
    pub fn override_bind(&mut self, name: Option<&str>, addr: SocketAddr) -> Result<(), String> {
        let found = match name {
            Some(n) => self.listeners.iter_mut().find(|l| l.name == n),
            None => self
                .listeners
                .iter_mut()
                .find(|l| l.kind == bulwark_transport::Kind::Mqtt),
        };
        let Some(l) = found else {
            let names: Vec<&str> = self.listeners.iter().map(|l| l.name.as_str()).collect();
            return Err(match name {
                Some(n) => format!("--bind {n}={addr}: no listener named '{n}' (listeners: {})", names.join(", ")),
                None => format!("--bind {addr}: the configuration has no plain \"mqtt\" listener; name one with --bind NAME=ADDR (listeners: {})", names.join(", ")),
            });
        };
        l.bind = addr;
        if let Some(problem) = anonymous_problem(l).or_else(|| listener::plaintext_problem(l)) {
            return Err(format!("--bind {addr}: {problem}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
