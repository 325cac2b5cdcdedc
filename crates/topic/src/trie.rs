//! The subscription index: topic filters to the entries (one per key, e.g.
//! per session) subscribed with them, and the match of a topic name against
//! all of them.
//!
//! Shape: one node per filter level. A node has its literal children, a
//! separate `+` child, the entries of filters ending at it (`exact`) and the
//! entries of filters ending with `#` right below it (`multi`: `a/#` lives in
//! node `a`, `#` in the root). A filter therefore has exactly one place, so
//! every matching filter is reported once.
//!
//! Invariants:
//! - `len` is the number of (filter, key) entries.
//! - Apart from the root, no node is empty (no entries and no children):
//!   [`SubscriptionTrie::remove`] prunes, so memory follows the live
//!   subscriptions, not their history.
//! - Nothing recurses over levels. A client can subscribe to a filter of
//!   32,768 levels (`+/+/...`); matching uses an explicit stack (inline for
//!   normal depths, so a match allocates nothing), and nodes are dropped
//!   iteratively.
//!
//! Literal levels are hashed with the standard, randomly keyed hasher: filter
//! levels come from clients, and a predictable hash would let one client
//! degrade every lookup.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::mem;

use crate::{TopicFilter, TopicName};

/// Up to this many literal children are kept in a vector and scanned; beyond,
/// a hash map. Measured with `examples/trie_bench.rs` (release, one pinned
/// core, equal-length levels, the scan's worst case): scan 6 ns at 2
/// children, 14 ns at 8, 20 ns at 12, 27 ns at 16; SipHash lookup 20-21 ns
/// throughout. The vector is also far smaller.
const FEW_CHILDREN: usize = 12;

/// From this many entries on one filter, an index by key keeps insert and
/// remove O(1); below it a scan is cheaper and smaller.
const INDEXED_ENTRIES: usize = 16;

/// Depth of the match stack kept on the call stack. The DFS holds at most one
/// frame per level plus one, so topics of up to 31 levels never allocate.
const INLINE_FRAMES: usize = 32;

/// Subscription index: maps topic filters to entries keyed by `K` (e.g. a
/// session key). Matching is read-only and does not allocate for topics of
/// normal depth.
pub struct SubscriptionTrie<K, V> {
    root: Node<K, V>,
    len: usize,
}

impl<K: Eq + Hash + Clone, V> SubscriptionTrie<K, V> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            root: Node::new(),
            len: 0,
        }
    }

    /// Inserts or replaces the entry of `key` on `filter`; returns the
    /// previous value.
    pub fn insert(&mut self, filter: &TopicFilter, key: K, value: V) -> Option<V> {
        let (path, multi) = split_filter(filter.as_str());
        let mut node = &mut self.root;
        for level in path {
            node = node.child_or_insert(level);
        }
        let previous = node.entries_mut(multi).insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes the entry of `key` on `filter`, pruning nodes left empty.
    pub fn remove(&mut self, filter: &TopicFilter, key: &K) -> Option<V> {
        let (path, multi) = split_filter(filter.as_str());
        let mut node = &mut self.root;
        for level in path.clone() {
            node = node.child_mut(level)?;
        }
        let removed = node.entries_mut(multi).remove(key)?;
        self.len -= 1;
        if node.is_empty() {
            self.prune(path);
        }
        Some(removed)
    }

    /// The value of `key` on `filter`, if subscribed.
    pub fn get(&self, filter: &TopicFilter, key: &K) -> Option<&V> {
        let (path, multi) = split_filter(filter.as_str());
        let mut node = &self.root;
        for level in path {
            node = node.child(level)?;
        }
        node.entries(multi).get(key)
    }

    /// Calls `f` for every (filter, key, value) whose filter matches `topic`
    /// (with the `$` rule [MQTT-4.7.2-1]); each matching filter once.
    pub fn for_each_match<F: FnMut(&K, &V)>(&self, topic: &TopicName, mut f: F) {
        let (first, rest) = split_level(topic.as_str());
        let mut stack = Stack::new();
        let root = &self.root;
        // The $ rule: wildcards at the first level do not reach $ topics.
        if !topic.is_dollar() {
            root.multi.for_each(&mut f);
            if let Some(plus) = &root.plus {
                stack.push(Frame { node: plus, rest });
            }
        }
        if let Some(child) = root.children.get(first) {
            stack.push(Frame { node: child, rest });
        }
        while let Some(Frame { node, rest }) = stack.pop() {
            node.multi.for_each(&mut f);
            match rest {
                None => node.exact.for_each(&mut f),
                Some(rest) => {
                    let (level, rest) = split_level(rest);
                    if let Some(plus) = &node.plus {
                        stack.push(Frame { node: plus, rest });
                    }
                    if let Some(child) = node.children.get(level) {
                        stack.push(Frame { node: child, rest });
                    }
                }
            }
        }
    }

    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes, root included; for tests of pruning.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 0;
        let mut work = vec![&self.root];
        while let Some(node) = work.pop() {
            count += 1;
            work.extend(node.plus.as_deref());
            match &node.children {
                Children::Few(v) => work.extend(v.iter().map(|(_, n)| n)),
                Children::Many(m) => work.extend(m.values()),
            }
        }
        count
    }

    /// Cuts the chain of nodes that `path` leads to, now that its last node
    /// is empty: from the deepest ancestor that keeps something else (or the
    /// root), remove the edge down the path.
    fn prune<'a>(&mut self, path: impl Iterator<Item = &'a str> + Clone) {
        // Depth of the node to cut from, and the level of the edge to cut.
        let mut cut: Option<(usize, &str)> = None;
        let mut node = &self.root;
        for (depth, level) in path.clone().enumerate() {
            if depth == 0 || !node.is_single_chain() {
                cut = Some((depth, level));
            }
            match node.child(level) {
                Some(child) => node = child,
                None => return,
            }
        }
        let Some((cut_depth, cut_level)) = cut else {
            return; // the root itself: never removed
        };
        let mut node = &mut self.root;
        for level in path.take(cut_depth) {
            match node.child_mut(level) {
                Some(child) => node = child,
                None => return,
            }
        }
        // Dropped here; Node's Drop takes the chain apart iteratively.
        drop(node.remove_child(cut_level));
    }
}

