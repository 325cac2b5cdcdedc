//! The broker: the session registry, the subscription index, retained
//! messages and wills. Connections call into it; it never touches sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bulwark_codec::{QoS, ReasonCode, RetainHandling, SubscriptionOptions};
use bulwark_topic::{ParsedFilter, TopicFilter, TopicName};

use crate::admission::Admission;
use crate::limit_hits::LimitKind;
use crate::limits::Limits;
use crate::message::{Delivery, Message, SharedTag};
use crate::registry::SessionHandle;
use crate::router::{self, DirectSub, Index, SharedGroup, SubKey, SubValue};
use crate::session::{Full, Subscription};
use crate::stats::Stats;
use crate::store::{Store, StoredMessage, StoredSession, StoredSubscription};

/// Session expiry meaning "never" [MQTT-3.1.2-?]: 0xFFFFFFFF.
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// The result of attaching a connection to a session.
pub struct Attached {
    pub session: Arc<SessionHandle>,
    pub session_present: bool,
    pub generation: u64,
}

/// A will message waiting for its connection to end.
#[derive(Debug, Clone)]
pub struct PendingWill {
    /// The will as it will be published; its `expires_at` is set only at
    /// publication, since the Message Expiry Interval of a will counts from
    /// when the broker publishes it [MQTT-3.1.3.2.4].
    pub message: Message,
    pub expiry: Option<u32>,
    pub delay: u32,
}

impl PendingWill {
    fn into_message(self: Box<Self>, now: Instant) -> Arc<Message> {
        let mut message = self.message;
        message.expires_at = self.expiry.map(|s| now + Duration::from_secs(u64::from(s)));
        Arc::new(message)
    }
}

#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    sessions: Mutex<HashMap<Arc<str>, Arc<SessionHandle>>>,
    index: RwLock<Index>,
    retained: RwLock<HashMap<String, Arc<Message>>>,
    stats: Stats,
    /// Shared by every listener: the connection caps are broker-wide.
    admission: Arc<Admission>,
    store: Arc<dyn Store>,
    started: Instant,
    /// Bytes queued and in flight across all sessions (see
    /// `session::cost`), against `max_queued_bytes_total`.
    queued_bytes: Arc<AtomicUsize>,
    auth: crate::auth::Auth,
}

/// Queue levels (messages and bytes) at which a draining subscriber starts
/// and stops holding its publishers back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaterMarks {
    high_messages: usize,
    low_messages: usize,
    high_bytes: usize,
    low_bytes: usize,
}

impl WaterMarks {
    pub(crate) fn above_high(&self, messages: usize, bytes: usize) -> bool {
        messages >= self.high_messages || bytes >= self.high_bytes
    }

