"""Helpers for the real-editor tests: run commands inside the editor root made by ``editor_env.sh``.

- ``run_in_editor_env(args, home=..., env=..., timeout=...)``: run a command inside the root (cwd =
  this repository, mounted at ``/repo`` in a chroot) with ``HOME`` = ``home`` (a path inside the root).
- ``inner_path(root, host_path)``: the path that ``host_path`` (under ``root``) has inside it.
- ``repo_inside(root)``: where this repository is seen from inside the root.
- ``host_daemon_wrapper(root, path, start_delay_s=0)``: a daemon program for ``clickmatte-install --daemon``
  that runs this checkout's ``clickmatte-daemon`` from inside the root, optionally after a pause (a slow
  model load on a fast machine).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
EDITOR_ENV = REPO / "tests" / "editors" / "editor_env.sh"
ENSURE_TIMEOUT_S = 1800  # building the root from nothing: a few minutes, more on a slow mirror


def run_in_editor_env(args: Sequence[str], home: str = "/tmp/editor-home", env: Optional[Dict[str, str]] = None,
                      timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``args`` inside the editor root (see ``editor_env.sh run``); returns the finished process.

    ``env`` entries are set inside (through ``env NAME=VALUE``), ``home`` becomes ``$HOME``.
    """
    cmd = [str(EDITOR_ENV), "run"]
    if env:
        cmd += ["env"] + [f"{k}={v}" for k, v in env.items()]
    cmd += list(args)
    penv = dict(os.environ, CLICKMATTE_EDITOR_HOME=home)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=penv)


def inner_path(root: Path, host_path: Path) -> str:
    """``host_path`` (somewhere under ``root``) as seen from inside the root."""
    rel = Path(host_path).resolve().relative_to(Path(root).resolve())
    return "/" + str(rel)


def repo_inside(root: Path) -> str:
    """This repository's path inside ``root`` (``/repo`` in a chroot, itself on a Debian 13 host)."""
    return str(REPO) if str(root) == "/" else "/repo"


def host_daemon_wrapper(root: Path, where: str, start_delay_s: float = 0.0) -> None:
    """Write the daemon program recorded by a test install at ``where``, both on the host (where the
    installer checks that it exists) and inside ``root`` (where the editor runs it).

    The editors' Debian 13 root has no torch, so the program runs this checkout's clickmatte-daemon in
    the host's root, reached through this test process's ``/proc/PID/root``. The pid namespace is
    shared and every step execs, so the plugin's ``--owner-pid`` and its SIGTERM reach the daemon itself.
    """
    daemon = Path(sys.executable).with_name("clickmatte-daemon").absolute()
    delay = f"sleep {start_delay_s:g}\n" if start_delay_s > 0 else ""  # the same process: sleep, then exec
    text = f"#!/bin/sh\n{delay}exec chroot /proc/{os.getpid()}/root /usr/bin/env HOME=/tmp {daemon} --device cpu \"$@\"\n"
    for base in (Path("/"), Path(root)):
        p = base / where.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(0o755)
