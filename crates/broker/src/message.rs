//! An application message as the router holds it: decoded once, shared by
//! every subscriber through an `Arc`, its payload a `Bytes` slice of the
//! publisher's read buffer, so fan-out never copies it.

use std::sync::Arc;
use std::time::Instant;

use bulwark_codec::{Properties, QoS};
use bulwark_topic::{TopicFilter, TopicName};
use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct Message {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Forwarded v5 properties: payload format, content type, response
    /// topic, correlation data, user properties. Topic alias, subscription
    /// identifiers and message expiry are per hop and kept out of here.
    pub properties: Properties,
    /// When the message expires; `None` means never.
    pub expires_at: Option<Instant>,
}

impl Message {
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Remaining lifetime in whole seconds, rounded up, for the Message
    /// Expiry Interval forwarded to a subscriber [MQTT-3.3.2-6].
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX).max(1)
        })
    }
}

/// One message queued for one session, with what its subscription decided.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    /// Set when the message reached this session through a shared
    /// subscription, so that it can be handed to another member if this one
    /// leaves before acknowledging it.
    pub shared: Option<Arc<SharedTag>>,
}

/// Which shared subscription a delivery came through.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SharedTag {
    pub group: String,
    pub filter: TopicFilter,
}
