//! Per-client session state, sans-IO: the part of a client that outlives a
//! network connection (subscriptions, queued messages, QoS 1/2 in flight in
//! both directions, packet identifiers). No sockets, no clock of its own, no
//! tokio: the connection task drives it and passes `now` in, so QoS flows and
//! redelivery are plain unit tests.
//!
//! Invariants:
//! - `queue.len() <= max_queued` (enforced by [`SessionState::enqueue`]).
//! - `held_bytes` is the [`cost`] of every delivery in `queue` and
//!   `inflight`, and has been added to the shared budget counter (if any)
//!   exactly once; it leaves the counter when a delivery leaves the session
//!   or the session is dropped.
//! - A packet identifier is in at most one of `inflight` entries, and never 0.
//! - `incoming_qos2` never holds more than the Receive Maximum we announced;
//!   the connection refuses the PUBLISH that would exceed it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bulwark_codec::{QoS, SubscriptionOptions};

use crate::message::Delivery;

/// A subscription as the session remembers it, keyed by the filter exactly as
/// the client wrote it (including any `$share/group/` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub options: SubscriptionOptions,
    pub identifier: Option<u32>,
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent; waiting for PUBCOMP.
    Released,
}

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub packet_id: u16,
    pub delivery: Delivery,
    pub state: OutState,
}

/// What the connection should write for one outgoing message.
#[derive(Debug)]
pub struct ToSend {
    pub packet_id: u16,
    pub delivery: Delivery,
}

/// Answer to an acknowledgement from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum AckResult {
    Done,
    /// PUBREC accepted: send PUBREL for this id.
    SendRelease,
    /// The id is not one we have in flight in that state.
    UnknownId,
}

/// A collection whose header is allocated only once something is put in
/// it. Most sessions of a plant sit idle between messages: three empty
/// collections inline would cost every one of them 88 bytes, boxed on
/// demand they cost 24. Reading an empty one allocates nothing (it reads a
/// shared empty value); `reset` gives the box back.
#[derive(Debug, Default)]
struct Lazy<T>(Option<Box<T>>);

impl<T> Lazy<T> {
    fn reset(&mut self) {
        self.0 = None;
    }
}

macro_rules! lazy_collection {
    ($t:ty, $empty:ident) => {
        static $empty: $t = <$t>::new();

        impl std::ops::Deref for Lazy<$t> {
            type Target = $t;
            fn deref(&self) -> &$t {
                self.0.as_deref().unwrap_or(&$empty)
            }
        }

        impl std::ops::DerefMut for Lazy<$t> {
            fn deref_mut(&mut self) -> &mut $t {
                self.0.get_or_insert_with(Box::default)
            }
        }
    };
}

lazy_collection!(VecDeque<Delivery>, EMPTY_QUEUE);
lazy_collection!(VecDeque<Outgoing>, EMPTY_INFLIGHT);
lazy_collection!(Vec<u16>, EMPTY_IDS);

#[derive(Debug, Default)]
pub struct SessionState {
    pub subscriptions: HashMap<String, Subscription>,
    queue: Lazy<VecDeque<Delivery>>,
    inflight: Lazy<VecDeque<Outgoing>>,
    /// Unreleased incoming QoS 2 ids: at most Receive Maximum of them, so a
    /// short vector beats a hash set in both memory and speed.
    incoming_qos2: Lazy<Vec<u16>>,
    next_packet_id: u16,
    /// Messages refused because the queue was full, since the session began.
    pub dropped: u64,
    /// Bytes held in `queue` and `inflight` (see [`cost`]).
    held_bytes: usize,
    /// The broker-wide total of `held_bytes`, for the memory budget.
    budget: Option<Arc<AtomicUsize>>,
}

/// Per-delivery bookkeeping beyond payload and topic: the `Delivery`, its
/// share of the `Message` and the queue slot, rounded up.
const DELIVERY_OVERHEAD: usize = 128;

/// What a delivery counts against the queued-bytes limits.
pub fn cost(d: &Delivery) -> usize {
    d.message.payload.len() + d.message.topic.as_str().len() + DELIVERY_OVERHEAD
}

/// Why [`SessionState::enqueue`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Messages,
    Bytes,
}

impl Drop for SessionState {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.fetch_sub(self.held_bytes, Ordering::Relaxed);
        }
    }
}

