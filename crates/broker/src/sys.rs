//! `$SYS/broker/...` statistics, published as retained messages so a client
//! subscribing late still sees the latest figures. Wildcard subscriptions at
//! the first level never match them [MQTT-4.7.2-1]; clients must subscribe to
//! `$SYS/...` explicitly.

use std::sync::Arc;

use bulwark_codec::QoS;
use bulwark_topic::TopicName;
use bytes::Bytes;

use crate::broker::Broker;
use crate::limit_hits::LimitKind;
use crate::message::Message;
use crate::stats::Stats;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) fn publish_stats(broker: &Broker) {
    let s = broker.stats();
    let mut figures: Vec<(String, String)> = [
        ("version", format!("bulwark {VERSION}")),
        ("uptime", format!("{} seconds", broker.uptime().as_secs())),
        ("clients/connected", broker.connected_clients().to_string()),
        ("clients/total", broker.session_count().to_string()),
        (
            "subscriptions/count",
            broker.subscription_count().to_string(),
        ),
        (
            "retained messages/count",
            broker.retained_count().to_string(),
        ),
        (
            "messages/received",
            Stats::get(&s.messages_received).to_string(),
        ),
        ("messages/sent", Stats::get(&s.messages_sent).to_string()),
        ("messages/dropped", s.dropped_total().to_string()),
        (
            "messages/dropped/queue_full",
            Stats::get(&s.dropped_queue_full).to_string(),
        ),
        (
            "messages/dropped/expired",
            Stats::get(&s.dropped_expired).to_string(),
        ),
        ("bytes/received", Stats::get(&s.bytes_received).to_string()),
        ("bytes/sent", Stats::get(&s.bytes_sent).to_string()),
        (
            "packets/malformed",
            Stats::get(&s.malformed_packets).to_string(),
        ),
        ("connections/refused", s.refused_total().to_string()),
        (
            "connections/refused/max_connections",
            Stats::get(&s.refused_max_connections).to_string(),
        ),
        (
            "connections/refused/pending_connects",
            Stats::get(&s.refused_pending_connects).to_string(),
        ),
        (
            "connections/refused/per_address",
            Stats::get(&s.refused_connections_per_address).to_string(),
        ),
        (
            "connections/refused/rate",
            Stats::get(&s.refused_connection_rate).to_string(),
        ),
        (
            "publish/rate_limited",
            Stats::get(&s.publish_rate_limited).to_string(),
        ),
        (
            "publish/rate_disconnects",
            Stats::get(&s.publish_rate_disconnects).to_string(),
        ),
        ("memory/queued_bytes", broker.queued_bytes().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // Every limit clients ran into, by its configuration key.
    for kind in LimitKind::ALL {
        figures.push((
            format!("limits/{}", kind.key()),
            s.limits.count(kind).to_string(),
        ));
    }
    for (name, value) in figures {
        let Ok(topic) = TopicName::new(format!("$SYS/broker/{name}")) else {
            continue;
        };
        let message = Message {
            topic,
            payload: Bytes::from(value),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Default::default(),
            expires_at: None,
        };
        broker.publish(Arc::new(message), None);
    }
}
