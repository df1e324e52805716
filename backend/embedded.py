"""Find a running daemon, or start a private one for the duration of a command.

:func:`daemon_for` yields a connected :class:`DaemonClient`: to the daemon at ``endpoint`` if it
answers ``hello`` within ``probe_ms``, else to a fresh ``python -m clickmatte.backend.daemon``
subprocess bound to a private ``ipc://`` path (a free loopback TCP port where ipc is unavailable),
which is stopped (SIGTERM, then kill) when the block ends.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Iterator, List, Optional, Sequence

import zmq

from clickmatte.plugin.client import DaemonClient, DaemonTimeout


class DaemonStartError(RuntimeError):
    """The embedded daemon exited or did not answer in time; the message carries its last log lines."""


def free_tcp_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` with a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _private_endpoint(tmpdir: str) -> str:
    if zmq.has("ipc") and os.name == "posix" and len(tmpdir) < 90:
        return f"ipc://{os.path.join(tmpdir, 'daemon.sock')}"
    return free_tcp_endpoint()


def _tail(path: str, n: int = 15) -> str:
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def start_daemon(endpoint: str, extra_args: Sequence[str] = (), log_path: Optional[str] = None,
                 startup_timeout_s: float = 180.0, timeout_ms: int = 120000) -> tuple:
    """Start ``python -m clickmatte.backend.daemon --bind endpoint *extra_args``; wait until it answers.

    Returns ``(process, client)``. Raises :class:`DaemonStartError` if it exits or stays silent.
    """
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    cmd: List[str] = [sys.executable, "-m", "clickmatte.backend.daemon", "--bind", endpoint, *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    if log_path:
        log.close()  # type: ignore[union-attr]
    client = DaemonClient(endpoint, timeout_ms=timeout_ms, retries=0)
    deadline = time.monotonic() + startup_timeout_s
    try:
        while True:
            try:
                client.hello(timeout_ms=500)
                return proc, client
            except DaemonTimeout:
                pass
            if proc.poll() is not None:
                raise DaemonStartError(f"the daemon exited with status {proc.returncode}:\n"
                                       f"{_tail(log_path) if log_path else ''}")
            if time.monotonic() > deadline:
                raise DaemonStartError(f"the daemon did not answer within {startup_timeout_s:.0f} s:\n"
                                       f"{_tail(log_path) if log_path else ''}")
    except BaseException:
        client.disconnect()
        stop_daemon(proc)
        raise


def stop_daemon(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, wait ``grace_s``, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def daemon_for(endpoint: str, probe_ms: int = 1500, timeout_ms: int = 120000, spawn: bool = True,
               daemon_args: Sequence[str] = (), say=None) -> Iterator[DaemonClient]:
    """A client of the daemon at ``endpoint``, or of an embedded one started for this block."""
    probe = DaemonClient(endpoint, timeout_ms=probe_ms, retries=0)
    try:
        probe.hello()
        found = True
    except DaemonTimeout:
        found = False
    finally:
        probe.disconnect()
    if found:
        if say:
            say(f"using the daemon at {endpoint}")
        client = DaemonClient(endpoint, timeout_ms=timeout_ms, retries=1)
        try:
            yield client
        finally:
            client.disconnect()
        return
    if not spawn:
        raise DaemonStartError(f"no daemon answered at {endpoint} within {probe_ms} ms")
    with tempfile.TemporaryDirectory(prefix="clickmatte-") as tmp:
        ep = _private_endpoint(tmp)
        if say:
            say(f"no daemon at {endpoint}: starting one for this call on {ep}")
        proc, client = start_daemon(ep, daemon_args, os.path.join(tmp, "daemon.log"), timeout_ms=timeout_ms)
        try:
            yield client
        finally:
            client.disconnect()
            stop_daemon(proc)
