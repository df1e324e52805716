"""Helpers for the real-editor tests: run commands inside the editor root made by ``editor_env.sh``.

- ``run_in_editor_env(args, home=..., env=..., timeout=...)``: run a command inside the root (cwd =
  this repository, mounted at ``/repo`` in a chroot) with ``HOME`` = ``home`` (a path inside the root).
- ``inner_path(root, host_path)``: the path that ``host_path`` (under ``root``) has inside it.
- ``repo_inside(root)``: where this repository is seen from inside the root.
"""
from __future__ import annotations

import os
import subprocess
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
