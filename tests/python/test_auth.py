"""Authentication with real clients: identities made with `bulwark user`,
passwords, TOTP, client certificates, anonymous listeners, credential
reload, brute-force delays and bans, and what never reaches a log.

Clients are mosquitto_pub/mosquitto_sub (CONNACK codes read from `-d`
output, "received CONNACK (N)") and paho-mqtt (callback API 1, whose
on_connect gives the raw 3.1.1 return code and the v5 reason code). Every
wait is bounded; every broker is stopped by the fixture or test that
started it.
"""

import base64
import hashlib
import hmac
import os
import queue
import re
import shutil
import stat
import struct
import subprocess
import threading
import time
import uuid
import warnings
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import HOST, free_port
from tls_support import CA, WAIT, Broker, bulwark_bin, needs_mosquitto, tls_args

pytestmark = [needs_mosquitto]

VERSIONS = ["mqttv311", "mqttv5"]

# CONNACK codes: (MQTT 5 reason code, MQTT 3.1.1 return code).
BAD_CREDENTIALS = (0x86, 4)
NOT_AUTHORIZED = (0x87, 5)
CLIENT_ID_NOT_VALID = (0x85, 2)
BANNED = (0x8A, 5)

# Thresholds high enough that the functional tests, which all connect from
# 127.0.0.1, are never delayed or banned by each other's failures.
NO_THROTTLE = "failures_before_delay = 1000\nfailures_before_ban = 10000\n"


def expect(codes, version):
    return codes[0] if version == "mqttv5" else codes[1]


def rand():
    return uuid.uuid4().hex[:8]


# --- the credential file, through `bulwark user` ----------------------------


class Users:
    """A credential file managed only with the real `bulwark user` tool."""

    def __init__(self, path: Path):
        self.path = path
        self.passwords = {}
        self.totp_secrets = {}

    def run(self, *args, stdin=None, check=True):
        out = subprocess.run(
            [str(bulwark_bin()), "user", *map(str, args), "--file", str(self.path)],
            input=stdin, capture_output=True, text=True, timeout=WAIT,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"bulwark user {args} exited {out.returncode}\n"
                                 f"{out.stdout}\n{out.stderr}")
        return out

    def add(self, name, password=None, *opts):
        out = self.run("add", name, *opts,
                       stdin=f"{password}\n" if password is not None else None)
        if password is not None:
            self.passwords[name] = password
        if "otpauth://" in out.stdout + out.stderr:
            self.totp_secrets[name] = otpauth_secret(out.stdout + out.stderr)
        return out

    def totp(self, name):
        out = self.run("totp", name)
        self.totp_secrets[name] = otpauth_secret(out.stdout)
        return self.totp_secrets[name]

    def passwd(self, name, password):
        self.run("passwd", name, stdin=f"{password}\n")
        self.passwords[name] = password


def otpauth_secret(text):
    uris = re.findall(r"otpauth://\S+", text)
    assert uris, f"no otpauth URI in:\n{text}"
    m = re.search(r"[?&]secret=([A-Z2-7]+=*)", uris[-1])
    assert m, uris[-1]
    assert "algorithm=SHA1" in uris[-1] and "digits=6" in uris[-1] and "period=30" in uris[-1]
    return m.group(1)