impl<K: Eq + Hash + Clone, V> Default for SubscriptionTrie<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for SubscriptionTrie<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionTrie")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;

/// The levels of the path a filter is stored under, and whether it is stored
/// as a `#` entry. `"#"` has no path; `"a/#"` is `a` with `#`.
fn split_filter(filter: &str) -> (impl Iterator<Item = &str> + Clone, bool) {
    let (path, multi) = if filter == "#" {
        (None, true)
    } else if let Some(prefix) = filter.strip_suffix("/#") {
        (Some(prefix), true)
    } else {
        (Some(filter), false)
    };
    (path.into_iter().flat_map(|p| p.split('/')), multi)
}

/// The first level of `s` and the remainder after its `/`, if any.
fn split_level(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((level, rest)) => (level, Some(rest)),
        None => (s, None),
    }
}

struct Node<K, V> {
    children: Children<K, V>,
    plus: Option<Box<Node<K, V>>>,
    /// Filters ending at this node.
    exact: Entries<K, V>,
    /// Filters ending with `#` below this node.
    multi: Entries<K, V>,
}

impl<K, V> Node<K, V> {
    fn new() -> Self {
        Self {
            children: Children::Few(Vec::new()),
            plus: None,
            exact: Entries::new(),
            multi: Entries::new(),
        }
    }

    fn child(&self, level: &str) -> Option<&Self> {
        if level == "+" {
            self.plus.as_deref()
        } else {
            self.children.get(level)
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Self> {
        if level == "+" {
            self.plus.as_deref_mut()
        } else {
            self.children.get_mut(level)
        }
    }

    fn child_or_insert(&mut self, level: &str) -> &mut Self {
        if level == "+" {
            self.plus.get_or_insert_with(|| Box::new(Self::new()))
        } else {
            self.children.get_or_insert(level)
        }
    }

    fn remove_child(&mut self, level: &str) -> Option<Self> {
        if level == "+" {
            self.plus.take().map(|b| *b)
        } else {
            self.children.remove(level)
        }
    }

    fn entries(&self, multi: bool) -> &Entries<K, V> {
        if multi {
            &self.multi
        } else {
            &self.exact
        }
    }

    fn entries_mut(&mut self, multi: bool) -> &mut Entries<K, V> {
        if multi {
            &mut self.multi
        } else {
            &mut self.exact
        }
    }

    fn has_entries(&self) -> bool {
        !self.exact.is_empty() || !self.multi.is_empty()
    }

    fn child_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }

    fn is_empty(&self) -> bool {
        !self.has_entries() && self.child_count() == 0
    }

    /// Holds nothing but the one child on the way down: goes if that child goes.
    fn is_single_chain(&self) -> bool {
        !self.has_entries() && self.child_count() == 1
    }

    fn drain_children_into(&mut self, out: &mut Vec<Self>) {
        if let Some(plus) = self.plus.take() {
            out.push(*plus);
        }
        match mem::replace(&mut self.children, Children::Few(Vec::new())) {
            Children::Few(v) => out.extend(v.into_iter().map(|(_, n)| n)),
            Children::Many(m) => out.extend(m.into_values()),
        }
    }
}

// Dropping a deep chain recursively could overflow the stack (a filter may
// have 32,768 levels), so children are moved to a work list first.
impl<K, V> Drop for Node<K, V> {
    fn drop(&mut self) {
        if self.child_count() == 0 {
            return;
        }
        let mut work = Vec::new();
        self.drain_children_into(&mut work);
        while let Some(mut node) = work.pop() {
            node.drain_children_into(&mut work);
        }
    }
}

/// Literal children of a node, keyed by level.
// The map is boxed on purpose: most nodes have a vector of few children, and
// an inline map would more than double the size of every node (see the
// `node_stays_small` test).
#[allow(clippy::box_collection)]
enum Children<K, V> {
    Few(Vec<(Box<str>, Node<K, V>)>),
    Many(Box<HashMap<Box<str>, Node<K, V>>>),
}

impl<K, V> Children<K, V> {
    fn len(&self) -> usize {
        match self {
            Self::Few(v) => v.len(),
            Self::Many(m) => m.len(),
        }
    }

