"""MQTT over WebSockets (`ws`, `wss`) with Eclipse Paho, raw HTTP upgrade
requests for path and Origin checks, and a `wss` listener that also serves
raw MQTT over TLS on the same port (ALPN / first-byte detection)."""

import base64
import hashlib
import os
import queue
import re
import socket
import ssl
import subprocess
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import HOST
from tls_support import CA, Broker, MosqSub, cert_cn, mosq_pub, needs_mosquitto, tls_args

WAIT = 5.0
ALLOWED_ORIGIN = "https://hmi.example"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("wspki")
    ca = CA(d / "ca")
    return {
        "ca": ca,
        "server": ca.server(d / "server"),
        "alice": ca.client("alice", d / "alice"),
        "bob": ca.client("bob", d / "bob"),
    }


@pytest.fixture(scope="module")
def broker(pki, tmp_path_factory):
    server, ca = pki["server"], pki["ca"]
    mtls = {"tls_cert": server.pem, "tls_key": server.key, "tls_ca": ca.pem,
            "client_auth": "required"}
    b = Broker(tmp_path_factory.mktemp("wsbroker"), {
        "ws": {"kind": "ws", "allow_anonymous": True},
        "ws-origin": {"kind": "ws", "allow_anonymous": True,
                      "ws_allowed_origins": [ALLOWED_ORIGIN]},
        "ws-custom-path": {"kind": "ws", "allow_anonymous": True, "ws_path": "/custom/ws"},
        "wss": {"kind": "wss", **mtls},
        "wss-alpn": {"kind": "wss", "alpn_mqtt": True, **mtls},
    })
    yield b
    b.stop()


class Paho:
    """A paho client over WebSockets on its own network thread."""

    def __init__(self, port, *, tls=None, path="/mqtt", protocol=mqtt.MQTTv311,
                 alpn=None, headers=None):
        self.messages = queue.Queue()
        self.subscribed = queue.Queue()
        self.connected = queue.Queue()
        # With a client certificate the client ID must be bound to its CN.
        cn = cert_cn(tls["certfile"]) if tls and tls.get("certfile") else None
        prefix = f"{cn}-ws" if cn else "ws"
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{prefix}-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
            transport="websockets",
            reconnect_on_failure=False,
        )
        self.c.ws_set_options(path=path, headers=headers)
        if tls is not None:
            self.c.tls_set(alpn_protocols=alpn, **tls)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.put(rc)
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.put(rc)
        self.c.on_disconnect = lambda c, u, f, rc, p: self.connected.put(("disconnected", rc))
        self.c.connect(HOST, port, keepalive=30)
        self.c.loop_start()
        rc = self.connected.get(timeout=WAIT)
        if isinstance(rc, tuple) or rc.is_failure:
            self.close()
            raise ConnectionError(f"not connected: {rc}")

    def subscribe(self, topic, qos=1):
        self.c.subscribe(topic, qos)
        codes = self.subscribed.get(timeout=WAIT)
        assert [rc.value for rc in codes] == [qos], codes

    def publish(self, topic, payload, qos=1):
        info = self.c.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()

    def message(self, timeout=WAIT):
        return self.messages.get(timeout=timeout)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def mtls(pki, who="alice"):
    return {"ca_certs": str(pki["ca"].pem), "certfile": str(pki[who].pem),
            "keyfile": str(pki[who].key)}


def topic(label):
    return f"ws/{label}/{uuid.uuid4().hex[:8]}"


def round_trip(sub, pub, t, payload, qos=1):
    sub.subscribe(t, qos)
    pub.publish(t, payload, qos=qos)
    m = sub.message()
    assert m.topic == t
    assert m.payload == payload
    assert m.qos == qos


# 7. Paho over ws and wss.

@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["v311", "v5"])
def test_paho_ws_round_trip(broker, protocol):
    port = broker.port("ws")
    sub = Paho(port, protocol=protocol)
    pub = Paho(port, protocol=protocol)
    try:
        round_trip(sub, pub, topic("ws"), b"over websockets")
    finally:
        sub.close()
        pub.close()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["v311", "v5"])
