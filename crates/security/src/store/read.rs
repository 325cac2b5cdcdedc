//! Walks the credential file against its schema, collecting every problem
//! with its line. Values of secret keys are never quoted in messages.

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

use super::{Identity, Kind, Role, StoreError};
use crate::factor::{Factor, FactorSet};
use crate::name::check_name;
use crate::password::check_phc;
use crate::pattern::ClientIdPattern;
use crate::scram::ScramCredential;
use crate::totp::TotpSecret;

const IDENTITY_KEYS: &[&str] = &[
    "name",
    "kind",
    "roles",
    "password",
    "scram",
    "totp_secret",
    "factors",
    "client_id_pattern",
    "enabled",
    "expires",
];
const ROLE_KEYS: &[&str] = &["name", "factors"];

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<StoreError>,
}

impl Ctx<'_> {
    fn line_of(&self, span: Option<Range<usize>>) -> usize {
        let at = span.map_or(0, |r| r.start);
        self.text
            .get(..at)
            .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
    }

    fn error(&mut self, line: usize, entry: Option<&str>, key: &str, message: impl Into<String>) {
        self.errors.push(StoreError {
            file: self.file.to_owned(),
            line,
            entry: entry.map(str::to_owned),
            key: key.to_owned(),
            message: message.into(),
        });
    }
}

/// One `[[identity]]` or `[[role]]` table being read.
struct Entry<'t> {
    table: &'t Table,
    label: String,
    used: Vec<&'static str>,
}

impl<'t> Entry<'t> {
    fn line(&self, ctx: &Ctx, key: &str) -> usize {
        ctx.line_of(
            self.table
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| self.table.span()),
        )
    }

    fn header_line(&self, ctx: &Ctx) -> usize {
        ctx.line_of(self.table.span())
    }

    fn err(&self, ctx: &mut Ctx, key: &str, message: impl Into<String>) {
        let line = self.line(ctx, key);
        ctx.error(line, Some(&self.label), key, message);
    }

    fn value(&mut self, key: &'static str) -> Option<&'t Value> {
        self.used.push(key);
        self.table.get(key).and_then(Item::as_value)
    }

    fn string(&mut self, ctx: &mut Ctx, key: &'static str) -> Option<&'t str> {
        let v = self.value(key)?;
        let s = v.as_str();
        if s.is_none() {
            self.err(
                ctx,
                key,
                format!("expected a string, found {}", v.type_name()),
            );
        }
        s
    }

    fn strings(&mut self, ctx: &mut Ctx, key: &'static str) -> Option<Vec<&'t str>> {
        let v = self.value(key)?;
        let list = v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>());
        if list.is_none() {
            self.err(
                ctx,
                key,
                format!("expected an array of strings, found {}", v.type_name()),
            );
        }
        list
    }

    fn bool(&mut self, ctx: &mut Ctx, key: &'static str) -> Option<bool> {
        let v = self.value(key)?;
        let b = v.as_bool();
        if b.is_none() {
            self.err(
                ctx,
                key,
                format!("expected true or false, found {}", v.type_name()),
            );
        }
        b
    }

    fn factors(&mut self, ctx: &mut Ctx) -> Option<FactorSet> {
        let names = self.strings(ctx, "factors")?;
        match FactorSet::parse(names.iter().copied()) {
            Ok(set) if set.is_empty() => {
                self.err(
                    ctx,
                    "factors",
                    "must name at least one factor: certificate, password or totp",
                );
                None
            }
            Ok(set) => Some(set),
            Err(unknown) => {
                self.err(
                    ctx,
                    "factors",
                    format!("unknown factor '{unknown}'; use certificate, password or totp"),
                );
                None
            }
        }
    }

    /// Reports the keys the schema does not know.
    fn finish(self, ctx: &mut Ctx, known: &[&str]) {
        for (key, _) in self.table.iter() {
            if !known.contains(&key) {
                let hint = closest(key, known)
                    .map(|k| format!("; did you mean '{k}'?"))
                    .unwrap_or_default();
                self.err(ctx, key, format!("unknown key{hint}"));
            }
        }
    }
}

/// The known key sharing the longest prefix (at least 3 characters) with a
/// misspelt one.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            let n = k
                .chars()
                .zip(key.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (n, *k)
        })
        .filter(|(n, _)| *n >= 3)
        .max_by_key(|(n, _)| *n)
        .map(|(_, k)| k)
}

