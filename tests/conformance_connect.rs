//! CONNECT: server-assigned client identifiers, and which empty identifiers
//! are refused.

use std::time::Duration;

use bulwark_codec::{Packet, ProtocolVersion, ReasonCode};
use bulwark_tests::mqtt::{connect_packet, RawClient};
use bulwark_tests::{encode, limits, start_with, Limits, Raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_empty_client_id_gets_an_assigned_identifier() {
    let b = start_with(limits()).await;
    let (_a, ack_a) = RawClient::connect(b.addr, connect_packet("", ProtocolVersion::V5)).await;
    let (_b, ack_b) = RawClient::connect(b.addr, connect_packet("", ProtocolVersion::V5)).await;
    let a = ack_a
        .properties
        .assigned_client_identifier
        .expect("assigned id");
    let c = ack_b
        .properties
        .assigned_client_identifier
        .expect("assigned id");
    assert!(!a.is_empty());
    assert_ne!(a, c, "two clients, two identifiers");
    assert!(
        b.broker.session(&a).is_some(),
        "the session lives under the assigned id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_client_id_gets_no_assigned_identifier() {
    let b = start_with(limits()).await;
    let (_c, ack) = RawClient::connect(b.addr, connect_packet("mine", ProtocolVersion::V5)).await;
    assert_eq!(ack.properties.assigned_client_identifier, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_empty_client_id_needs_a_clean_session() {
    let b = start_with(limits()).await;
    let mut connect = connect_packet("", ProtocolVersion::V311);
    connect.clean_start = false;
    let mut raw = Raw::connect(b.addr).await;
    raw.send(&encode(
        &Packet::Connect(Box::new(connect)),
        ProtocolVersion::V311,
    ))
    .await;
    let (bytes, closed) = raw.read_for(Duration::from_secs(2)).await;
    assert_eq!(bytes, [0x20, 0x02, 0x00, 0x02], "identifier rejected");
    assert!(closed);

    let (_c, ack) = RawClient::connect(b.addr, connect_packet("", ProtocolVersion::V311)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_client_id_is_refused_when_assignment_is_off() {
    let b = start_with(Limits {
        allow_empty_client_id: false,
        ..limits()
    })
    .await;
    let (_c, ack) = RawClient::connect(b.addr, connect_packet("", ProtocolVersion::V5)).await;
    assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid);
}
