"""Bulwark with Eclipse Paho (paho-mqtt 2.x), MQTT 3.1.1 and 5.0."""

import queue
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import HOST

WAIT = 5.0
PROTOCOLS = {"v311": mqtt.MQTTv311, "v5": mqtt.MQTTv5}


class Client:
    """A paho client on its own network thread; messages land in a queue."""

    def __init__(self, port, protocol, client_id=None, will=None):
        self.messages = queue.Queue()
        self.subscribed = queue.Queue()
        self.connected = queue.Queue()
        self.protocol = protocol
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"paho-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.put(rc)
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.put(rc)
        if will:
            self.c.will_set(*will)
        self.c.connect(HOST, port, keepalive=30)
        self.c.loop_start()
        rc = self.connected.get(timeout=WAIT)
        assert not rc.is_failure, f"CONNACK {rc}"

    def subscribe(self, topic, qos):
        self.c.subscribe(topic, qos)
        codes = self.subscribed.get(timeout=WAIT)
        assert all(not rc.is_failure for rc in codes), codes
        assert [rc.value for rc in codes] == [qos]

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()

    def message(self, timeout=WAIT):
        return self.messages.get(timeout=timeout)

    def no_message(self, timeout=0.3):
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=timeout)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """Ends the connection without DISCONNECT, as a crash would."""
        self.c.loop_stop()
        self.c.socket().close()


@pytest.fixture(params=sorted(PROTOCOLS))
def protocol(request):
    return PROTOCOLS[request.param]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_subscribe_at_each_qos(broker_port, protocol, qos):
    topic = f"paho/{protocol}/qos{qos}"
    sub = Client(broker_port, protocol)
    sub.subscribe(topic, qos)
    pub = Client(broker_port, protocol)
    pub.publish(topic, b"hello", qos=qos)
    m = sub.message()
    assert (m.topic, m.payload, m.qos, m.retain) == (topic, b"hello", qos, False)
    sub.no_message()
    pub.close()
    sub.close()


def test_retained_message_reaches_a_later_subscriber(broker_port, protocol):
    topic = f"paho/{protocol}/retained"
    pub = Client(broker_port, protocol)
    pub.publish(topic, b"kept", qos=1, retain=True)
    sub = Client(broker_port, protocol)
    sub.subscribe(topic, 1)
    m = sub.message()
    assert (m.payload, m.retain) == (b"kept", True)
    pub.publish(topic, b"", qos=1, retain=True)
    late = Client(broker_port, protocol)
    late.subscribe(topic, 1)
    late.no_message()
    for c in (pub, sub, late):
        c.close()


def test_will_is_published_on_abnormal_close(broker_port, protocol):
    topic = f"paho/{protocol}/will"
    watcher = Client(broker_port, protocol)
    watcher.subscribe(topic, 1)
    doomed = Client(broker_port, protocol, will=(topic, b"gone", 1, False))
    doomed.drop()
    m = watcher.message()
    assert (m.topic, m.payload) == (topic, b"gone")
    watcher.close()


def test_will_is_not_published_on_clean_disconnect(broker_port, protocol):
    topic = f"paho/{protocol}/nowill"
    watcher = Client(broker_port, protocol)
    watcher.subscribe(topic, 1)
    polite = Client(broker_port, protocol, will=(topic, b"gone", 1, False))
    polite.close()
    watcher.no_message(0.5)
    watcher.close()


def test_v5_request_properties_pass_through(broker_port):
    responder = Client(broker_port, mqtt.MQTTv5)
    responder.subscribe("paho/svc/req", 1)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "paho/svc/resp"
    props.CorrelationData = b"\x00\x01corr"
    props.UserProperty = [("a", "1"), ("b", "2")]
    props.ContentType = "text/plain"
    requester = Client(broker_port, mqtt.MQTTv5)
    requester.subscribe("paho/svc/resp", 1)
    requester.publish("paho/svc/req", b"ping", qos=1, properties=props)

    m = responder.message()
    got = m.properties
    assert got.ResponseTopic == "paho/svc/resp"
    assert got.CorrelationData == b"\x00\x01corr"
    assert got.UserProperty == [("a", "1"), ("b", "2")]
    assert got.ContentType == "text/plain"

    answer = Properties(PacketTypes.PUBLISH)
    answer.CorrelationData = got.CorrelationData
    responder.publish(got.ResponseTopic, b"pong", qos=1, properties=answer)
    r = requester.message()
    assert (r.payload, r.properties.CorrelationData) == (b"pong", b"\x00\x01corr")
    responder.close()
    requester.close()
