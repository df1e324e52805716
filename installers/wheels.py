"""Binary wheels for the editor's own Python (standard library only): :func:`vendor_wheels` downloads
wheels built for *another* Python with ``pip download --only-binary=:all: --python-version X.Y --platform ...``
(:func:`wheel_platform_tags`) and unpacks them into the plugin's folder, recorded in the manifest.
"""
from __future__ import annotations

import os
import platform as _platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from .manifest import Manifest
from .reporting import InstallError


def os_name(platform: Optional[str] = None) -> str:
    """``"linux"``, ``"windows"`` or ``"macos"`` for a ``sys.platform``-style string."""
    p = sys.platform if platform is None else platform
    if p.startswith("win") or p == "windows":
        return "windows"
    if p == "darwin" or p == "macos":
        return "macos"
    if p.startswith("linux"):
        return "linux"
    raise InstallError(f"unsupported platform {p!r} (Linux, Windows and macOS are supported)")


def wheel_platform_tags(os_kind: str, machine: Optional[str] = None) -> List[str]:
    """pip ``--platform`` tags for binary wheels on ``os_kind`` ("linux"/"windows"/"macos")."""
    m = (machine or _platform.machine() or "x86_64").lower()
    m = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64" if os_kind == "linux" else "arm64"}.get(m, m)
    if os_kind == "linux":
        return [f"manylinux_2_28_{m}", f"manylinux_2_17_{m}", f"manylinux2014_{m}", f"manylinux_2_5_{m}"]
    if os_kind == "windows":
        return ["win_arm64" if m in ("arm64", "aarch64") else "win_amd64"]
    if os_kind == "macos":
        arch = "arm64" if m in ("arm64", "aarch64") else "x86_64"
        return [f"macosx_11_0_{arch}", "macosx_10_15_universal2", f"macosx_10_15_{arch}", "macosx_10_9_universal2"]
    raise InstallError(f"unknown OS {os_kind!r}")


def parse_python_version(text: str) -> Tuple[int, int]:
    """``"3.13"`` -> ``(3, 13)``; ``InstallError`` otherwise."""
    parts = text.strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]) or parts[0] != "3":
        raise InstallError(f"--python-version must look like 3.X, got {text!r}")
    return int(parts[0]), int(parts[1])


def download_wheels(packages: Sequence[str], python_version: str, platform_tags: Sequence[str], dest: Path,
                    pip: Optional[Sequence[str]] = None, timeout: float = 300) -> Tuple[List[Path], str]:
    """``pip download`` binary wheels of ``packages`` for CPython ``python_version`` into ``dest``.

    Returns ``(wheels, error_text)``; ``wheels`` is empty (and ``error_text`` says why) when none
    could be had (no pip, no network, no wheel for that Python/platform).
    """
    major, minor = parse_python_version(python_version)
    cmd = list(pip) if pip else [sys.executable, "-m", "pip"]
    cmd += ["download", "--disable-pip-version-check", "--no-input", "--only-binary=:all:", "--no-deps",
            "--python-version", f"{major}.{minor}", "--implementation", "cp", "--abi", f"cp{major}{minor}",
            "--dest", str(dest)]
    for tag in platform_tags:
        cmd += ["--platform", tag]
    cmd += list(packages)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], str(exc)
    wheels = sorted(Path(dest).glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [], " / ".join(tail) or f"pip exited with {proc.returncode}"
    return wheels, ""


def unpack_wheel(wheel: Path, dest: Path, manifest: Manifest) -> int:
    """Extract a wheel (a zip) into ``dest``, recording every file; returns the file count."""
    n = 0
    dest_resolved = dest.resolve()
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            target = (dest / info.filename).resolve()
            if dest_resolved not in target.parents:
                raise InstallError(f"{wheel.name}: refusing to extract {info.filename!r} outside {dest}")
            manifest.write_file(dest / info.filename, zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode & 0o111:
                os.chmod(dest / info.filename, 0o755)
            n += 1
    return n


def wheel_fits(filename: str, major: int, minor: int) -> bool:
    """Whether a wheel file name's python/abi tags suit CPython ``major.minor`` (exact cpXY, cpXY-abi3
    with XY <= ours, or pure ``py3-none``). Platform tags are not checked."""
    parts = filename[:-4].split("-") if filename.endswith(".whl") else []
    if len(parts) < 5:
        return False
    py_tags, abi_tags = parts[-3].split("."), parts[-2].split(".")
    ours = f"cp{major}{minor}"
    if ours in py_tags and (ours in abi_tags or "abi3" in abi_tags or "none" in abi_tags):
        return True
    if "abi3" in abi_tags:
        for t in py_tags:
            if t.startswith(f"cp{major}") and t[2:].isdigit() and int(t[3:] or 0) <= minor:
                return True
    return any(t in (f"py{major}", f"py{major}{minor}") for t in py_tags) and "none" in abi_tags


def vendor_wheels(packages: Sequence[str], python_version: str, platform_tags: Sequence[str], dest: Path,
                  manifest: Manifest, report: Callable[[str], None], wheel_dir: Optional[Path] = None) -> bool:
    """Put binary wheels of ``packages`` for the editor's Python into ``dest`` (unpacked).

    Wheels come from ``wheel_dir`` when given (offline installs: files named ``*.whl`` matching the
    Python version), else from ``pip download``. Returns False (after reporting why) when none could be had.
    """
    major, minor = parse_python_version(python_version)
    with tempfile.TemporaryDirectory(prefix="clickmatte-wheels-") as tmp:
        if wheel_dir is not None:
            wheels = sorted(w for w in Path(wheel_dir).glob("*.whl") if wheel_fits(w.name, major, minor)
                            and any(w.name.lower().startswith(p.lower().replace("-", "_") + "-") for p in packages))
            error = "" if wheels else f"no cp{major}{minor} wheel of {', '.join(packages)} in {wheel_dir}"
        else:
            wheels, error = download_wheels(packages, python_version, platform_tags, Path(tmp))
        if not wheels:
            report(f"could not get {', '.join(packages)} wheels for Python {major}.{minor} ({error})")
            return False
        for w in wheels:
            n = unpack_wheel(w, dest, manifest)
            report(f"vendored {w.name} ({n} files) into {dest}")
    return True