def test_paho_wss_mutual_tls_round_trip(broker, pki, protocol):
    port = broker.port("wss")
    sub = Paho(port, tls=mtls(pki, "alice"), protocol=protocol)
    pub = Paho(port, tls=mtls(pki, "bob"), protocol=protocol)
    try:
        round_trip(sub, pub, topic("wss"), b"over secure websockets")
    finally:
        sub.close()
        pub.close()


def test_paho_wss_without_client_certificate_refused(broker, pki):
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        Paho(broker.port("wss"), tls={"ca_certs": str(pki["ca"].pem)})


def test_paho_wss_with_wrong_server_ca_refused(broker, tmp_path):
    """Control: paho verifies the broker's certificate."""
    other = CA(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        Paho(broker.port("wss"), tls={"ca_certs": str(other.pem)})


# 8. HTTP paths and Origin checks.

WS_KEY = base64.b64encode(b"bulwark test key").decode()
WS_ACCEPT = base64.b64encode(
    hashlib.sha1((WS_KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
).decode()


def http_upgrade(port, path, origin=None):
    """Sends a WebSocket upgrade request; returns (status code, headers)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {WS_KEY}",
             "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: mqtt"]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection((HOST, port), timeout=WAIT) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            assert len(data) < 65536
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status, *header_lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", status + " ")
    assert m, f"not an HTTP response: {data[:200]!r}"
    headers = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers


def assert_upgraded(status, headers):
    assert status == 101, (status, headers)
    assert headers.get("upgrade", "").lower() == "websocket", headers
    assert headers.get("sec-websocket-accept") == WS_ACCEPT, headers
    assert headers.get("sec-websocket-protocol") == "mqtt", headers


def test_wrong_path_is_404(broker):
    port = broker.port("ws")
    assert http_upgrade(port, "/wrong")[0] == 404
    assert http_upgrade(port, "/mqtt/extra")[0] == 404
    assert_upgraded(*http_upgrade(port, "/mqtt"))


def test_paho_wrong_path_fails(broker):
    with pytest.raises((OSError, ConnectionError, mqtt.WebsocketConnectionError)):
        Paho(broker.port("ws"), path="/not-mqtt")


def test_configured_path(broker):
    port = broker.port("ws-custom-path")
    assert http_upgrade(port, "/mqtt")[0] == 404
    assert_upgraded(*http_upgrade(port, "/custom/ws"))
    sub = Paho(port, path="/custom/ws")
    pub = Paho(port, path="/custom/ws")
    try:
        round_trip(sub, pub, topic("path"), b"custom path")
    finally:
        sub.close()
        pub.close()


def test_origin_checked(broker):
    port = broker.port("ws-origin")
    assert http_upgrade(port, "/mqtt", origin="https://evil.example")[0] == 403
    # Exact match only: neither a suffix trick nor another scheme passes.
    assert http_upgrade(port, "/mqtt", origin="https://hmi.example.evil.example")[0] == 403
    assert http_upgrade(port, "/mqtt", origin="http://hmi.example")[0] == 403
    assert_upgraded(*http_upgrade(port, "/mqtt", origin=ALLOWED_ORIGIN))
    # Non-browser clients send no Origin and are not affected.
    assert_upgraded(*http_upgrade(port, "/mqtt"))


@pytest.mark.parametrize("origin,allowed", [("https://evil.example", False),
                                             (ALLOWED_ORIGIN, True)])
def test_paho_origin(broker, origin, allowed):
    """paho sends an Origin header (its own https://HOST:PORT unless told
    otherwise), so on a listener with ws_allowed_origins only the allowed
    origin gets in."""
    port = broker.port("ws-origin")
    if not allowed:
        with pytest.raises((OSError, ConnectionError, mqtt.WebsocketConnectionError)):
            Paho(port, headers={"Origin": origin})
        return
    sub = Paho(port, headers={"Origin": origin})
    pub = Paho(port, headers={"Origin": origin})
    try:
        round_trip(sub, pub, topic("origin"), b"from an allowed origin")
    finally:
        sub.close()
        pub.close()


# 9. One port for WebSockets and raw MQTT over TLS.

@needs_mosquitto
def test_alpn_one_port(broker, pki):
    port = broker.port("wss-alpn")
    ca = pki["ca"].pem
    t = topic("alpn")
    # paho sends no ALPN: its HTTP request is recognised by its first byte.
    sub = Paho(port, tls=mtls(pki, "alice"))
    # paho announcing http/1.1 by ALPN.
    pub = Paho(port, tls=mtls(pki, "bob"), alpn=["http/1.1"])
    # And a mosquitto_sub over raw MQTT on the same port.
    msub = MosqSub(port, t, *tls_args(ca, pki["alice"], alpn="mqtt"))
    try:
        sub.subscribe(t)
        pub.publish(t, b"from websockets")
        assert sub.message().payload == b"from websockets"
        assert msub.wait_payload("from websockets"), msub.seen

        out = mosq_pub(port, t, "alpn mqtt", *tls_args(ca, pki["bob"], alpn="mqtt"))
        assert out.returncode == 0, out.stderr
        assert sub.message().payload == b"alpn mqtt"
        assert msub.wait_payload("alpn mqtt"), msub.seen

        out = mosq_pub(port, t, "no alpn", *tls_args(ca, pki["bob"]))
        assert out.returncode == 0, out.stderr
        assert sub.message().payload == b"no alpn"
        assert msub.wait_payload("no alpn"), msub.seen
    finally:
        sub.close()
        pub.close()
        msub.kill()


@needs_mosquitto
def test_raw_mqtt_refused_on_wss_without_alpn_mqtt(broker, pki):
    """Control for the one-port test: a plain wss listener does not take raw
    MQTT, with or without ALPN."""
    port = broker.port("wss")
    args = tls_args(pki["ca"].pem, pki["bob"])
    # ALPN "mqtt" is not offered by this listener: refused in the handshake.
    out = mosq_pub(port, topic("raw"), "x", *args, "--tls-alpn", "mqtt")
    assert out.returncode != 0, (out.stdout, out.stderr)
    # Without ALPN the CONNECT is taken for the start of an HTTP request that
    # never completes: the client gets no CONNACK (it fails, or times out).
    try:
        out = mosq_pub(port, topic("raw"), "x", *args, timeout=3)
        assert out.returncode != 0, (out.stdout, out.stderr)
    except subprocess.TimeoutExpired:
        pass


@pytest.mark.parametrize("alpn", ["mqtt", "http/1.1"])
def test_alpn_negotiated(broker, pki, alpn):
    """The server really selects the protocol the client offers by ALPN."""
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"{HOST}:{broker.port('wss-alpn')}",
         "-servername", "localhost", "-alpn", alpn, "-CAfile", str(pki["ca"].pem),
         "-cert", str(pki["alice"].pem), "-key", str(pki["alice"].key)],
        input="", capture_output=True, text=True, timeout=WAIT,
    )
    assert f"ALPN protocol: {alpn}\n" in out.stdout, out.stdout + out.stderr


# 10. A large message over WebSockets.

@pytest.mark.parametrize("listener", ["ws", "wss"])
def test_large_message(broker, pki, listener):
    port = broker.port(listener)
    tls = mtls(pki) if listener == "wss" else None
    payload = os.urandom(200 * 1024)
    sub = Paho(port, tls=tls, protocol=mqtt.MQTTv5)
    pub = Paho(port, tls=tls, protocol=mqtt.MQTTv5)
    try:
        round_trip(sub, pub, topic("large"), payload)
    finally:
        sub.close()
        pub.close()
