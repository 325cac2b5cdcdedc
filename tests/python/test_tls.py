"""Bulwark's TLS listeners driven by real clients: mosquitto_pub/sub with
client certificates, `openssl s_client` for protocol and cipher policy, and
the broker binary reloading CRLs and server certificates while running.

The PKI is made with `bulwark cert` (and openssl for foreign key formats).
"""

import os
import re
import subprocess
import time
import uuid

import pytest

from conftest import HOST
from tls_support import (
    CA,
    WAIT,
    Broker,
    MosqSub,
    mosq_pub,
    needs_mosquitto,
    needs_openssl,
    openssl_req_selfsigned,
    run,
    tls_args,
)

pytestmark = [needs_mosquitto, needs_openssl]

VERSIONS = ["mqttv311", "mqttv5"]

# Server keys in formats other than the PKCS#8 P-256 that `bulwark cert`
# writes: name -> command writing the key to the path given.
FOREIGN_KEYS = {
    "rsa2048-pkcs8": lambda k: run(["openssl", "genpkey", "-algorithm", "RSA",
                                    "-pkeyopt", "rsa_keygen_bits:2048", "-out", k]),
    "rsa2048-pkcs1": lambda k: run(["openssl", "genrsa", "-traditional", "-out", k, "2048"]),
    "ed25519": lambda k: run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", k]),
    "p384-sec1": lambda k: run(["openssl", "ecparam", "-name", "secp384r1", "-genkey",
                                "-noout", "-out", k]),
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA(d / "ca")
    p = {
        "dir": d,
        "ca": ca,
        "server": ca.server(d / "server"),
        "alice": ca.client("alice", d / "alice"),
        "bob": ca.client("bob", d / "bob"),
        "eve": ca.client("eve", d / "eve"),
        "server_ed25519": ca.server(d / "server-ed25519", key_type="ed25519"),
    }
    ca.revoke(p["eve"])  # writes ca/crl.pem with eve in it
    other = CA(d / "other", name="Other CA")
    p["other"] = other
    # Same common name as a legitimate client: only the issuer differs.
    p["mallory"] = other.client("alice", d / "mallory")
    for name, keygen in FOREIGN_KEYS.items():
        p[f"selfsigned_{name}"] = openssl_req_selfsigned(d, f"selfsigned-{name}", keygen)
    # Sanity: the key files really are in the formats named.
    assert (d / "selfsigned-rsa2048-pkcs1.key").read_text().startswith("-----BEGIN RSA PRIVATE KEY")
    assert (d / "selfsigned-p384-sec1.key").read_text().startswith("-----BEGIN EC PRIVATE KEY")
    assert (d / "selfsigned-rsa2048-pkcs8.key").read_text().startswith("-----BEGIN PRIVATE KEY")
    return p


@pytest.fixture(scope="module")
def broker(pki, tmp_path_factory):
    server = pki["server"]
    anon = {"kind": "mqtts", "tls_cert": server.pem, "tls_key": server.key,
            "allow_anonymous": True}
    listeners = {
        "mtls": {"kind": "mqtts", "tls_cert": server.pem, "tls_key": server.key,
                 "tls_ca": pki["ca"].pem, "tls_crl": pki["ca"].crl,
                 "client_auth": "required"},
        "tls": anon,
        "tls13": {**anon, "tls_min_version": "1.3"},
        "server-ed25519-bulwark": {**anon, "tls_cert": pki["server_ed25519"].pem,
                                   "tls_key": pki["server_ed25519"].key},
    }
    for name in FOREIGN_KEYS:
        cert = pki[f"selfsigned_{name}"]
        listeners[f"server-{name}"] = {**anon, "tls_cert": cert.pem, "tls_key": cert.key}
    b = Broker(tmp_path_factory.mktemp("broker"), listeners)
    yield b
    b.stop()


def topic(label):
    return f"tls/{label}/{uuid.uuid4().hex[:8]}"


# 1. Mutual TLS with mosquitto_pub/sub, both protocol versions.

@pytest.mark.parametrize("version", VERSIONS)
def test_mutual_tls_round_trip(broker, pki, version):
    port = broker.port("mtls")
    ca = pki["ca"].pem
    t = topic(version)
    sub = MosqSub(port, t, *tls_args(ca, pki["alice"]), version=version)
    try:
        out = mosq_pub(port, t, f"hello over mTLS {version}", *tls_args(ca, pki["bob"]),
                       version=version)
        assert out.returncode == 0, out.stderr
        assert sub.wait_payload(f"hello over mTLS {version}"), sub.seen
    finally:
        sub.kill()


# 2. Client certificates that must be refused.

@pytest.mark.parametrize("case", ["no-client-cert", "other-ca", "revoked"])
def test_bad_client_certificate_refused(broker, pki, case):
    port = broker.port("mtls")
    ca = pki["ca"].pem
    cert = {"no-client-cert": None, "other-ca": pki["mallory"], "revoked": pki["eve"]}[case]
    t = topic(case)
    # A legitimate subscriber on the same topic: the refused client's
    # message must not reach it, while a good client's message does.
    sub = MosqSub(port, t, *tls_args(ca, pki["alice"]))
    try:
        bad = mosq_pub(port, t, "must not arrive", *tls_args(ca, cert))
        assert bad.returncode != 0, f"{case}: publish succeeded\n{bad.stdout}{bad.stderr}"
        good = mosq_pub(port, t, "control", *tls_args(ca, pki["bob"]))
        assert good.returncode == 0, good.stderr
        assert sub.wait_payload("control"), sub.seen
        assert "must not arrive" not in sub.seen
    finally:
        sub.kill()


def test_client_certificate_authenticates_without_anonymous(broker, pki):
    """The mtls listener has allow_anonymous = false: the certificate alone
    lets the client in (a CONNECT without credentials gets CONNACK 0)."""
    out = mosq_pub(broker.port("mtls"), topic("auth"), "x", "-d",
                   *tls_args(pki["ca"].pem, pki["alice"]), version="mqttv5")
    assert out.returncode == 0, out.stderr
    assert "received CONNACK (0)" in out.stdout, out.stdout


# 3. Protocol versions and cipher suites, with openssl s_client.

def s_client(port, *args, cafile=None, timeout=WAIT):
    """openssl s_client with -msg, so the handshake messages each side sent
    can be asserted on; returns the CompletedProcess and the (protocol,
    cipher) that s_client reports."""
    cmd = ["openssl", "s_client", "-connect", f"{HOST}:{port}", "-servername", "localhost",
           "-msg", *args]
    if cafile:
        cmd += ["-CAfile", str(cafile), "-verify_return_error"]
    out = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=timeout)
    m = re.search(r"^New, (\S+), Cipher is (\S+)$", out.stdout, re.M)
    return out, (m.group(1), m.group(2)) if m else (None, None)