    pub(crate) fn below_low(&self, messages: usize, bytes: usize) -> bool {
        messages <= self.low_messages && bytes <= self.low_bytes
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // See SessionHandle::state for why a poisoned lock is still used.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker {
    /// A broker whose persistent sessions and retained messages are loaded
    /// from `store` and written through to it.
    pub fn new(limits: Limits, store: Arc<dyn Store>) -> Broker {
        let admission = Admission::new(limits.admission.clone());
        let auth = crate::auth::Auth::new(
            limits.brute_force,
            limits.max_verifications,
            limits.max_pending_per_address,
        );
        let broker = Broker {
            inner: Arc::new(Inner {
                limits,
                sessions: Mutex::new(HashMap::new()),
                index: RwLock::new(Index::new()),
                retained: RwLock::new(HashMap::new()),
                stats: Stats::default(),
                admission,
                store,
                started: Instant::now(),
                queued_bytes: Arc::new(AtomicUsize::new(0)),
                auth,
            }),
        };
        broker.load_from_store();
        broker
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Authentication: the credential store in force and its defences.
    pub fn auth(&self) -> &crate::auth::Auth {
        &self.inner.auth
    }

    /// Bytes queued and in flight for all sessions.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued_bytes.load(Ordering::Relaxed)
    }

    /// True while the broker holds more queued bytes than its budget:
    /// connections stop taking PUBLISH until it is back under.
    pub fn over_budget(&self) -> bool {
        self.queued_bytes() > self.inner.limits.max_queued_bytes_total
    }

    pub fn admission(&self) -> &Arc<Admission> {
        &self.inner.admission
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    fn index_read(&self) -> RwLockReadGuard<'_, Index> {
        self.inner.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index_write(&self) -> RwLockWriteGuard<'_, Index> {
        self.inner.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn retained_read(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<Message>>> {
        self.inner
            .retained
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn retained_write(&self) -> RwLockWriteGuard<'_, HashMap<String, Arc<Message>>> {
        self.inner
            .retained
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn session_count(&self) -> usize {
        lock(&self.inner.sessions).len()
    }

    pub fn subscription_count(&self) -> usize {
        self.index_read().len()
    }

    pub fn retained_count(&self) -> usize {
        self.retained_read().len()
    }

    pub fn session(&self, client_id: &str) -> Option<Arc<SessionHandle>> {
        lock(&self.inner.sessions).get(client_id).cloned()
    }

    /// Attaches a new connection to the session of `client_id`, taking over
    /// any connection attached to it and discarding the session first when
    /// `clean_start` [MQTT-3.1.2-4, MQTT-3.1.4-3].
    /// Attaches a connection of `owner` (its authenticated identity, `None`
    /// for anonymous) to `client_id`'s session. `Err` carries the owner of
    /// an existing session that belongs to another identity: nothing was
    /// changed, the connection must be refused.
    pub fn attach(
        &self,
        client_id: &str,
        clean_start: bool,
        expiry_interval: u32,
        owner: Option<Arc<str>>,
    ) -> Result<Attached, Option<Arc<str>>> {
        let mut sessions = lock(&self.inner.sessions);
        if let Some(existing) = sessions.get(client_id).cloned() {
            let mut link = existing.link();
            if link.owner != owner {
                return Err(link.owner.clone());
            }
            // Whatever connection is attached must go: a resumed session
            // gets a new generation, a discarded one keeps none.
            let kick_below = if clean_start {
                u64::MAX
            } else {
                link.generation + 1
            };
            existing.kick(&mut link, kick_below, ReasonCode::SessionTakenOver);
            if !clean_start {
                link.generation += 1;
                link.expiry_interval = expiry_interval;
                link.disconnected_at = None;
                // Reconnected within the will delay: the will is not sent.
                link.pending_will = None;
                existing.last_progress.store(
                    crate::registry::now_ms(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                existing.set_online(true);
                let generation = link.generation;
                drop(link);
                drop(sessions);
                return Ok(Attached {
                    session: existing,
                    session_present: true,
                    generation,
                });
            }
            drop(link);
            sessions.remove(client_id);
            drop(sessions);
            self.end_session(&existing);
            sessions = lock(&self.inner.sessions);
        }
        let id: Arc<str> = Arc::from(client_id);
        let handle = Arc::new(SessionHandle::new(
            id.clone(),
            expiry_interval,
            self.inner.queued_bytes.clone(),
        ));
        {
            let mut link = handle.link();
            link.generation = 1;
            link.owner = owner;
        }
        handle.set_online(true);
        sessions.insert(id, handle.clone());
        drop(sessions);
        if expiry_interval > 0 {
            self.persist_session(&handle);
        }
        Ok(Attached {
            session: handle,
            session_present: false,
            generation: 1,
        })
    }

    /// Detaches a connection. `expiry_interval` is the value in force at
    /// disconnect (a v5 DISCONNECT may change it); `will` is the will to
    /// publish, already decided by the caller from how the connection ended.
    pub fn detach(
        &self,
        session: &Arc<SessionHandle>,
        generation: u64,
        expiry_interval: u32,
        will: Option<Box<PendingWill>>,
    ) {
        let mut sessions = lock(&self.inner.sessions);
        let registered = sessions
            .get(&session.client_id)
            .is_some_and(|h| Arc::ptr_eq(h, session));
        let mut link = session.link();
        let current = registered && link.generation == generation;
        let mut ended = !registered;
        if current {
            link.expiry_interval = expiry_interval;
            link.disconnected_at = Some(Instant::now());
            session.set_online(false);
            session.release_publishers();
            if expiry_interval == 0 {
                sessions.remove(&session.client_id);
                ended = true;
            }
        }
        drop(link);
        drop(sessions);
        if ended && current {
            self.end_session(session);
        } else if current {
            self.persist_session(session);
            self.hand_over_shared(session);
            session.state().shrink();
        }
        if let Some(will) = will {
            if ended || will.delay == 0 {
                self.publish(will.into_message(Instant::now()), None);
            } else if current {
                // Delay the will until the delay passes or the session ends,
                // whichever comes first [MQTT-3.1.3-9]; a reconnection in
                // between cancels it (attach clears it), and a session that
                // ends first publishes it (end_session).
                let delay = will.delay.min(expiry_interval);
                session.link().pending_will = Some(will);
                self.schedule_will(session.clone(), generation, delay);
            }
            // Otherwise a newer connection already resumed the session
            // before any delay could pass: the will is not sent.
        }
    }

    fn schedule_will(&self, session: Arc<SessionHandle>, generation: u64, delay: u32) {
        let broker = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
            let due = {
                let mut link = session.link();
                if link.generation == generation && !session.is_online() {
                    link.pending_will.take()
                } else {
                    None
                }
            };
            if let Some(will) = due {
                broker.publish(will.into_message(Instant::now()), None);
            }
        });
    }

    /// Removes a session for good: its subscriptions leave the index, its
    /// shared-subscription messages go to other members, the store forgets it.
    fn end_session(&self, session: &Arc<SessionHandle>) {
        let will = session.link().pending_will.take();
        if let Some(will) = will {
            self.publish(will.into_message(Instant::now()), None);
        }
        let filters: Vec<String> = session.state().subscriptions.keys().cloned().collect();
        for raw in filters {
            self.unsubscribe(session, &raw);
        }
        self.hand_over_shared(session);
        if let Err(e) = self.inner.store.remove_session(&session.client_id) {
            tracing::error!(client_id = %session.client_id, error = %e, "store failed to remove session");
        }
    }

    /// Gives the messages a departing member of shared subscriptions left
    /// unacknowledged to another member of the same group.
    fn hand_over_shared(&self, session: &Arc<SessionHandle>) {
        let orphans = session.state().take_where(|d| d.shared.is_some());
        for delivery in orphans {
            let Some(tag) = delivery.shared.clone() else {
                continue;
            };
            let other = router::reassign(&self.index_read(), &tag, session);
            match other {
                Some(member) => {
                    self.deliver(&member.session, delivery);
                }
                // Nobody else in the group: keep it with this session.
                None => {
                    let l = &self.inner.limits;
                    // Already counted against this session: it fits unless
                    // the limits shrank, and then dropping is all we can do.
                    let _ = session.state().enqueue(
                        delivery,
                        l.max_queued_messages,
                        l.max_queued_bytes,
                    );
                }
            }
        }
    }

    /// Routes a message to every matching subscription and updates the
    /// retained store. Returns how many sessions it was queued for.
    pub fn publish(&self, message: Arc<Message>, origin: Option<&Arc<SessionHandle>>) -> usize {
        self.publish_from(message, origin, &mut Vec::new())
    }

    /// As [`Broker::publish`], and adds to `pressure` every target session
    /// whose queue is past its high-water mark while its client drains it:
    /// the publisher should stop reading until they have room, so a
    /// publisher faster than its subscribers is slowed instead of having
    /// its messages dropped.
    pub fn publish_from(
        &self,
        message: Arc<Message>,
        origin: Option<&Arc<SessionHandle>>,
        pressure: &mut Vec<Arc<SessionHandle>>,
    ) -> usize {
        if message.retain {
            self.retain(&message);
        }
        let targets = router::targets(&self.index_read(), &message, origin);
        let n = targets.len();
        for t in targets {
            if self.deliver(&t.session, t.delivery)
                && !pressure.iter().any(|s| Arc::ptr_eq(s, &t.session))
            {
                pressure.push(t.session);
            }
        }
        n
    }

    /// Queue high- and low-water marks for back-pressure.
    pub(crate) fn water_marks(&self) -> WaterMarks {
        let l = &self.inner.limits;
        WaterMarks {
            high_messages: (l.max_queued_messages / 2).max(1),
            low_messages: l.max_queued_messages / 4,
            // Bytes too: with large messages the byte limit is reached long
            // before half the message count, and a draining subscriber must
            // slow its publishers before anything is dropped.
            high_bytes: l.max_queued_bytes / 2,
            low_bytes: l.max_queued_bytes / 4,
        }
    }

    /// Queues a delivery; true when the session is now congested and holds
    /// publishers back.
    pub(crate) fn deliver(&self, session: &SessionHandle, delivery: Delivery) -> bool {
        let stats = &self.inner.stats;
        let online = session.is_online();
        if !online && delivery.qos == QoS::AtMostOnce {
            Stats::add(&stats.dropped_offline_qos0, 1);
            return false;
        }
        let mut state = session.state();
        let l = &self.inner.limits;
        let queued = state.enqueue(delivery, l.max_queued_messages, l.max_queued_bytes);
        if let Err(full) = queued {
            let dropped = state.dropped;
            drop(state);
            Stats::add(&stats.dropped_queue_full, 1);
            let kind = match full {
                Full::Messages => LimitKind::QueuedMessages,
                Full::Bytes => LimitKind::QueuedBytes,
            };
            stats.limits.hit(kind, None, Some(&session.client_id));
            // One line per power of two keeps a stuck subscriber visible in
            // the log without letting it flood the log.
            if dropped.is_power_of_two() {
                tracing::warn!(client_id = %session.client_id, dropped, limit = kind.key(), "session queue full; dropping messages for it");
            }
            return false;
        }
        let queued = state.queued();
        let held = state.held_bytes();
        drop(state);
        if queued == 1 && online {
            session.wake.notify_one();
        }
        if online && self.water_marks().above_high(queued, held) {
            session
                .congested
                .store(true, std::sync::atomic::Ordering::Release);
            return session.holds_publishers();
        }
        false
    }

    fn retain(&self, message: &Arc<Message>) {
        let topic = message.topic.as_str();
        let result = if message.payload.is_empty() {
            // An empty retained payload clears the topic [MQTT-3.3.1-6].
            self.retained_write().remove(topic);
            self.inner.store.remove_retained(topic)
        } else {
            self.retained_write()
                .insert(topic.to_owned(), message.clone());
            self.inner.store.put_retained(&stored_message(message))
        };
        if let Err(e) = result {
            tracing::error!(topic, error = %e, "store failed to keep a retained message");
        }
    }

    /// Retained messages matching `filter`, dropping those that expired.
    pub fn retained_matching(&self, filter: &TopicFilter) -> Vec<Arc<Message>> {
        let now = Instant::now();
        let mut expired = Vec::new();
        let found: Vec<Arc<Message>> = self
            .retained_read()
            .values()
            .filter(|m| filter.matches(&m.topic))
            .filter(|m| {
                let dead = m.is_expired(now);
                if dead {
                    expired.push(m.topic.as_str().to_owned());
                }
                !dead
            })
            .cloned()
            .collect();
        if !expired.is_empty() {
            let mut retained = self.retained_write();
            for t in &expired {
                retained.remove(t);
            }
            drop(retained);
            for t in expired {
                let _ = self.inner.store.remove_retained(&t);
            }
        }
        found
    }

    /// Adds or replaces a subscription. Returns whether one existed for the
    /// same filter (for Retain Handling 1).
    pub fn subscribe(
        &self,
        session: &Arc<SessionHandle>,
        raw: &str,
        parsed: &ParsedFilter,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> bool {
        let existed = session
            .state()
            .subscriptions
            .insert(
                raw.to_owned(),
                Subscription {
                    options,
                    identifier,
                },
            )
            .is_some();
        let sub = DirectSub {
            session: session.clone(),
            options,
            identifier,
        };
        let mut index = self.index_write();
        match &parsed.share_group {
            None => {
                index.insert(
                    &parsed.filter,
                    SubKey::Client(session.client_id.clone()),
                    SubValue::Direct(sub),
                );
            }
            Some(group) => {
                let key = router::shared_key(group);
                let mut members = match index.remove(&parsed.filter, &key) {
                    Some(SubValue::Shared(g)) => g.members,
                    _ => Vec::new(),
                };
                members.retain(|m| !Arc::ptr_eq(&m.session, session));
                members.push(sub);
                let tag = Arc::new(SharedTag {
                    group: group.clone(),
                    filter: parsed.filter.clone(),
                });
                index.insert(
                    &parsed.filter,
                    key,
                    SubValue::Shared(SharedGroup::new(tag, members)),
                );
            }
        }
        drop(index);
        self.persist_if_durable(session);
        existed
    }

    /// Removes a subscription; true when it existed.
    pub fn unsubscribe(&self, session: &Arc<SessionHandle>, raw: &str) -> bool {
        let existed = session.state().subscriptions.remove(raw).is_some();
        if !existed {
            return false;
        }
        let Ok(parsed) = bulwark_topic::parse_subscription(raw) else {
            return true;
        };
        let mut index = self.index_write();
        match &parsed.share_group {
            None => {
                index.remove(&parsed.filter, &SubKey::Client(session.client_id.clone()));
            }
            Some(group) => {
                let key = router::shared_key(group);
                if let Some(SubValue::Shared(g)) = index.remove(&parsed.filter, &key) {
                    let tag = g.tag.clone();
                    let mut members = g.members;
                    members.retain(|m| !Arc::ptr_eq(&m.session, session));
                    if !members.is_empty() {
                        index.insert(
                            &parsed.filter,
                            key,
                            SubValue::Shared(SharedGroup::new(tag, members)),
                        );
                    }
                }
            }
        }
        drop(index);
        self.persist_if_durable(session);
        true
    }

    /// What a subscription receives of the retained messages, per its Retain
    /// Handling [MQTT-3.3.1-9..11]. Shared subscriptions receive none.
    pub fn retained_for_subscription(
        &self,
        parsed: &ParsedFilter,
        options: &SubscriptionOptions,
        existed: bool,
    ) -> Vec<Arc<Message>> {
        let send = parsed.share_group.is_none()
            && match options.retain_handling {
                RetainHandling::OnSubscribe => true,
                RetainHandling::OnNewSubscribe => !existed,
                RetainHandling::Never => false,
            };
        if send {
            self.retained_matching(&parsed.filter)
        } else {
            Vec::new()
        }
    }

    fn persist_if_durable(&self, session: &Arc<SessionHandle>) {
        if session.link().expiry_interval > 0 {
            self.persist_session(session);
        }
    }

    fn persist_session(&self, session: &Arc<SessionHandle>) {
        let expiry_interval = session.link().expiry_interval;
        let subscriptions = session
            .state()
            .subscriptions
            .iter()
            .map(|(filter, s)| StoredSubscription {
                filter: filter.clone(),
                options: s.options,
                identifier: s.identifier,
            })
            .collect();
        let stored = StoredSession {
            expiry_interval,
            subscriptions,
        };
        if let Err(e) = self.inner.store.put_session(&session.client_id, &stored) {
            tracing::error!(client_id = %session.client_id, error = %e, "store failed to keep a session");
        }
    }

    fn load_from_store(&self) {
        match self.inner.store.load_retained() {
            Ok(list) => {
                let mut retained = self.retained_write();
                for m in list {
                    if let Some(msg) = message_from_store(m) {
                        retained.insert(msg.topic.as_str().to_owned(), Arc::new(msg));
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "could not load retained messages"),
        }
        let sessions = match self.inner.store.load_sessions() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not load sessions");
                return;
            }
        };
        for (client_id, stored) in sessions {
            let handle = Arc::new(SessionHandle::new(
                Arc::from(client_id.as_str()),
                stored.expiry_interval,
                self.inner.queued_bytes.clone(),
            ));
            handle.link().disconnected_at = Some(Instant::now());
            lock(&self.inner.sessions).insert(handle.client_id.clone(), handle.clone());
            for sub in stored.subscriptions {
                if let Ok(parsed) = bulwark_topic::parse_subscription(&sub.filter) {
                    self.subscribe(&handle, &sub.filter, &parsed, sub.options, sub.identifier);
                }
            }
        }
    }

    /// Ends offline sessions whose expiry interval has passed. Run
    /// periodically by [`Broker::run_housekeeping`].
    pub fn expire_sessions(&self, now: Instant) -> usize {
        let expired: Vec<Arc<SessionHandle>> = {
            let mut sessions = lock(&self.inner.sessions);
            let dead: Vec<Arc<str>> = sessions
                .iter()
                .filter(|(_, h)| {
                    let link = h.link();
                    !h.is_online()
                        && link.expiry_interval != NEVER_EXPIRES
                        && link.disconnected_at.is_some_and(|t| {
                            now.saturating_duration_since(t)
                                >= Duration::from_secs(u64::from(link.expiry_interval))
                        })
                })
                .map(|(k, _)| k.clone())
                .collect();
            dead.iter().filter_map(|k| sessions.remove(k)).collect()
        };
        for s in &expired {
            self.end_session(s);
        }
        expired.len()
    }

    /// Session expiry, and `$SYS` statistics every `sys_interval`.
    pub async fn run_housekeeping(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let sys_every = self.inner.limits.sys_interval;
        let mut last_sys: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = Instant::now();
            self.expire_sessions(now);
            if !sys_every.is_zero() && last_sys.is_none_or(|t| now - t >= sys_every) {
                last_sys = Some(now);
                crate::sys::publish_stats(&self);
            }
        }
    }

    pub fn connected_clients(&self) -> u64 {
        self.inner.stats.clients_connected.load(Ordering::Relaxed)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn stored_message(m: &Message) -> StoredMessage {
    StoredMessage {
        topic: m.topic.as_str().to_owned(),
        payload: m.payload.clone(),
        qos: m.qos,
        properties: m.properties.clone(),
        expires_at_unix: m
            .remaining_expiry(Instant::now())
            .map(|left| unix_now() + u64::from(left)),
    }
}

fn message_from_store(m: StoredMessage) -> Option<Message> {
    let now_unix = unix_now();
    let expires_at = match m.expires_at_unix {
        Some(t) if t <= now_unix => return None,
        Some(t) => Some(Instant::now() + Duration::from_secs(t - now_unix)),
        None => None,
    };
    Some(Message {
        topic: TopicName::new(m.topic).ok()?,
        payload: m.payload,
        qos: m.qos,
        retain: true,
        properties: m.properties,
        expires_at,
    })
}
