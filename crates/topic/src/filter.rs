//! Topic filters: what a client subscribes to, possibly with wildcards.
//!
//! Invariants of a [`TopicFilter`], checked once by [`TopicFilter::new`]:
//! - non-empty, at most [`MAX_TOPIC_LEN`](crate::MAX_TOPIC_LEN) bytes, no U+0000;
//! - `#` only as the whole last level (`#`, `a/#`);
//! - `+` only as a whole level (`+`, `a/+/b`).
//!
//! [`TopicFilter::matches`] is the reference matcher: a plain level-by-level
//! walk, kept simple on purpose so the trie can be tested against it.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use crate::name::check_common;
use crate::{TopicError, TopicName};

/// A validated topic filter: non-empty, at most 65535 bytes, no U+0000, `#`
/// only as the whole last level, `+` only as a whole level.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(String);

impl TopicFilter {
    /// Validates `s` as a topic filter. `$share/...` is *not* interpreted
    /// here; use [`parse_subscription`](crate::parse_subscription) for what a
    /// client writes in SUBSCRIBE.
    pub fn new(s: impl Into<String>) -> Result<Self, TopicError> {
        let s = s.into();
        check_common(&s)?;
        let mut levels = s.split('/').peekable();
        while let Some(level) = levels.next() {
            let is_last = levels.peek().is_none();
            if level.contains('#') {
                if level != "#" || !is_last {
                    return Err(TopicError::MisplacedMultiLevelWildcard);
                }
            } else if level.contains('+') && level != "+" {
                return Err(TopicError::MisplacedSingleLevelWildcard);
            }
        }
        Ok(Self(s))
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated levels, wildcards included; at least one.
    pub fn levels(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// True if the filter contains `+` or `#`; such a filter can match more
    /// than one topic name.
    pub fn has_wildcards(&self) -> bool {
        // Both are ASCII and, by the invariants, only ever whole levels.
        self.0.bytes().any(|b| b == b'+' || b == b'#')
    }

    /// True for filters starting with `$`; only these match `$` topics at the
    /// first level.
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }

    /// Gives the string back without copying.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether `topic` matches this filter, including the `$` rule: a filter
    /// whose first level is a wildcard does not match a topic starting with
    /// `$` [MQTT-4.7.2-1]. `a/#` matches `a` itself (the parent level).
    pub fn matches(&self, topic: &TopicName) -> bool {
        if topic.is_dollar() && self.0.starts_with(['+', '#']) {
            return false;
        }
        let mut filter = self.levels();
        let mut topic = topic.levels();
        loop {
            match (filter.next(), topic.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

/// Every topic name is a filter matching exactly itself.
impl From<TopicName> for TopicFilter {
    fn from(t: TopicName) -> Self {
        Self(t.into_string())
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicFilter {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Hash and Eq are those of the inner String, so lookups by &str are sound.
impl Borrow<str> for TopicFilter {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for TopicFilter {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for TopicFilter {
    type Error = TopicError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<TopicFilter> for String {
    fn from(t: TopicFilter) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_TOPIC_LEN;

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn valid_filters() {
        for (s, wild) in [
            ("a", false),
            ("/", false),
            ("#", true),
            ("+", true),
            ("/#", true),
            ("+/#", true),
            ("+/+", true),
            ("//+//", true),
            ("sport/tennis/+", true),
            ("sport/+/player1", true),
            ("sport/#", true),
            ("$SYS/#", true),
            ("$share", false),
            ("é/+/ü/#", true),
            ("日本/#", true),
            ("🦀", false),
        ] {
            let f = filter(s);
            assert_eq!(f.as_str(), s);
            assert_eq!(f.has_wildcards(), wild, "{s:?}");
        }
    }

    #[test]
    fn invalid_filters() {
        use TopicError::*;
        let long = "+/".repeat(MAX_TOPIC_LEN / 2) + "ab";
        let cases: &[(&str, TopicError)] = &[
            ("", Empty),
            (
                &long,
                TooLong {
                    len: MAX_TOPIC_LEN + 1,
                },
            ),
            ("a/\0", NullCharacter),
            ("#\0", NullCharacter),
            ("sport/tennis#", MisplacedMultiLevelWildcard),
            ("sport/tennis/#/ranking", MisplacedMultiLevelWildcard),
            ("#/", MisplacedMultiLevelWildcard),
            ("##", MisplacedMultiLevelWildcard),
            ("#+", MisplacedMultiLevelWildcard),
            ("+#", MisplacedMultiLevelWildcard),
            ("a/b#", MisplacedMultiLevelWildcard),
            ("é#", MisplacedMultiLevelWildcard),
            ("#é", MisplacedMultiLevelWildcard),
            ("sport+", MisplacedSingleLevelWildcard),
            ("+sport", MisplacedSingleLevelWildcard),
            ("a/++/b", MisplacedSingleLevelWildcard),
            ("é+/a", MisplacedSingleLevelWildcard),
            ("+é", MisplacedSingleLevelWildcard),
        ];
        for (s, want) in cases {
            assert_eq!(TopicFilter::new(*s).as_ref(), Err(want), "{s:?}");
        }
    }

    #[test]
    fn levels_keep_wildcards() {
        assert_eq!(
            filter("+/a//#").levels().collect::<Vec<_>>(),
            ["+", "a", "", "#"]
        );
    }

    #[test]
    fn matching_table() {
        let cases = [
            // (filter, topic, matches)
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/#", "sport", true),
            ("sport/#", "sports", false),
            ("sport/#", "sport/", true),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/tennis/+", "sport/tennis", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+", "a", true),
            ("+", "/a", false),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("+/+", "/", true),
            ("+/+/+", "//", true),
            ("+/#", "a", true),
            ("a/+/c", "a//c", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/", false),
            ("a/b", "A/b", false),
            ("é/+", "é/ü", true),
            ("é/+", "e/ü", false),
            // The $ rule [MQTT-4.7.2-1].
            ("#", "$SYS/x", false),
            ("#", "$SYS", false),
            ("+/x", "$SYS/x", false),
            ("+", "$", false),
            ("+/#", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/#", "$SYS", true),
            ("$SYS/+", "$SYS/x", true),
            ("$SYS/x", "$SYS/x", true),
            ("+/$SYS", "a/$SYS", true),
            ("a/#", "a/$SYS", true),
            ("$share/g/a", "$share/g/a", true),
        ];
        for (f, t, want) in cases {
            assert_eq!(filter(f).matches(&name(t)), want, "{f:?} vs {t:?}");
        }
    }

    #[test]
    fn name_converts_to_exact_filter() {
        let f = TopicFilter::from(name("a/b"));
        assert!(!f.has_wildcards());
        assert!(f.matches(&name("a/b")));
    }
}
