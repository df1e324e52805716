"""Canvas-widget pixels -> image pixels, as plain 3x3 matrices (no Qt: testable anywhere).

Krita's ``View.flakeToCanvasTransform()`` maps *flake* coordinates (document points, 1/72 inch)
to canvas-widget pixels and ``View.flakeToImageTransform()`` maps flake coordinates to image
pixels. Both include zoom, pan, rotation and mirroring, so

    image = flakeToImage( inverse(flakeToCanvas)(widget) )

A matrix here is a 9-tuple in ``QTransform`` order ``(m11, m12, m13, m21, m22, m23, m31, m32, m33)``
with Qt's row-vector convention: ``x' = m11*x + m21*y + m31``, ``y' = m12*x + m22*y + m32``,
``w' = m13*x + m23*y + m33`` (then divided by ``w'``).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

Matrix = Tuple[float, float, float, float, float, float, float, float, float]

IDENTITY: Matrix = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def from_qtransform(t: object) -> Matrix:
    """A ``QTransform`` -> 9-tuple (duck-typed: anything with m11()..m33())."""
    return tuple(float(getattr(t, f"m{r}{c}")()) for r in (1, 2, 3) for c in (1, 2, 3))  # type: ignore[return-value]


def affine(a: float = 1, b: float = 0, c: float = 0, d: float = 1, dx: float = 0, dy: float = 0) -> Matrix:
    """Like ``QTransform(a, b, c, d, dx, dy)``: x' = a*x + c*y + dx, y' = b*x + d*y + dy."""
    return (float(a), float(b), 0.0, float(c), float(d), 0.0, float(dx), float(dy), 1.0)


def multiply(m: Sequence[float], n: Sequence[float]) -> Matrix:
    """``m * n`` in Qt's convention: first apply ``m``, then ``n``."""
    out = []
    for r in range(3):
        for c in range(3):
            out.append(sum(m[r * 3 + k] * n[k * 3 + c] for k in range(3)))
    return tuple(out)  # type: ignore[return-value]


def invert(m: Sequence[float]) -> Matrix:
    """Inverse matrix; ``ValueError`` if singular (e.g. a zero zoom)."""
    a, b, c, d, e, f, g, h, i = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    if abs(det) < 1e-12:
        raise ValueError("transform is not invertible")
    inv = (
        (e * i - f * h), -(b * i - c * h), (b * f - c * e),
        -(d * i - f * g), (a * i - c * g), -(a * f - c * d),
        (d * h - e * g), -(a * h - b * g), (a * e - b * d),
    )
    return tuple(v / det for v in inv)  # type: ignore[return-value]


def map_point(m: Sequence[float], x: float, y: float) -> Tuple[float, float]:
    """Apply ``m`` to the point (x, y)."""
    px = m[0] * x + m[3] * y + m[6]
    py = m[1] * x + m[4] * y + m[7]
    pw = m[2] * x + m[5] * y + m[8]
    if abs(pw) < 1e-12:
        raise ValueError("point maps to infinity")
    return px / pw, py / pw


def widget_to_image(flake_to_canvas: Sequence[float], flake_to_image: Sequence[float],
                    x: float, y: float) -> Tuple[float, float]:
    """Canvas-widget pixel (x, y) -> image pixel coordinates (x right, y down, pixel centres at +0.5
    in Krita's image space; callers subtract 0.5 to get the clickmatte convention)."""
    fx, fy = map_point(invert(flake_to_canvas), x, y)
    return map_point(flake_to_image, fx, fy)


def widget_radius_to_image(flake_to_canvas: Sequence[float], flake_to_image: Sequence[float],
                           x: float, y: float, radius: float) -> float:
    """``radius`` widget pixels around (x, y), measured in image pixels (zoom-aware)."""
    x0, y0 = widget_to_image(flake_to_canvas, flake_to_image, x, y)
    x1, y1 = widget_to_image(flake_to_canvas, flake_to_image, x + radius, y)
    return math.hypot(x1 - x0, y1 - y0)
