//! CONNECT: what a client asked for, checked against the listener and the
//! limits, turned into what the connection runs with and the CONNACK.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bulwark_codec::{ConnAck, Connect, Properties, ProtocolVersion, QoS, ReasonCode};
use bulwark_topic::TopicName;

use crate::broker::{PendingWill, NEVER_EXPIRES};
use crate::limit_hits::LimitKind;
use crate::limits::Limits;
use crate::message::Message;

/// What a listener lets in. Authentication proper plugs in here.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: Arc<str>,
    /// Clients that present no verified identity are let in. Only the
    /// configuration can set this, and it refuses to on non-loopback
    /// listeners without an explicit override.
    pub allow_anonymous: bool,
    /// Factors every client of this listener must prove, whatever its
    /// identity requires (e.g. certificate on a plant-floor listener).
    pub min_factors: bulwark_security::factor::FactorSet,
}

impl ListenerInfo {
    pub fn new(name: &str, allow_anonymous: bool) -> Self {
        ListenerInfo {
            name: Arc::from(name),
            allow_anonymous,
            min_factors: bulwark_security::factor::FactorSet::EMPTY,
        }
    }
}

/// A CONNECT that passed every check.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub client_id: String,
    pub assigned: bool,
    pub clean_start: bool,
    pub keep_alive: u16,
    /// Set when we override the client's keep-alive (v5 Server Keep Alive).
    pub server_keep_alive: Option<u16>,
    pub expiry_interval: u32,
    /// Set when the expiry differs from what the client asked (v5).
    pub expiry_override: Option<u32>,
    pub will: Option<Box<PendingWill>>,
    pub receive_maximum: u16,
    pub max_packet_size: u32,
    pub topic_alias_maximum: u16,
}

/// A refused CONNECT: the reason for the CONNACK and a line for the log.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub reason: ReasonCode,
    pub detail: &'static str,
    /// Set when a configured limit caused the refusal.
    pub limit: Option<LimitKind>,
}

fn refuse(reason: ReasonCode, detail: &'static str) -> Refusal {
    Refusal {
        reason,
        detail,
        limit: None,
    }
}

fn over_limit(reason: ReasonCode, detail: &'static str, limit: LimitKind) -> Refusal {
    Refusal {
        reason,
        detail,
        limit: Some(limit),
    }
}

pub(crate) fn accept(
    c: &Connect,
    limits: &Limits,
    identity: Option<&str>,
) -> Result<Accepted, Refusal> {
    let v5 = c.protocol == ProtocolVersion::V5;
    // Authentication (enhanced or not) was decided before this runs.
    let (client_id, assigned) = client_id(c, limits, identity)?;
    let (keep_alive, server_keep_alive) = keep_alive(c, limits)?;
    let asked = if v5 {
        c.properties.session_expiry_interval.unwrap_or(0)
    } else if c.clean_start {
        0
    } else {
        NEVER_EXPIRES
    };
    let expiry_interval = asked.min(limits.max_session_expiry);
    let will = will(c, limits)?;
    Ok(Accepted {
        client_id,
        assigned,
        clean_start: c.clean_start,
        keep_alive,
        server_keep_alive,
        expiry_interval,
        expiry_override: (v5 && expiry_interval != asked).then_some(expiry_interval),
        will,
        receive_maximum: c.properties.receive_maximum.unwrap_or(u16::MAX),
        max_packet_size: c.properties.maximum_packet_size.unwrap_or(u32::MAX),
        topic_alias_maximum: c.properties.topic_alias_maximum.unwrap_or(0),
    })
}

fn client_id(
    c: &Connect,
    limits: &Limits,
    identity: Option<&str>,
) -> Result<(String, bool), Refusal> {
    if c.client_id.len() > limits.max_client_id_len {
        return Err(over_limit(
            ReasonCode::ClientIdentifierNotValid,
            "client identifier longer than max_client_id_len",
            LimitKind::ClientIdLength,
        ));
    }
    if !c.client_id.is_empty() {
        return Ok((c.client_id.clone(), false));
    }
    // 3.1.1 allows an empty identifier only with a clean session
    // [MQTT-3.1.3-7, MQTT-3.1.3-8].
    if !limits.allow_empty_client_id || (c.protocol == ProtocolVersion::V311 && !c.clean_start) {
        return Err(refuse(
            ReasonCode::ClientIdentifierNotValid,
            "empty client identifier refused",
        ));
    }
    Ok((assign_client_id(identity), true))
}

