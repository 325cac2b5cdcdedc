"""Bulwark with the Mosquitto command-line clients, MQTT 3.1.1 and 5.0."""

import queue
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from conftest import HOST

WAIT = 10
VERSIONS = ["mqttv311", "mqttv5"]

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed"
)


def common(port, version):
    return ["-h", HOST, "-p", str(port), "-V", version]


def pub(port, version, topic, *args, stdin=None):
    subprocess.run(
        ["mosquitto_pub", *common(port, version), "-t", topic, *args],
        input=stdin,
        check=True,
        timeout=WAIT,
        capture_output=True,
        text=True,
    )


class Sub:
    """mosquitto_sub in debug mode, so its SUBACK can be waited for before
    anything is published. Its output is read line by line on a thread, with
    stdout line-buffered through stdbuf (a pipe is block-buffered)."""

    def __init__(self, port, version, topic, *args):
        cmd = ["mosquitto_sub", *common(port, version), "-t", topic, "-d",
               "-i", f"sub-{uuid.uuid4().hex[:8]}", *args]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            if "received suback" in line.lower():
                return
        self.proc.kill()
        raise AssertionError("mosquitto_sub got no SUBACK")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def output(self):
        """Waits for the client to exit (-C) and returns what it printed
        that is not debug output."""
        try:
            self.proc.wait(timeout=WAIT)
        finally:
            self.proc.kill()
        assert self.proc.returncode == 0, self.proc.returncode
        out = []
        while (line := self.lines.get(timeout=WAIT)) is not None:
            if line and not line.startswith(("Client ", "Subscribed (mid")):
                out.append(line)
        return out


@pytest.mark.parametrize("version", VERSIONS)
def test_qos2_round_trip(broker_port, version):
    topic = f"mosq/{version}/qos2"
    sub = Sub(broker_port, version, topic, "-q", "2", "-C", "1", "-F", "%q %t %p")
    pub(broker_port, version, topic, "-q", "2", "-m", "exactly once")
    assert sub.output() == [f"2 {topic} exactly once"]


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_message_with_r(broker_port, version):
    topic = f"mosq/{version}/retained"
    pub(broker_port, version, topic, "-q", "1", "-r", "-m", "kept")
    sub = Sub(broker_port, version, topic, "-q", "1", "-C", "1", "-F", "%r %p")
    assert sub.output() == ["1 kept"]
    pub(broker_port, version, topic, "-q", "1", "-r", "-n")
    out = subprocess.run(
        ["mosquitto_sub", *common(broker_port, version), "-t", topic, "-C", "1", "-W", "1"],
        capture_output=True, text=True, timeout=WAIT,
    )
    # -W expires with nothing received: the retained message is gone.
    assert out.stdout == ""


@pytest.mark.parametrize("version", VERSIONS)
def test_count_stops_after_c_messages(broker_port, version):
    topic = f"mosq/{version}/count"
    sub = Sub(broker_port, version, topic, "-q", "1", "-C", "3")
    pub(broker_port, version, topic, "-q", "1", "-l", stdin="one\ntwo\nthree\nfour\n")
    assert sub.output() == ["one", "two", "three"]
