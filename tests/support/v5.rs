//! rumqttc's MQTT 5 client, with its event loop polled by a task that
//! forwards every event, so a test can wait for the one it needs with a
//! timeout. Dropping a [`Client`] drops the socket without DISCONNECT: an
//! abnormal close, as far as the broker can tell.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet, Publish};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use rumqttc::v5::mqttbytes::QoS;

include!("client_common.rs");

/// Sets the session expiry interval, keeping other connect properties.
pub fn set_session_expiry(o: &mut MqttOptions, secs: u32) {
    let mut p = o.connect_properties().unwrap_or_default();
    p.session_expiry_interval = Some(secs);
    o.set_connect_properties(p);
}

pub fn topic(p: &Publish) -> String {
    String::from_utf8_lossy(&p.topic).into_owned()
}
