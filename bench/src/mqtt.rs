//! Minimal MQTT 3.1.1 client-side codec for the load generator.
//!
//! Encoders append to a caller-owned `BytesMut`, so a publisher can put hundreds of packets in one
//! buffer and hand them to the kernel with a single write. The decoder works in place on the read
//! buffer and borrows topic and payload from it: a subscriber decodes every packet of a 256 KiB
//! read without copying or allocating. This is deliberately independent of `bulwark-codec`, so a
//! codec bug in the broker cannot hide itself by being shared with the tool that measures it.

use anyhow::{bail, Context, Result};
use bytes::{BufMut, BytesMut};

/// Largest packet the bench expects from a broker; anything bigger is a misbehaving peer, and
/// refusing it up front keeps a corrupt length from making us buffer without bound.
const MAX_PACKET: usize = 1 << 20;

/// A decoded packet borrowing its variable parts from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    ConnAck {
        return_code: u8,
    },
    SubAck {
        packet_id: u16,
        granted: &'a [u8],
    },
    Publish {
        qos: u8,
        packet_id: u16,
        topic: &'a [u8],
        payload: &'a [u8],
    },
    PubAck {
        packet_id: u16,
    },
    PingResp,
    /// A packet type the bench never acts on (PUBREC, DISCONNECT ...), kept so callers can
    /// name it in an error.
    Other {
        kind: u8,
    },
}

fn put_remaining_length(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    // Every string we encode is ours (topics, client ids), all far below 64 KiB.
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

/// CONNECT with clean session, no will, no credentials.
pub fn connect(buf: &mut BytesMut, client_id: &str, keep_alive: u16) {
    connect_login(buf, client_id, keep_alive, None);
}

/// CONNECT with clean session, no will, and with `login` a user name and password.
pub fn connect_login(
    buf: &mut BytesMut,
    client_id: &str,
    keep_alive: u16,
    login: Option<(&str, &str)>,
) {
    let creds_len = login.map_or(0, |(u, p)| 4 + u.len() + p.len());
    buf.put_u8(0x10);
    put_remaining_length(buf, 10 + 2 + client_id.len() + creds_len);
    put_str(buf, b"MQTT");
    buf.put_u8(4); // protocol level 3.1.1
                   // Clean session; with a login also the user name (0x80) and password (0x40) flags.
    buf.put_u8(if login.is_some() { 0xC2 } else { 0x02 });
    buf.put_u16(keep_alive);
    put_str(buf, client_id.as_bytes());
    if let Some((user, password)) = login {
        put_str(buf, user.as_bytes());
        put_str(buf, password.as_bytes());
    }
}

/// SUBSCRIBE to one filter.
pub fn subscribe(buf: &mut BytesMut, packet_id: u16, filter: &str, qos: u8) {
    buf.put_u8(0x82);
    put_remaining_length(buf, 2 + 2 + filter.len() + 1);
    buf.put_u16(packet_id);
    put_str(buf, filter.as_bytes());
    buf.put_u8(qos);
}

/// PUBLISH at QoS 0 or 1; `packet_id` is ignored at QoS 0.
pub fn publish(buf: &mut BytesMut, topic: &[u8], qos: u8, packet_id: u16, payload: &[u8]) {
    buf.put_u8(0x30 | (qos << 1));
    let id_len = if qos > 0 { 2 } else { 0 };
    put_remaining_length(buf, 2 + topic.len() + id_len + payload.len());
    put_str(buf, topic);
    if qos > 0 {
        buf.put_u16(packet_id);
    }
    buf.put_slice(payload);
}

pub fn puback(buf: &mut BytesMut, packet_id: u16) {
    buf.put_u8(0x40);
    buf.put_u8(2);
    buf.put_u16(packet_id);
}

pub fn pingreq(buf: &mut BytesMut) {
    buf.put_u8(0xC0);
    buf.put_u8(0);
}

pub fn disconnect(buf: &mut BytesMut) {
    buf.put_u8(0xE0);
    buf.put_u8(0);
}

/// Decodes the packet at the front of `buf`. Returns the packet and the number of bytes it
/// occupies, or `None` while the frame is still incomplete.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut shift = 0;
    let mut at = 1;
    loop {
        let Some(&byte) = buf.get(at) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << shift;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            bail!("remaining length longer than 4 bytes");
        }
    }
    if len > MAX_PACKET {
        bail!("broker sent a {len}-byte packet, over the bench's {MAX_PACKET}-byte limit");
    }
    let Some(body) = buf.get(at..at + len) else {
        return Ok(None);
    };
    Ok(Some((parse(first, body)?, at + len)))
}

