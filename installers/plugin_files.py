"""What both editor installers put next to the plugin (standard library only): its files
(:func:`iter_plugin_files`) and the record of the daemon program it starts (:func:`daemon_command`: this
installation's ``clickmatte-daemon`` or ``--daemon``; :func:`write_daemon_file`: the plugin's ``daemon.json``).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence

from .manifest import Manifest
from .reporting import InstallError


def iter_plugin_files(folder: Path, patterns: Iterable[str] = ("*.py",)) -> List[Path]:
    """Files of ``folder`` (not recursive) matching ``patterns``, sorted, caches excluded."""
    out = set()
    for pat in patterns:
        out.update(p for p in folder.glob(pat) if p.is_file())
    return sorted(out)


def daemon_command(program: Optional[str] = None, python: Optional[str] = None) -> List[str]:
    """The command that runs ``clickmatte-daemon``, as absolute paths.

    ``program`` (``--daemon``): that file, which must exist and be executable. Otherwise the
    ``clickmatte-daemon`` script beside ``python`` (default ``sys.executable``: a virtual
    environment's ``bin/`` or ``Scripts/``, used even when it is not activated), else the one on
    PATH, else ``[python, "-m", "clickmatte.backend.daemon"]``.
    """
    if program:
        path = Path(program).expanduser()
        if not path.is_file():
            raise InstallError(f"--daemon {program}: no such file")
        if os.name == "posix" and not os.access(path, os.X_OK):
            raise InstallError(f"--daemon {program}: not executable")
        return [str(path.absolute())]
    py = Path(python or sys.executable)
    for name in ("clickmatte-daemon", "clickmatte-daemon.exe"):
        beside = py.with_name(name)
        if beside.is_file() and os.access(beside, os.X_OK):
            return [str(beside.absolute())]
    found = shutil.which("clickmatte-daemon")
    if found:
        return [str(Path(found).absolute())]
    return [str(py.absolute()), "-m", "clickmatte.backend.daemon"]


def write_daemon_file(manifest: Manifest, folder: Path, command: Sequence[str],
                      report: Callable[[str], None]) -> Path:
    """Record ``command`` in ``folder/daemon.json`` (the plugin starts it when no local daemon answers)."""
    from clickmatte.plugin.launcher import DAEMON_FILE, daemon_file_bytes

    path = Path(folder) / DAEMON_FILE
    manifest.write_file(path, daemon_file_bytes(command))
    report(f"recorded the daemon program in {path}: {' '.join(command)} (started by the plugin when no "
           "local daemon answers)")
    return path
