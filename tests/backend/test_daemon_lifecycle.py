"""Start-up errors, clean shutdown on signals, and a daemon that dies mid-request."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon
from clickmatte.plugin.client import DaemonClient, DaemonTimeout


def run_daemon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clickmatte.backend.daemon", *args],
                          capture_output=True, text=True, timeout=180)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if "clickmatte-daemon: error:" in ln]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_port_in_use_is_one_clear_line(tcp_daemon):
    line = one_error_line(run_daemon("--bind", tcp_daemon.endpoint, "--device", "cpu"))
    assert "cannot bind" in line and "in use" in line


def test_missing_checkpoint_is_one_clear_line(tmp_path):
    line = one_error_line(run_daemon("--checkpoint", str(tmp_path / "nope.pt")))
    assert "checkpoint not found" in line


def test_cuda_requested_but_absent_is_one_clear_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    line = one_error_line(run_daemon("--bind", free_tcp_endpoint(), "--device", "cuda"))
    assert "CUDA" in line


def test_bad_option_values_are_refused():
    assert "max-sessions" in one_error_line(run_daemon("--max-sessions", "0"))
    assert "--device" in one_error_line(run_daemon("--device", "tpu"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_cleanly(tmp_path, make_image, sig):
    endpoint = free_tcp_endpoint()
    log = str(tmp_path / "d.log")
    proc, client = start_daemon(endpoint, ["--device", "cpu"], log, startup_timeout_s=240)
    try:
        s = client.open(make_image(64, 48).tobytes(), 64, 48, 3, "uint8", "RGB")
        client.predict(s.session, [{"x": 10, "y": 10, "label": "fg"}])
        client.disconnect()
        proc.send_signal(sig)
        assert proc.wait(60) == 0
        text = open(log).read()
        assert "shutting down" in text and "stopped after" in text and "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_daemon_killed_mid_request_gives_a_timeout_not_a_hang(tmp_path, make_image):
    endpoint = free_tcp_endpoint()
    proc, client = start_daemon(endpoint, ["--device", "cpu"], str(tmp_path / "d.log"), startup_timeout_s=240)
    try:
        client.disconnect()
        c = DaemonClient(endpoint, timeout_ms=2000, retries=1)
        s = c.open(make_image(200, 150).tobytes(), 200, 150, 3, "uint8", "RGB")
        rid = c.send_predict(s.session, [{"x": 100, "y": 75, "label": "fg"}])
        proc.kill()
        proc.wait(60)
        t0 = time.monotonic()
        reply = c.poll(10000)
        assert reply is not None and reply.id == rid and isinstance(reply.error, DaemonTimeout)
        assert reply.op == "timeout" and not reply.ok
        with pytest.raises(DaemonTimeout):  # blocking: 2 tries of 2 s, then the error
            c.predict(s.session, [{"x": 100, "y": 75, "label": "fg"}])
        assert time.monotonic() - t0 < 30
        c.disconnect()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