def server_finished(out):
    """Whether the server sent its Finished (completed its side of the handshake)."""
    return re.search(r"^<<< TLS [\d.]+, Handshake \[length \w+\], Finished$", out.stdout, re.M)


def server_alert(out):
    m = re.search(r"^<<< TLS [\d.]+, Alert \[length \w+\], fatal (\w+)$", out.stdout, re.M)
    return m.group(1) if m else None


def assert_refused_by_server(out, alert=None):
    """The client offered (it sent a ClientHello) and the server answered with
    a fatal alert without ever sending its Finished. A client that refuses to
    offer never gets that far ("no protocols/ciphers available")."""
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert re.search(r"^>>> TLS [\d.]+, Handshake \[length \w+\], ClientHello$",
                     out.stdout, re.M), text
    got = server_alert(out)
    assert got is not None, text
    if alert:
        assert got == alert, text
    assert not server_finished(out), text


def assert_accepted(out, negotiated, protocol, cipher=None):
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert server_finished(out), text
    assert server_alert(out) is None, text
    assert negotiated[0] == protocol, text
    if cipher:
        assert negotiated[1] == cipher, text
    assert "Verify return code: 0 (ok)" in out.stdout, text


LEGACY = "DEFAULT:@SECLEVEL=0"  # lets OpenSSL 3 offer TLS 1.0/1.1 and weak suites

