"""Pixel conversions between wire buffers and numpy arrays (daemon side).

- incoming images: ``(H, W, 3|4)`` uint8 / uint16 (little-endian) in RGB, BGR, RGBA or BGRA order
  -> ``(H, W, 3)`` uint8 RGB (the model's input; the editor's alpha channel is ignored);
- outgoing alpha: ``(H, W)`` float32 in [0, 1] -> uint8 0..255 or uint16 0..65535, optionally
  shrunk so that the long side is at most ``preview`` px;
- outgoing uncertainty: Laplace scale sigma -> uint8, 255 at ``UNCERTAINTY_SCALE`` and above.

Everything goes through OpenCV so a 24 MP image is converted without float64 temporaries.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import cv2
import numpy as np

from clickmatte.model.image_io import alpha_to_u8
from clickmatte.plugin.protocol import UNCERTAINTY_SCALE, BufferSpec

_TO_RGB = {
    "RGB": None,
    "BGR": cv2.COLOR_BGR2RGB,
    "RGBA": cv2.COLOR_RGBA2RGB,
    "BGRA": cv2.COLOR_BGRA2RGB,
}


def buffer_to_array(spec: BufferSpec, data: Any) -> np.ndarray:
    """A view of ``data`` as ``(height, width, channels)`` (``(height, width)`` for one channel)."""
    dt = np.dtype("<u2") if spec.dtype == "uint16" else np.dtype(np.uint8)
    arr = np.frombuffer(data, dtype=dt)
    if arr.size != spec.width * spec.height * spec.channels:
        raise ValueError(f"buffer {spec.name!r} holds {arr.size} samples, expected "
                         f"{spec.width}x{spec.height}x{spec.channels}")
    if spec.channels == 1:
        return arr.reshape(spec.height, spec.width)
    return arr.reshape(spec.height, spec.width, spec.channels)


def image_to_rgb8(spec: BufferSpec, data: Any) -> np.ndarray:
    """Wire image -> contiguous ``(H, W, 3)`` uint8 RGB (one new array; 16-bit is rounded to 8-bit)."""
    if spec.order not in _TO_RGB:
        raise ValueError(f"image order must be one of {sorted(_TO_RGB)}, got {spec.order!r}")
    arr = buffer_to_array(spec, data)
    if not arr.dtype.isnative:  # big-endian hosts: wire uint16 is little-endian
        arr = arr.astype(arr.dtype.newbyteorder("="))
    code = _TO_RGB[spec.order]
    rgb = np.array(arr, copy=True) if code is None else cv2.cvtColor(arr, code)
    if rgb.dtype == np.uint16:
        rgb = cv2.convertScaleAbs(rgb, alpha=255.0 / 65535.0)  # rounds and saturates to uint8
    return np.ascontiguousarray(rgb)


def preview_shape(height: int, width: int, preview: Optional[int]) -> Tuple[int, int]:
    """``(h, w)`` of an output whose long side is at most ``preview`` (None: unchanged)."""
    if preview is None or max(height, width) <= preview:
        return height, width
    s = preview / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def _shrink(a: np.ndarray, preview: Optional[int]) -> np.ndarray:
    h, w = a.shape
    ph, pw = preview_shape(h, w, preview)
    if (ph, pw) == (h, w):
        return a
    return cv2.resize(a, (pw, ph), interpolation=cv2.INTER_AREA)


def encode_alpha(alpha: np.ndarray, dtype: str = "uint8", preview: Optional[int] = None) -> np.ndarray:
    """``(H, W)`` float32 alpha in [0, 1] -> uint8 (0..255) or little-endian uint16 (0..65535), rounded."""
    a = _shrink(np.asarray(alpha, dtype=np.float32), preview)
    if dtype == "uint8":
        return alpha_to_u8(a)
    if dtype == "uint16":
        out = np.empty(a.shape, np.float32)
        np.multiply(a, 65535.0, out=out)
        np.clip(out, 0.0, 65535.0, out=out)
        np.rint(out, out=out)
        return out.astype("<u2")
    raise ValueError(f"alpha dtype must be 'uint8' or 'uint16', got {dtype!r}")


def encode_uncertainty(sigma: np.ndarray, preview: Optional[int] = None,
                       full_scale: float = UNCERTAINTY_SCALE) -> np.ndarray:
    """``(H, W)`` float32 sigma >= 0 -> uint8, linear, 255 at ``full_scale`` and above (rounded)."""
    s = _shrink(np.asarray(sigma, dtype=np.float32), preview)
    return cv2.convertScaleAbs(s, alpha=255.0 / full_scale)


def mask_to_bool(spec: BufferSpec, data: Any) -> np.ndarray:
    """One-channel uint8 mask buffer -> ``(H, W)`` bool (non-zero = selected)."""
    if spec.channels != 1 or spec.dtype != "uint8":
        raise ValueError("mask must be one channel of uint8")
    return buffer_to_array(spec, data) != 0
