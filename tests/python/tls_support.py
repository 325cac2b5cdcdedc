"""Shared helpers for the TLS and WebSocket tests: a PKI made with
`bulwark cert`, a broker started from a generated configuration, and the
Mosquitto command-line clients with TLS options.

Every wait is bounded; brokers are stopped by the fixtures that start them.
"""

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import HOST, ROOT, free_port, wait_listening

WAIT = 10  # upper bound for any single client run or wait, in seconds

needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None or shutil.which("mosquitto_sub") is None,
    reason="mosquitto-clients not installed",
)
needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl command not installed"
)


def bulwark_bin() -> Path:
    binary = Path(os.environ.get("BULWARK_BIN", ROOT / "target" / "debug" / "bulwark"))
    if not binary.is_absolute():
        binary = ROOT / binary
    if not binary.exists():
        pytest.fail(f"broker binary {binary} not found: build it with `cargo build -p bulwark`")
    return binary


def run(cmd, **kw):
    """Runs a command to completion (bounded); raises with its output on failure."""
    out = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=WAIT, **kw
    )
    if out.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {out.returncode}\n{out.stdout}\n{out.stderr}"
        )
    return out


def bulwark(*args):
    return run([bulwark_bin(), *args])


class Cert:
    def __init__(self, pem: Path, key: Path):
        self.pem = pem
        self.key = key


class CA:
    """A certificate authority in DIR, made and used through `bulwark cert`."""

    def __init__(self, directory: Path, name: str = "Bulwark Test CA"):
        self.dir = directory
        bulwark("cert", "ca", "--dir", directory, "--name", name)
        self.pem = directory / "ca.pem"
        self.crl = directory / "crl.pem"

    def server(self, out: Path, name="localhost", sans=("127.0.0.1",), key_type=None):
        args = ["cert", "server", "--ca", self.dir, "--name", name, "--out", out]
        for san in sans:
            args += ["--san", san]
        if key_type:
            args += ["--key-type", key_type]
        bulwark(*args)
        return Cert(Path(f"{out}.pem"), Path(f"{out}.key"))

    def client(self, cn: str, out: Path, key_type=None):
        args = ["cert", "client", "--ca", self.dir, "--name", cn, "--out", out]
        if key_type:
            args += ["--key-type", key_type]
        bulwark(*args)
        return Cert(Path(f"{out}.pem"), Path(f"{out}.key"))

    def revoke(self, cert: Cert):
        bulwark("cert", "revoke", "--ca", self.dir, cert.pem)

    def write_crl(self):
        bulwark("cert", "crl", "--ca", self.dir)
        return self.crl


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (str, Path)):
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


class Broker:
    """`bulwark serve --config` with the given listeners, each bound to a free
    loopback port. `listeners` maps a listener name to its keys (without
    `name` and `bind`). The log goes to a file (a pipe nobody reads could
    fill and stall the broker)."""

    def __init__(self, workdir: Path, listeners: dict, extra: str = ""):
        workdir.mkdir(parents=True, exist_ok=True)
        self.dir = workdir
        self.ports = {name: free_port() for name in listeners}
        lines = [extra] if extra else []
        for name, keys in listeners.items():
            lines.append("[[listener]]")
            lines.append(f"name = {_toml_value(name)}")
            lines.append(f'bind = "{HOST}:{self.ports[name]}"')
            for k, v in keys.items():
                lines.append(f"{k} = {_toml_value(v)}")
            lines.append("")
        self.config = workdir / "bulwark.toml"
        self.config.write_text("\n".join(lines))
        self.log_path = workdir / "broker.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(bulwark_bin()), "serve", "--config", str(self.config),
             "--data-dir", str(workdir / "data")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BULWARK_LOG": "info"},
        )
        try:
            for port in self.ports.values():
                wait_listening(port, self.proc)
        except Exception:
            self.stop()
            raise AssertionError(f"broker did not start:\n{self.log()}")

    def port(self, name: str) -> int:
        return self.ports[name]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        """Stops the broker; fails (as a teardown error) if it panicked."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()
            assert "panicked" not in self.log(), f"broker panicked:\n{self.log()}"


def tls_args(cafile=None, cert: Cert = None, alpn=None):
    args = []
    if cafile:
        args += ["--cafile", str(cafile)]
    if cert:
        args += ["--cert", str(cert.pem), "--key", str(cert.key)]
    if alpn:
        args += ["--tls-alpn", alpn]
    return args


def cert_cn(path):
    """The subject CN of a PEM certificate, via openssl."""
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline",
                          "-in", str(path)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("commonName"):
            return line.split("=", 1)[1].strip()
    return None


def client_id_for(prefix, args):
    """A client ID the broker accepts: with a client certificate, Bulwark
    binds client IDs to the certificate identity (CN or CN-...)."""
    args = list(args)
    if "--cert" in args:
        cn = cert_cn(args[args.index("--cert") + 1])
        if cn:
            return f"{cn}-{prefix}-{uuid.uuid4().hex[:8]}"
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def mosq_pub(port, topic, message, *args, version="mqttv311", timeout=WAIT):
    """mosquitto_pub; returns the CompletedProcess (the caller checks returncode)."""
    cmd = ["mosquitto_pub", "-h", HOST, "-p", str(port), "-V", version,
           "-i", client_id_for("pub", args), "-t", topic, "-m", message, "-q", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class MosqSub:
    """mosquitto_sub in debug mode, so its SUBACK can be waited for before
    anything is published. Output is read line by line on a thread (stdout
    line-buffered through stdbuf, since a pipe is block-buffered)."""

    def __init__(self, port, topic, *args, version="mqttv311"):
        self.client_id = client_id_for("sub", args)
        cmd = ["mosquitto_sub", "-h", HOST, "-p", str(port), "-V", version, "-t", topic,
               "-q", "1", "-d", "-i", self.client_id, *args]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines = queue.Queue()
        self.seen = []  # every line read so far, for failure messages
        threading.Thread(target=self._read, daemon=True).start()
        if not self.wait_for(lambda l: "received suback" in l.lower()):
            self.kill()
            raise AssertionError("mosquitto_sub got no SUBACK:\n" + "\n".join(self.seen))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pred, timeout=WAIT):
        """Reads lines until one satisfies pred (True), output ends or the
        deadline passes (False)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                self.lines.put(None)  # keep the end marker for later readers
                return False
            self.seen.append(line)
            if pred(line):
                return True
        return False

    def wait_payload(self, payload, timeout=WAIT):
        return self.wait_for(lambda l: l == payload, timeout)

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def drain(self):
        """Whatever is left in the queue, without waiting."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self.lines.put(None)
                return
            self.seen.append(line)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def openssl_req_selfsigned(out_dir: Path, stem: str, key_cmd):
    """A self-signed localhost/127.0.0.1 server certificate with openssl;
    key_cmd writes the private key to the path passed to it."""
    key = out_dir / f"{stem}.key"
    pem = out_dir / f"{stem}.pem"
    key_cmd(key)
    run(["openssl", "req", "-x509", "-new", "-key", key, "-out", pem, "-days", "2",
         "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
         "-addext", "extendedKeyUsage=serverAuth"])
    return Cert(pem, key)
