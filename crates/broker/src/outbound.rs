//! What a connection writes: the write buffer, outgoing topic aliases and the
//! limits the client announced. Everything for one socket wakeup is encoded
//! into one buffer and written with one syscall, so a burst of deliveries
//! costs one write, not one per message.

use std::collections::HashMap;
use std::time::Instant;

use bulwark_codec::{
    encode, encode_publish, publish_len, Packet, ProtocolVersion, PubResp, PublishView, ReasonCode,
};
use bytes::BytesMut;

use crate::message::Delivery;
use crate::session::{OutState, SessionState};
use crate::stats::Stats;

/// Stop pulling messages from the session queue once this much is waiting
/// to be written: the rest stays queued (bounded) instead of piling up here.
pub(crate) const HIGH_WATER: usize = 64 * 1024;

pub(crate) struct Outbound {
    pub version: ProtocolVersion,
    pub buf: BytesMut,
    /// Receive Maximum the client announced, capped by our own limit.
    pub inflight_limit: usize,
    /// Maximum Packet Size the client announced (v5); larger messages are
    /// not sent to it [MQTT-3.1.2-25].
    pub max_packet_size: u32,
    pub alias_max: u16,
    /// Boxed on first use: most clients never allow aliases, and an empty
    /// map inline would still cost every connection its size.
    #[allow(clippy::box_collection)] // the box is the point: see above
    aliases: Option<Box<HashMap<String, u16>>>,
}

impl Outbound {
    pub fn new(version: ProtocolVersion) -> Self {
        Outbound {
            version,
            buf: BytesMut::new(),
            inflight_limit: usize::from(u16::MAX),
            max_packet_size: u32::MAX,
            alias_max: 0,
            aliases: None,
        }
    }

    pub fn packet(&mut self, packet: &Packet) {
        if let Err(e) = encode(packet, self.version, &mut self.buf) {
            // Only our own packets reach here; a failure is a bug worth a
            // loud line, not a reason to take the connection down.
            tracing::error!(error = %e, "failed to encode an outgoing packet");
        }
    }

    pub fn ack(&mut self, kind: fn(PubResp) -> Packet, packet_id: u16, reason: ReasonCode) {
        self.packet(&kind(PubResp {
            packet_id,
            reason,
            properties: Default::default(),
        }));
    }

    /// The topic and alias to send: an alias already agreed (empty topic), a
    /// new alias with the topic, or the plain topic when aliases are not
    /// allowed or all are used.
    fn alias_for<'a>(&mut self, topic: &'a str) -> (&'a str, Option<u16>) {
        if self.alias_max == 0 || self.version != ProtocolVersion::V5 {
            return (topic, None);
        }
        let aliases = self.aliases.get_or_insert_with(Default::default);
        if let Some(&a) = aliases.get(topic) {
            return ("", Some(a));
        }
        let next = aliases.len() + 1;
        match u16::try_from(next) {
            Ok(a) if a <= self.alias_max => {
                aliases.insert(topic.to_owned(), a);
                (topic, Some(a))
            }
            _ => (topic, None),
        }
    }

    /// Upper bound of the encoded size of `d`, for the client's Maximum
    /// Packet Size check made before a packet id is spent on it.
    fn worst_case_len(&self, d: &Delivery, now: Instant) -> usize {
        let m = &d.message;
        let view = PublishView {
            dup: false,
            qos: d.qos,
            retain: d.retain,
            topic: m.topic.as_str(),
            packet_id: 1,
            properties: &m.properties,
            message_expiry_interval: m.remaining_expiry(now),
            topic_alias: (self.alias_max > 0).then_some(1),
            subscription_identifiers: &d.subscription_ids,
            payload: &m.payload,
        };
        publish_len(&view, self.version).unwrap_or(usize::MAX)
    }

    pub fn publish(&mut self, d: &Delivery, packet_id: u16, dup: bool, now: Instant) {
        let m = &d.message;
        let (topic, topic_alias) = self.alias_for(m.topic.as_str());
        let view = PublishView {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id,
            properties: &m.properties,
            message_expiry_interval: m.remaining_expiry(now),
            topic_alias,
            subscription_identifiers: &d.subscription_ids,
            payload: &m.payload,
        };
        if let Err(e) = encode_publish(&view, self.version, &mut self.buf) {
            tracing::error!(error = %e, topic = m.topic.as_str(), "failed to encode a PUBLISH");
        }
    }

    /// Moves queued messages into the write buffer while the client's
    /// Receive Maximum and our high-water mark allow.
    pub fn drain(&mut self, state: &mut SessionState, stats: &Stats, now: Instant) -> u64 {
        let mut sent = 0;
        let mut expired = 0;
        while self.buf.len() < HIGH_WATER {
            let Some(front) = state.front() else { break };
            // Most clients announce no limit; then no packet can exceed it
            // and the size need not be computed twice per message.
            if self.max_packet_size != u32::MAX
                && self.worst_case_len(front, now) > self.max_packet_size as usize
            {
                state.discard_front();
                Stats::add(&stats.dropped_too_large, 1);
                continue;
            }
            let Some(next) = state.next_to_send(now, self.inflight_limit, &mut expired) else {
                break;
            };
            self.publish(&next.delivery, next.packet_id, false, now);
            sent += 1;
        }
        if expired > 0 {
            Stats::add(&stats.dropped_expired, expired);
        }
        sent
    }

    /// Retransmits everything in flight when a session resumes
    /// [MQTT-4.4.0-1]: PUBLISH with DUP set, or PUBREL where PUBREC came.
    pub fn resend_inflight(&mut self, state: &SessionState, now: Instant) {
        for o in state.inflight() {
            match o.state {
                OutState::Published => self.publish(&o.delivery, o.packet_id, true, now),
                OutState::Released => {
                    self.ack(Packet::PubRel, o.packet_id, ReasonCode::Success);
                }
            }
        }
    }
}
