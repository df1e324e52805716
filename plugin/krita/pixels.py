"""Pixel conversions of the Krita adapter: linear 16-bit -> 8-bit sRGB (Krita's own converter, else a table
lookup), 8-bit RGB -> opaque BGRA for a new layer, and smooth scaling of a u8 plane through QImage."""
from __future__ import annotations

from array import array
from typing import Optional

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage

from .. import raster

SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"  # ships with Krita

_LINEAR_TO_SRGB_U8: Optional[bytes] = None


def _linear_lut() -> bytes:
    """65536-entry linear-u16 -> sRGB-u8 table (built once, ~40 ms)."""
    global _LINEAR_TO_SRGB_U8
    if _LINEAR_TO_SRGB_U8 is None:
        out = bytearray(65536)
        for v in range(65536):
            c = v / 65535.0
            s = 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
            out[v] = max(0, min(255, int(s * 255.0 + 0.5)))
        _LINEAR_TO_SRGB_U8 = bytes(out)
    return _LINEAR_TO_SRGB_U8


def linear_u16_bgra_to_srgb_u8(data: bytes) -> bytes:
    """Linear-light u16 BGRA -> sRGB u8 BGRA (alpha: high byte)."""
    samples = array("H")
    samples.frombytes(data)
    lut = _linear_lut()
    out = bytearray(bytes(map(lut.__getitem__, samples)))
    out[3::4] = raster.u16_to_u8(data)[3::4]
    return bytes(out)


def as_srgb8(layer: object, data: bytes, w: int, h: int) -> bytes:
    """A linear 16-bit layer's pixels ``data`` (``w`` x ``h``) as 8-bit sRGB BGRA: Krita converts a detached
    copy of ``layer`` (C++, ~20 ms per megapixel); if that fails, a pure-Python table lookup (~150 ms per
    megapixel)."""
    try:
        dup = layer.duplicate()  # type: ignore[attr-defined]
        if dup is not None and dup.setColorSpace("RGBA", "U8", SRGB_PROFILE):
            out = bytes(dup.pixelData(0, 0, w, h))
            if len(out) == w * h * 4:
                return out
    except Exception:  # noqa: BLE001 - fall back below
        pass
    return linear_u16_bgra_to_srgb_u8(data)


def rgb_to_opaque_bgra(rgb: bytes, width: int, height: int) -> bytes:
    """8-bit RGB (``width * height * 3`` bytes) -> 8-bit BGRA with alpha 255."""
    bgra = bytearray(width * height * 4)
    bgra[0::4], bgra[1::4], bgra[2::4] = rgb[2::3], rgb[1::3], rgb[0::3]
    bgra[3::4] = b"\xff" * (width * height)
    return bytes(bgra)


def resize_plane(plane: bytes, width: int, height: int, new_width: int, new_height: int) -> bytes:
    """A u8 plane smoothly scaled through QImage (C++), for live previews."""
    if (width, height) == (new_width, new_height):
        return bytes(plane)
    img = QImage(plane, width, height, width, QImage.Format_Grayscale8)
    big = img.scaled(new_width, new_height, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    # Qt 5.15 returns a smoothly scaled Grayscale8 image as RGB32: back to one byte per pixel
    if big.format() != QImage.Format_Grayscale8:
        big = big.convertToFormat(QImage.Format_Grayscale8)
    bpl = big.bytesPerLine()
    ptr = big.constBits()
    ptr.setsize(bpl * new_height)
    raw = bytes(ptr)
    if bpl == new_width:
        return raw
    return b"".join(raw[r * bpl : r * bpl + new_width] for r in range(new_height))
