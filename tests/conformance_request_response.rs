//! Request/response: Response Topic, Correlation Data, User Properties and
//! the payload format and content type reach the subscriber unchanged.

use std::time::Duration;

use bulwark_tests::v5::{self, QoS};
use bulwark_tests::{limits, start_with};
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::PublishProperties;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_properties_are_forwarded_unchanged() {
    let b = start_with(limits()).await;
    let mut responder = v5::connected(b.port(), "responder").await;
    responder.subscribe("svc/req", QoS::AtLeastOnce).await;
    let mut requester = v5::connected(b.port(), "requester").await;
    requester.subscribe("svc/resp/1", QoS::AtLeastOnce).await;

    let sent = PublishProperties {
        payload_format_indicator: Some(1),
        response_topic: Some("svc/resp/1".into()),
        correlation_data: Some(Bytes::from_static(&[0, 1, 2, 0xFF])),
        user_properties: vec![("k".into(), "v1".into()), ("k".into(), "v2".into())],
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    requester
        .client
        .publish_with_properties("svc/req", QoS::AtLeastOnce, false, "ping", sent.clone())
        .await
        .expect("publish");
    let req = responder
        .publish_msg(Duration::from_secs(3))
        .await
        .expect("request");
    let got = req.properties.clone().expect("properties");
    assert_eq!(got.response_topic, sent.response_topic);
    assert_eq!(got.correlation_data, sent.correlation_data);
    assert_eq!(got.user_properties, sent.user_properties, "order kept");
    assert_eq!(got.content_type, sent.content_type);
    assert_eq!(got.payload_format_indicator, Some(1));

    // The responder answers on the response topic with the same data.
    let answer = PublishProperties {
        correlation_data: got.correlation_data.clone(),
        ..Default::default()
    };
    let topic = got.response_topic.expect("response topic");
    responder
        .client
        .publish_with_properties(topic, QoS::AtLeastOnce, false, "pong", answer)
        .await
        .expect("respond");
    let resp = requester
        .publish_msg(Duration::from_secs(3))
        .await
        .expect("response");
    assert_eq!(v5::text(&resp), "pong");
    assert_eq!(
        resp.properties.and_then(|p| p.correlation_data),
        sent.correlation_data
    );
}