pub(super) fn parse(file: &str, text: &str) -> Result<(Vec<Identity>, Vec<Role>), Vec<StoreError>> {
    let mut ctx = Ctx {
        file,
        text,
        errors: Vec::new(),
    };
    let doc = match ImDocument::parse(text.to_owned()) {
        Ok(d) => d,
        Err(e) => {
            let line = ctx.line_of(e.span());
            ctx.error(line, None, "(syntax)", e.message().trim());
            return Err(ctx.errors);
        }
    };
    let root = doc.as_table();
    let mut identities = Vec::new();
    let mut roles = Vec::new();
    // Names of all entries, valid or not, for the uniqueness check.
    let mut identity_names = Vec::new();
    let mut role_names = Vec::new();
    for (key, item) in root.iter() {
        let line = ctx.line_of(root.key(key).and_then(|k| k.span()));
        match (key, item) {
            ("identity", Item::ArrayOfTables(arr)) => {
                for (i, t) in arr.iter().enumerate() {
                    identity_names.extend(name_and_line(&ctx, t));
                    identities.extend(read_identity(&mut ctx, t, i));
                }
            }
            ("role", Item::ArrayOfTables(arr)) => {
                for (i, t) in arr.iter().enumerate() {
                    role_names.extend(name_and_line(&ctx, t));
                    roles.extend(read_role(&mut ctx, t, i));
                }
            }
            ("identity" | "role", _) => {
                ctx.error(line, None, key, format!("expected [[{key}]] tables"));
            }
            _ => ctx.error(
                line,
                None,
                key,
                "unknown section or key; known: [[identity]], [[role]]",
            ),
        }
    }
    check_unique(&mut ctx, "identity", &identity_names);
    check_unique(&mut ctx, "role", &role_names);
    check_satisfiable(&mut ctx, &identities, &roles);
    if ctx.errors.is_empty() {
        Ok((identities, roles))
    } else {
        ctx.errors.sort_by_key(|e| e.line);
        Err(ctx.errors)
    }
}

fn entry_name(ctx: &mut Ctx, e: &mut Entry, what: &str) -> Option<String> {
    let Some(name) = e.string(ctx, "name") else {
        if e.table.get("name").is_none() {
            let line = e.header_line(ctx);
            ctx.error(
                line,
                Some(&e.label),
                "name",
                format!("every {what} needs a name"),
            );
        }
        return None;
    };
    if let Err(why) = check_name(name) {
        e.err(ctx, "name", format!("the name {why}"));
        return None;
    }
    e.label = format!("{what} '{name}'");
    Some(name.to_owned())
}

fn read_role(ctx: &mut Ctx, table: &Table, index: usize) -> Option<Role> {
    let mut e = Entry {
        table,
        label: format!("role #{}", index + 1),
        used: Vec::new(),
    };
    let name = entry_name(ctx, &mut e, "role");
    let factors = e.factors(ctx);
    if table.get("factors").is_none() {
        e.err(
            ctx,
            "factors",
            "a [[role]] entry exists to require factors; add factors = [...]",
        );
    }
    let line = e.header_line(ctx);
    e.finish(ctx, ROLE_KEYS);
    Some(Role {
        name: name?,
        factors: factors?,
        line,
    })
}

fn read_identity(ctx: &mut Ctx, table: &Table, index: usize) -> Option<Identity> {
    let mut e = Entry {
        table,
        label: format!("identity #{}", index + 1),
        used: Vec::new(),
    };
    let errors_before = ctx.errors.len();
    let name = entry_name(ctx, &mut e, "identity");
    let kind = match e.string(ctx, "kind") {
        None => Kind::Device,
        Some(k) => Kind::parse(k).unwrap_or_else(|| {
            e.err(
                ctx,
                "kind",
                format!("unknown kind '{k}'; use device or user"),
            );
            Kind::Device
        }),
    };
    let mut roles = Vec::new();
    for r in e.strings(ctx, "roles").unwrap_or_default() {
        match check_name(r) {
            Ok(()) => roles.push(r.to_owned()),
            Err(why) => e.err(ctx, "roles", format!("role name '{r}' {why}")),
        }
    }
    let (password, scram, totp_secret) = read_credentials(ctx, &mut e);
    let explicit = e.factors(ctx);
    let client_id_pattern = match e.string(ctx, "client_id_pattern") {
        None => ClientIdPattern::default(),
        Some(p) => ClientIdPattern::parse(p).unwrap_or_else(|why| {
            e.err(ctx, "client_id_pattern", format!("the pattern {why}"));
            ClientIdPattern::default()
        }),
    };
    let enabled = e.bool(ctx, "enabled").unwrap_or(true);
    let expires = read_expires(ctx, &mut e);
    let line = e.header_line(ctx);
    e.finish(ctx, IDENTITY_KEYS);
    let has_password = table.get("password").is_some() || table.get("scram").is_some();
    let has_totp = table.get("totp_secret").is_some();
    let factors = explicit.unwrap_or_else(|| {
        let mut f = FactorSet::EMPTY;
        if has_password {
            f = f.with(Factor::Password);
        } else {
            f = f.with(Factor::Certificate);
        }
        if has_totp {
            f = f.with(Factor::Totp);
        }
        f
    });
    if ctx.errors.len() != errors_before {
        return None;
    }
    Some(Identity {
        name: name?,
        kind,
        roles,
        password,
        scram,
        totp_secret,
        factors,
        client_id_pattern,
        enabled,
        expires,
        line,
    })
}

