//! Rough timings behind the trie's design choices; not a test.
//!
//! `taskset -c 1 cargo run --release -p bulwark-topic --example trie_bench`
//!
//! 1. Child lookup: a linear scan of `Vec<(Box<str>, _)>` against a
//!    `HashMap<Box<str>, _>` with the standard hasher, by number of children.
//!    This sets `FEW_CHILDREN` in `src/trie.rs`.
//! 2. End-to-end `for_each_match` on the shapes the broker sees: many
//!    subscribers on one `#` filter, and 10,000 distinct filters with one
//!    subscriber each.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use bulwark_topic::{SubscriptionTrie, TopicFilter, TopicName};

fn ns_per<F: FnMut() -> usize>(iters: usize, mut f: F) -> f64 {
    let mut sink = 0;
    // Warm up, then time.
    for _ in 0..iters / 10 {
        sink += f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        sink += f();
    }
    black_box(sink);
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn child_lookup() {
    println!("children  scan ns  hash ns");
    for n in [2, 4, 8, 12, 16, 32] {
        let names: Vec<String> = (0..n).map(|i| format!("sensor-{i:04}")).collect();
        let vec: Vec<(Box<str>, usize)> = names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str().into(), i))
            .collect();
        let map: HashMap<Box<str>, usize> = vec.iter().cloned().collect();
        let mut i = 0;
        let scan = ns_per(2_000_000, || {
            i = (i + 7) % n;
            let key = black_box(names[i].as_str());
            vec.iter().find(|(k, _)| **k == *key).map_or(0, |(_, v)| *v)
        });
        let hash = ns_per(2_000_000, || {
            i = (i + 7) % n;
            let key = black_box(names[i].as_str());
            map.get(key).copied().unwrap_or(0)
        });
        println!("{n:>8}  {scan:>7.1}  {hash:>7.1}");
    }
}

fn end_to_end() {
    let mut fan_out = SubscriptionTrie::new();
    let bench = TopicFilter::new("bench/#").unwrap();
    for session in 0..50u32 {
        fan_out.insert(&bench, session, ());
    }
    let topic = TopicName::new("bench/load/3").unwrap();
    let ns = ns_per(1_000_000, || {
        let mut n = 0;
        fan_out.for_each_match(&topic, |_, _| n += 1);
        n
    });
    println!("50 sessions on bench/#:            {ns:>6.1} ns per match of 50");

    let mut distinct = SubscriptionTrie::new();
    for i in 0..10_000u32 {
        let f = TopicFilter::new(format!("site/{}/device/{}/+", i % 100, i)).unwrap();
        distinct.insert(&f, i, ());
    }
    distinct.insert(&TopicFilter::new("site/+/device/#").unwrap(), 10_000, ());
    let topics: Vec<TopicName> = (0..1000u32)
        .map(|i| TopicName::new(format!("site/{}/device/{}/temp", i % 100, i * 7)).unwrap())
        .collect();
    let mut t = 0;
    let ns = ns_per(1_000_000, || {
        t = (t + 1) % topics.len();
        let mut n = 0;
        distinct.for_each_match(&topics[t], |_, _| n += 1);
        n
    });
    println!("10,000 distinct filters + 1 wild:  {ns:>6.1} ns per match");
}

fn main() {
    child_lookup();
    end_to_end();
}
