//! Topics for Bulwark: validated names and filters, shared-subscription
//! parsing and the subscription index. Shared by the router and the ACL;
//! depends on nothing else of ours.
//!
//! - [`name`]: [`TopicName`], the topic of a PUBLISH.
//! - [`filter`]: [`TopicFilter`] and its reference matcher.
//! - [`shared`]: [`parse_subscription`], `$share/{group}/{filter}`.
//! - [`trie`]: [`SubscriptionTrie`], filters to subscribers, matched per message.
//! - [`error`]: [`TopicError`], each variant naming the clause it enforces.
//!
//! Invariants: a value of these types is valid by construction (parse once,
//! at the edge); no input makes any function here panic, index out of bounds
//! or recurse once per topic level.
#![deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod error;
pub mod filter;
pub mod name;
pub mod shared;
pub mod trie;

pub use error::TopicError;
pub use filter::TopicFilter;
pub use name::{TopicName, MAX_TOPIC_LEN};
pub use shared::{parse_subscription, ParsedFilter};
pub use trie::SubscriptionTrie;
