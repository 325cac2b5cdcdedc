//! Packets from a connected client: what each one does to the session and
//! the broker, and what goes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_codec::{
    Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use bulwark_topic::TopicName;

use crate::connection::{violation, Conn, End};
use crate::limit_hits::LimitKind;
use crate::message::{Delivery, Message};
use crate::session::AckResult;

impl Conn {
    fn limit_hit(&self, kind: LimitKind) {
        self.broker
            .stats()
            .limits
            .hit(kind, Some(self.peer), Some(&self.session.client_id));
    }

    pub(crate) fn handle(&mut self, packet: Packet) -> Result<(), End> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(a) => {
                self.session.state().on_puback(a.packet_id);
                Ok(())
            }
            Packet::PubRec(a) => {
                let result = self
                    .session
                    .state()
                    .on_pubrec(a.packet_id, a.reason.is_error());
                match result {
                    AckResult::SendRelease => {
                        self.out
                            .ack(Packet::PubRel, a.packet_id, ReasonCode::Success)
                    }
                    AckResult::UnknownId if self.v5() => self.out.ack(
                        Packet::PubRel,
                        a.packet_id,
                        ReasonCode::PacketIdentifierNotFound,
                    ),
                    _ => {}
                }
                Ok(())
            }
            Packet::PubComp(a) => {
                self.session.state().on_pubcomp(a.packet_id);
                Ok(())
            }
            Packet::PubRel(r) => {
                let known = self.session.state().release_incoming_qos2(r.packet_id);
                let reason = if known || !self.v5() {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                self.out.ack(Packet::PubComp, r.packet_id, reason);
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => {
                self.on_unsubscribe(u);
                Ok(())
            }
            Packet::PingReq => {
                self.out.packet(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => self.on_disconnect(d),
            Packet::Auth(a) => self.on_auth(a),
            Packet::Connect(_) => Err(violation(
                ReasonCode::ProtocolError,
                "second CONNECT [MQTT-3.1.0-2]",
            )),
            other => Err(violation(
                ReasonCode::ProtocolError,
                format!(
                    "{} is sent by servers, not clients",
                    crate::connection::packet_name(&other)
                ),
            )),
        }
    }

    fn v5(&self) -> bool {
        self.version == ProtocolVersion::V5
    }

    /// The topic of an incoming PUBLISH after topic alias resolution
    /// [MQTT-3.3.2-7..12].
    fn resolve_topic(&mut self, p: &mut Publish) -> Result<TopicName, End> {
        let alias = p.properties.topic_alias.take();
        let Some(alias) = alias else {
            return TopicName::new(std::mem::take(&mut p.topic))
                .map_err(|e| violation(ReasonCode::TopicNameInvalid, e.to_string()));
        };
        let max = self.broker.limits().topic_alias_maximum;
        if alias == 0 || alias > max {
            return Err(violation(
                ReasonCode::TopicAliasInvalid,
                format!("topic alias {alias} outside 1..={max} [MQTT-3.3.2-9]"),
            ));
        }
        let slot = usize::from(alias) - 1;
        if p.topic.is_empty() {
            return self.in_aliases.get(slot).cloned().flatten().ok_or_else(|| {
                violation(
                    ReasonCode::ProtocolError,
                    format!("topic alias {alias} used before it was set [MQTT-3.3.2-12]"),
                )
            });
        }
        let topic = TopicName::new(std::mem::take(&mut p.topic))
            .map_err(|e| violation(ReasonCode::TopicNameInvalid, e.to_string()))?;
        if self.in_aliases.len() <= slot {
            self.in_aliases.resize(slot + 1, None);
        }
        if let Some(s) = self.in_aliases.get_mut(slot) {
            *s = Some(topic.clone());
        }
        Ok(topic)
    }

    fn on_publish(&mut self, mut p: Publish) -> Result<(), End> {
        let limits = self.broker.limits();
        // Counted per read batch in Conn::process: one shared atomic add
        // per message would bounce its cache line between cores.
        self.received += 1;
        if p.qos > limits.max_qos {
            return Err(violation(
                ReasonCode::QoSNotSupported,
                "QoS above maximum [MQTT-3.2.2-11]",
            ));
        }
        if p.retain && !limits.retain_available {
            return Err(violation(
                ReasonCode::RetainNotSupported,
                "retain not available [MQTT-3.3.1-12]",
            ));
        }
        let max_levels = limits.max_topic_levels;
        let receive_maximum = usize::from(limits.receive_maximum);
        let topic = self.resolve_topic(&mut p)?;
        if topic.levels().count() > max_levels {
            self.limit_hit(LimitKind::TopicLevels);
            return Err(violation(
                ReasonCode::TopicNameInvalid,
                "topic has too many levels",
            ));
        }
        if topic.as_str().len() > self.broker.limits().max_topic_len {
            self.limit_hit(LimitKind::TopicLength);
            return Err(violation(
                ReasonCode::TopicNameInvalid,
                "topic longer than max_topic_len",
            ));
        }
        if p.qos == QoS::ExactlyOnce {
            let state = self.session.state();
            if state.has_incoming_qos2(p.packet_id) {
                // A retransmission: it was routed already [MQTT-4.3.3-9].
                drop(state);
                self.out
                    .ack(Packet::PubRec, p.packet_id, ReasonCode::Success);
                return Ok(());
            }
            if state.incoming_qos2_len() >= receive_maximum {
                drop(state);
                self.limit_hit(LimitKind::ReceiveMaximum);
                return Err(violation(
                    ReasonCode::ReceiveMaximumExceeded,
                    "more unacknowledged QoS 2 messages than Receive Maximum [MQTT-3.3.4-9]",
                ));
            }
        }
        if let Some(refused) = self.refuse_publish(&topic, &p) {
            return refused;
        }
        let mut properties = std::mem::take(&mut p.properties);
        properties.subscription_identifiers.clear();
        let expiry = properties.message_expiry_interval.take();
        let message = Message {
            topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at: expiry.map(|s| Instant::now() + Duration::from_secs(u64::from(s))),
        };
        let matched =
            self.broker
                .publish_from(Arc::new(message), Some(&self.session), &mut self.pressure);
        let reason = if matched == 0 && self.v5() {
            ReasonCode::NoMatchingSubscribers
        } else {
            ReasonCode::Success
        };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.out.ack(Packet::PubAck, p.packet_id, reason),
            QoS::ExactlyOnce => {
                self.session.state().begin_incoming_qos2(p.packet_id);
                self.out.ack(Packet::PubRec, p.packet_id, reason);
            }
        }
        Ok(())
    }

    /// Publishes the broker refuses without closing the connection: `$SYS`
    /// is the broker's own namespace, and a payload declared UTF-8 must be.
    fn refuse_publish(&mut self, topic: &TopicName, p: &Publish) -> Option<Result<(), End>> {
        let reason = if topic.as_str().starts_with("$SYS") {
            tracing::info!(peer = %self.peer, client_id = %self.session.client_id, topic = topic.as_str(), "PUBLISH to $SYS refused");
            ReasonCode::NotAuthorized
        } else if p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(&p.payload).is_err()
        {
            ReasonCode::PayloadFormatInvalid
        } else {
            return None;
        };
        // 3.1.1 has no negative acknowledgement: the message is acknowledged
        // and discarded, as the spec allows [MQTT-3.3.5-2].
        let answer = if self.v5() {
            reason
        } else {
            ReasonCode::Success
        };
        match p.qos {
            QoS::AtMostOnce if reason == ReasonCode::PayloadFormatInvalid && self.v5() => {
                return Some(Err(violation(reason, "payload is not valid UTF-8")));
            }
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.out.ack(Packet::PubAck, p.packet_id, answer),
            QoS::ExactlyOnce => self.out.ack(Packet::PubRec, p.packet_id, answer),
        }
        Some(Ok(()))
    }

    fn on_subscribe(&mut self, s: Subscribe) -> Result<(), End> {
        let identifier = s.properties.subscription_identifiers.first().copied();
        let limits = self.broker.limits().clone();
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        for (raw, mut options) in s.filters {
            let parsed = match bulwark_topic::parse_subscription(&raw) {
                Ok(p)
                    if p.filter.levels().count() <= limits.max_topic_levels
                        && raw.len() <= limits.max_topic_len =>
                {
                    p
                }
                Ok(_) => {
                    self.limit_hit(LimitKind::TopicLevels);
                    tracing::debug!(peer = %self.peer, filter = %raw, "topic filter over max_topic_levels or max_topic_len");
                    reasons.push(self.failure(ReasonCode::TopicFilterInvalid));
                    continue;
                }
                Err(_) => {
                    tracing::debug!(peer = %self.peer, filter = %raw, "invalid topic filter");
                    reasons.push(self.failure(ReasonCode::TopicFilterInvalid));
                    continue;
                }
            };
            if parsed.share_group.is_some() && options.no_local {
                return Err(violation(
                    ReasonCode::ProtocolError,
                    "No Local on a shared subscription [MQTT-3.8.3-4]",
                ));
            }
            let known = self.session.state().subscriptions.contains_key(&raw);
            if !known && self.session.state().subscriptions.len() >= limits.max_subscriptions {
                self.limit_hit(LimitKind::Subscriptions);
                reasons.push(self.failure(ReasonCode::QuotaExceeded));
                continue;
            }
            options.qos = options.qos.min(limits.max_qos);
            let existed = self
                .broker
                .subscribe(&self.session, &raw, &parsed, options, identifier);
            for m in self
                .broker
                .retained_for_subscription(&parsed, &options, existed)
            {
                retained.push(Delivery {
                    qos: m.qos.min(options.qos),
                    message: m,
                    // Retained messages sent for a new subscription keep
                    // the flag [MQTT-3.3.1-9].
                    retain: true,
                    subscription_ids: identifier.into_iter().collect(),
                    shared: None,
                });
            }
            reasons.push(match options.qos {
                QoS::AtMostOnce => ReasonCode::GrantedQoS0,
                QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
            });
        }
        self.out.packet(&Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            reasons,
            properties: Default::default(),
        }));
        for d in retained {
            self.broker.deliver(&self.session, d);
        }
        Ok(())
    }

    /// 3.1.1 SUBACK knows only one failure code.
    fn failure(&self, reason: ReasonCode) -> ReasonCode {
        if self.v5() {
            reason
        } else {
            ReasonCode::UnspecifiedError
        }
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let reasons = u
            .filters
            .iter()
            .map(|f| {
                if self.broker.unsubscribe(&self.session, f) {
                    ReasonCode::Success
                } else {
                    ReasonCode::NoSubscriptionExisted
                }
            })
            .collect::<Vec<_>>();
        self.out.packet(&Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            reasons: if self.v5() { reasons } else { Vec::new() },
            properties: Default::default(),
        }));
    }

    fn on_disconnect(&mut self, d: bulwark_codec::Disconnect) -> Result<(), End> {
        if let Some(expiry) = d.properties.session_expiry_interval {
            if self.connect_expiry_zero && expiry != 0 {
                return Err(violation(
                    ReasonCode::ProtocolError,
                    "session expiry set at DISCONNECT after 0 at CONNECT [MQTT-3.14.2-2]",
                ));
            }
            self.expiry_interval = expiry.min(self.broker.limits().max_session_expiry);
        }
        Err(End::ClientDisconnect {
            keep_will: d.reason == ReasonCode::DisconnectWithWillMessage,
        })
    }
}
