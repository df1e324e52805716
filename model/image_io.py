"""Reading pictures from files: :func:`read_rgb` (an image as ``(H, W, 3)`` uint8 RGB) and :func:`read_alpha`
(a matte or mask as ``(H, W)`` float32 in [0, 1]), shared by training, evaluation and the tools; and
:func:`alpha_to_u8`, the one way a float alpha becomes 8 bits (the daemon's wire mask and kept previous alpha,
the evaluation's fed-back alpha)."""
from __future__ import annotations

import os

import cv2
import numpy as np

#: an alpha file's dtype -> the value of full opacity
_FULL = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def read_rgb(path: os.PathLike | str) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of any image file OpenCV reads (gray expanded, alpha dropped, 16 bits cut to 8);
    ValueError when unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_alpha(path: os.PathLike | str) -> np.ndarray:
    """``(H, W)`` float32 alpha in [0, 1] from an 8-bit (``/ 255``) or 16-bit (``/ 65535``) file, or a float32
    one (values kept; they must lie in [0, 1]).

    The file is gray, or RGB(A) with equal colour channels; RGBA only with a fully opaque alpha channel
    (otherwise which channel holds the matte is ambiguous). ValueError with the reason otherwise.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"cannot read alpha {path}")
    full = _FULL.get(raw.dtype)
    if full is None:
        raise ValueError(f"alpha {path} is {raw.dtype}, expected 8 or 16 bits (or float32)")
    if raw.ndim == 3:
        if raw.shape[2] == 4:
            if not np.all(raw[:, :, 3] == full):
                raise ValueError(f"alpha {path} is RGBA with a non-opaque alpha channel (ambiguous)")
            raw = raw[:, :, :3]
        if raw.shape[2] != 3:
            raise ValueError(f"alpha {path} has {raw.shape[2]} channels")
        if not (np.array_equal(raw[:, :, 0], raw[:, :, 1]) and np.array_equal(raw[:, :, 1], raw[:, :, 2])):
            raise ValueError(f"alpha {path} is RGB with unequal channels (not a gray matte)")
        raw = raw[:, :, 0]
    if raw.dtype == np.float32:
        if not (np.isfinite(raw).all() and raw.min() >= 0.0 and raw.max() <= 1.0):
            raise ValueError(f"alpha {path} holds float values outside [0, 1]")
        return np.ascontiguousarray(raw)
    return np.ascontiguousarray(raw.astype(np.float32) / full)


def alpha_to_u8(alpha: np.ndarray) -> np.ndarray:
    """``(H, W)`` float alpha in [0, 1] -> ``(H, W)`` uint8 ``round(255 * alpha)`` (ties to even), values outside
    [0, 1] saturated to 0 / 255. One OpenCV pass, no float temporaries (a 24 MP alpha: ~10 ms on one core)."""
    a = np.asarray(alpha)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"alpha must be an (H, W) float array, got {a.dtype} {a.shape}")
    return cv2.multiply(np.ascontiguousarray(a, dtype=np.float32), 1.0, scale=255.0, dtype=cv2.CV_8U)
