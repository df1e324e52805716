""":class:`Manifest` (standard library only): records every file, link, folder and config-file change an
install makes, saved as JSON next to the installed plugin, so that ``--uninstall`` removes exactly that
and nothing else (files the user has modified since are kept, with a warning).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from .ini import ini_restore, ini_set
from .reporting import InstallError


MANIFEST_VERSION = 1


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