REFUSED = [
    # (listener, s_client arguments)
    ("tls", ["-tls1", "-cipher", LEGACY]),
    ("tls", ["-tls1_1", "-cipher", LEGACY]),
    ("tls", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]),       # CBC
    ("tls", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"]),    # CBC
    ("server-rsa2048-pkcs8", ["-tls1", "-cipher", LEGACY]),
    ("server-rsa2048-pkcs8", ["-tls1_1", "-cipher", LEGACY]),
    ("server-rsa2048-pkcs8", ["-tls1_2", "-cipher", "AES128-SHA"]),         # RSA kx, CBC
    ("server-rsa2048-pkcs8", ["-tls1_2", "-cipher", "AES128-GCM-SHA256"]),  # RSA kx, AEAD
    ("server-rsa2048-pkcs8", ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"]),  # no DHE
    ("server-rsa2048-pkcs8", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"]),  # CBC
    ("tls", ["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"]),
    ("tls13", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]),
]

ACCEPTED = [
    # (listener, s_client arguments, protocol, cipher)
    ("tls", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
     "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("tls", ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
     "TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305"),
    ("tls", ["-tls1_3"], "TLSv1.3", None),
    ("tls", ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
     "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    ("server-rsa2048-pkcs8", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
     "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("server-rsa2048-pkcs8", ["-tls1_3"], "TLSv1.3", None),
    ("tls13", ["-tls1_3"], "TLSv1.3", None),
]


def cafile_for(pki, listener):
    if listener.startswith("server-") and listener != "server-ed25519-bulwark":
        return pki["selfsigned_" + listener.removeprefix("server-")].pem
    return pki["ca"].pem


@pytest.mark.parametrize("listener,args", REFUSED, ids=[f"{l}:{' '.join(a)}" for l, a in REFUSED])
def test_openssl_refused(broker, pki, listener, args):
    out, _ = s_client(broker.port(listener), *args, cafile=cafile_for(pki, listener))
    assert_refused_by_server(out)


@pytest.mark.parametrize("listener,args,protocol,cipher", ACCEPTED,
                         ids=[f"{a[0]}:{' '.join(a[1])}" for a in ACCEPTED])
def test_openssl_accepted(broker, pki, listener, args, protocol, cipher):
    out, negotiated = s_client(broker.port(listener), *args, cafile=cafile_for(pki, listener))
    assert_accepted(out, negotiated, protocol, cipher)


def test_openssl_mtls_needs_certificate_and_accepts_one(broker, pki):
    port = broker.port("mtls")
    ca = pki["ca"].pem
    # TLS 1.2: the server refuses before its Finished.
    out, _ = s_client(port, "-tls1_2", cafile=ca)
    assert_refused_by_server(out, alert="certificate_required")
    # TLS 1.3: the server's Finished precedes the client's Certificate, so the
    # refusal is the alert that follows it; -ign_eof keeps s_client reading
    # until the server has answered (a server that wrongly accepted would
    # leave it waiting: the timeout fails the test).
    out, _ = s_client(port, "-tls1_3", "-ign_eof", cafile=ca, timeout=5)
    assert out.returncode != 0 and server_alert(out) == "certificate_required", out.stdout
    for version, protocol in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        out, negotiated = s_client(port, version, "-cert", pki["alice"].pem,
                                   "-key", pki["alice"].key, cafile=ca)
        assert_accepted(out, negotiated, protocol)


# 4. Server keys of other types and formats.

SERVER_KEYS = {
    # listener -> what `openssl s_client` reports about the server's signature
    "server-rsa2048-pkcs8": r"Peer signature type: RSA-PSS\n(.*\n)*Server public key is 2048 bit",
    "server-rsa2048-pkcs1": r"Peer signature type: RSA-PSS\n(.*\n)*Server public key is 2048 bit",
    "server-ed25519": r"Peer signature type: ed25519\n",
    "server-ed25519-bulwark": r"Peer signature type: ed25519\n",
    "server-p384-sec1": r"Peer signature type: ECDSA\n(.*\n)*Server public key is 384 bit",
}


@pytest.mark.parametrize("listener", sorted(SERVER_KEYS))
@pytest.mark.parametrize("version", VERSIONS)
def test_server_key_types(broker, pki, listener, version):
    port = broker.port(listener)
    cafile = cafile_for(pki, listener)
    t = topic(listener)
    sub = MosqSub(port, t, *tls_args(cafile), version=version)
    try:
        out = mosq_pub(port, t, f"via {listener}", *tls_args(cafile), version=version)
        assert out.returncode == 0, out.stderr
        assert sub.wait_payload(f"via {listener}"), sub.seen
    finally:
        sub.kill()
    if version == VERSIONS[0]:
        out, negotiated = s_client(port, "-tls1_3", cafile=cafile)
        assert_accepted(out, negotiated, "TLSv1.3")
        assert re.search(SERVER_KEYS[listener], out.stdout, re.I), out.stdout


def test_wrong_server_ca_refused_by_client(broker, pki):
    """Control for the server-key tests: mosquitto_pub really verifies the
    server certificate against --cafile."""
    out = mosq_pub(broker.port("server-rsa2048-pkcs8"), topic("wrongca"), "x",
                   *tls_args(pki["ca"].pem))
    assert out.returncode != 0, out.stdout + out.stderr


# 5. A CRL rewritten while the broker runs cuts a live connection.

def test_live_crl_reload_disconnects_revoked_client(tmp_path):
    ca = CA(tmp_path / "ca")
    ca.write_crl()  # the listener needs the CRL file at start
    server = ca.server(tmp_path / "server")
    victim = ca.client("victim", tmp_path / "victim")
    bystander = ca.client("bystander", tmp_path / "bystander")
    publisher = ca.client("publisher", tmp_path / "publisher")
    b = Broker(tmp_path / "broker", {"mtls": {
        "kind": "mqtts", "tls_cert": server.pem, "tls_key": server.key,
        "tls_ca": ca.pem, "tls_crl": ca.crl}})
    subs = []
    try:
        port = b.port("mtls")
        t = topic("crl")
        v = MosqSub(port, t, *tls_args(ca.pem, victim))
        subs.append(v)
        by = MosqSub(port, t, *tls_args(ca.pem, bystander))
        subs.append(by)
        assert mosq_pub(port, t, "before", *tls_args(ca.pem, publisher)).returncode == 0
        assert v.wait_payload("before"), v.seen
        assert by.wait_payload("before"), by.seen

        revoked_at = time.monotonic()
        ca.revoke(victim)
        # mosquitto_sub reports the lost connection and exits.
        lost = v.wait_for(lambda l: "connection was lost" in l.lower(), timeout=5)
        exited = v.wait_exit(timeout=max(0.1, revoked_at + 5 - time.monotonic()))
        elapsed = time.monotonic() - revoked_at
        assert lost or exited, f"victim still connected {elapsed:.1f} s after revocation:\n" \
                               + "\n".join(v.seen) + "\n" + b.log()
        assert elapsed <= 5.0

        out = mosq_pub(port, t, "after", *tls_args(ca.pem, publisher))
        assert out.returncode == 0, out.stderr
        assert by.wait_payload("after"), by.seen
        v.drain()
        assert "after" not in v.seen
        # And the revoked certificate cannot come back.
        again = mosq_pub(port, t, "revoked again", *tls_args(ca.pem, victim))
        assert again.returncode != 0
        assert b.proc.poll() is None, "broker died"
    finally:
        for s in subs:
            s.kill()
        b.stop()


# 6. A server certificate replaced on disk, then SIGHUP.

def atomic_write(path, data: bytes):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def test_server_certificate_reload_on_sighup(tmp_path):
    old_ca = CA(tmp_path / "old-ca", name="Old CA")
    new_ca = CA(tmp_path / "new-ca", name="New CA")
    alice = old_ca.client("alice", tmp_path / "alice")
    issued = old_ca.server(tmp_path / "issued-old")
    live_pem, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    live_pem.write_bytes(issued.pem.read_bytes())
    live_key.write_bytes(issued.key.read_bytes())
    replacement = new_ca.server(tmp_path / "issued-new")
    b = Broker(tmp_path / "broker", {"mtls": {
        "kind": "mqtts", "tls_cert": live_pem, "tls_key": live_key, "tls_ca": old_ca.pem}})
    sub = None
    try:
        port = b.port("mtls")
        t = topic("reload")
        # Before: the old CA verifies the server, the new one does not.
        assert mosq_pub(port, t, "x", *tls_args(old_ca.pem, alice)).returncode == 0
        assert mosq_pub(port, t, "x", *tls_args(new_ca.pem, alice)).returncode != 0
        sub = MosqSub(port, t, *tls_args(old_ca.pem, alice))

        atomic_write(live_key, replacement.key.read_bytes())
        atomic_write(live_pem, replacement.pem.read_bytes())
        b.sighup()

        deadline = time.monotonic() + 5
        while True:
            out = mosq_pub(port, t, "after reload", *tls_args(new_ca.pem, alice))
            if out.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert out.returncode == 0, f"new certificate not served after 5 s\n{out.stderr}\n{b.log()}"
        old = mosq_pub(port, t, "old ca", *tls_args(old_ca.pem, alice))
        assert old.returncode != 0, "server still presents the old certificate"
        # The connection made before the reload is unaffected.
        assert sub.wait_payload("after reload"), sub.seen
        assert sub.proc.poll() is None
        assert b.proc.poll() is None, "broker died on SIGHUP"
    finally:
        if sub:
            sub.kill()
        b.stop()
