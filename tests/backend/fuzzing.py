"""Hypothesis strategies shared by the daemon-side and client-side fuzz tests: arbitrary JSON values put
into any field (top-level or nested) of a valid message template.

``CLICKMATTE_FUZZ_EXAMPLES`` sets how many messages a fuzz test sends (default 200; the issue's
acceptance run uses 10000).
"""
from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, List, Sequence, Tuple, Union

from hypothesis import strategies as st

Path = Tuple[Union[str, int], ...]

DEFAULT_EXAMPLES = 200


def fuzz_examples(default: int = DEFAULT_EXAMPLES) -> int:
    """The run count from ``CLICKMATTE_FUZZ_EXAMPLES`` (a positive integer), else ``default``."""
    raw = os.environ.get("CLICKMATTE_FUZZ_EXAMPLES", "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"CLICKMATTE_FUZZ_EXAMPLES must be a positive integer, got {raw!r}")
    return int(raw)


# values that sit on the edges of the checks: huge / negative / boundary integers, type look-alikes
_EDGE = [10 ** 400, -10 ** 400, 2 ** 63, 2 ** 64, -(2 ** 63), -1, 0, 1, 31, 32, 64, 65535, 65536, 10 ** 9 + 1,
         1.5, -0.0, 1e308, -1e308, 1e-320, "", "0", "1", "uint8", "uint16", "float32", "RGB", "BGRA", "A", "fg",
         "bg", "auto", "image", "mask", "alpha", "uncertainty", "1.2", "2.0", "١", "sha256:", "x" * 200, True,
         False, None, [], {}, [[]], [None], {"": None}]

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2 ** 70), 2 ** 70), st.sampled_from(_EDGE),
    st.floats(allow_nan=False, allow_infinity=False), st.floats(), st.text(max_size=24),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=10,
)

DELETE = object()


def field_paths(template: Dict[str, Any]) -> List[Path]:
    """Every field of ``template`` as a path: top-level keys and everything nested in lists / dicts."""
    out: List[Path] = []

    def walk(v: Any, path: Path) -> None:
        if path:
            out.append(path)
        if isinstance(v, dict):
            for k, sub in v.items():
                walk(sub, path + (k,))
        elif isinstance(v, list):
            for i, sub in enumerate(v):
                walk(sub, path + (i,))

    walk(template, ())
    return out


def mutate(template: Dict[str, Any], changes: Sequence[Tuple[Path, Any]]) -> Dict[str, Any]:
    """A deep copy of ``template`` with each path set to its value (or removed for ``DELETE``)."""
    h = copy.deepcopy(template)
    for path, value in changes:
        node: Any = h
        try:
            for p in path[:-1]:
                node = node[p]
            if value is DELETE:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced a parent: nothing left to change here
    return h


def changes_for(template: Dict[str, Any]) -> st.SearchStrategy:
    """1..3 (path, value) changes: an arbitrary JSON value (or removal) for fields of ``template``."""
    paths = field_paths(template)
    one = st.tuples(st.sampled_from(paths), st.one_of(json_value, st.just(DELETE)))
    return st.lists(one, min_size=1, max_size=3)


def header_bytes(h: Dict[str, Any]) -> bytes:
    """JSON text as a sender that does not validate would write it (NaN and 400-digit integers included)."""
    return json.dumps(h).encode("utf-8")