/// The secret keys: each must be in its one accepted form.
fn read_credentials(
    ctx: &mut Ctx,
    e: &mut Entry,
) -> (Option<String>, Option<ScramCredential>, Option<TotpSecret>) {
    let password = e.string(ctx, "password").and_then(|p| match check_phc(p) {
        Ok(()) => Some(p.to_owned()),
        Err(why) => {
            e.err(ctx, "password", format!("the value {why}"));
            None
        }
    });
    let scram = e
        .string(ctx, "scram")
        .and_then(|s| match ScramCredential::decode(s) {
            Ok(c) => Some(c),
            Err(why) => {
                e.err(ctx, "scram", format!("the value {why}"));
                None
            }
        });
    let totp_secret = e
        .string(ctx, "totp_secret")
        .and_then(|s| match TotpSecret::from_base32(s) {
            Ok(t) => Some(t),
            Err(why) => {
                e.err(ctx, "totp_secret", format!("the value {why}"));
                None
            }
        });
    (password, scram, totp_secret)
}

fn read_expires(ctx: &mut Ctx, e: &mut Entry) -> Option<i64> {
    let v = e.value("expires")?;
    let text = match v {
        Value::String(s) => s.value().clone(),
        Value::Datetime(d) => d.value().to_string(),
        other => {
            e.err(
                ctx,
                "expires",
                format!(
                    "expected an RFC 3339 date-time, found {}",
                    other.type_name()
                ),
            );
            return None;
        }
    };
    let t = crate::rfc3339::parse(&text);
    if t.is_none() {
        e.err(
            ctx,
            "expires",
            format!("'{text}' is not an RFC 3339 date-time with a time and an offset, e.g. 2027-01-01T00:00:00Z"),
        );
    }
    t
}

fn name_and_line<'t>(ctx: &Ctx, table: &'t Table) -> Option<(&'t str, usize)> {
    let name = table.get("name").and_then(Item::as_str)?;
    Some((name, ctx.line_of(table.span())))
}

fn check_unique(ctx: &mut Ctx, what: &str, entries: &[(&str, usize)]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for &(name, line) in entries {
        if let Some(first) = seen.get(name) {
            let first = *first;
            ctx.error(
                line,
                Some(&format!("{what} '{name}'")),
                "name",
                format!("a second {what} with this name (the first is at line {first})"),
            );
        } else {
            seen.insert(name, line);
        }
    }
}

/// An identity whose required factors include a password or TOTP it does
/// not have could never connect: that is a mistake in the file, reported
/// now rather than as refusals later.
fn check_satisfiable(ctx: &mut Ctx, identities: &[Identity], roles: &[Role]) {
    let role_factors: HashMap<&str, FactorSet> =
        roles.iter().map(|r| (r.name.as_str(), r.factors)).collect();
    for id in identities {
        let from = |factor: Factor| -> String {
            if id.factors.has(factor) {
                return "its factors require".into();
            }
            id.roles
                .iter()
                .find(|r| role_factors.get(r.as_str()).is_some_and(|f| f.has(factor)))
                .map_or_else(
                    || "its factors require".into(),
                    |r| format!("role '{r}' requires"),
                )
        };
        let required = id
            .roles
            .iter()
            .filter_map(|r| role_factors.get(r.as_str()))
            .fold(id.factors, |acc, f| acc | *f);
        let label = format!("identity '{}'", id.name);
        if required.has(Factor::Password) && id.password.is_none() && id.scram.is_none() {
            ctx.error(
                id.line,
                Some(&label),
                "password",
                format!(
                    "{} a password, but it has none: run `bulwark user passwd {}`",
                    from(Factor::Password),
                    id.name
                ),
            );
        }
        if required.has(Factor::Totp) && id.totp_secret.is_none() {
            ctx.error(
                id.line,
                Some(&label),
                "totp_secret",
                format!(
                    "{} TOTP, but it has no secret: run `bulwark user totp {}`",
                    from(Factor::Totp),
                    id.name
                ),
            );
        }
    }
}
