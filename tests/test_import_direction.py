"""The one-way picture of the packages: plugin -> wire (protocol, client) <- backend -> model, nothing back.

Every import (module level or inside a function, absolute or relative) of every module under
backend/, model/, plugin/ and installers/ is read with ``ast`` and resolved to a ``clickmatte.*``
module; each package may only reach the ones listed in :data:`ALLOWED`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backend", "model", "plugin", "installers")


def module_name(path: Path) -> str:
    """``model/inference/predictor.py`` -> ``clickmatte.model.inference.predictor`` (``__init__.py`` -> the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["clickmatte", *parts])


PROTOCOL = "clickmatte.plugin.protocol"
#: the wire side, shared by the editor plugin and the daemon (standard library + pyzmq): the protocol and the
#: client, ``plugin/protocol*.py`` and ``plugin/client*.py``; they import only each other
WIRE = tuple(sorted(module_name(p) for pat in ("protocol*.py", "client*.py") for p in (ROOT / "plugin").glob(pat)))
#: package (or module) -> the clickmatte modules it may import (a name covers its sub-modules)
ALLOWED: dict[str, tuple[str, ...]] = {
    **{m: WIRE for m in WIRE},
    "clickmatte.plugin": ("clickmatte.plugin",),  # the editor side: its own modules (the wire side among them)
    "clickmatte.backend": ("clickmatte.backend", "clickmatte.model", *WIRE),  # the daemon; the CLI is a client
    "clickmatte.model": ("clickmatte.model",),
    "clickmatte.installers": ("clickmatte.installers", "clickmatte.plugin.launcher"),
}


def clickmatte_imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import of a clickmatte module in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import settings` names a module: count it as that module
            found += [(node.lineno, f"{target}.{a.name}" if not node.module else target) for a in node.names]
    return [(ln, m) for ln, m in found if m == "clickmatte" or m.startswith("clickmatte.")]


def rule_for(name: str) -> tuple[str, tuple[str, ...]]:
    """The most specific entry of :data:`ALLOWED` that covers module ``name``."""
    keys = sorted((k for k in ALLOWED if name == k or name.startswith(k + ".")), key=len)
    assert keys, f"{name} belongs to no package of ALLOWED"
    return keys[-1], ALLOWED[keys[-1]]


def covered(target: str, allowed: tuple[str, ...]) -> bool:
    return any(target == a or target.startswith(a + ".") for a in allowed)


SOURCES = sorted(p for d in PACKAGES for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_one_way_picture(path: Path) -> None:
    key, allowed = rule_for(module_name(path))
    wrong = [(ln, m) for ln, m in clickmatte_imports(path) if not covered(m, allowed)]
    assert wrong == [], f"{path.relative_to(ROOT)} ({key}) may import only {allowed}"


def test_the_checker_sees_every_kind_of_import() -> None:
    """Relative (also ``from .. import x``), absolute and function-level imports all resolve."""
    sample = ROOT / "model" / "inference" / "predictor.py"
    got = {m for _, m in clickmatte_imports(sample)}
    assert "clickmatte.model.inference.config" in got and "clickmatte.model.network.refiner" in got
    got = {m for _, m in clickmatte_imports(ROOT / "plugin" / "krita" / "docker.py")}
    assert "clickmatte.plugin.settings" in got and "clickmatte.plugin.krita.geometry" in got
    got = {m for _, m in clickmatte_imports(ROOT / "backend" / "engine.py")}
    assert "clickmatte.model.network.refiner" in got  # imported inside a method
    assert not covered("clickmatte.plugin.protocol", ALLOWED["clickmatte.model"])
    assert {PROTOCOL, "clickmatte.plugin.client", "clickmatte.plugin.protocol_codec"} <= set(WIRE)
    assert rule_for(PROTOCOL) == (PROTOCOL, WIRE) and rule_for("clickmatte.plugin.client_replies")[1] == WIRE
    assert not covered("clickmatte.plugin.controller", ALLOWED["clickmatte.backend"])
    assert not covered("clickmatte.plugin.settings", WIRE)