/// A fresh identifier no client is likely to choose: a per-process random
/// key hashed with a counter.
/// An authenticated client gets `IDENTITY-...`, which its default
/// client-ID pattern allows.
fn assign_client_id(identity: Option<&str>) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    format!(
        "{}-{:016x}{:04x}",
        identity.unwrap_or("bulwark"),
        h.finish(),
        n & 0xffff
    )
}

fn keep_alive(c: &Connect, limits: &Limits) -> Result<(u16, Option<u16>), Refusal> {
    let max = limits.max_keep_alive;
    let min = limits.min_keep_alive.min(max);
    let asked = c.keep_alive;
    if c.protocol == ProtocolVersion::V5 {
        if asked == 0 || asked > max {
            return Ok((max, Some(max)));
        }
        // A keep-alive of a second or two from thousands of clients is a
        // PINGREQ flood; v5 clients are told to ping less often.
        if asked < min {
            return Ok((min, Some(min)));
        }
        return Ok((asked, None));
    }
    // 3.1.1 cannot be told another value, so a keep-alive we will not honour
    // is refused, as Mosquitto does with max_keepalive.
    if asked > max
        || (asked == 0 && !limits.allow_zero_keep_alive_v3)
        || (asked != 0 && asked < min)
    {
        return Err(over_limit(
            ReasonCode::ClientIdentifierNotValid,
            "keep-alive outside the allowed range (0, below min_keep_alive or above max_keep_alive)",
            LimitKind::KeepAlive,
        ));
    }
    Ok((asked, None))
}

fn will(c: &Connect, limits: &Limits) -> Result<Option<Box<PendingWill>>, Refusal> {
    let Some(w) = &c.will else { return Ok(None) };
    let topic = TopicName::new(w.topic.clone())
        .map_err(|_| refuse(ReasonCode::TopicNameInvalid, "invalid will topic"))?;
    if topic.levels().count() > limits.max_topic_levels {
        return Err(over_limit(
            ReasonCode::TopicNameInvalid,
            "will topic has too many levels",
            LimitKind::TopicLevels,
        ));
    }
    if topic.as_str().len() > limits.max_topic_len {
        return Err(over_limit(
            ReasonCode::TopicNameInvalid,
            "will topic longer than max_topic_len",
            LimitKind::TopicLength,
        ));
    }
    if topic.as_str().starts_with("$SYS") {
        return Err(refuse(ReasonCode::NotAuthorized, "will topic under $SYS"));
    }
    if w.qos > limits.max_qos {
        return Err(refuse(
            ReasonCode::QoSNotSupported,
            "will QoS above maximum",
        ));
    }
    if w.retain && !limits.retain_available {
        return Err(refuse(
            ReasonCode::RetainNotSupported,
            "retained will refused",
        ));
    }
    if w.properties.payload_format_indicator == Some(1) && std::str::from_utf8(&w.payload).is_err()
    {
        return Err(refuse(
            ReasonCode::PayloadFormatInvalid,
            "will payload is declared UTF-8 but is not",
        ));
    }
    let mut properties = w.properties.clone();
    let expiry = properties.message_expiry_interval.take();
    let delay = properties.will_delay_interval.take().unwrap_or(0);
    Ok(Some(Box::new(PendingWill {
        message: Message {
            topic,
            payload: w.payload.clone(),
            qos: w.qos,
            retain: w.retain,
            properties,
            expires_at: None,
        },
        expiry,
        delay,
    })))
}

pub(crate) fn connack(a: &Accepted, session_present: bool, limits: &Limits, v5: bool) -> ConnAck {
    let mut p = Properties::default();
    if v5 {
        p.receive_maximum = Some(limits.receive_maximum);
        p.maximum_packet_size = Some(limits.max_packet_size);
        p.topic_alias_maximum = Some(limits.topic_alias_maximum);
        if limits.max_qos < QoS::ExactlyOnce {
            p.maximum_qos = Some(limits.max_qos as u8);
        }
        if !limits.retain_available {
            p.retain_available = Some(0);
        }
        p.session_expiry_interval = a.expiry_override;
        p.server_keep_alive = a.server_keep_alive;
        if a.assigned {
            p.assigned_client_identifier = Some(a.client_id.clone());
        }
    }
    ConnAck {
        session_present,
        reason: ReasonCode::Success,
        properties: p,
    }
}

pub(crate) fn refusal_connack(reason: ReasonCode) -> ConnAck {
    ConnAck {
        session_present: false,
        reason,
        properties: Properties::default(),
    }
}
