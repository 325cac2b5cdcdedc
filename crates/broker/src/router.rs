//! The subscription index and fan-out: who receives a published message.
//!
//! The index is read-mostly: every PUBLISH takes the read lock once to
//! collect its targets, then releases it before touching any session, so
//! publishers never serialise on a write lock and a slow session never holds
//! the index.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bulwark_codec::{QoS, SubscriptionOptions};
use bulwark_topic::SubscriptionTrie;

use crate::message::{Delivery, Message, SharedTag};
use crate::registry::SessionHandle;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum SubKey {
    Client(Arc<str>),
    Group(Arc<str>),
}

#[derive(Debug, Clone)]
pub(crate) struct DirectSub {
    pub session: Arc<SessionHandle>,
    pub options: SubscriptionOptions,
    pub identifier: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct SharedGroup {
    pub tag: Arc<SharedTag>,
    pub members: Vec<DirectSub>,
    cursor: AtomicUsize,
}

impl SharedGroup {
    pub fn new(tag: Arc<SharedTag>, members: Vec<DirectSub>) -> Self {
        SharedGroup {
            tag,
            members,
            cursor: AtomicUsize::new(0),
        }
    }

    /// Round robin over the members, skipping those offline while any member
    /// is online, so messages are spread and not parked with an absent one.
    pub fn choose(&self, exclude: Option<&Arc<SessionHandle>>) -> Option<&DirectSub> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let eligible = |m: &&DirectSub| exclude.is_none_or(|x| !Arc::ptr_eq(x, &m.session));
        let online = (0..n)
            .filter_map(|i| self.members.get((start + i) % n))
            .filter(eligible)
            .find(|m| m.session.is_online());
        online.or_else(|| {
            (0..n)
                .filter_map(|i| self.members.get((start + i) % n))
                .find(eligible)
        })
    }
}

#[derive(Debug)]
pub(crate) enum SubValue {
    Direct(DirectSub),
    Shared(SharedGroup),
}

pub(crate) type Index = SubscriptionTrie<SubKey, SubValue>;

/// One session's share of a message.
pub(crate) struct Target {
    pub session: Arc<SessionHandle>,
    pub delivery: Delivery,
}

fn granted(message: &Arc<Message>, options: &SubscriptionOptions) -> (QoS, bool) {
    let qos = message.qos.min(options.qos);
    // Retain As Published keeps the flag; otherwise forwarded messages go out
    // with retain 0 [MQTT-3.3.1-12, MQTT-3.3.1-13].
    (qos, options.retain_as_published && message.retain)
}

/// Collects who receives `message`. Overlapping subscriptions of one session
/// yield one delivery at the highest granted QoS carrying every matching
/// subscription identifier [MQTT-3.3.4-2, MQTT-3.3.4-3]; each shared group
/// yields one delivery to one member.
pub(crate) fn targets(
    index: &Index,
    message: &Arc<Message>,
    origin: Option<&Arc<SessionHandle>>,
) -> Vec<Target> {
    let mut direct: Vec<Target> = Vec::new();
    let mut shared: Vec<Target> = Vec::new();
    index.for_each_match(&message.topic, |_, value| match value {
        SubValue::Direct(sub) => {
            if sub.options.no_local && origin.is_some_and(|o| Arc::ptr_eq(o, &sub.session)) {
                return;
            }
            let (qos, retain) = granted(message, &sub.options);
            direct.push(Target {
                session: sub.session.clone(),
                delivery: Delivery {
                    message: message.clone(),
                    qos,
                    retain,
                    subscription_ids: sub.identifier.into_iter().collect(),
                    shared: None,
                },
            });
        }
        SubValue::Shared(group) => {
            if let Some(sub) = group.choose(None) {
                let (qos, retain) = granted(message, &sub.options);
                shared.push(Target {
                    session: sub.session.clone(),
                    delivery: Delivery {
                        message: message.clone(),
                        qos,
                        retain,
                        subscription_ids: sub.identifier.into_iter().collect(),
                        shared: Some(group.tag.clone()),
                    },
                });
            }
        }
    });
    if direct.len() > 1 {
        direct = merge_overlapping(direct);
    }
    direct.extend(shared);
    direct
}

fn merge_overlapping(mut targets: Vec<Target>) -> Vec<Target> {
    targets.sort_by_key(|t| Arc::as_ptr(&t.session) as usize);
    let mut merged: Vec<Target> = Vec::with_capacity(targets.len());
    for t in targets {
        match merged.last_mut() {
            Some(last) if Arc::ptr_eq(&last.session, &t.session) => {
                let d = &mut last.delivery;
                d.qos = d.qos.max(t.delivery.qos);
                d.retain |= t.delivery.retain;
                d.subscription_ids.extend(t.delivery.subscription_ids);
            }
            _ => merged.push(t),
        }
    }
    merged
}

/// Picks another member of a shared group for a message its previous member
/// left unacknowledged.
pub(crate) fn reassign(
    index: &Index,
    tag: &SharedTag,
    leaving: &Arc<SessionHandle>,
) -> Option<DirectSub> {
    let key = SubKey::Group(Arc::from(tag.group.as_str()));
    match index.get(&tag.filter, &key) {
        Some(SubValue::Shared(group)) => group.choose(Some(leaving)).cloned(),
        _ => None,
    }
}

pub(crate) fn shared_key(group: &str) -> SubKey {
    SubKey::Group(Arc::from(group))
}
