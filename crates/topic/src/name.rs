//! Topic names: the topic a PUBLISH (or a will) is sent to.
//!
//! Invariants of a [`TopicName`], checked once by [`TopicName::new`] so that
//! the router, the retained store and the ACL never re-check them:
//! - non-empty and at most [`MAX_TOPIC_LEN`] bytes;
//! - no U+0000 and no wildcard character (`+`, `#`).
//!
//! Levels are the `/`-separated parts; a level may be empty (`/a` has the
//! levels `""` and `"a"`). Every check here looks for ASCII bytes, which never
//! occur inside a multi-byte UTF-8 sequence, so no string is ever sliced.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use crate::TopicError;

/// The largest topic the protocol can carry: a UTF-8 string has a 16-bit length.
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Checks shared by names and filters: non-empty, not too long, no U+0000.
pub(crate) fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: s.len() });
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// A validated topic name (for PUBLISH): non-empty, at most 65535 bytes, no
/// `+` or `#`, no U+0000. (UTF-8 is guaranteed by `&str`.)
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    /// Validates `s` as a topic name.
    pub fn new(s: impl Into<String>) -> Result<Self, TopicError> {
        let s = s.into();
        check_common(&s)?;
        if s.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(TopicError::WildcardInTopicName);
        }
        Ok(Self(s))
    }

    /// The topic as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated levels; there is always at least one, possibly empty.
    pub fn levels(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// True for topics starting with `$` (`$SYS/...`), which wildcards at the
    /// first level of a filter do not match [MQTT-4.7.2-1].
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }

    /// Gives the string back without copying.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Hash and Eq are those of the inner String, so lookups by &str are sound.
impl Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for TopicName {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for TopicName {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for TopicName {
    type Error = TopicError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<TopicName> for String {
    fn from(t: TopicName) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for s in [
            "a",
            "/",
            "//",
            "/finance",
            "sport/tennis/player1",
            "$SYS/broker/uptime",
            "$",
            " ",
            "é",
            "日本/語",
            "🦀/x",
            "a b/c d",
            "\u{FEFF}a",
        ] {
            let t = TopicName::new(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(t.as_str(), s);
        }
    }

    #[test]
    fn invalid_names() {
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        let cases: &[(&str, TopicError)] = &[
            ("", TopicError::Empty),
            (
                &long,
                TopicError::TooLong {
                    len: MAX_TOPIC_LEN + 1,
                },
            ),
            ("a\0b", TopicError::NullCharacter),
            ("\0", TopicError::NullCharacter),
            ("+", TopicError::WildcardInTopicName),
            ("#", TopicError::WildcardInTopicName),
            ("a/+/b", TopicError::WildcardInTopicName),
            ("a/#", TopicError::WildcardInTopicName),
            ("sport+", TopicError::WildcardInTopicName),
            ("é#", TopicError::WildcardInTopicName),
            ("$SYS/#", TopicError::WildcardInTopicName),
        ];
        for (s, want) in cases {
            assert_eq!(TopicName::new(*s).as_ref(), Err(want), "{s:?}");
        }
    }

    #[test]
    fn longest_name_is_accepted() {
        // Multi-byte characters count by bytes, not chars.
        let s = "é".repeat(MAX_TOPIC_LEN / 2);
        assert!(TopicName::new(s).is_ok());
        let s = "é".repeat(MAX_TOPIC_LEN / 2 + 1);
        assert!(matches!(
            TopicName::new(s),
            Err(TopicError::TooLong { len: 65_536 })
        ));
    }

    #[test]
    fn levels_and_dollar() {
        let t = TopicName::new("/a//b/").unwrap();
        assert_eq!(t.levels().collect::<Vec<_>>(), ["", "a", "", "b", ""]);
        assert!(TopicName::new("$SYS/x").unwrap().is_dollar());
        assert!(TopicName::new("$").unwrap().is_dollar());
        assert!(!TopicName::new("a/$SYS").unwrap().is_dollar());
        assert!(!TopicName::new("é$").unwrap().is_dollar());
        assert_eq!(t.into_string(), "/a//b/");
    }

    #[test]
    fn error_names_the_clause() {
        let e = TopicName::new("a/#").unwrap_err();
        assert!(e.to_string().starts_with("[MQTT-4.7.1-1]"), "{e}");
        assert!(e.to_string().contains("[MQTT-3.3.2-2]"), "{e}");
    }
}
