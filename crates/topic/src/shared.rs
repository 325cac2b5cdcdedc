//! Parsing what a client writes in SUBSCRIBE / UNSUBSCRIBE: a plain topic
//! filter or a shared subscription `$share/{ShareName}/{filter}` (MQTT 5.0
//! §4.8.2).
//!
//! Invariants of a [`ParsedFilter`]: `share_group`, when present, is non-empty
//! and contains no `/`, `+` or `#`; `filter` is a valid [`TopicFilter`]. The
//! prefix is exactly `$share/` (case-sensitive); `$share` alone and
//! `$sharefoo/x` are plain filters that happen to start with `$`.

use crate::name::check_common;
use crate::{TopicError, TopicFilter};

/// The prefix that marks a shared subscription, separator included.
const SHARE_PREFIX: &str = "$share/";

/// A SUBSCRIBE/UNSUBSCRIBE filter as written by the client: either a plain
/// filter or `$share/{group}/{filter}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParsedFilter {
    /// The ShareName of a shared subscription, `None` for a plain one.
    pub share_group: Option<String>,
    /// The filter topics are matched against (without the `$share/` part).
    pub filter: TopicFilter,
}

impl ParsedFilter {
    /// True for `$share/...` subscriptions.
    pub fn is_shared(&self) -> bool {
        self.share_group.is_some()
    }
}

/// Parses a subscription as written by the client.
///
/// `"$share/g/a/+"` gives group `g` and filter `a/+`. The group must be
/// non-empty and free of `+`, `#` and `/`; `"$share/g"` and `"$share/g/"` lack
/// the filter and are refused.
pub fn parse_subscription(s: &str) -> Result<ParsedFilter, TopicError> {
    let Some(rest) = s.strip_prefix(SHARE_PREFIX) else {
        return Ok(ParsedFilter {
            share_group: None,
            filter: TopicFilter::new(s)?,
        });
    };
    // Length and U+0000 apply to the string as sent, prefix included.
    check_common(s)?;
    // The group ends at the first '/', so it can never contain one.
    let (group, filter) = match rest.split_once('/') {
        Some((group, filter)) => (group, Some(filter)),
        None => (rest, None),
    };
    if group.is_empty() {
        return Err(TopicError::EmptyShareName);
    }
    if group.contains(['+', '#']) {
        return Err(TopicError::InvalidShareName);
    }
    let filter = match filter {
        Some(f) if !f.is_empty() => TopicFilter::new(f)?,
        _ => return Err(TopicError::MissingSharedFilter),
    };
    Ok(ParsedFilter {
        share_group: Some(group.to_owned()),
        filter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_TOPIC_LEN;

    fn ok(s: &str) -> (Option<String>, String) {
        let p = parse_subscription(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(p.is_shared(), p.share_group.is_some());
        (p.share_group, p.filter.into_string())
    }

    #[test]
    fn valid_subscriptions() {
        let g = |s: &str| Some(s.to_owned());
        let cases: &[(&str, Option<String>, &str)] = &[
            ("a/+", None, "a/+"),
            ("#", None, "#"),
            ("$SYS/#", None, "$SYS/#"),
            ("$share", None, "$share"),
            ("$sharefoo/x", None, "$sharefoo/x"),
            ("$Share/g/x", None, "$Share/g/x"),
            ("$share/g/a/+", g("g"), "a/+"),
            (
                "$share/consumer1/sport/tennis/+",
                g("consumer1"),
                "sport/tennis/+",
            ),
            ("$share/consumer1//finance", g("consumer1"), "/finance"),
            ("$share/g/#", g("g"), "#"),
            ("$share/g/+", g("g"), "+"),
            ("$share/g//", g("g"), "/"),
            ("$share/g/$SYS/#", g("g"), "$SYS/#"),
            ("$share/é/ü", g("é"), "ü"),
            ("$share/日本/語/#", g("日本"), "語/#"),
            ("$share/$share/x", g("$share"), "x"),
        ];
        for (s, group, filter) in cases {
            assert_eq!(ok(s), (group.clone(), (*filter).to_owned()), "{s:?}");
        }
    }

    #[test]
    fn invalid_subscriptions() {
        use TopicError::*;
        let long = format!("$share/g/{}", "a".repeat(MAX_TOPIC_LEN));
        let cases: &[(&str, TopicError)] = &[
            ("", Empty),
            ("a#", MisplacedMultiLevelWildcard),
            ("$share/", EmptyShareName),
            ("$share//x", EmptyShareName),
            ("$share//", EmptyShareName),
            ("$share/g", MissingSharedFilter),
            ("$share/g/", MissingSharedFilter),
            ("$share/é", MissingSharedFilter),
            ("$share/+/x", InvalidShareName),
            ("$share/#/x", InvalidShareName),
            ("$share/g+/x", InvalidShareName),
            ("$share/a#", InvalidShareName),
            ("$share/g/a#", MisplacedMultiLevelWildcard),
            ("$share/g/a/#/b", MisplacedMultiLevelWildcard),
            ("$share/g/a+", MisplacedSingleLevelWildcard),
            ("$share/g\0/x", NullCharacter),
            ("$share/g/x\0", NullCharacter),
            (&long, TooLong { len: long.len() }),
        ];
        for (s, want) in cases {
            assert_eq!(parse_subscription(s).as_ref(), Err(want), "{s:?}");
        }
    }

    #[test]
    fn shared_errors_name_the_clause() {
        let e = parse_subscription("$share//x").unwrap_err();
        assert!(e.to_string().starts_with("[MQTT-4.8.2-1]"), "{e}");
        let e = parse_subscription("$share/g").unwrap_err();
        assert!(e.to_string().starts_with("[MQTT-4.8.2-2]"), "{e}");
    }
}
