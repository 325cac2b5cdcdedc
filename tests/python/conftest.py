"""Shared fixture: the Bulwark binary on a free loopback port.

BULWARK_BIN names the binary (default target/debug/bulwark, relative to the
repository root). Each test module gets its own broker process, stopped after.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker not listening on {port} after {timeout} s")


@pytest.fixture(scope="module")
def broker_port():
    binary = Path(os.environ.get("BULWARK_BIN", ROOT / "target" / "debug" / "bulwark"))
    if not binary.is_absolute():
        binary = ROOT / binary
    if not binary.exists():
        pytest.fail(f"broker binary {binary} not found: build it with `cargo build -p bulwark`")
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "serve", "--bind", f"{HOST}:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
