"""Points kept in the document as vector shapes on the layer "ClickMatte points" (no Qt here).

Foreground points are drawn as a green circle with a plus, background points as a red square with
a minus, so they differ in shape as well as colour. Each shape is named ``fg-N`` / ``bg-N``.
Shapes the user draws on that layer count too: a name starting with ``fg``/``bg`` decides the
label; otherwise rectangles (like the square marker) and red shapes are background, and any other
shape (ellipses, paths) is foreground. A point sits at the centre of its shape's bounding box.

Units: vector shapes live in *points* (1/72 inch); image pixels = points * resolution / 72.
Pixel centres: clickmatte puts pixel (i, j) at (i, j); Krita's pixel (i, j) spans [i, i+1), so
its centre is at (i + 0.5, j + 0.5) in Krita's image space.
"""
from __future__ import annotations

import re
from typing import Callable, List, Optional, Sequence, Tuple

from ..host import BG, FG, Point

LAYER_NAME = "ClickMatte points"
FG_COLOR = "#18c818"
BG_COLOR = "#ff3030"
RECTANGLE_TYPES = ("RectangleShape",)


#: shapes named so are the undo marks of mattes (``matte_mark_svg``), not points
MATTE_MARK_PREFIX = "clickmatte-matte-"


def is_matte_mark(name: str) -> bool:
    """Whether a shape name is a matte's undo mark."""
    return (name or "").startswith(MATTE_MARK_PREFIX)


def matte_mark_svg(number: int, width: int, height: int, xres: float, yres: float) -> str:
    """An SVG document with one invisible 1 pt square (no fill, no stroke) at the image's top-left corner,
    named ``clickmatte-matte-<number>``: adding it is one step of Krita's undo history that stands for a
    Matte or a Refine (the plugin watches it come and go)."""
    if xres <= 0 or yres <= 0:
        raise ValueError(f"resolution must be positive, got {xres}x{yres}")
    wpt, hpt = width * 72.0 / xres, height * 72.0 / yres
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(wpt)}pt" height="{_fmt(hpt)}pt" '
            f'viewBox="0 0 {_fmt(wpt)} {_fmt(hpt)}"><path id="{MATTE_MARK_PREFIX}{int(number)}" '
            f'd="M 0 0 L 1 0 L 1 1 L 0 1 Z" fill="none" stroke="none"/></svg>')


def marker_radius(width: int, height: int) -> float:
    """Marker radius in image pixels: visible on big images, not huge on small ones."""
    return max(3.0, round(max(width, height) / 90.0, 1))


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def point_svg(p: Point, index: int, radius_px: float, xres: float, yres: float) -> str:
    """One marker as an SVG ``<path>`` in points (the caller's SVG uses a 1 pt user unit)."""
    sx, sy = 72.0 / xres, 72.0 / yres
    cx, cy = (p.x + 0.5) * sx, (p.y + 0.5) * sy
    r = radius_px * sx
    s = r * 0.55
    sw = max(0.8, r / 3.0)
    if p.label == FG:
        d = (f"M {_fmt(cx - r)} {_fmt(cy)} A {_fmt(r)} {_fmt(r)} 0 1 0 {_fmt(cx + r)} {_fmt(cy)} "
             f"A {_fmt(r)} {_fmt(r)} 0 1 0 {_fmt(cx - r)} {_fmt(cy)} Z "
             f"M {_fmt(cx - s)} {_fmt(cy)} L {_fmt(cx + s)} {_fmt(cy)} "
             f"M {_fmt(cx)} {_fmt(cy - s)} L {_fmt(cx)} {_fmt(cy + s)}")
        color = FG_COLOR
    else:
        d = (f"M {_fmt(cx - r)} {_fmt(cy - r)} L {_fmt(cx + r)} {_fmt(cy - r)} L {_fmt(cx + r)} {_fmt(cy + r)} "
             f"L {_fmt(cx - r)} {_fmt(cy + r)} Z M {_fmt(cx - s)} {_fmt(cy)} L {_fmt(cx + s)} {_fmt(cy)}")
        color = BG_COLOR
    return (f'<path id="{p.label}-{index}" d="{d}" fill="none" stroke="{color}" '
            f'stroke-width="{_fmt(sw)}" stroke-linecap="round"/>')