impl SessionState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A session whose held bytes also count in the broker-wide `budget`.
    pub fn with_budget(budget: Arc<AtomicUsize>) -> Self {
        let mut s = Self::default();
        s.budget = Some(budget);
        s
    }

    fn charge(&mut self, d: &Delivery) {
        let c = cost(d);
        self.held_bytes += c;
        if let Some(b) = &self.budget {
            b.fetch_add(c, Ordering::Relaxed);
        }
    }

    fn release(&mut self, d: &Delivery) {
        let c = cost(d).min(self.held_bytes);
        self.held_bytes -= c;
        if let Some(b) = &self.budget {
            b.fetch_sub(c, Ordering::Relaxed);
        }
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Queues a message. Refuses it, counting the drop, when the queue
    /// already holds `max_queued` messages or the message would take the
    /// session past `max_bytes`.
    pub fn enqueue(
        &mut self,
        delivery: Delivery,
        max_queued: usize,
        max_bytes: usize,
    ) -> Result<(), Full> {
        if self.queue.len() >= max_queued {
            self.dropped += 1;
            return Err(Full::Messages);
        }
        if self.held_bytes + cost(&delivery) > max_bytes {
            self.dropped += 1;
            return Err(Full::Bytes);
        }
        self.charge(&delivery);
        self.queue.push_back(delivery);
        Ok(())
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    pub fn front(&self) -> Option<&Delivery> {
        self.queue.front()
    }

    /// Drops the front message without sending it (expired or too large for
    /// the client); the caller counts why.
    pub fn discard_front(&mut self) -> Option<Delivery> {
        let d = self.queue.pop_front()?;
        self.release(&d);
        Some(d)
    }

    /// Takes the next message that may be sent now: QoS 0 always, QoS 1/2
    /// only while fewer than `inflight_limit` are unacknowledged (the
    /// client's Receive Maximum). Expired messages are skipped and counted in
    /// `expired`.
    pub fn next_to_send(
        &mut self,
        now: Instant,
        inflight_limit: usize,
        expired: &mut u64,
    ) -> Option<ToSend> {
        loop {
            let front = self.queue.front()?;
            if front.message.is_expired(now) {
                if let Some(d) = self.queue.pop_front() {
                    self.release(&d);
                }
                *expired += 1;
                continue;
            }
            if front.qos == QoS::AtMostOnce {
                let delivery = self.queue.pop_front()?;
                self.release(&delivery);
                return Some(ToSend {
                    packet_id: 0,
                    delivery,
                });
            }
            if self.inflight.len() >= inflight_limit {
                return None;
            }
            let packet_id = self.allocate_packet_id()?;
            let delivery = self.queue.pop_front()?;
            self.inflight.push_back(Outgoing {
                packet_id,
                delivery: delivery.clone(),
                state: OutState::Published,
            });
            return Some(ToSend {
                packet_id,
                delivery,
            });
        }
    }

    fn allocate_packet_id(&mut self) -> Option<u16> {
        // At most 65535 ids exist; the in-flight window is far smaller, so a
        // free id is found quickly, but never loop forever.
        for _ in 0..=u16::MAX {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            if self.next_packet_id == 0 {
                self.next_packet_id = 1;
            }
            let id = self.next_packet_id;
            if !self.inflight.iter().any(|o| o.packet_id == id) {
                return Some(id);
            }
        }
        None
    }

    fn position(&self, packet_id: u16, state: OutState) -> Option<usize> {
        self.inflight
            .iter()
            .position(|o| o.packet_id == packet_id && o.state == state)
    }

    /// PUBACK for a QoS 1 message.
    pub fn on_puback(&mut self, packet_id: u16) -> AckResult {
        match self.position(packet_id, OutState::Published) {
            Some(i) if self.inflight.get(i).map(|o| o.delivery.qos) == Some(QoS::AtLeastOnce) => {
                self.remove_inflight(i);
                AckResult::Done
            }
            _ => AckResult::UnknownId,
        }
    }

    /// PUBREC for a QoS 2 message. A PUBREC carrying an error reason ends the
    /// exchange [MQTT-4.3.3-?]: the message is discarded, no PUBREL follows.
    pub fn on_pubrec(&mut self, packet_id: u16, is_error: bool) -> AckResult {
        let Some(i) = self.position(packet_id, OutState::Published) else {
            // A repeated PUBREC after our PUBREL is answered with PUBREL again.
            if self.position(packet_id, OutState::Released).is_some() {
                return AckResult::SendRelease;
            }
            return AckResult::UnknownId;
        };
        if is_error {
            self.remove_inflight(i);
            return AckResult::Done;
        }
        match self.inflight.get_mut(i) {
            Some(o) if o.delivery.qos == QoS::ExactlyOnce => {
                o.state = OutState::Released;
                AckResult::SendRelease
            }
            _ => AckResult::UnknownId,
        }
    }

    pub fn on_pubcomp(&mut self, packet_id: u16) -> AckResult {
        match self.position(packet_id, OutState::Released) {
            Some(i) => {
                self.remove_inflight(i);
                AckResult::Done
            }
            None => AckResult::UnknownId,
        }
    }

    fn remove_inflight(&mut self, i: usize) {
        if let Some(o) = self.inflight.remove(i) {
            self.release(&o.delivery);
        }
    }

    /// Everything in flight, oldest first, for retransmission when the
    /// session resumes on a new connection [MQTT-4.4.0-1].
    pub fn inflight(&self) -> impl Iterator<Item = &Outgoing> {
        self.inflight.iter()
    }

    /// Removes and returns queued and in-flight messages that satisfy `pred`
    /// (used to hand a departing shared-subscription member's messages to
    /// another member, and to purge on unsubscribe).
    pub fn take_where(&mut self, pred: impl Fn(&Delivery) -> bool) -> Vec<Delivery> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for d in self.queue.drain(..) {
            if pred(&d) {
                taken.push(d);
            } else {
                kept.push_back(d);
            }
        }
        *self.queue = kept;
        let mut kept = VecDeque::with_capacity(self.inflight.len());
        for o in self.inflight.drain(..) {
            // A QoS 2 message already released has been received by the
            // client; giving it to someone else would deliver it twice.
            if o.state == OutState::Published && pred(&o.delivery) {
                taken.push(o.delivery);
            } else {
                kept.push_back(o);
            }
        }
        *self.inflight = kept;
        for d in &taken {
            self.release(d);
        }
        taken
    }

    /// Records an incoming QoS 2 PUBLISH. Returns true when the id is new (the
    /// message must be routed) and false for a retransmission (only PUBREC is
    /// sent again) [MQTT-4.3.3-9].
    pub fn begin_incoming_qos2(&mut self, packet_id: u16) -> bool {
        if self.incoming_qos2.contains(&packet_id) {
            return false;
        }
        self.incoming_qos2.push(packet_id);
        true
    }

    pub fn incoming_qos2_len(&self) -> usize {
        self.incoming_qos2.len()
    }

    pub fn has_incoming_qos2(&self, packet_id: u16) -> bool {
        self.incoming_qos2.contains(&packet_id)
    }

    /// PUBREL from the client; true when the id was known.
    pub fn release_incoming_qos2(&mut self, packet_id: u16) -> bool {
        match self.incoming_qos2.iter().position(|&id| id == packet_id) {
            Some(i) => {
                self.incoming_qos2.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Releases memory held by idle collections.
    pub fn shrink(&mut self) {
        if self.queue.is_empty() {
            self.queue.reset();
        }
        if self.inflight.is_empty() {
            self.inflight.reset();
        }
        if self.incoming_qos2.is_empty() {
            self.incoming_qos2.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use bulwark_topic::TopicName;
    use std::sync::Arc;
    use std::time::Duration;

    fn delivery(qos: QoS, expires_at: Option<Instant>) -> Delivery {
        Delivery {
            message: Arc::new(Message {
                topic: TopicName::new("a/b").expect("valid"),
                payload: bytes::Bytes::from_static(b"x"),
                qos,
                retain: false,
                properties: Default::default(),
                expires_at,
            }),
            qos,
            retain: false,
            subscription_ids: Vec::new(),
            shared: None,
        }
    }

    #[test]
    fn queue_is_bounded_and_drops_are_counted() {
        let mut s = SessionState::new();
        for _ in 0..3 {
            assert!(s
                .enqueue(delivery(QoS::AtMostOnce, None), 3, usize::MAX)
                .is_ok());
        }
        assert_eq!(
            s.enqueue(delivery(QoS::AtMostOnce, None), 3, usize::MAX),
            Err(Full::Messages)
        );
        assert_eq!(s.dropped, 1);
        assert_eq!(s.queued(), 3);
    }

    #[test]
    fn receive_maximum_limits_inflight_and_acks_free_slots() {
        let now = Instant::now();
        let mut s = SessionState::new();
        let mut expired = 0;
        for _ in 0..3 {
            let _ = s.enqueue(delivery(QoS::AtLeastOnce, None), 10, usize::MAX);
        }
        let a = s.next_to_send(now, 2, &mut expired).expect("first");
        let b = s.next_to_send(now, 2, &mut expired).expect("second");
        assert_ne!(a.packet_id, b.packet_id);
        assert!(s.next_to_send(now, 2, &mut expired).is_none());
        assert_eq!(s.on_puback(a.packet_id), AckResult::Done);
        assert_eq!(s.on_puback(a.packet_id), AckResult::UnknownId);
        assert!(s.next_to_send(now, 2, &mut expired).is_some());
    }

    #[test]
    fn qos2_outgoing_flow_and_resend_order() {
        let now = Instant::now();
        let mut s = SessionState::new();
        let mut expired = 0;
        let _ = s.enqueue(delivery(QoS::ExactlyOnce, None), 10, usize::MAX);
        let _ = s.enqueue(delivery(QoS::ExactlyOnce, None), 10, usize::MAX);
        let a = s.next_to_send(now, 10, &mut expired).expect("a");
        let b = s.next_to_send(now, 10, &mut expired).expect("b");
        assert_eq!(s.on_puback(a.packet_id), AckResult::UnknownId);
        assert_eq!(s.on_pubrec(a.packet_id, false), AckResult::SendRelease);
        // A repeated PUBREC is answered with PUBREL again.
        assert_eq!(s.on_pubrec(a.packet_id, false), AckResult::SendRelease);
        let states: Vec<_> = s.inflight().map(|o| (o.packet_id, o.state)).collect();
        assert_eq!(
            states,
            vec![
                (a.packet_id, OutState::Released),
                (b.packet_id, OutState::Published)
            ]
        );
        assert_eq!(s.on_pubcomp(a.packet_id), AckResult::Done);
        assert_eq!(s.on_pubrec(b.packet_id, true), AckResult::Done);
        assert_eq!(s.inflight_len(), 0);
    }

    #[test]
    fn expired_messages_are_skipped() {
        let now = Instant::now();
        let mut s = SessionState::new();
        let mut expired = 0;
        let _ = s.enqueue(delivery(QoS::AtLeastOnce, Some(now)), 10, usize::MAX);
        let _ = s.enqueue(
            delivery(QoS::AtLeastOnce, Some(now + Duration::from_secs(5))),
            10,
            usize::MAX,
        );
        let sent = s.next_to_send(now, 10, &mut expired).expect("live one");
        assert_eq!(expired, 1);
        assert_eq!(sent.delivery.message.remaining_expiry(now), Some(5));
    }

    #[test]
    fn queued_bytes_are_bounded_and_returned_to_the_budget() {
        let budget = Arc::new(AtomicUsize::new(0));
        let one = cost(&delivery(QoS::AtLeastOnce, None));
        let mut s = SessionState::with_budget(budget.clone());
        for _ in 0..3 {
            assert!(s
                .enqueue(delivery(QoS::AtLeastOnce, None), 100, 3 * one)
                .is_ok());
        }
        assert_eq!(
            s.enqueue(delivery(QoS::AtLeastOnce, None), 100, 3 * one),
            Err(Full::Bytes)
        );
        assert_eq!(budget.load(Ordering::Relaxed), 3 * one);
        let now = Instant::now();
        let mut expired = 0;
        // In flight still counts; acknowledged does not.
        let sent = s.next_to_send(now, 10, &mut expired).expect("one");
        assert_eq!(s.held_bytes(), 3 * one);
        assert_eq!(s.on_puback(sent.packet_id), AckResult::Done);
        assert_eq!(s.held_bytes(), 2 * one);
        assert_eq!(budget.load(Ordering::Relaxed), 2 * one);
        let taken = s.take_where(|_| true);
        assert_eq!(taken.len(), 2);
        assert_eq!(budget.load(Ordering::Relaxed), 0);
        let _ = s.enqueue(delivery(QoS::AtLeastOnce, None), 100, 3 * one);
        drop(s);
        assert_eq!(
            budget.load(Ordering::Relaxed),
            0,
            "dropping the session returns its bytes"
        );
    }

    #[test]
    fn incoming_qos2_duplicates_are_recognised() {
        let mut s = SessionState::new();
        assert!(s.begin_incoming_qos2(7));
        assert!(!s.begin_incoming_qos2(7));
        assert!(s.release_incoming_qos2(7));
        assert!(!s.release_incoming_qos2(7));
        assert!(s.begin_incoming_qos2(7));
    }

    #[test]
    fn packet_ids_skip_zero_and_ids_in_use() {
        let now = Instant::now();
        let mut s = SessionState::new();
        let mut expired = 0;
        s.next_packet_id = u16::MAX - 1;
        for _ in 0..3 {
            let _ = s.enqueue(delivery(QoS::AtLeastOnce, None), 10, usize::MAX);
        }
        let ids: Vec<u16> = (0..3)
            .filter_map(|_| s.next_to_send(now, 10, &mut expired))
            .map(|t| t.packet_id)
            .collect();
        assert_eq!(ids, vec![u16::MAX, 1, 2]);
    }
}
