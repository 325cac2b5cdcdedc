//! The one error type of this crate.
//!
//! Every variant names the normative statement of the MQTT specification it
//! enforces, so a broker can put the message straight into an audit log or a
//! conformance report. Clause numbers are those of MQTT 3.1.1 where the rule
//! exists there; when MQTT 5.0 numbers the same rule differently the 5.0
//! clause follows in parentheses. Shared subscriptions exist only in 5.0.

use thiserror::Error;

/// Why a string is not a valid topic name, topic filter or shared subscription.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The string is empty.
    #[error("[MQTT-4.7.3-1] topic names and topic filters must be at least one character long")]
    Empty,
    /// The string encodes to more than 65,535 bytes.
    #[error("[MQTT-4.7.3-3] a topic of {len} bytes is too long: topic names and topic filters must not encode to more than 65535 bytes")]
    TooLong {
        /// Length of the rejected string, in bytes.
        len: usize,
    },
    /// The string contains U+0000.
    #[error(
        "[MQTT-4.7.3-2] topic names and topic filters must not include the null character U+0000"
    )]
    NullCharacter,
    /// A topic name (of a PUBLISH or a will) contains `+` or `#`.
    #[error("[MQTT-4.7.1-1] (5.0: [MQTT-4.7.0-1], [MQTT-3.3.2-2]) a topic name must not contain the wildcard characters '+' or '#'")]
    WildcardInTopicName,
    /// `#` appears other than as the whole last level of a filter (`a/#/b`, `a#`).
    #[error("[MQTT-4.7.1-2] (5.0: [MQTT-4.7.1-1]) '#' must be the last character of a topic filter and occupy a whole level")]
    MisplacedMultiLevelWildcard,
    /// `+` shares its level with other characters (`a+`, `+b/c`).
    #[error(
        "[MQTT-4.7.1-3] (5.0: [MQTT-4.7.1-2]) '+' must occupy a whole level of a topic filter"
    )]
    MisplacedSingleLevelWildcard,
    /// `$share//filter`: the ShareName is empty.
    #[error(
        "[MQTT-4.8.2-1] the ShareName of a shared subscription must be at least one character long"
    )]
    EmptyShareName,
    /// The ShareName contains `+` or `#`.
    #[error(
        "[MQTT-4.8.2-2] the ShareName of a shared subscription must not contain '/', '+' or '#'"
    )]
    InvalidShareName,
    /// `$share/name` or `$share/name/`: no topic filter follows the ShareName.
    #[error("[MQTT-4.8.2-2] the ShareName of a shared subscription must be followed by '/' and a topic filter")]
    MissingSharedFilter,
}