def points_svg(points: Sequence[Point], width: int, height: int, xres: float, yres: float, start: int = 1) -> str:
    """An SVG document holding one marker per point, sized like the image (for ``addShapesFromSvg``);
    markers are numbered from ``start`` (``fg-3``, ``bg-4``, ...)."""
    if xres <= 0 or yres <= 0:
        raise ValueError(f"resolution must be positive, got {xres}x{yres}")
    wpt, hpt = width * 72.0 / xres, height * 72.0 / yres
    r = marker_radius(width, height)
    body = "".join(point_svg(p, i + start, r, xres, yres) for i, p in enumerate(points))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(wpt)}pt" height="{_fmt(hpt)}pt" '
            f'viewBox="0 0 {_fmt(wpt)} {_fmt(hpt)}">{body}</svg>')


_COLOR = re.compile(r'\b(fill|stroke)="#([0-9a-fA-F]{6})"')


def is_reddish(svg: str) -> bool:
    """Whether the shape's fill (or, without one, its stroke) is a red: R well above G and B."""
    colors = dict((k, v) for k, v in _COLOR.findall(svg or ""))
    hexcol = colors.get("fill") or colors.get("stroke")
    if not hexcol:
        return False
    r, g, b = (int(hexcol[i : i + 2], 16) for i in (0, 2, 4))
    return r >= 128 and r >= 1.6 * max(g, b, 1)


def named_label(name: str) -> Optional[str]:
    """``"fg"``/``"bg"`` from a shape name starting with fg/bg/foreground/background, else None."""
    low = (name or "").strip().lower()
    if low.startswith("bg") or low.startswith("background"):
        return BG
    if low.startswith("fg") or low.startswith("foreground"):
        return FG
    return None


def shape_label(name: str, shape_type: str, svg: str = "") -> str:
    """``"fg"`` / ``"bg"`` for a shape on the points layer: its name if it says; else rectangles
    (Krita's rectangle tool, or an SVG ``<rect>``) and red shapes are background; else foreground."""
    named = named_label(name)
    if named is not None:
        return named
    if shape_type in RECTANGLE_TYPES or (svg or "").lstrip().startswith("<rect") or is_reddish(svg):
        return BG
    return FG


def shape_point(bbox: Tuple[float, float, float, float], name: str, shape_type: str,
                xres: float, yres: float, svg: str = "") -> Optional[Point]:
    """The point a shape stands for: the centre of its bounding box ``(x, y, w, h)`` in points."""
    x, y, w, h = bbox
    if w < 0 or h < 0:
        return None
    px = (x + w / 2.0) * xres / 72.0 - 0.5
    py = (y + h / 2.0) * yres / 72.0 - 0.5
    return Point.make(px, py, shape_label(name, shape_type, svg))


def edit_plan(old: Sequence[Point], new: Sequence[Point], same: Callable[[Sequence[Point], Sequence[Point]], bool]
              ) -> Tuple[str, int]:
    """How to turn the shapes showing ``old`` into ``new`` with the fewest shape edits (each is one step
    of Krita's undo history): ``("add", k)`` - add ``new[k:]`` (``old`` is ``new[:k]``); ``("remove", i)``
    - remove the shape of ``old[i]``; ``("same", 0)``; else ``("replace", 0)`` - remove all, add all."""
    if same(old, new):
        return ("same", 0)
    if len(new) > len(old) and same(old, new[:len(old)]):
        return ("add", len(old))
    if len(new) == len(old) - 1:
        for i in range(len(old)):
            if same(list(old[:i]) + list(old[i + 1:]), new):
                return ("remove", i)
    return ("replace", 0)


def inside(points: Sequence[Point], width: int, height: int) -> List[Point]:
    """Points that fall on the image (shapes dragged off the canvas are ignored)."""
    return [p for p in points if -0.5 <= p.x < width - 0.5 and -0.5 <= p.y < height - 0.5]
