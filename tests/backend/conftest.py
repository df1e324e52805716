"""Real daemons for the backend tests: subprocesses on a free loopback TCP port and on an ipc:// path.

Each fixture starts ``python -m clickmatte.backend.daemon`` once per test session (the model load
is paid once) and kills it at teardown.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Iterator, List

import numpy as np
import pytest
import zmq

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon
from clickmatte.plugin.client import DaemonClient

# small limits so that limit errors are cheap to provoke; tests use images of at most 200x150
TEST_DAEMON_ARGS = ["--device", "cpu", "--max-sessions", "6", "--max-image-mp", "0.05", "--log-level", "INFO"]


@dataclass
class RunningDaemon:
    endpoint: str
    proc: subprocess.Popen
    log_path: str

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def _start(endpoint: str, args: List[str], tmp: str) -> Iterator[RunningDaemon]:
    log = os.path.join(tmp, "daemon.log")
    proc, client = start_daemon(endpoint, args, log, startup_timeout_s=240)
    client.disconnect()
    try:
        yield RunningDaemon(endpoint, proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def tcp_daemon() -> Iterator[RunningDaemon]:
    with tempfile.TemporaryDirectory(prefix="cm-tcp-") as tmp:
        yield from _start(free_tcp_endpoint(), TEST_DAEMON_ARGS, tmp)


@pytest.fixture(scope="session")
def ipc_daemon() -> Iterator[RunningDaemon]:
    if not zmq.has("ipc"):
        pytest.skip("this libzmq has no ipc transport")
    with tempfile.TemporaryDirectory(prefix="cm-ipc-") as tmp:
        yield from _start(f"ipc://{tmp}/d.sock", TEST_DAEMON_ARGS, tmp)


@pytest.fixture(params=["tcp", "ipc"])
def daemon(request: pytest.FixtureRequest) -> RunningDaemon:
    """Each test using it runs once over TCP loopback and once over ipc://."""
    return request.getfixturevalue(f"{request.param}_daemon")


@pytest.fixture
def client(tcp_daemon: RunningDaemon) -> Iterator[DaemonClient]:
    c = DaemonClient(tcp_daemon.endpoint, timeout_ms=60000, retries=0)
    yield c
    c.disconnect()


def _make_image(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    """A ``(height, width, 3)`` uint8 RGB picture: a bright disc on a dark noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    disc = (xx - width / 2) ** 2 + (yy - height / 2) ** 2 < (min(width, height) / 3) ** 2
    img = rng.integers(0, 60, (height, width, 3)).astype(np.uint8)
    img[disc] = (rng.integers(180, 255, (int(disc.sum()), 3))).astype(np.uint8)
    return img


@pytest.fixture
def make_image():
    """``make_image(width=96, height=64, seed=0)`` -> ``(height, width, 3)`` uint8 RGB test picture."""
    return _make_image
