//! Model-based test of the subscription trie: random inserts and removes over
//! a small alphabet of levels, checked against a plain map and the reference
//! matcher `TopicFilter::matches`, which is itself checked against a naive
//! recursive matcher written here.

use std::collections::HashMap;

use bulwark_topic::{SubscriptionTrie, TopicFilter, TopicName};
use proptest::prelude::*;

/// Levels topics are made of; `$s` exercises the $ rule when first, `""` the
/// empty level, `é` a multi-byte first character.
const TOPIC_LEVELS: &[&str] = &["a", "b", "", "$s", "é"];

fn topic_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOPIC_LEVELS), 1..5)
        .prop_map(|l| l.join("/"))
        .prop_filter("topics are non-empty", |t| !t.is_empty())
}

fn filter_strategy() -> impl Strategy<Value = String> + Clone {
    filter_strategy_over(&["a", "b", "", "$s", "é", "+", "+"])
}

fn filter_strategy_over(levels: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    let level = prop::sample::select(levels);
    (prop::collection::vec(level, 0..4), any::<bool>())
        .prop_map(|(levels, hash)| match (levels.is_empty(), hash) {
            (true, _) => "#".to_owned(),
            (false, true) => format!("{}/#", levels.join("/")),
            (false, false) => levels.join("/"),
        })
        .prop_filter("filters are non-empty", |f| !f.is_empty())
}

/// Wide levels: enough distinct children per node to switch the trie's child
/// representation, used with many keys to index the entries of one filter.
const WIDE_LEVELS: &[&str] = &[
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "+", "+", "+",
];

/// Wide filters, with a few hot ones that collect many keys each.
fn wide_filter_strategy() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => filter_strategy_over(WIDE_LEVELS),
        2 => prop::sample::select(&["0/#", "+/1"][..]).prop_map(str::to_owned),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Insert(String, u8, u32),
    Remove(String, u8),
}

fn op_strategy(
    filters: impl Strategy<Value = String> + Clone,
    keys: u8,
) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (filters.clone(), 0..keys, any::<u32>()).prop_map(|(f, k, v)| Op::Insert(f, k, v)),
        2 => (filters, 0..keys).prop_map(|(f, k)| Op::Remove(f, k)),
    ]
}

/// Naive matcher over level slices, without the $ rule.
fn naive_levels(filter: &[&str], topic: &[&str]) -> bool {
    match (filter.split_first(), topic.split_first()) {
        (Some((&"#", _)), _) => true,
        (Some((&"+", f)), Some((_, t))) => naive_levels(f, t),
        (Some((fl, f)), Some((tl, t))) => fl == tl && naive_levels(f, t),
        (None, None) => true,
        _ => false,
    }
}

fn naive_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    naive_levels(&f, &t)
}

type Trie = SubscriptionTrie<u8, (String, u32)>;
type Model = HashMap<(String, u8), u32>;

fn check_topic(trie: &Trie, model: &Model, topic: &str) {
    let name = TopicName::new(topic).unwrap();
    let mut got = Vec::new();
    trie.for_each_match(&name, |k, (f, v)| got.push((f.clone(), *k, *v)));
    got.sort();
    let mut want: Vec<_> = model
        .iter()
        .filter(|((f, _), _)| TopicFilter::new(f.as_str()).unwrap().matches(&name))
        .map(|((f, k), v)| (f.clone(), *k, *v))
        .collect();
    want.sort();
    assert_eq!(got, want, "topic {topic:?}");
}

/// Applies `ops` to the trie and to a map, checking every answer, then
/// empties the trie, checking matches on the way down.
fn run_model(ops: Vec<Op>, topics: &[String]) -> Result<(), TestCaseError> {
    let mut trie = Trie::new();
    let mut model = Model::new();
    for op in ops {
        match op {
            Op::Insert(f, k, v) => {
                let filter = TopicFilter::new(f.as_str()).unwrap();
                let got = trie.insert(&filter, k, (f.clone(), v)).map(|(_, v)| v);
                prop_assert_eq!(got, model.insert((f, k), v));
            }
            Op::Remove(f, k) => {
                let filter = TopicFilter::new(f.as_str()).unwrap();
                let got = trie.remove(&filter, &k).map(|(_, v)| v);
                prop_assert_eq!(got, model.remove(&(f, k)));
            }
        }
        prop_assert_eq!(trie.len(), model.len());
        prop_assert_eq!(trie.is_empty(), model.is_empty());
    }
    for ((f, k), v) in &model {
        let filter = TopicFilter::new(f.as_str()).unwrap();
        prop_assert_eq!(trie.get(&filter, k).map(|(_, v)| *v), Some(*v));
    }
    for topic in topics {
        check_topic(&trie, &model, topic);
    }
    // Empty it in a different order than it was filled; matching must
    // stay right on the way down.
    let mut keys: Vec<_> = model.keys().cloned().collect();
    keys.sort();
    for (i, (f, k)) in keys.into_iter().enumerate() {
        let filter = TopicFilter::new(f.as_str()).unwrap();
        prop_assert!(trie.remove(&filter, &k).is_some());
        model.remove(&(f, k));
        if i % 3 == 0 {
            for topic in topics {
                check_topic(&trie, &model, topic);
            }
        }
    }
    prop_assert!(trie.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn filter_matches_agrees_with_naive(filter in filter_strategy(), topic in topic_strategy()) {
        let f = TopicFilter::new(filter.as_str()).unwrap();
        let t = TopicName::new(topic.as_str()).unwrap();
        prop_assert_eq!(f.matches(&t), naive_matches(&filter, &topic));
    }

    #[test]
    fn trie_agrees_with_model(
        ops in prop::collection::vec(op_strategy(filter_strategy(), 4), 1..60),
        topics in prop::collection::vec(topic_strategy(), 1..20),
    ) {
        run_model(ops, &topics)?;
    }
}

proptest! {
    // Each case is long; fewer of them keep the debug-build test under seconds.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn wide_trie_agrees_with_model(
        ops in prop::collection::vec(op_strategy(wide_filter_strategy(), 40), 200..500),
        topics in prop::collection::vec(
            prop::collection::vec(prop::sample::select(&WIDE_LEVELS[..12]), 1..5)
                .prop_map(|l| l.join("/")),
            1..20,
        ),
    ) {
        run_model(ops, &topics)?;
    }
}