    fn get(&self, level: &str) -> Option<&Node<K, V>> {
        match self {
            Self::Few(v) => v.iter().find(|(k, _)| **k == *level).map(|(_, n)| n),
            Self::Many(m) => m.get(level),
        }
    }

    fn get_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        match self {
            Self::Few(v) => v.iter_mut().find(|(k, _)| **k == *level).map(|(_, n)| n),
            Self::Many(m) => m.get_mut(level),
        }
    }

    fn get_or_insert(&mut self, level: &str) -> &mut Node<K, V> {
        if let Self::Few(v) = self {
            if v.len() >= FEW_CHILDREN && !v.iter().any(|(k, _)| **k == *level) {
                *self = Self::Many(Box::new(v.drain(..).collect()));
            }
        }
        match self {
            Self::Few(v) => {
                let i = match v.iter().position(|(k, _)| **k == *level) {
                    Some(i) => i,
                    None => {
                        v.push((level.into(), Node::new()));
                        v.len() - 1
                    }
                };
                // `i` was just found or pushed, so it is in bounds; returning a
                // reference from `position`'s match arm directly is what the
                // borrow checker refuses (NLL problem case 3).
                #[allow(clippy::indexing_slicing)]
                &mut v[i].1
            }
            Self::Many(m) => m.entry(level.into()).or_insert_with(Node::new),
        }
    }

    fn remove(&mut self, level: &str) -> Option<Node<K, V>> {
        match self {
            Self::Few(v) => {
                let i = v.iter().position(|(k, _)| **k == *level)?;
                let (_, node) = v.swap_remove(i);
                if v.is_empty() {
                    *v = Vec::new(); // give the capacity back
                }
                Some(node)
            }
            Self::Many(m) => {
                let node = m.remove(level)?;
                // Back to a vector well below the threshold, so churn around
                // it does not flip the representation on every call.
                if m.len() <= FEW_CHILDREN / 2 {
                    *self = Self::Few(m.drain().collect());
                }
                Some(node)
            }
        }
    }
}

/// The entries on one filter: a vector, plus an index by key once there are
/// many (e.g. thousands of sessions on `broadcast/#`).
struct Entries<K, V> {
    items: Vec<(K, V)>,
    // Boxed: a node has two `Entries`, nearly always without an index.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<K, usize>>>,
}

impl<K, V> Entries<K, V> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            index: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn for_each<F: FnMut(&K, &V)>(&self, f: &mut F) {
        for (k, v) in &self.items {
            f(k, v);
        }
    }
}

impl<K: Eq + Hash + Clone, V> Entries<K, V> {
    fn position(&self, key: &K) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.items.iter().position(|(k, _)| k == key),
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.items.get(self.position(key)?).map(|(_, v)| v)
    }

    fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(slot) = self.position(&key).and_then(|i| self.items.get_mut(i)) {
            return Some(mem::replace(&mut slot.1, value));
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.items.len());
        }
        self.items.push((key, value));
        if self.index.is_none() && self.items.len() >= INDEXED_ENTRIES {
            let index = self
                .items
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i));
            self.index = Some(Box::new(index.collect()));
        }
        None
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.position(key)?;
        if i >= self.items.len() {
            return None;
        }
        let (_, value) = self.items.swap_remove(i);
        if let Some(index) = &mut self.index {
            index.remove(key);
            // The last item moved into the hole.
            if let Some((moved, _)) = self.items.get(i) {
                if let Some(slot) = index.get_mut(moved) {
                    *slot = i;
                }
            }
            if self.items.len() < INDEXED_ENTRIES / 2 {
                self.index = None;
            }
        }
        // Shed capacity left by a burst of subscribers that has gone.
        if self.items.len() * 4 <= self.items.capacity() {
            self.items.shrink_to(self.items.len() * 2);
        }
        Some(value)
    }
}

/// One pending node of the match: the node and the topic levels still to
/// consume (`None` once all are consumed).
struct Frame<'a, K, V> {
    node: &'a Node<K, V>,
    rest: Option<&'a str>,
}

// Manual impls: derive would demand K: Copy and V: Copy.
impl<K, V> Clone for Frame<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Frame<'_, K, V> {}

/// A LIFO of frames: the first [`INLINE_FRAMES`] on the call stack, the rest
/// (only for very deep topics) in a vector.
struct Stack<'a, K, V> {
    inline: [Option<Frame<'a, K, V>>; INLINE_FRAMES],
    len: usize,
    spill: Vec<Frame<'a, K, V>>,
}

impl<'a, K, V> Stack<'a, K, V> {
    fn new() -> Self {
        Self {
            inline: [None; INLINE_FRAMES],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, frame: Frame<'a, K, V>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(frame);
                self.len += 1;
            }
            None => self.spill.push(frame),
        }
    }

    fn pop(&mut self) -> Option<Frame<'a, K, V>> {
        if let Some(frame) = self.spill.pop() {
            return Some(frame);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline.get_mut(self.len).and_then(Option::take)
    }
}
