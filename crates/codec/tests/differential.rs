//! Differential tests against an independent codec (`mqttbytes`, the
//! codec of the rumqtt project): what we encode they decode to the same
//! key fields, and what they encode we decode to the same key fields.

mod common;

use bulwark_codec::*;
use bytes::BytesMut;
use mqttbytes::{v4, v5};
use proptest::prelude::*;

fn ours(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    encode(p, v, &mut out).expect("valid packets encode");
    out
}

fn their_qos(q: QoS) -> mqttbytes::QoS {
    match q {
        QoS::AtMostOnce => mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => mqttbytes::QoS::ExactlyOnce,
    }
}

fn v5_publish_matches(p: &Publish, t: &v5::Publish) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        (t.dup, their_qos(p.qos), t.retain),
        (p.dup, t.qos, p.retain)
    );
    prop_assert_eq!(
        (&t.topic, t.pkid, &t.payload),
        (&p.topic, p.packet_id, &p.payload)
    );
    let tp = t.properties.as_ref();
    let pp = &p.properties;
    prop_assert_eq!(
        tp.and_then(|t| t.payload_format_indicator),
        pp.payload_format_indicator
    );
    prop_assert_eq!(
        tp.and_then(|t| t.message_expiry_interval),
        pp.message_expiry_interval
    );
    prop_assert_eq!(tp.and_then(|t| t.topic_alias), pp.topic_alias);
    prop_assert_eq!(
        tp.and_then(|t| t.response_topic.clone()),
        pp.response_topic.clone()
    );
    prop_assert_eq!(
        tp.and_then(|t| t.correlation_data.clone()),
        pp.correlation_data.clone()
    );
    prop_assert_eq!(
        tp.and_then(|t| t.content_type.clone()),
        pp.content_type.clone()
    );
    let users = tp.map(|t| t.user_properties.clone()).unwrap_or_default();
    prop_assert_eq!(&users, &pp.user_properties);
    let ids: Vec<u32> = tp
        .map(|t| {
            t.subscription_identifiers
                .iter()
                .map(|&i| i as u32)
                .collect()
        })
        .unwrap_or_default();
    prop_assert_eq!(&ids, &pp.subscription_identifiers);
    Ok(())
}

fn v5_subscribe_matches(s: &Subscribe, t: &v5::Subscribe) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.pkid, s.packet_id);
    prop_assert_eq!(t.filters.len(), s.filters.len());
    for (tf, (f, o)) in t.filters.iter().zip(&s.filters) {
        prop_assert_eq!(&tf.path, f);
        prop_assert_eq!(tf.qos, their_qos(o.qos));
        prop_assert_eq!(
            (tf.nolocal, tf.preserve_retain),
            (o.no_local, o.retain_as_published)
        );
        let rh = match tf.retain_forward_rule {
            v5::RetainForwardRule::OnEverySubscribe => RetainHandling::OnSubscribe,
            v5::RetainForwardRule::OnNewSubscribe => RetainHandling::OnNewSubscribe,
            v5::RetainForwardRule::Never => RetainHandling::Never,
        };
        prop_assert_eq!(rh, o.retain_handling);
    }
    let id = t.properties.as_ref().and_then(|p| p.id).map(|i| i as u32);
    prop_assert_eq!(id, s.properties.subscription_identifiers.first().copied());
    Ok(())
}