def totp_code(secret, step):
    """RFC 6238 (HOTP of the 30 s step), SHA-1, 6 digits."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[off:off + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def totp_step():
    return int(time.time()) // 30


# --- clients -----------------------------------------------------------------


class Attempt:
    def __init__(self, code, proc, seconds):
        self.code = code  # CONNACK code, None if none was received
        self.proc = proc
        self.seconds = seconds

    def __repr__(self):
        return (f"Attempt(code={self.code}, rc={self.proc.returncode}, "
                f"{self.seconds:.3f} s)\n{self.proc.stdout}\n{self.proc.stderr}")


def pub(port, version, *, user=None, pw=None, cid=None, topic=None, msg="x",
        extra=(), bind=None):
    """One mosquitto_pub run (QoS 1, so a published message has reached the
    broker when it exits); returns the CONNACK code it printed."""
    cmd = ["mosquitto_pub", "-h", HOST, "-p", str(port), "-V", version, "-d", "-q", "1",
           "-t", topic or f"auth/unused/{rand()}", "-m", msg, *extra]
    if cid is not None:
        cmd += ["-i", cid]
    if user is not None:
        cmd += ["-u", user]
    if pw is not None:
        cmd += ["-P", pw]
    if bind is not None:
        cmd += ["-A", bind]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT)
    dt = time.monotonic() - t0
    m = re.search(r"received CONNACK \((\d+)\)", out.stdout + out.stderr)
    return Attempt(int(m.group(1)) if m else None, out, dt)


def pub_ok(*a, **kw):
    r = pub(*a, **kw)
    assert r.code == 0 and r.proc.returncode == 0, r
    return r


class Sub:
    """mosquitto_sub -d with its output read line by line on a thread
    (line-buffered through stdbuf). Every line read is kept in `seen`, so
    messages that arrive before the SUBACK (a resumed session) are not lost."""

    def __init__(self, port, version, topic, *args):
        cmd = ["mosquitto_sub", "-h", HOST, "-p", str(port), "-V", version, "-t", topic,
               "-q", "1", "-d", *args]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        if not self._wait(lambda l: "received SUBACK" in l):
            self.kill()
            raise AssertionError("mosquitto_sub got no SUBACK:\n" + "\n".join(self.seen))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _wait(self, pred, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)
                return None
            self.seen.append(line)
            if pred(line):
                return line
        return None

    def first_of(self, payloads, timeout=WAIT):
        """The first of `payloads` received (already seen lines included)."""
        for line in self.seen:
            if line in payloads:
                return line
        return self._wait(lambda l: l in payloads, timeout)

    def wait_payload(self, payload, timeout=WAIT):
        return self.first_of({payload}, timeout) == payload

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def paho_connect(port, version, user=None, pw=None, cid=None, bind=""):
    """Connects a paho client, driving its loop by hand (no automatic
    reconnect, which would add failures). Returns (CONNACK code or None,
    seconds from connect() to CONNACK, client)."""
    proto = mqtt.MQTTv5 if version == "mqttv5" else mqtt.MQTTv311
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c = mqtt.Client(CallbackAPIVersion.VERSION1, client_id=cid or f"{user}-{rand()}",
                        protocol=proto)
    got = []
    c.on_connect = lambda client, userdata, flags, rc, props=None: got.append(
        (time.monotonic(), rc))
    if user is not None:
        c.username_pw_set(user, pw)
    t0 = time.monotonic()
    c.connect(HOST, port, keepalive=30, bind_address=bind)
    deadline = t0 + WAIT
    while not got and time.monotonic() < deadline:
        if c.loop(timeout=0.02) != mqtt.MQTT_ERR_SUCCESS and not got:
            break
    if not got:
        if c.socket() is not None:
            c.socket().close()
        return None, time.monotonic() - t0, c
    t1, rc = got[0]
    code = rc.value if version == "mqttv5" else int(rc)
    return code, t1 - t0, c


def paho_close(c):
    try:
        c.disconnect()
        c.loop(timeout=0.05)
    except Exception:
        pass


def assert_log_clean(log_text, secrets, codes=()):
    assert "$argon2id" not in log_text
    assert "SCRAM-SHA-256$" not in log_text
    for s in secrets:
        assert s not in log_text, f"secret {s!r} in the broker log"
    for code in codes:
        # A TOTP code is 6 digits: look for it as a token, not inside the
        # microseconds of a timestamp (".123456Z").
        assert not re.search(rf"(?<![0-9.]){code}(?![0-9Z])", log_text), \
            f"TOTP code {code} in the broker log"


# --- the shared broker -------------------------------------------------------


class World:
    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    w = World()
    w.users = users = Users(d / "users.toml")
    users.add("dev1", "dev1-secret-pass")
    assert stat.S_IMODE(os.stat(users.path).st_mode) == 0o600
    users.add("watcher", "watcher-secret-pass")
    users.add("dis", "disabled-secret-pass")
    users.run("disable", "dis")
    users.add("old", "expired-secret-pass", "--expires", "2020-01-01T00:00:00Z")
    for v in VERSIONS:
        users.add(f"op-{v}", f"op-{v}-secret-pass", "--factor", "password", "--factor", "totp")
        users.add(f"sess-a-{v}", f"sess-a-{v}-pass")
        users.add(f"sess-b-{v}", f"sess-b-{v}-pass", "--client-id-pattern", "*")
    users.add("certdev", "certdev-secret-pass")
    users.add("paho1", "paho1-secret-pass")
    assert stat.S_IMODE(os.stat(users.path).st_mode) == 0o600

    ca = CA(d / "ca")
    w.ca = ca
    server = ca.server(d / "server")
    w.certdev = ca.client("certdev", d / "certdev")
    w.totp_codes = []

    w.broker = Broker(
        d,
        {
            "plain": {"allow_anonymous": False},
            "anon": {"allow_anonymous": True},
            "anonmin": {"allow_anonymous": True, "min_factors": ["password"]},
            "tls": {"kind": "mqtts", "tls_cert": server.pem, "tls_key": server.key,
                    "tls_ca": ca.pem, "client_auth": "optional",
                    "min_factors": ["certificate", "password"]},
        },
        extra=f'[auth]\ncredentials = "users.toml"\n{NO_THROTTLE}\n',
    )
    w.port = w.broker.port("plain")
    try:
        yield w
    finally:
        w.broker.stop()


def watch(w, version, topic):
    return Sub(w.port, version, topic, "-u", "watcher", "-P", w.users.passwords["watcher"],
               "-i", f"watcher-{rand()}")


def legit(w, user):
    return {"user": user, "pw": w.users.passwords[user], "cid": f"{user}-{rand()}"}


def refused_and_not_delivered(w, version, expected, port=None, **attempt):
    """The attempt gets exactly `expected`; the message it would have
    published never reaches a subscriber, which does get a legitimate
    message published after it."""
    topic = f"auth/refused/{rand()}"
    sub = watch(w, version, topic)
    try:
        bad = f"forbidden-{rand()}"
        r = pub(port or w.port, version, topic=topic, msg=bad, **attempt)
        assert r.code == expect(expected, version), r
        assert r.proc.returncode != 0, r
        good = f"sentinel-{rand()}"
        pub_ok(w.port, version, topic=topic, msg=good, **legit(w, "dev1"))
        assert sub.first_of({bad, good}) == good, sub.seen
        time.sleep(0.1)
        sub.kill()
        assert bad not in sub.seen + list(sub.lines.queue)
    finally:
        sub.kill()
    return r


# --- 1. passwords ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_password_round_trip_mosquitto(world, version):
    topic = f"auth/ok/{rand()}"
    sub = watch(world, version, topic)
    try:
        pub_ok(world.port, version, topic=topic, msg="hello", **legit(world, "dev1"))
        assert sub.wait_payload("hello"), sub.seen
    finally:
        sub.kill()


@pytest.mark.parametrize("version", VERSIONS)
def test_password_round_trip_and_refusal_paho(world, version):
    pw = world.users.passwords["paho1"]
    code, _, c = paho_connect(world.port, version, "paho1", pw)
    try:
        assert code == 0
        got = queue.Queue()
        c.on_message = lambda client, userdata, m: got.put(m.payload)
        topic = f"auth/paho/{rand()}"
        c.loop_start()
        c.subscribe(topic, 1)
        time.sleep(0.2)
        info = c.publish(topic, b"via paho", qos=1)
        info.wait_for_publish(timeout=WAIT)
        assert got.get(timeout=WAIT) == b"via paho"
    finally:
        c.loop_stop()
        paho_close(c)
    code, _, c = paho_connect(world.port, version, "paho1", pw + "x")
    paho_close(c)
    assert code == expect(BAD_CREDENTIALS, version)
    code, _, c = paho_connect(world.port, version, "paho1", pw, cid="dev1")
    paho_close(c)
    assert code == expect(CLIENT_ID_NOT_VALID, version)


# --- 2. refusals ---------------------------------------------------------------


def _cases(w):
    p = w.users.passwords
    return {
        "wrong_password": (BAD_CREDENTIALS, dict(user="dev1", pw="not-the-password",
                                                 cid=f"dev1-{rand()}")),
        "unknown_user": (BAD_CREDENTIALS, dict(user="nobody", pw="whatever-pass",
                                               cid=f"nobody-{rand()}")),
        "user_without_password": (BAD_CREDENTIALS, dict(user="dev1", cid=f"dev1-{rand()}")),
        "disabled": (NOT_AUTHORIZED, dict(user="dis", pw=p["dis"], cid=f"dis-{rand()}")),
        # Not proven: the refusal must not reveal that the identity is disabled.
        "disabled_wrong_password": (BAD_CREDENTIALS, dict(user="dis", pw="not-the-password",
                                                          cid=f"dis-{rand()}")),
        "expired": (NOT_AUTHORIZED, dict(user="old", pw=p["old"], cid=f"old-{rand()}")),
        "client_id_of_another_identity": (CLIENT_ID_NOT_VALID,
                                          dict(user="dev1", pw=p["dev1"], cid="watcher")),
    }


CASES = ["wrong_password", "unknown_user", "user_without_password", "disabled",
         "disabled_wrong_password", "expired", "client_id_of_another_identity"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", VERSIONS)
def test_refused_and_not_delivered(world, version, case):
    expected, attempt = _cases(world)[case]
    refused_and_not_delivered(world, version, expected, **attempt)


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_user_gets_the_same_answer_as_wrong_password(world, version):
    wrong = pub(world.port, version, user="dev1", pw="nope-nope-nope", cid=f"dev1-{rand()}")
    unknown = pub(world.port, version, user="ghost", pw="nope-nope-nope", cid=f"ghost-{rand()}")
    assert wrong.code == unknown.code == expect(BAD_CREDENTIALS, version)
    assert wrong.proc.returncode == unknown.proc.returncode


@pytest.mark.parametrize("version", VERSIONS)
def test_totp(world, version):
    name = f"op-{version}"
    pw = world.users.passwords[name]
    secret = world.users.totp_secrets[name]
    step = totp_step()
    code_now, code_next = totp_code(secret, step), totp_code(secret, step + 1)
    world.totp_codes += [code_now, code_next]
    cid = f"{name}-{rand()}"

    # Password alone: the TOTP factor is missing.
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, user=name, pw=pw, cid=cid)
    # A wrong code.
    near = {totp_code(secret, s) for s in range(step - 2, step + 3)}
    wrong = next(c for c in ("000000", "123456", "999999", "314159") if c not in near)
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, user=name, pw=f"{pw}:{wrong}",
                              cid=cid)

    # The right code: in, and the message is delivered.
    topic = f"auth/totp/{rand()}"
    sub = watch(world, version, topic)
    try:
        pub_ok(world.port, version, topic=topic, msg="with totp", user=name,
               pw=f"{pw}:{code_now}", cid=cid)
        assert sub.wait_payload("with totp"), sub.seen
    finally:
        sub.kill()

    # The same code again is a replay.
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, user=name,
                              pw=f"{pw}:{code_now}", cid=cid)
    # The next step's code (within the ±1 step window) is fresh; after it,
    # the older one stays refused.
    pub_ok(world.port, version, user=name, pw=f"{pw}:{code_next}", cid=cid)
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, user=name,
                              pw=f"{pw}:{code_now}", cid=cid)
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, user=name,
                              pw=f"{pw}:{code_next}", cid=cid)


@pytest.mark.parametrize("version", VERSIONS)
def test_session_of_another_identity_is_refused_and_untouched(world, version):
    a, b = f"sess-a-{version}", f"sess-b-{version}"
    pa, pb = world.users.passwords[a], world.users.passwords[b]
    cid = f"{a}-1"
    topic = f"auth/session/{rand()}"
    a_args = ["-c", "-i", cid, "-u", a, "-P", pa]

    # A online with a persistent session; B (whose pattern allows any
    # client ID) tries A's client ID: refused, A stays connected.
    sub = Sub(world.port, version, topic, *a_args)
    try:
        refused_and_not_delivered(world, version, NOT_AUTHORIZED, user=b, pw=pb, cid=cid)
        pub_ok(world.port, version, topic=topic, msg="m0", **legit(world, "dev1"))
        assert sub.wait_payload("m0"), sub.seen
        assert sub.alive()
    finally:
        sub.kill()

    # A offline, session kept: queued messages survive B's attempts (a
    # clean-session one would otherwise have discarded the session).
    pub_ok(world.port, version, topic=topic, msg="m1", **legit(world, "dev1"))
    for extra in ((), ("-c",)):
        r = pub(world.port, version, user=b, pw=pb, cid=cid, topic=topic, msg="from-b",
                extra=extra)
        assert r.code == expect(NOT_AUTHORIZED, version), r
    pub_ok(world.port, version, topic=topic, msg="m2", **legit(world, "dev1"))
    # Refused for the session's owner, not for some other reason.
    assert re.search(rf'event="takeover_refused".*client_id={re.escape(cid)} '
                     rf'session_owner="{re.escape(a)}"', world.broker.log()), world.broker.log()

    sub = Sub(world.port, version, topic, *a_args)
    try:
        assert sub.wait_payload("m1"), sub.seen
        assert sub.wait_payload("m2"), sub.seen
        assert "from-b" not in sub.seen
    finally:
        sub.kill()


# --- 3. certificate + password -----------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_certificate_and_password(world, version):
    port = world.broker.port("tls")
    pw = world.users.passwords["certdev"]
    cid = f"certdev-{rand()}"
    with_cert = tls_args(world.ca.pem, world.certdev)
    no_cert = tls_args(world.ca.pem)

    # Certificate only: the listener also requires the password.
    refused_and_not_delivered(world, version, NOT_AUTHORIZED, port=port, cid=cid,
                              extra=with_cert)
    # Password only (client_auth optional): the certificate is missing.
    refused_and_not_delivered(world, version, NOT_AUTHORIZED, port=port, cid=cid,
                              user="certdev", pw=pw, extra=no_cert)
    # Certificate and a wrong password.
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, port=port, cid=cid,
                              user="certdev", pw="not-the-password", extra=with_cert)
    # Certificate with another identity's user name and password.
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, port=port,
                              cid=f"dev1-{rand()}", user="dev1",
                              pw=world.users.passwords["dev1"], extra=with_cert)

    # Both: in, and the message flows to a subscriber on the plain listener.
    topic = f"auth/cert/{rand()}"
    sub = watch(world, version, topic)
    try:
        pub_ok(port, version, topic=topic, msg="cert+pw", cid=cid, user="certdev", pw=pw,
               extra=with_cert)
        assert sub.wait_payload("cert+pw"), sub.seen
    finally:
        sub.kill()


# --- 4. anonymous --------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_anonymous(world, version):
    anon = world.broker.port("anon")
    topic = f"auth/anon/{rand()}"
    sub = Sub(anon, version, topic, "-i", f"anon-sub-{rand()}")
    try:
        pub_ok(anon, version, topic=topic, msg="anonymous hello", cid=f"anon-{rand()}")
        assert sub.wait_payload("anonymous hello"), sub.seen
    finally:
        sub.kill()
    # A listener without allow_anonymous, and one with it but a minimum factor.
    refused_and_not_delivered(world, version, NOT_AUTHORIZED, port=world.port,
                              cid=f"anon-{rand()}")
    refused_and_not_delivered(world, version, NOT_AUTHORIZED, port=world.broker.port("anonmin"),
                              cid=f"anon-{rand()}")
    # On the anonymous listener a password that is sent must still be right:
    # no falling back to anonymous.
    refused_and_not_delivered(world, version, BAD_CREDENTIALS, port=anon, user="dev1",
                              pw="not-the-password", cid=f"dev1-{rand()}")


# --- 7. no secrets shown --------------------------------------------------------


def test_user_list_shows_no_secrets(world):
    out = world.users.run("list")
    text = out.stdout + out.stderr
    for name in ("dev1", "dis", "old", "op-mqttv5", "certdev"):
        assert name in text
    assert "$argon2id" not in text and "SCRAM-SHA-256$" not in text
    for pw in world.users.passwords.values():
        assert pw not in text
    for secret in world.users.totp_secrets.values():
        assert secret not in text
    assert re.search(r"dis\s.*disabled", text), text
    assert re.search(r"old\s.*expired", text), text


def test_broker_log_has_no_secrets(world):
    """Runs after the tests above (file order) on the same broker."""
    log = world.broker.log()
    assert "auth_failure" in log and "auth_success" in log
    secrets = list(world.users.passwords.values()) + list(world.users.totp_secrets.values())
    secrets += ["not-the-password", "whatever-pass", "nope-nope-nope"]
    assert_log_clean(log, secrets, world.totp_codes)


# --- 5. reload -------------------------------------------------------------------


def _wait_code(port, version, want, timeout, **attempt):
    deadline = time.monotonic() + timeout
    while True:
        r = pub(port, version, **attempt)
        if r.code == want or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_reload_password_change_and_bad_file(tmp_path):
    users = Users(tmp_path / "users.toml")
    users.add("rel", "old-password-1")
    broker = Broker(tmp_path, {"plain": {}},
                    extra=f'[auth]\ncredentials = "users.toml"\n{NO_THROTTLE}\n')
    port = broker.port("plain")
    try:
        for v in VERSIONS:
            pub_ok(port, v, user="rel", pw="old-password-1", cid="rel")

        users.passwd("rel", "new-password-2")
        assert stat.S_IMODE(os.stat(users.path).st_mode) == 0o600
        t0 = time.monotonic()
        r = _wait_code(port, "mqttv5", 0, 5, user="rel", pw="new-password-2", cid="rel")
        assert r.code == 0, r
        assert time.monotonic() - t0 < 3.5, "new password took too long to apply"
        for v in VERSIONS:
            pub_ok(port, v, user="rel", pw="new-password-2", cid="rel")
            r = pub(port, v, user="rel", pw="old-password-1", cid="rel")
            assert r.code == expect(BAD_CREDENTIALS, v), r

        # Garbage over the file (mode kept 0600): the last good credentials stay.
        with open(users.path, "w") as f:
            f.write("[[identity]]\nname = \"rel\"\nthis is not toml\n")
        os.chmod(users.path, 0o600)
        deadline = time.monotonic() + 5
        while "credential file not reloaded" not in broker.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = broker.log()
        assert "credential file not reloaded" in log, log
        assert "users.toml" in log
        for v in VERSIONS:
            pub_ok(port, v, user="rel", pw="new-password-2", cid="rel")
            r = pub(port, v, user="rel", pw="old-password-1", cid="rel")
            assert r.code == expect(BAD_CREDENTIALS, v), r
        # SIGHUP with the bad file still in place changes nothing either.
        broker.sighup()
        time.sleep(0.3)
        assert broker.proc.poll() is None
        pub_ok(port, "mqttv5", user="rel", pw="new-password-2", cid="rel")
        assert_log_clean(broker.log(), ["old-password-1", "new-password-2"])
    finally:
        broker.stop()


def _serve_expecting_failure(tmp_path, cred_name):
    port = free_port()
    cfg = tmp_path / "bulwark.toml"
    cfg.write_text(f'[auth]\ncredentials = "{cred_name}"\n\n'
                   f'[[listener]]\nname = "plain"\nbind = "{HOST}:{port}"\n')
    out = subprocess.run(
        [str(bulwark_bin()), "serve", "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=WAIT,
    )
    return out, out.stdout + out.stderr


def test_malformed_credential_file_refuses_to_start(tmp_path):
    users = Users(tmp_path / "users.toml")
    users.add("good", "good-password-1")
    text = users.path.read_text()
    line = text.count("\n") + 2  # the garbage line appended below
    users.path.write_text(text + "\n[[identity\n")
    os.chmod(users.path, 0o600)
    out, text = _serve_expecting_failure(tmp_path, "users.toml")
    assert out.returncode != 0, text
    assert re.search(rf"users\.toml:{line}\b", text), text
    # A plaintext password is refused too, naming its line, without echoing it.
    bad = tmp_path / "plain.toml"
    bad.write_text('[[identity]]\nname = "x"\npassword = "plaintext-pw-1"\n')
    os.chmod(bad, 0o600)
    out, text = _serve_expecting_failure(tmp_path, "plain.toml")
    assert out.returncode != 0, text
    assert re.search(r"plain\.toml:3\b", text), text
    assert "plaintext-pw-1" not in text


def test_credential_file_readable_by_others_refuses_to_start(tmp_path):
    users = Users(tmp_path / "users.toml")
    users.add("good", "good-password-1")
    os.chmod(users.path, 0o644)
    out, text = _serve_expecting_failure(tmp_path, "users.toml")
    assert out.returncode != 0, text
    assert "users.toml" in text and "chmod 600" in text, text


# --- 6. brute force ----------------------------------------------------------------


def test_brute_force_delays_then_ban(tmp_path):
    users = Users(tmp_path / "users.toml")
    users.add("victim", "victim-password-1")
    users.add("bystander", "bystander-password-1")
    broker = Broker(tmp_path, {"plain": {}}, extra=(
        '[auth]\ncredentials = "users.toml"\n'
        "failures_before_delay = 2\nfailures_before_ban = 4\nban_time = 60\n"))
    port = broker.port("plain")
    try:
        times = []
        for i in range(4):
            code, dt, c = paho_connect(port, "mqttv5", "victim", f"guess-{i}-wrong",
                                       cid=f"victim-{i}")
            paho_close(c)
            assert code == 0x86, (i, code)
            times.append(dt)
        # Failures 2, 3 and 4 wait 250, 500 and 1000 ms on top of argon2:
        # each longer than the one before (with a wide margin for slow hosts).
        assert times[1] > times[0] + 0.1, times
        assert times[2] > times[1] + 0.1, times
        assert times[3] > times[2] + 0.2, times
        assert times[3] > times[0] + 0.5, times

        # Banned: the right password no longer helps, from this address.
        for v in VERSIONS:
            r = pub(port, v, user="victim", pw="victim-password-1", cid="victim")
            assert r.code == expect(BANNED, v), r
            # The address is banned, whoever connects from it.
            r = pub(port, v, user="bystander", pw="bystander-password-1", cid="bystander")
            assert r.code == expect(BANNED, v), r
        code, dt, c = paho_connect(port, "mqttv5", "victim", "victim-password-1", cid="victim")
        paho_close(c)
        assert code == 0x8A
        # From another address: others get in; the guessed identity is banned too.
        pub_ok(port, "mqttv5", user="bystander", pw="bystander-password-1", cid="bystander",
               bind="127.0.0.2")
        r = pub(port, "mqttv5", user="victim", pw="victim-password-1", cid="victim",
                bind="127.0.0.2")
        assert r.code == 0x8A, r
        assert 'event="ban"' in broker.log(), broker.log()
        assert_log_clean(broker.log(), ["victim-password-1", "bystander-password-1"]
                         + [f"guess-{i}-wrong" for i in range(4)])
    finally:
        broker.stop()


def test_unknown_user_and_wrong_password_take_similar_time(tmp_path):
    users = Users(tmp_path / "users.toml")
    users.add("real", "real-password-1")
    broker = Broker(tmp_path, {"plain": {}},
                    extra=f'[auth]\ncredentials = "users.toml"\n{NO_THROTTLE}\n')
    port = broker.port("plain")
    try:
        wrong, unknown = [], []
        for i in range(5):
            for user, into in (("real", wrong), (f"ghost{i}", unknown)):
                code, dt, c = paho_connect(port, "mqttv5", user, "wrong-password-x",
                                           cid=f"{user}-{i}")
                paho_close(c)
                assert code == 0x86, (user, code)
                into.append(dt)
        w, u = sorted(wrong)[2], sorted(unknown)[2]  # medians
        assert w > 0.005 and u > 0.005, (wrong, unknown)
        assert max(w, u) / min(w, u) < 3, (wrong, unknown)
    finally:
        broker.stop()
