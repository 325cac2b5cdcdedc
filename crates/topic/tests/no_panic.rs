//! Parsing never panics, whatever the input, and the parsers agree with one
//! another on what they accept.

use bulwark_topic::{parse_subscription, SubscriptionTrie, TopicFilter, TopicName};
use proptest::prelude::*;

/// Strings built from the characters the parsers care about, multi-byte ones
/// included, so that interesting cases are common.
fn tricky_string() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(
        &[
            "a", "/", "+", "#", "$", "$share/", "$share", "\0", "é", "🦀", "日", " ", "s",
        ][..],
    );
    prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), tricky_string()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn parsers_never_panic_and_agree(s in any_input()) {
        let name = TopicName::new(s.as_str());
        let filter = TopicFilter::new(s.as_str());
        let parsed = parse_subscription(&s);

        if let Ok(name) = &name {
            // A valid name is a valid filter that matches itself.
            let f = filter.as_ref().expect("a valid name is a valid filter");
            prop_assert!(!f.has_wildcards());
            prop_assert!(f.matches(name));
            prop_assert_eq!(name.as_str(), s.as_str());
            prop_assert_eq!(name.levels().count(), s.split('/').count());
        }
        if let Ok(f) = &filter {
            prop_assert_eq!(name.is_ok(), !f.has_wildcards());
        }
        match &parsed {
            Ok(p) => match &p.share_group {
                Some(group) => {
                    prop_assert_eq!(format!("$share/{group}/{}", p.filter), s.as_str());
                    prop_assert!(!group.is_empty());
                    prop_assert!(!group.contains(['/', '+', '#']));
                }
                None => prop_assert_eq!(Some(&p.filter), filter.as_ref().ok()),
            },
            Err(e) => {
                if !s.starts_with("$share/") {
                    prop_assert_eq!(Some(e), filter.as_ref().err());
                }
                // Every error names its clause.
                prop_assert!(e.to_string().starts_with("[MQTT-"));
            }
        }
    }

    #[test]
    fn matching_arbitrary_valid_inputs_never_panics(f in tricky_string(), t in tricky_string()) {
        if let (Ok(f), Ok(t)) = (TopicFilter::new(f), TopicName::new(t)) {
            let mut trie = SubscriptionTrie::new();
            trie.insert(&f, 0u8, ());
            let mut hits = 0;
            trie.for_each_match(&t, |_, _| hits += 1);
            prop_assert_eq!(hits == 1, f.matches(&t));
            prop_assert_eq!(trie.remove(&f, &0), Some(()));
            prop_assert!(trie.is_empty());
        }
    }
}
