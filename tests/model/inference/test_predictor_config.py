"""PredictorConfig: one place per default, no torch to read it, the flags that map onto it."""
from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from clickmatte.model.inference.config import (FLAG_HELP, MAX_SIDE, MIN_SIDE, PredictorConfig, add_predictor_arguments,
                                     predictor_config_from_args)

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("backend", "model", "plugin", "installers", "benchmarks", "scripts")
CONFIG = ROOT / "model" / "inference" / "config.py"
#: defaults the wire protocol owns (plugin/protocol_constants.py): setting name -> the protocol's constant
PROTOCOL_DEFAULTS = {"top_n": "DEFAULT_TOP_N", "endpoint": "DEFAULT_ENDPOINT"}


def _sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for d in PACKAGES for p in sorted((ROOT / d).rglob("*.py"))}


def _code_only(text: str) -> str:
    """``text`` without comments and docstrings (string literals in code, e.g. help texts, stay)."""
    tree = ast.parse(text)
    lines = text.splitlines()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            for i in range(body[0].lineno - 1, body[0].end_lineno):
                lines[i] = ""
    return "\n".join(re.sub(r"#.*", "", ln) for ln in lines)


def _imported_names() -> dict[str, tuple[Path, str]]:
    """Name bound by an import in model/inference/config.py -> (source file, name there)."""
    tree = ast.parse(CONFIG.read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.level or node.module.startswith("clickmatte.")):
            if node.level:
                path = CONFIG.parent / (node.module.replace(".", "/") + ".py")
            else:
                _pkg, sub, *rest = node.module.split(".")
                path = ROOT / sub / ("/".join(rest) + ".py")
            for a in node.names:
                out[a.asname or a.name] = (path, a.name)
    return out


