//! Smoke test: a rumqttc v4 client publishes and receives through the broker.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[tokio::test]
async fn v311_publish_subscribe_round_trip() {
    let b = bulwark_tests::start().await;
    let mut opts = MqttOptions::new("smoke", "127.0.0.1", b.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 10);
    client
        .subscribe("smoke/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    client
        .publish("smoke/1", QoS::AtLeastOnce, false, "hello")
        .await
        .expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.expect("poll") {
                return p;
            }
        }
    })
    .await
    .expect("message within 5 s");
    assert_eq!(got.topic, "smoke/1");
    assert_eq!(&got.payload[..], b"hello");
}