fn u16_at(body: &[u8], at: usize) -> Result<u16> {
    let bytes = body
        .get(at..at + 2)
        .context("packet too short for a 16-bit field")?;
    Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn parse(first: u8, body: &[u8]) -> Result<Packet<'_>> {
    Ok(match first >> 4 {
        2 => Packet::ConnAck {
            return_code: *body.get(1).context("CONNACK too short")?,
        },
        3 => {
            let qos = (first >> 1) & 3;
            let topic_len = usize::from(u16_at(body, 0)?);
            let topic = body
                .get(2..2 + topic_len)
                .context("PUBLISH topic overruns packet")?;
            let mut rest = 2 + topic_len;
            let mut packet_id = 0;
            if qos > 0 {
                packet_id = u16_at(body, rest)?;
                rest += 2;
            }
            let payload = body.get(rest..).context("PUBLISH too short")?;
            Packet::Publish {
                qos,
                packet_id,
                topic,
                payload,
            }
        }
        4 => Packet::PubAck {
            packet_id: u16_at(body, 0)?,
        },
        9 => Packet::SubAck {
            packet_id: u16_at(body, 0)?,
            granted: body.get(2..).unwrap_or_default(),
        },
        13 => Packet::PingResp,
        kind => Packet::Other { kind },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_at_both_qos() {
        let mut buf = BytesMut::new();
        publish(&mut buf, b"bench/p1", 0, 0, &[7; 64]);
        publish(&mut buf, b"t", 1, 513, &[1, 2, 3]);
        let (first, used) = decode(&buf).unwrap().unwrap();
        assert_eq!(
            first,
            Packet::Publish {
                qos: 0,
                packet_id: 0,
                topic: b"bench/p1",
                payload: &[7; 64]
            }
        );
        let (second, used2) = decode(&buf[used..]).unwrap().unwrap();
        assert_eq!(
            second,
            Packet::Publish {
                qos: 1,
                packet_id: 513,
                topic: b"t",
                payload: &[1, 2, 3]
            }
        );
        assert_eq!(used + used2, buf.len());
    }

    #[test]
    fn incomplete_frames_wait_for_more_bytes() {
        let mut buf = BytesMut::new();
        publish(&mut buf, b"topic", 0, 0, &[0; 200]); // two-byte remaining length
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        assert!(decode(&buf).unwrap().is_some());
    }

    #[test]
    fn acks_decode() {
        assert_eq!(
            decode(&[0x20, 2, 0, 0]).unwrap().unwrap().0,
            Packet::ConnAck { return_code: 0 }
        );
        assert_eq!(
            decode(&[0x90, 3, 0, 1, 1]).unwrap().unwrap().0,
            Packet::SubAck {
                packet_id: 1,
                granted: &[1]
            }
        );
        let mut buf = BytesMut::new();
        puback(&mut buf, 0x1234);
        assert_eq!(
            decode(&buf).unwrap().unwrap().0,
            Packet::PubAck { packet_id: 0x1234 }
        );
        assert_eq!(decode(&[0xD0, 0]).unwrap().unwrap().0, Packet::PingResp);
    }

    #[test]
    fn connect_with_login_encodes_user_and_password() {
        let mut buf = BytesMut::new();
        connect_login(&mut buf, "u1-x", 60, Some(("u1", "pw")));
        let mut want = vec![0x10, 24, 0, 4];
        want.extend_from_slice(b"MQTT");
        want.extend_from_slice(&[4, 0xC2, 0, 60, 0, 4]);
        want.extend_from_slice(b"u1-x");
        want.extend_from_slice(&[0, 2]);
        want.extend_from_slice(b"u1");
        want.extend_from_slice(&[0, 2]);
        want.extend_from_slice(b"pw");
        assert_eq!(&buf[..], &want[..]);
        buf.clear();
        connect(&mut buf, "c", 60);
        assert_eq!(
            &buf[..],
            &[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'c']
        );
    }

    #[test]
    fn oversized_and_malformed_lengths_are_errors() {
        assert!(decode(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(decode(&[0x30, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(decode(&[0x30, 1, 0]).is_err()); // topic length field cut short
    }
}
