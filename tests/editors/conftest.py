"""Shared fixtures for the real-editor tests (Krita and GIMP).

- ``editor_root``: the root holding Krita 5.2 + GIMP 3 (``"/"`` on a Debian 13 host with the
  editors, else the Debian 13 chroot that ``editor_env.sh ensure`` builds once and caches); the
  test is skipped, with the script's reason, when the environment cannot be had (exit code 77:
  not root, no debootstrap, no mirror...).
- ``daemon_endpoint``: a real ``clickmatte-daemon`` (CPU, real model) on a free loopback TCP port,
  started once per test session; the chroot shares the host's network, so the editors reach it.
- helpers to run things inside the root: ``editor_env.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from editor_env import ENSURE_TIMEOUT_S, EDITOR_ENV


@pytest.fixture(scope="session")
def editor_root() -> Path:
    """The editor root (built or reused); skips with a visible reason where it cannot be had."""
    if not sys.platform.startswith("linux"):
        pytest.skip("real-editor tests need Linux (a Debian 13 root with Krita 5.2 and GIMP 3)")
    if os.environ.get("CLICKMATTE_SKIP_EDITORS"):
        pytest.skip("CLICKMATTE_SKIP_EDITORS is set")
    try:
        proc = subprocess.run([str(EDITOR_ENV), "ensure"], capture_output=True, text=True, timeout=ENSURE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.skip(f"building the editor environment took longer than {ENSURE_TIMEOUT_S} s")
    if proc.returncode == 77:
        reason = (proc.stderr.strip().splitlines() or ["unavailable"])[-1]
        pytest.skip(f"editor environment unavailable here: {reason}")
    assert proc.returncode == 0, f"editor_env.sh ensure failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def daemon_endpoint() -> Iterator[str]:
    """A real daemon (CPU) on a free loopback port for the whole session; its log is shown if it fails."""
    from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon

    with tempfile.TemporaryDirectory(prefix="cm-editor-daemon-") as tmp:
        endpoint = free_tcp_endpoint()
        proc, client = start_daemon(endpoint, ["--device", "cpu", "--log-level", "INFO"],
                                    os.path.join(tmp, "daemon.log"), startup_timeout_s=300)
        client.disconnect()
        try:
            yield endpoint
        finally:
            stop_daemon(proc)
