"""Pixel-plane helpers in pure Python (no numpy: they run inside the editor's own Python).

Everything works on ``bytes`` with slice assignment and ``bytes.translate``, which run at C speed;
no per-pixel Python loops except in ``resize_nearest`` (one Python step per output *row*, plus a
C-level gather per row).

A *plane* is ``width * height`` unsigned bytes, rows top to bottom. An *interleaved* buffer holds
``channels`` samples per pixel. u16 samples are little-endian (what Krita and GEGL hand out on x86
and ARM).
"""
from __future__ import annotations

from typing import Sequence, Tuple

Box = Tuple[int, int, int, int]


def _check_len(data: bytes, need: int, what: str) -> None:
    if len(data) != need:
        raise ValueError(f"{what}: expected {need} bytes, got {len(data)}")


def u16_to_u8(data: bytes) -> bytes:
    """Little-endian u16 samples -> u8 (the high byte; 65535 -> 255, 257*v -> v)."""
    if len(data) % 2:
        raise ValueError(f"u16 data must have an even length, got {len(data)}")
    return bytes(data[1::2])


def u8_to_u16(data: bytes) -> bytes:
    """u8 samples -> little-endian u16 with ``v * 257`` (0 -> 0, 255 -> 65535)."""
    out = bytearray(2 * len(data))
    out[0::2] = data
    out[1::2] = data
    return bytes(out)


def split_channels(data: bytes, channels: int) -> list[bytes]:
    """Interleaved u8 buffer -> one plane per channel."""
    if channels <= 0 or len(data) % channels:
        raise ValueError(f"buffer of {len(data)} bytes is not a whole number of {channels}-channel pixels")
    return [bytes(data[i::channels]) for i in range(channels)]


def interleave(planes: Sequence[bytes]) -> bytes:
    """Planes of equal length -> one interleaved u8 buffer."""
    if not planes:
        raise ValueError("need at least one plane")
    n = len(planes[0])
    if any(len(p) != n for p in planes):
        raise ValueError("planes differ in length")
    c = len(planes)
    out = bytearray(n * c)
    for i, p in enumerate(planes):
        out[i::c] = p
    return bytes(out)


def reorder(data: bytes, order_in: str, order_out: str) -> bytes:
    """Reorder interleaved u8 channels, e.g. ``reorder(bgra, "BGRA", "RGB")`` (channels may be dropped)."""
    if not set(order_out) <= set(order_in):
        raise ValueError(f"cannot make {order_out!r} from {order_in!r}")
    if order_in == order_out:
        return bytes(data)
    planes = split_channels(data, len(order_in))
    return interleave([planes[order_in.index(ch)] for ch in order_out])


def resize_nearest(plane: bytes, width: int, height: int, new_width: int, new_height: int) -> bytes:
    """Nearest-neighbour resize of a u8 plane (pixel centres aligned, like OpenCV's INTER_NEAREST_EXACT)."""
    _check_len(plane, width * height, "plane")
    if new_width <= 0 or new_height <= 0:
        raise ValueError(f"new size must be positive, got {new_width}x{new_height}")
    if (width, height) == (new_width, new_height):
        return bytes(plane)
    xmap = [min(width - 1, int((x + 0.5) * width / new_width)) for x in range(new_width)]
    rows = []
    cache: dict = {}
    for y in range(new_height):
        sy = min(height - 1, int((y + 0.5) * height / new_height))
        row = cache.get(sy)
        if row is None:
            src = plane[sy * width : (sy + 1) * width]
            row = bytes(map(src.__getitem__, xmap))
            cache = {sy: row}
        rows.append(row)
    return b"".join(rows)


def crop(plane: bytes, width: int, box: Box) -> bytes:
    """The ``(x, y, w, h)`` rectangle of a plane ``width`` pixels wide, as its own plane."""
    x, y, w, h = box
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width or (y + h) * width > len(plane):
        raise ValueError(f"box {box} is outside the {width}-wide plane")
    return b"".join(plane[(y + r) * width + x : (y + r) * width + x + w] for r in range(h))


def paste(plane: bytes, width: int, box: Box, patch: bytes) -> bytes:
    """A copy of ``plane`` with ``patch`` (``w * h`` bytes) written at ``box = (x, y, w, h)``."""
    x, y, w, h = box
    _check_len(patch, w * h, "patch")
    if x < 0 or y < 0 or x + w > width or (y + h) * width > len(plane):
        raise ValueError(f"box {box} is outside the {width}-wide plane")
    out = bytearray(plane)
    for r in range(h):
        out[(y + r) * width + x : (y + r) * width + x + w] = patch[r * w : (r + 1) * w]
    return bytes(out)


# Inferno-like colour map anchors (value, (r, g, b)): dark = sure, bright yellow = unsure.
_ANCHORS = [
    (0, (0, 0, 4)),
    (64, (87, 16, 110)),
    (128, (188, 55, 84)),
    (192, (249, 142, 9)),
    (255, (252, 255, 164)),
]


def _lut(channel: int) -> bytes:
    out = bytearray(256)
    for (v0, c0), (v1, c1) in zip(_ANCHORS, _ANCHORS[1:]):
        for v in range(v0, v1 + 1):
            t = (v - v0) / (v1 - v0)
            out[v] = int(round(c0[channel] + t * (c1[channel] - c0[channel])))
    return bytes(out)


_RED, _GREEN, _BLUE = _lut(0), _lut(1), _lut(2)
# Alpha grows with uncertainty (sure areas stay see-through); sqrt makes mild doubt visible.
_ALPHA = bytes(min(255, int(round(255 * (v / 255) ** 0.5))) for v in range(256))


def guide_rgba(uncertainty: bytes, order: str = "RGBA") -> bytes:
    """u8 uncertainty plane -> colour-mapped, semi-transparent interleaved u8 pixels in ``order``.

    Colour follows an inferno-like map; alpha is ``255 * sqrt(u / 255)`` (0 where sure).
    """
    if sorted(order) != sorted("RGBA"):
        raise ValueError(f"order must be a permutation of RGBA, got {order!r}")
    planes = {
        "R": uncertainty.translate(_RED),
        "G": uncertainty.translate(_GREEN),
        "B": uncertainty.translate(_BLUE),
        "A": uncertainty.translate(_ALPHA),
    }
    return interleave([planes[c] for c in order])
