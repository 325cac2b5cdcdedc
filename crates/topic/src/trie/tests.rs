//! Unit tests of the trie: fixed cases, representation changes, pruning and
//! very deep filters. The model-based proptest is in `tests/trie_model.rs`.

use super::*;

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

fn name(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

/// Sorted (key, value) pairs matching `topic`.
fn matches<V: Clone + Ord>(trie: &SubscriptionTrie<u32, V>, topic: &str) -> Vec<(u32, V)> {
    let mut out = Vec::new();
    trie.for_each_match(&name(topic), |k, v| out.push((*k, v.clone())));
    out.sort();
    out
}

/// A trie with key 1 on each filter, valued by the filter.
fn trie_of(filters: &[&'static str]) -> SubscriptionTrie<u32, &'static str> {
    let mut trie = SubscriptionTrie::new();
    for f in filters {
        assert_eq!(trie.insert(&filter(f), 1, *f), None);
    }
    trie
}

fn matching_filters(trie: &SubscriptionTrie<u32, &'static str>, topic: &str) -> Vec<&'static str> {
    let mut out: Vec<_> = matches(trie, topic).into_iter().map(|(_, f)| f).collect();
    out.sort_unstable();
    out
}

#[test]
fn insert_get_replace_remove() {
    let mut trie = SubscriptionTrie::new();
    assert!(trie.is_empty());
    let f = filter("a/+/c");
    assert_eq!(trie.insert(&f, 1u32, "x"), None);
    assert_eq!(trie.insert(&f, 2, "y"), None);
    assert_eq!(trie.insert(&f, 1, "z"), Some("x"));
    assert_eq!(trie.len(), 2);
    assert_eq!(trie.get(&f, &1), Some(&"z"));
    assert_eq!(trie.get(&filter("a/+"), &1), None);
    assert_eq!(trie.get(&filter("a/+/c/#"), &1), None);
    assert_eq!(trie.remove(&f, &3), None);
    assert_eq!(trie.remove(&filter("a/b/c"), &1), None);
    assert_eq!(trie.remove(&filter("a/+/c/#"), &1), None);
    assert_eq!(trie.len(), 2);
    assert_eq!(trie.remove(&f, &1), Some("z"));
    assert_eq!(trie.remove(&f, &1), None);
    assert_eq!(trie.remove(&f, &2), Some("y"));
    assert!(trie.is_empty());
    assert_eq!(trie.node_count(), 1);
}

#[test]
fn exact_and_multi_on_the_same_node_are_distinct() {
    let mut trie = trie_of(&["a", "a/#"]);
    assert_eq!(matching_filters(&trie, "a"), ["a", "a/#"]);
    assert_eq!(matching_filters(&trie, "a/b"), ["a/#"]);
    assert_eq!(trie.remove(&filter("a/#"), &1), Some("a/#"));
    assert_eq!(matching_filters(&trie, "a"), ["a"]);
    assert_eq!(trie.get(&filter("a"), &1), Some(&"a"));
}

#[test]
fn matching_table() {
    let trie = trie_of(&[
        "#",
        "+",
        "+/+",
        "/+",
        "+/#",
        "sport/#",
        "sport/+",
        "sport/tennis/+",
        "sport/tennis/player1/#",
        "$SYS/#",
        "$SYS/+",
        "+/x",
        "a//c",
        "a/+/c",
        "é/ü",
    ]);
    let cases: &[(&str, &[&str])] = &[
        ("sport", &["#", "+", "+/#", "sport/#"]),
        ("sport/", &["#", "+/#", "+/+", "sport/#", "sport/+"]),
        ("sport/tennis", &["#", "+/#", "+/+", "sport/#", "sport/+"]),
        (
            "sport/tennis/player1",
            &[
                "#",
                "+/#",
                "sport/#",
                "sport/tennis/+",
                "sport/tennis/player1/#",
            ],
        ),
        (
            "sport/tennis/player1/ranking",
            &["#", "+/#", "sport/#", "sport/tennis/player1/#"],
        ),
        ("/finance", &["#", "+/#", "+/+", "/+"]),
        ("finance", &["#", "+", "+/#"]),
        ("/", &["#", "+/#", "+/+", "/+"]),
        ("a//c", &["#", "+/#", "a/+/c", "a//c"]),
        ("a/b/c", &["#", "+/#", "a/+/c"]),
        ("x/x", &["#", "+/#", "+/+", "+/x"]),
        ("é/ü", &["#", "+/#", "+/+", "é/ü"]),
        // The $ rule: nothing starting with a wildcard.
        ("$SYS/x", &["$SYS/#", "$SYS/+"]),
        ("$SYS", &["$SYS/#"]),
        ("$SYS/x/y", &["$SYS/#"]),
        ("$other/x", &[]),
        ("$", &[]),
        ("a/$SYS", &["#", "+/#", "+/+"]),
    ];
    for (topic, want) in cases {
        assert_eq!(matching_filters(&trie, topic), *want, "{topic:?}");
    }
}

#[test]
fn many_subscribers_on_one_filter() {
    let mut trie = SubscriptionTrie::new();
    let f = filter("bench/#");
    let n = 200u32; // well past the point where entries get an index
    for k in 0..n {
        assert_eq!(trie.insert(&f, k, k * 10), None);
    }
    assert_eq!(trie.insert(&f, 7, 7), Some(70));
    assert_eq!(trie.len(), n as usize);
    assert_eq!(matches(&trie, "bench/1").len(), n as usize);
    // Remove every other key: the index must follow swap_remove's moves.
    for k in (0..n).step_by(2) {
        assert!(trie.remove(&f, &k).is_some(), "{k}");
    }
    for k in 0..n {
        let want = (k % 2 == 1).then_some(if k == 7 { 7 } else { k * 10 });
        assert_eq!(trie.get(&f, &k).copied(), want, "{k}");
    }
    // Down through the threshold where the index is dropped.
    for k in (1..n).step_by(2).take(95) {
        assert!(trie.remove(&f, &k).is_some(), "{k}");
    }
    let left: Vec<u32> = matches(&trie, "bench")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, [191, 193, 195, 197, 199]);
    for k in left {
        assert!(trie.remove(&f, &k).is_some());
    }
    assert!(trie.is_empty());
    assert_eq!(trie.node_count(), 1);
}

#[test]
fn many_children_switch_representation_both_ways() {
    let mut trie = SubscriptionTrie::new();
    let filters: Vec<TopicFilter> = (0..100).map(|i| filter(&format!("t/{i}/x"))).collect();
    for (i, f) in filters.iter().enumerate() {
        trie.insert(f, 0u32, i);
    }
    for (i, f) in filters.iter().enumerate() {
        assert_eq!(trie.get(f, &0), Some(&i));
        let mut got = Vec::new();
        trie.for_each_match(&name(&format!("t/{i}/x")), |_, v| got.push(*v));
        assert_eq!(got, [i]);
    }
    for (i, f) in filters.iter().enumerate().rev() {
        assert_eq!(trie.remove(f, &0), Some(i));
        // Everything not yet removed is still found after each demotion.
        if i % 7 == 0 {
            for (j, g) in filters.iter().enumerate().take(i) {
                assert_eq!(trie.get(g, &0), Some(&j));
            }
        }
    }
    assert_eq!(trie.node_count(), 1);
}

#[test]
fn remove_prunes_only_what_is_empty() {
    let mut trie = trie_of(&["a/b/c/d", "a/b", "a/+/c", "x/#"]);
    let base = trie.node_count();
    trie.insert(&filter("a/b/c/d/e/f/g"), 1, "deep");
    assert_eq!(trie.node_count(), base + 3);
    trie.remove(&filter("a/b/c/d/e/f/g"), &1);
    assert_eq!(trie.node_count(), base);
    // a/b keeps its node (it has entries) but c/d go.
    trie.remove(&filter("a/b/c/d"), &1);
    assert_eq!(trie.node_count(), base - 2);
    assert_eq!(matching_filters(&trie, "a/b"), ["a/b"]);
    assert_eq!(matching_filters(&trie, "a/z/c"), ["a/+/c"]);
    trie.remove(&filter("a/b"), &1);
    trie.remove(&filter("a/+/c"), &1);
    trie.remove(&filter("x/#"), &1);
    assert_eq!(trie.node_count(), 1);
    assert!(trie.is_empty());
}

#[test]
fn churn_does_not_grow_the_trie() {
    let mut trie = SubscriptionTrie::new();
    trie.insert(&filter("keep/#"), 0u32, ());
    let base = trie.node_count();
    for round in 0..50u32 {
        for i in 0..40u32 {
            let f = filter(&format!("c/{round}/{i}/+/#"));
            trie.insert(&f, i, ());
        }
        for i in 0..40u32 {
            let f = filter(&format!("c/{round}/{i}/+/#"));
            assert_eq!(trie.remove(&f, &i), Some(()));
        }
    }
    assert_eq!(trie.node_count(), base);
    assert_eq!(trie.len(), 1);
}

#[test]
fn very_deep_filters_do_not_overflow_the_stack() {
    // The longest possible chain: 32,768 levels. Test threads have a 2 MiB
    // stack; recursion per level would overflow it.
    let plus = format!("{}+", "+/".repeat(32_767));
    let empty = "/".repeat(32_767);
    let hash = format!("{}#", "/".repeat(32_767));
    let mut trie = SubscriptionTrie::new();
    trie.insert(&filter(&plus), 1u32, "plus");
    trie.insert(&filter(&empty), 2, "empty");
    trie.insert(&filter(&hash), 3, "hash");
    assert_eq!(
        matches(&trie, &empty),
        [(1, "plus"), (2, "empty"), (3, "hash")]
    );
    assert_eq!(trie.remove(&filter(&empty), &2), Some("empty"));
    assert_eq!(matches(&trie, &empty), [(1, "plus"), (3, "hash")]);
    assert_eq!(trie.remove(&filter(&plus), &1), Some("plus"));
    assert_eq!(trie.node_count(), 32_768);
    // Dropping the remaining chain must not recurse either.
    drop(trie);
}

#[test]
fn debug_does_not_need_debug_entries() {
    struct Opaque;
    let mut trie = SubscriptionTrie::new();
    trie.insert(&filter("a"), 1u8, Opaque);
    assert_eq!(format!("{trie:?}"), "SubscriptionTrie { len: 1, .. }");
}

#[test]
fn node_stays_small() {
    // The whole node fits in 96 bytes on 64-bit targets: boxed maps and
    // vectors, not inline hash tables (which would make it over 200).
    if cfg!(target_pointer_width = "64") {
        assert_eq!(std::mem::size_of::<Node<u64, ()>>(), 96);
    }
}
