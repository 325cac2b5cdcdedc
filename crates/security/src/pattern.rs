//! Client-ID patterns: which MQTT client identifiers an identity may use.
//!
//! Grammar (whitespace is literal, there are no escapes):
//!
//! ```text
//! pattern     = alternative *( "|" alternative )
//! alternative = 1*( literal / "{identity}" ) [ "*" ]  /  "*"
//! literal     = any character except  | { } *  and control characters
//! ```
//!
//! `{identity}` stands for the identity's name, compared as literal text:
//! characters such as `.`, `?`, `[` or `|` in a name mean only themselves.
//! `*` may only end an alternative and matches any remainder, including an
//! empty one. A client ID is allowed when any alternative matches it whole.
//!
//! The default, [`DEFAULT_PATTERN`] = `{identity}|{identity}-*`, allows the
//! identity's own name and any ID that starts with `NAME-`.

use std::fmt;

pub const DEFAULT_PATTERN: &str = "{identity}|{identity}-*";

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;

const PLACEHOLDER: &str = "{identity}";

#[derive(Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Identity,
}

#[derive(Clone, PartialEq, Eq)]
struct Alternative {
    parts: Vec<Part>,
    /// Ends with `*`.
    open: bool,
}

/// A parsed, validated client-ID pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdPattern {
    source: String,
    alternatives: Vec<Alternative>,
}

impl ClientIdPattern {
    pub fn parse(s: &str) -> Result<ClientIdPattern, String> {
        if s.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "is {} bytes long; at most {MAX_PATTERN_LEN} are allowed",
                s.len()
            ));
        }
        let alternatives = s
            .split('|')
            .map(parse_alternative)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientIdPattern {
            source: s.to_owned(),
            alternatives,
        })
    }

    /// The default pattern.
    pub fn default_pattern() -> ClientIdPattern {
        ClientIdPattern {
            source: DEFAULT_PATTERN.to_owned(),
            alternatives: vec![
                Alternative {
                    parts: vec![Part::Identity],
                    open: false,
                },
                Alternative {
                    parts: vec![Part::Identity, Part::Literal("-".into())],
                    open: true,
                },
            ],
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `client_id` is allowed for the identity named `identity`.
    pub fn matches(&self, identity: &str, client_id: &str) -> bool {
        self.alternatives.iter().any(|alt| {
            let mut rest = client_id;
            for part in &alt.parts {
                let text = match part {
                    Part::Literal(l) => l.as_str(),
                    Part::Identity => identity,
                };
                match rest.strip_prefix(text) {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            alt.open || rest.is_empty()
        })
    }

    /// Whether every alternative contains `{identity}`, i.e. the pattern
    /// admits no fixed client ID that another identity's pattern could
    /// also admit.
    pub fn mentions_identity(&self) -> bool {
        self.alternatives
            .iter()
            .all(|a| a.parts.contains(&Part::Identity))
    }
}

impl Default for ClientIdPattern {
    fn default() -> Self {
        ClientIdPattern::default_pattern()
    }
}

impl fmt::Debug for ClientIdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientIdPattern({:?})", self.source)
    }
}

impl fmt::Display for ClientIdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn parse_alternative(s: &str) -> Result<Alternative, String> {
    let (body, open) = match s.strip_suffix('*') {
        Some(b) => (b, true),
        None => (s, false),
    };
    if body.is_empty() && !open {
        return Err("has an empty alternative (two '|' in a row, or one at an end)".into());
    }
    let mut parts = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(PLACEHOLDER) {
            parts.push(Part::Identity);
            rest = r;
            continue;
        }
        let end = rest.find(['{', '}', '*']).unwrap_or(rest.len());
        let (literal, r) = rest.split_at_checked(end).unwrap_or((rest, ""));
        if literal.is_empty() {
            return Err(match r.chars().next() {
                Some('*') => "has '*' before the end of an alternative; it may only end one".into(),
                Some('{') => format!("has an unknown placeholder; the only one is {PLACEHOLDER}"),
                _ => "has a '}' without a matching '{identity'".into(),
            });
        }
        if literal.chars().any(char::is_control) {
            return Err("contains a control character".into());
        }
        parts.push(Part::Literal(literal.to_owned()));
        rest = r;
    }
    Ok(Alternative { parts, open })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pattern() {
        let p = ClientIdPattern::default();
        assert_eq!(p, ClientIdPattern::parse(DEFAULT_PATTERN).unwrap());
        assert!(p.matches("plc-7", "plc-7"));
        assert!(p.matches("plc-7", "plc-7-a"));
        assert!(p.matches("plc-7", "plc-7-"));
        assert!(!p.matches("plc-7", "plc-70"));
        assert!(!p.matches("plc-7", "plc-"));
        assert!(!p.matches("plc-7", ""));
        assert!(!p.matches("plc-7", "xplc-7"));
        assert!(p.mentions_identity());
    }

    #[test]
    fn identities_are_matched_literally() {
        let p = ClientIdPattern::default();
        for name in [
            "a.b",
            "a?c",
            "[ab]",
            "x|y",
            "{identity}",
            "(.*)",
            "^$",
            "\\d",
        ] {
            assert!(p.matches(name, name), "{name}");
            assert!(p.matches(name, &format!("{name}-1")), "{name}");
        }
        assert!(!p.matches("a.b", "axb"));
        assert!(!p.matches("a?c", "abc"));
        assert!(!p.matches("[ab]", "a"));
        assert!(!p.matches("x|y", "x"));
        assert!(!p.matches("x|y", "y"));
        assert!(!p.matches("(.*)", "anything"));
        assert!(!p.matches("\\d", "1"));
    }

    #[test]
    fn grammar() {
        let p = ClientIdPattern::parse("site-a/{identity}/*").unwrap();
        assert!(p.matches("dev", "site-a/dev/1"));
        assert!(!p.matches("dev", "site-a/dev"));
        let fixed = ClientIdPattern::parse("ABC123").unwrap();
        assert!(fixed.matches("anyone", "ABC123"));
        assert!(!fixed.mentions_identity());
        let any = ClientIdPattern::parse("*").unwrap();
        assert!(any.matches("x", "whatever"));
        assert!(any.matches("x", ""));
        for bad in [
            "",
            "a||b",
            "|a",
            "a*b",
            "**",
            "{id}",
            "{identity",
            "a}b",
            "a\u{7}",
        ] {
            assert!(ClientIdPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
