"""Helpers shared by the editor installers (standard library only).

- ``Manifest``: records every file, link, folder and config-file change an install makes, saved as
  JSON next to the installed plugin, so that ``--uninstall`` removes exactly that and nothing else
  (files the user has modified since are kept, with a warning).
- ``ini_set`` / ``ini_restore``: line-preserving edits of INI-style files (``kritarc``, ``gimprc``-like
  key=value files) that touch one key and leave every other byte alone.
- ``vendor_wheels``: download binary wheels built for *another* Python (the editor's) with
  ``pip download --only-binary=:all: --python-version X.Y --platform ...`` and unpack them.
- ``Reporter``: prints what was done, one line per action.
- ``daemon_command``: the ``clickmatte-daemon`` program of this installation (or ``--daemon``), which
  the installers record in the plugin's ``daemon.json`` so that the plugin can start it by itself.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Sequence, TextIO, Tuple

MANIFEST_VERSION = 1


class InstallError(Exception):
    """A problem the user must fix; the CLI prints the message and exits with status 1."""


class Reporter:
    """Prints one line per action (to ``stream``, default stdout) and keeps them in ``lines``."""

    def __init__(self, stream: Optional[TextIO] = None, quiet: bool = False) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.quiet = quiet
        self.lines: List[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)
        if not self.quiet:
            print(message, file=self.stream, flush=True)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------
# manifest
# ---------------------------------------------------------------------------------------------------
@dataclass
class Manifest:
    """What one install created or changed.

    ``entries`` are dicts, in creation order:
    ``{"kind": "dir", "path"}`` (a folder we created), ``{"kind": "file", "path", "sha256"}``,
    ``{"kind": "link", "path", "target"}``, and ``{"kind": "ini", "path", "section", "key", "value",
    "previous": str|None, "created_file": bool, "created_section": bool}``.
    """

    target: str
    path: Path
    entries: List[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    # -- recording ---------------------------------------------------------------------------------
    def make_dir(self, path: Path) -> None:
        """Create ``path`` and any missing parents, recording the ones that did not exist."""
        missing = []
        p = Path(path)
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            self.entries.append({"kind": "dir", "path": str(d)})

    def copy_file(self, src: Path, dst: Path) -> None:
        if dst.exists() or dst.is_symlink():
            raise InstallError(f"{dst} already exists and was not installed by clickmatte-install; remove it first")
        self.make_dir(dst.parent)
        shutil.copyfile(src, dst)
        self.entries.append({"kind": "file", "path": str(dst), "sha256": file_sha256(dst)})

    def write_file(self, dst: Path, data: bytes) -> None:
        if dst.exists() or dst.is_symlink():
            raise InstallError(f"{dst} already exists and was not installed by clickmatte-install; remove it first")
        self.make_dir(dst.parent)
        dst.write_bytes(data)
        self.entries.append({"kind": "file", "path": str(dst), "sha256": file_sha256(dst)})

    def link(self, target: Path, dst: Path) -> None:
        if dst.exists() or dst.is_symlink():
            raise InstallError(f"{dst} already exists and was not installed by clickmatte-install; remove it first")
        self.make_dir(dst.parent)
        try:
            os.symlink(target, dst, target_is_directory=Path(target).is_dir())
        except OSError as exc:
            raise InstallError(f"cannot create the link {dst} -> {target} ({exc}); install without --link") from exc
        self.entries.append({"kind": "link", "path": str(dst), "target": str(target)})

    def set_ini(self, path: Path, section: str, key: str, value: str) -> Optional[str]:
        """Set ``key=value`` in ``[section]`` of the INI file ``path``; returns the previous value."""
        created_file = not path.exists()
        if created_file:
            self.make_dir(path.parent)
        text = "" if created_file else path.read_text(encoding="utf-8", errors="surrogateescape")
        new, previous, created_section = ini_set(text, section, key, value)
        path.write_text(new, encoding="utf-8", errors="surrogateescape")
        self.entries.append({"kind": "ini", "path": str(path), "section": section, "key": key, "value": value,
                             "previous": previous, "created_file": created_file,
                             "created_section": created_section,
                             "added_newline": bool(created_section and text and not text.endswith(("\n", "\r")))})
        return previous

    # -- persistence -------------------------------------------------------------------------------
    def save(self) -> None:
        data = {"manifest_version": MANIFEST_VERSION, "target": self.target, "info": self.info,
                "entries": self.entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InstallError(f"cannot read the install manifest {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
            raise InstallError(f"{path} is not a clickmatte install manifest (version {MANIFEST_VERSION})")
        return cls(data.get("target", "?"), Path(path), list(data.get("entries", [])), dict(data.get("info", {})))

    # -- undo --------------------------------------------------------------------------------------
    def undo(self, report: Callable[[str], None]) -> List[str]:
        """Remove/restore everything recorded, newest first; returns warnings (things kept)."""
        warnings: List[str] = []
        for e in reversed(self.entries):
            p = Path(e["path"])
            kind = e["kind"]
            if kind == "link":
                if p.is_symlink():
                    p.unlink()
                    report(f"removed link {p}")
            elif kind == "file":
                if p.is_symlink() or not p.exists():
                    continue
                if file_sha256(p) != e.get("sha256"):
                    warnings.append(f"kept {p}: it was changed after the install")
                    continue
                p.unlink()
                report(f"removed {p}")
            elif kind == "ini":
                if not p.exists():
                    continue
                text = p.read_text(encoding="utf-8", errors="surrogateescape")
                new, note = ini_restore(text, e["section"], e["key"], e["value"], e.get("previous"),
                                        e.get("created_section", False), e.get("added_newline", False))
                if note:
                    warnings.append(f"{p}: {note}")
                if new != text:
                    if e.get("created_file") and not new.strip():
                        p.unlink()
                        report(f"removed {p}")
                    else:
                        p.write_text(new, encoding="utf-8", errors="surrogateescape")
                        what = "removed" if e.get("previous") is None else f"restored {e['previous']!r} for"
                        report(f"{what} [{e['section']}] {e['key']} in {p}")
        if self.path.exists():
            self.path.unlink()
            report(f"removed manifest {self.path}")
        for e in reversed(self.entries):  # folders last: they must be empty by now
            p = Path(e["path"])
            if e["kind"] == "dir" and p.is_dir() and not p.is_symlink():
                _remove_caches(p)
                try:
                    p.rmdir()
                    report(f"removed folder {p}")
                except OSError:
                    warnings.append(f"kept folder {p}: it holds files the installer did not put there")
        return warnings


def _remove_caches(folder: Path) -> None:
    """Python writes ``__pycache__`` folders next to installed modules; they are ours to remove."""
    for cache in sorted(folder.rglob("__pycache__"), reverse=True):
        if cache.is_dir() and not cache.is_symlink():
            shutil.rmtree(cache, ignore_errors=True)
    cache = folder / "__pycache__"
    if cache.is_dir():
        shutil.rmtree(cache, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# INI files (kritarc is KConfig: "[group]" headers and "key=value" lines)
# ---------------------------------------------------------------------------------------------------
def _split_lines(text: str) -> List[str]:
    return text.splitlines(keepends=True)


def _section_span(lines: Sequence[str], section: str) -> Optional[Tuple[int, int]]:
    """(header index, end index) of the first ``[section]``; end = next header or len(lines)."""
    start = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            if start is not None:
                return start, i
            if s[1:-1] == section:
                start = i
    return None if start is None else (start, len(lines))


def _key_of(line: str) -> Optional[str]:
    s = line.strip()
    if not s or s[0] in "#;[" or "=" not in s:
        return None
    return s.split("=", 1)[0].strip()


def ini_get(text: str, section: str, key: str) -> Optional[str]:
    """The value of ``key`` in ``[section]``, or None."""
    lines = _split_lines(text)
    span = _section_span(lines, section)
    if span is None:
        return None
    for line in lines[span[0] + 1 : span[1]]:
        if _key_of(line) == key:
            return line.split("=", 1)[1].strip()
    return None


def ini_set(text: str, section: str, key: str, value: str) -> Tuple[str, Optional[str], bool]:
    """Set ``key=value`` in ``[section]``, touching nothing else.

    Returns ``(new_text, previous_value_or_None, created_section)``.
    """
    if "\n" in value or "\n" in key or "=" in key:
        raise ValueError(f"bad INI key/value {key!r}={value!r}")
    nl = "\r\n" if "\r\n" in text else "\n"
    lines = _split_lines(text)
    span = _section_span(lines, section)
    if span is None:
        prefix = "" if not text or text.endswith(("\n", "\r")) else nl
        sep = nl if text.strip() else ""
        return text + prefix + sep + f"[{section}]{nl}{key}={value}{nl}", None, True
    start, end = span
    for i in range(start + 1, end):
        if _key_of(lines[i]) == key:
            previous = lines[i].split("=", 1)[1].strip()
            ending = lines[i][len(lines[i].rstrip("\r\n")):] or nl
            lines[i] = f"{key}={value}{ending}"
            return "".join(lines), previous, False
    # insert after the section's last non-blank line
    at = end
    while at > start + 1 and not lines[at - 1].strip():
        at -= 1
    if at > 0 and not lines[at - 1].endswith(("\n", "\r")):
        lines[at - 1] += nl
    lines.insert(at, f"{key}={value}{nl}")
    return "".join(lines), None, False


def ini_restore(text: str, section: str, key: str, value: str, previous: Optional[str],
                created_section: bool, added_newline: bool = False) -> Tuple[str, str]:
    """Undo ``ini_set``: drop the key (or put ``previous`` back) if it still holds ``value``.

    With ``created_section`` an emptied section goes too (and, with ``added_newline``, the line
    break ``ini_set`` had to add to a file that did not end with one).

    Returns ``(new_text, note)``; ``note`` explains when the user's own later change was kept.
    """
    lines = _split_lines(text)
    span = _section_span(lines, section)
    if span is None:
        return text, ""
    start, end = span
    for i in range(start + 1, end):
        if _key_of(lines[i]) == key:
            current = lines[i].split("=", 1)[1].strip()
            if current != value:
                return text, f"kept [{section}] {key}={current} (changed after the install)"
            if previous is None:
                del lines[i]
                end -= 1
            else:
                ending = lines[i][len(lines[i].rstrip("\r\n")):]
                lines[i] = f"{key}={previous}{ending}"
            break
    else:
        return text, ""
    if created_section and not any(line.strip() for line in lines[start + 1 : end]):
        del lines[start:end]
        # drop the blank separator ini_set added before the header
        if start > 0 and start == len(lines) and not lines[start - 1].strip():
            del lines[start - 1]
            if added_newline and lines and start - 2 == len(lines) - 1:
                lines[-1] = lines[-1].rstrip("\r\n")
    return "".join(lines), ""


# ---------------------------------------------------------------------------------------------------
# wheels for the editor's Python
# ---------------------------------------------------------------------------------------------------
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


def iter_plugin_files(folder: Path, patterns: Iterable[str] = ("*.py",)) -> List[Path]:
    """Files of ``folder`` (not recursive) matching ``patterns``, sorted, caches excluded."""
    out = set()
    for pat in patterns:
        out.update(p for p in folder.glob(pat) if p.is_file())
    return sorted(out)


# ---------------------------------------------------------------------------------------------------
# the daemon program the plugin starts (plugin/launcher.py)
# ---------------------------------------------------------------------------------------------------
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
