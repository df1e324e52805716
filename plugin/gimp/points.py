"""Points from GIMP paths, in pure Python (testable without GIMP).

Convention (what the user does in GIMP): draw points with the Paths tool (B) on paths named
**"fg"** (foreground) and **"bg"** (background). Every *anchor* of such a path is one point; the
handles are ignored, and so is whether the path is visible. Accepted names, case-insensitive:
anything starting with ``fg`` / ``foreground`` or ``bg`` / ``background`` ("fg", "FG hair",
"bg 2", "Background"). Paths with other names are not touched.

Coordinates: GIMP paths live in image coordinates; the points sent to the daemon are relative to
the active layer (minus its offsets), and points outside the layer are dropped with a warning.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

from ..host import BG, FG, HostError, Point

_PREFIXES = ((FG, ("foreground", "fg")), (BG, ("background", "bg")))

NO_POINTS_MESSAGE = (
    "ClickMatte found no points. Add paths named \"fg\" (foreground) and \"bg\" (background) with the "
    "Paths tool (B): each anchor you click is one point. Names starting with fg/bg (or "
    "foreground/background) count too, in any case."
)


def label_for_path_name(name: str) -> Optional[str]:
    """``"fg"`` / ``"bg"`` for a path name following the convention above, else ``None``."""
    if not isinstance(name, str):
        raise ValueError(f"path name must be a string, got {type(name).__name__}")
    low = name.strip().lower()
    for label, prefixes in _PREFIXES:
        if any(low.startswith(p) for p in prefixes):
            return label
    return None


def bezier_anchors(control_points: Sequence[float]) -> List[Tuple[float, float]]:
    """Anchors of a GIMP bezier stroke from ``Gimp.Path.stroke_get_points``' flat control list.

    GIMP stores each anchor as a triplet (in-handle, anchor, out-handle) of ``(x, y)`` pairs, i.e.
    6 numbers per anchor; the anchor is the middle pair. A list whose length is not a multiple of
    6 raises ``ValueError``.
    """
    pts = [float(v) for v in control_points]
    if len(pts) % 6:
        raise ValueError(f"bezier control points come in groups of 6 numbers, got {len(pts)}")
    return [(pts[i + 2], pts[i + 3]) for i in range(0, len(pts), 6)]


def points_from_paths(
    paths: Iterable[Tuple[str, Iterable[Tuple[float, float]]]],
    offset: Tuple[int, int] = (0, 0),
    size: Optional[Tuple[int, int]] = None,
) -> Tuple[List[Point], List[str]]:
    """Turn ``[(path_name, [(x, y) anchor in image pixels, ...]), ...]`` into layer points.

    ``offset`` is the layer's ``(x, y)`` offset in the image and ``size`` its ``(width, height)``;
    a point outside ``[0, width) x [0, height)`` after the shift is dropped and reported. Returns
    ``(points, warnings)``; raises ``HostError(NO_POINTS_MESSAGE)`` when no usable point is left.
    """
    ox, oy = offset
    points: List[Point] = []
    warnings: List[str] = []
    dropped = 0
    for name, anchors in paths:
        label = label_for_path_name(name)
        if label is None:
            continue
        for x, y in anchors:
            lx, ly = float(x) - ox, float(y) - oy
            if size is not None and not (0 <= lx < size[0] and 0 <= ly < size[1]):
                dropped += 1
                continue
            points.append(Point.make(lx, ly, label))
    if dropped:
        warnings.append(f"{dropped} point(s) outside the active layer were ignored")
    if not points:
        if dropped:
            raise HostError("All ClickMatte points lie outside the active layer. " + NO_POINTS_MESSAGE)
        raise HostError(NO_POINTS_MESSAGE)
    if not any(p.label == FG for p in points):
        warnings.append("no foreground (fg) point: the matte will likely be empty")
    return points, warnings