fn connect_for_them() -> impl Strategy<Value = Packet> {
    // They model the password as a string and a login as both fields, so
    // give them a UTF-8 password and a user name whenever there is one.
    (common::connect(), common::text()).prop_map(|(p, pw)| match p {
        Packet::Connect(mut c) => {
            if c.username.is_some() || c.password.is_some() {
                c.username = Some(format!("u{}", c.username.unwrap_or_default()));
                c.password = Some(bytes::Bytes::from(format!("p{pw}")));
            }
            Packet::Connect(c)
        }
        other => other,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn v5_publish_ours_to_theirs(p in common::publish(ProtocolVersion::V5)) {
        let mut buf = ours(&Packet::Publish(p.clone()), ProtocolVersion::V5);
        match v5::read(&mut buf, 1 << 20) {
            Ok(v5::Packet::Publish(t)) => v5_publish_matches(&p, &t)?,
            other => prop_assert!(false, "they decoded {:?}", other),
        }
    }

    #[test]
    fn v311_publish_ours_to_theirs(p in common::publish(ProtocolVersion::V311)) {
        let mut buf = ours(&Packet::Publish(p.clone()), ProtocolVersion::V311);
        match v4::read(&mut buf, 1 << 20) {
            Ok(v4::Packet::Publish(t)) => {
                prop_assert_eq!((t.dup, t.qos, t.retain), (p.dup, their_qos(p.qos), p.retain));
                prop_assert_eq!((&t.topic, t.pkid, &t.payload), (&p.topic, p.packet_id, &p.payload));
            }
            other => prop_assert!(false, "they decoded {:?}", other),
        }
    }

    #[test]
    fn subscribe_ours_to_theirs(p in common::packet(ProtocolVersion::V5), v5_ in any::<bool>()) {
        let Packet::Subscribe(s) = p else { return Ok(()) };
        let v = if v5_ { ProtocolVersion::V5 } else { ProtocolVersion::V311 };
        let mut buf = ours(&Packet::Subscribe(s.clone()), v);
        if v5_ {
            match v5::read(&mut buf, 1 << 20) {
                Ok(v5::Packet::Subscribe(t)) => v5_subscribe_matches(&s, &t)?,
                other => prop_assert!(false, "they decoded {:?}", other),
            }
        } else {
            match v4::read(&mut buf, 1 << 20) {
                Ok(v4::Packet::Subscribe(t)) => {
                    prop_assert_eq!(t.pkid, s.packet_id);
                    let got: Vec<_> = t.filters.iter().map(|f| (f.path.clone(), f.qos)).collect();
                    let want: Vec<_> = s.filters.iter().map(|(f, o)| (f.clone(), their_qos(o.qos))).collect();
                    prop_assert_eq!(got, want);
                }
                other => prop_assert!(false, "they decoded {:?}", other),
            }
        }
    }

    #[test]
    fn unsubscribe_and_acks_ours_to_theirs(p in common::packet(ProtocolVersion::V311)) {
        let mut buf = ours(&p, ProtocolVersion::V311);
        let t = v4::read(&mut buf, 1 << 20);
        match (&p, t) {
            (Packet::Unsubscribe(u), Ok(v4::Packet::Unsubscribe(t))) => {
                prop_assert_eq!((t.pkid, &t.topics), (u.packet_id, &u.filters));
            }
            (Packet::PubAck(a), Ok(v4::Packet::PubAck(t))) => prop_assert_eq!(t.pkid, a.packet_id),
            (Packet::PubRec(a), Ok(v4::Packet::PubRec(t))) => prop_assert_eq!(t.pkid, a.packet_id),
            (Packet::PubRel(a), Ok(v4::Packet::PubRel(t))) => prop_assert_eq!(t.pkid, a.packet_id),
            (Packet::PubComp(a), Ok(v4::Packet::PubComp(t))) => prop_assert_eq!(t.pkid, a.packet_id),
            (Packet::UnsubAck(a), Ok(v4::Packet::UnsubAck(t))) => prop_assert_eq!(t.pkid, a.packet_id),
            (Packet::PingReq, Ok(v4::Packet::PingReq)) | (Packet::PingResp, Ok(v4::Packet::PingResp)) => {}
            (Packet::Disconnect(_), Ok(v4::Packet::Disconnect)) => {}
            (Packet::Unsubscribe(_) | Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_)
                | Packet::PubComp(_) | Packet::UnsubAck(_) | Packet::PingReq | Packet::PingResp
                | Packet::Disconnect(_), other) => prop_assert!(false, "{:?} decoded as {:?}", p, other),
            _ => {}
        }
    }

    #[test]
    fn connect_ours_to_theirs(p in connect_for_them()) {
        let Packet::Connect(c) = &p else { return Ok(()) };
        let mut buf = ours(&p, c.protocol);
        let (client_id, keep_alive, clean, will, login) = match c.protocol {
            ProtocolVersion::V311 => match v4::read(&mut buf, 1 << 20) {
                Ok(v4::Packet::Connect(t)) => (t.client_id, t.keep_alive, t.clean_session,
                    t.last_will.map(|w| (w.topic, w.message, w.qos, w.retain)),
                    t.login.map(|l| (l.username, l.password))),
                other => return Err(TestCaseError::fail(format!("they decoded {other:?}"))),
            },
            ProtocolVersion::V5 => match v5::read(&mut buf, 1 << 20) {
                Ok(v5::Packet::Connect(t)) => {
                    let tp = t.properties.as_ref();
                    prop_assert_eq!(tp.and_then(|p| p.session_expiry_interval), c.properties.session_expiry_interval);
                    prop_assert_eq!(tp.and_then(|p| p.receive_maximum), c.properties.receive_maximum);
                    prop_assert_eq!(tp.and_then(|p| p.authentication_method.clone()), c.properties.authentication_method.clone());
                    (t.client_id, t.keep_alive, t.clean_session,
                        t.last_will.map(|w| (w.topic, w.message, w.qos, w.retain)),
                        t.login.map(|l| (l.username, l.password)))
                }
                other => return Err(TestCaseError::fail(format!("they decoded {other:?}"))),
            },
        };
        prop_assert_eq!((&client_id, keep_alive, clean), (&c.client_id, c.keep_alive, c.clean_start));
        let want_will = c.will.as_ref().map(|w| (w.topic.clone(), w.payload.clone(), their_qos(w.qos), w.retain));
        prop_assert_eq!(will, want_will);
        let want_login = c.username.clone().map(|u| {
            (u, String::from_utf8_lossy(c.password.as_deref().unwrap_or_default()).into_owned())
        });
        prop_assert_eq!(login, want_login);
    }

    /// The reverse direction: they encode, we decode.
    #[test]
    fn theirs_to_ours(
        topic in common::topic(),
        payload in proptest::collection::vec(any::<u8>(), 0..32),
        q in 0u8..3,
        pkid in 1u16..,
        retain in any::<bool>(),
        filters in proptest::collection::vec((common::filter(), 0u8..3), 1..4),
    ) {
        let tq = mqttbytes::qos(q).expect("0..3 is a QoS");
        let mut buf = BytesMut::new();
        let mut p4 = v4::Publish::new(topic.clone(), tq, payload.clone());
        p4.retain = retain;
        p4.pkid = if q == 0 { 0 } else { pkid };
        p4.write(&mut buf).expect("they encode");
        let mut p5 = v5::Publish::new(topic.clone(), tq, payload.clone());
        p5.pkid = p4.pkid;
        p5.retain = retain;
        let mut buf5 = BytesMut::new();
        p5.write(&mut buf5).expect("they encode");
        for (b, v) in [(buf, ProtocolVersion::V311), (buf5, ProtocolVersion::V5)] {
            let Ok(Packet::Publish(got)) = decode(b.freeze(), v) else {
                return Err(TestCaseError::fail("we refused their PUBLISH"));
            };
            prop_assert_eq!((&got.topic, got.qos as u8, got.packet_id), (&topic, q, p4.pkid));
            prop_assert_eq!(&got.payload[..], &payload[..]);
            prop_assert_eq!(got.retain, retain);
        }
        let subs = v5::Subscribe::new_many(filters.iter().map(|(f, q)| {
            v5::SubscribeFilter::new(f.clone(), mqttbytes::qos(*q).expect("QoS"))
        }));
        let mut subs = subs;
        subs.pkid = pkid;
        let mut buf = BytesMut::new();
        subs.write(&mut buf).expect("they encode");
        let Ok(Packet::Subscribe(got)) = decode(buf.freeze(), ProtocolVersion::V5) else {
            return Err(TestCaseError::fail("we refused their SUBSCRIBE"));
        };
        prop_assert_eq!(got.packet_id, pkid);
        let want: Vec<_> = filters.iter().map(|(f, q)| (f.clone(), *q)).collect();
        let have: Vec<_> = got.filters.iter().map(|(f, o)| (f.clone(), o.qos as u8)).collect();
        prop_assert_eq!(have, want);
    }
}
