//! rumqttc's MQTT 3.1.1 client, with its event loop polled by a task that
//! forwards every event, so a test can wait for the one it needs with a
//! timeout. Dropping a [`Client`] drops the socket without DISCONNECT: an
//! abnormal close, as far as the broker can tell.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions};
use rumqttc::{ConnAck, Packet, Publish};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use rumqttc::QoS;

include!("client_common.rs");

pub fn topic(p: &Publish) -> String {
    p.topic.clone()
}