def _default_sources() -> dict[str, ast.expr]:
    """Field name -> the expression of its default in model/inference/config.py."""
    tree = ast.parse(CONFIG.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PredictorConfig")
    return {n.target.id: n.value for n in cls.body if isinstance(n, ast.AnnAssign) and n.value is not None}


def test_config_and_protocol_import_no_torch():
    code = ("import sys, clickmatte.backend.config, clickmatte.model.inference.config, clickmatte.plugin.protocol; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_default_is_written_once():
    """A setting's default is a literal in PredictorConfig, or a constant defined in exactly one module;
    nowhere else does a parameter, field or flag of that name get a literal default."""
    sources = {p: _code_only(t) for p, t in _sources().items()}
    defaults = _default_sources()
    assert set(defaults) == {f.name for f in fields(PredictorConfig)}
    for name, expr in defaults.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(expr, ast.Name):  # a constant imported from the module that owns it, defined there once
            path, const = _imported_names()[expr.id]
            found = re.findall(rf"^{const}\s*=\s*(.+)$", sources[path], re.M)
            assert len(found) == 1, (name, const, path)
            value = ast.literal_eval(found[0].strip())
        else:
            value = ast.literal_eval(expr)
        assert value == getattr(PredictorConfig(), name)
        lit = re.escape(repr(value)) if not isinstance(value, str) else f"[\"']{re.escape(value)}[\"']"
        stray = []
        for p, t in sources.items():
            for m in re.finditer(rf"\b{name}\b\s*(?::[^=\n(]*)?=\s*{lit}(?![\w.])", t):
                stray.append((p.relative_to(ROOT), m.group(0)))
            for m in re.finditer(rf'"{flag}"[^\n]*default\s*=\s*{lit}(?![\w.])', t):
                stray.append((p.relative_to(ROOT), m.group(0)))
        here = [s for s in stray if s[0] == CONFIG.relative_to(ROOT)]
        assert len(stray) == len(here) == (0 if isinstance(expr, ast.Name) else 1), (name, stray)
    for const in ("MIN_SIDE", "MAX_SIDE", "DEFAULT_TOP_N"):
        defs = [p.relative_to(ROOT) for p, t in sources.items() if re.search(rf"^{const}\s*=", t, re.M)]
        assert len(defs) == 1, (const, defs)


def test_protocol_defaults_are_written_once():
    """The patches of an automatic refine and the endpoint are the protocol's (plugin/protocol_constants.py): nowhere
    else does a ``top_n`` parameter, field or flag get the literal default, nor does code spell the endpoint."""
    from clickmatte.plugin import protocol
    from clickmatte.plugin.settings import Settings

    sources = {p.relative_to(ROOT): _code_only(t) for p, t in _sources().items()}
    for const in PROTOCOL_DEFAULTS.values():
        defs = [p for p, t in sources.items() if re.search(rf"^{const}\s*=", t, re.M)]
        assert defs == [Path("plugin/protocol_constants.py")], (const, defs)
    del sources[Path("plugin/protocol_constants.py")]
    n = protocol.DEFAULT_TOP_N
    stray = [(p, m.group(0)) for p, t in sources.items()
             for pat in (rf"\btop_n\b\s*(?::[^=\n(]*)?=\s*{n}(?![\w.])", rf'"--[\w-]*top-n"[^\n]*default\s*=\s*{n}\b')
             for m in re.finditer(pat, t)]
    stray += [(p, protocol.DEFAULT_ENDPOINT) for p, t in sources.items() if protocol.DEFAULT_ENDPOINT in t]
    assert stray == []
    assert Settings().top_n == protocol.DEFAULT_TOP_N and Settings().endpoint == protocol.DEFAULT_ENDPOINT


def test_daemon_flags_take_their_defaults_from_the_dataclasses():
    """backend/config.py writes no default of its own into argparse: each comes from DaemonConfig."""
    text = _code_only((ROOT / "backend" / "config.py").read_text(encoding="utf-8"))
    parser = text[text.index("def build_parser"):text.index("def parse_config")]
    assert re.findall(r"default\s*=\s*(?!d\.)[^,)]+", parser) == []


def test_flags_map_onto_the_config():
    ap = argparse.ArgumentParser()
    add_predictor_arguments(ap)
    assert predictor_config_from_args(ap.parse_args([])) == PredictorConfig()
    got = predictor_config_from_args(ap.parse_args(["--working-size", "300", "--no-flip-tta", "--no-prior-pass",
                                                    "--no-guided", "--context-size", "0", "--refine-max-soft", "1"]))
    assert got == PredictorConfig(working_size=300, flip_tta=False, prior_pass=False, guided=False, context_size=0,
                                  refine_max_soft=1.0)
    with pytest.raises(ValueError, match="--context-size"):
        predictor_config_from_args(ap.parse_args(["--context-size", "16"]))
    assert set(FLAG_HELP) <= {f.name for f in fields(PredictorConfig)}


def test_config_checks_values_and_names():
    assert MIN_SIDE < PredictorConfig().working_size < MAX_SIDE
    for bad in ({"working_size": MIN_SIDE - 1}, {"context_size": 16}, {"refine_max_soft": 1.5},
                {"preview_working_size": 8}, {"refine_batch": 0}, {"radius": 0}, {"guide_radius": 0},
                {"guide_eps": 0.0}, {"flip_tta": 1}, {"working_size": 512.0}, {"context_size": None}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PredictorConfig(**bad)
    with pytest.raises(ValueError, match="unknown"):
        PredictorConfig().replace(native_max_soft=0.1)
    assert PredictorConfig().replace(working_size=300).working_size == 300
    with pytest.raises(Exception):
        PredictorConfig().working_size = 300  # frozen


def help_defaults(argv: list[str]) -> dict[str, str]:
    """Flag -> the text in ``(default: ...)`` of its help, from ``python -m <module> --help``."""
    out = subprocess.run([sys.executable, "-m", *argv, "--help"], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "200", "PATH": ""}).stdout
    found = {}
    for name in FLAG_HELP:
        value = getattr(PredictorConfig(), name)
        flag = ("--no-" if value is True else "--") + name.replace("_", "-")  # a switch names its non-default
        m = re.search(rf"^\s*{flag}\b.*?\(default: ([^)]*)\)", re.sub(r"\n\s{10,}", " ", out), re.M)
        assert m, (argv, flag)
        found[name] = m.group(1)
    return found


def test_daemon_and_eval_help_show_the_config_defaults():
    want = {n: ("on" if v else "off") if isinstance(v, bool) else str(v)
            for n, v in PredictorConfig().as_dict().items() if n in FLAG_HELP}
    assert help_defaults(["clickmatte.backend.daemon"]) == want
    assert help_defaults(["clickmatte.model.evaluate"]) == want
