"""Click encoding: user points -> foreground / background disk maps.

A click is ``(x, y, label)`` in pixel coordinates of the image it refers to (x right,
y down, 0-based, pixel centres at integer coordinates); ``label`` is ``"fg"`` or ``"bg"``
(``1``/``True`` and ``0``/``False`` are accepted too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, Union

import numpy as np

DEFAULT_RADIUS = 15


@dataclass(frozen=True)
class Click:
    """One user point in image pixel coordinates."""

    x: float
    y: float
    is_fg: bool

    @property
    def label(self) -> str:
        return "fg" if self.is_fg else "bg"


ClickLike = Union[Click, Mapping[str, object], Sequence[object]]


def _parse_label(label: object) -> bool:
    if isinstance(label, str):
        low = label.lower()
        if low in ("fg", "foreground", "1", "true"):
            return True
        if low in ("bg", "background", "0", "false"):
            return False
        raise ValueError(f"click label must be 'fg' or 'bg', got {label!r}")
    if isinstance(label, (bool, int, np.integer)) and int(label) in (0, 1):
        return bool(label)
    raise ValueError(f"click label must be 'fg' or 'bg', got {label!r}")


def as_click(c: ClickLike) -> Click:
    """Normalise a click given as a ``Click``, a dict ``{"x","y","label"}`` or a tuple ``(x, y, label)``."""
    if isinstance(c, Click):
        return c
    if isinstance(c, Mapping):
        try:
            x, y, label = c["x"], c["y"], c["label"]
        except KeyError as exc:
            raise ValueError(f"click dict needs keys x, y, label; got {sorted(c)}") from exc
    elif isinstance(c, (tuple, list)) and len(c) == 3:
        x, y, label = c
    else:
        raise ValueError(f"cannot interpret {c!r} as a click (x, y, label)")
    try:
        xf, yf = float(x), float(y)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"click coordinates must be numbers, got x={x!r}, y={y!r}") from exc
    if not (np.isfinite(xf) and np.isfinite(yf)):
        raise ValueError(f"click coordinates must be finite, got x={x!r}, y={y!r}")
    return Click(xf, yf, _parse_label(label))


def normalize_clicks(clicks: Iterable[ClickLike], width: int, height: int) -> list[Click]:
    """Parse clicks and check that each lies inside a ``width`` x ``height`` image.

    Raises ``ValueError`` for a malformed click or one outside ``[0, width) x [0, height)``.
    """
    out = []
    for c in clicks:
        ck = as_click(c)
        if not (0 <= ck.x < width and 0 <= ck.y < height):
            raise ValueError(
                f"click ({ck.x:g}, {ck.y:g}) lies outside the {width}x{height} image"
            )
        out.append(ck)
    return out


def scale_clicks(clicks: Sequence[Click], sx: float, sy: float) -> list[Click]:
    """Map clicks from one resolution to another (pixel centres stay pixel centres)."""
    return [Click((c.x + 0.5) * sx - 0.5, (c.y + 0.5) * sy - 0.5, c.is_fg) for c in clicks]


def encode_clicks(
    clicks: Sequence[ClickLike], height: int, width: int, radius: float = DEFAULT_RADIUS
) -> np.ndarray:
    """Rasterise clicks into disk maps.

    Returns a float32 array of shape ``(2, height, width)``: channel 0 is 1 inside a disk of
    ``radius`` pixels around each foreground click, channel 1 the same for background clicks,
    0 elsewhere. Clicks are not range-checked here (a disk partly outside is clipped).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"map size must be positive, got {height}x{width}")
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    maps = np.zeros((2, height, width), dtype=np.float32)
    r = float(radius)
    r2 = r * r
    for c in (as_click(c) for c in clicks):
        x0, x1 = max(0, int(np.floor(c.x - r))), min(width, int(np.ceil(c.x + r)) + 1)
        y0, y1 = max(0, int(np.floor(c.y - r))), min(height, int(np.ceil(c.y + r)) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = (xx - c.x) ** 2 + (yy - c.y) ** 2 <= r2
        ch = 0 if c.is_fg else 1
        maps[ch, y0:y1, x0:x1][inside] = 1.0
    return maps
