"""Edge-aware upsampling of a low-resolution alpha with the full-resolution image as guide.

The fast guided filter (He & Sun 2015, "Fast Guided Filter"; the colour guided filter of He et al.
2010): at the low resolution, each pixel's alpha is modelled as a local affine function of the colour,
``alpha ~= A . rgb + b`` over a ``(2 r + 1)^2`` window (ridge ``eps``); ``A`` and ``b`` are smooth, so they
are upsampled bilinearly and applied to the full-resolution colours. Edges of the matte then follow the
image's edges at full resolution instead of being bilinearly blurred.

All arrays are numpy: ``alpha_low`` ``(h, w)`` float in [0, 1]; ``rgb_low`` ``(h, w, 3)`` and ``rgb_full``
``(H, W, 3)``, uint8 or float in [0, 1]. Returns ``(H, W)`` float32 in [0, 1].
"""
from __future__ import annotations

import cv2
import numpy as np

DEFAULT_RADIUS = 3
DEFAULT_EPS = 1e-5


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def _unit_rgb(rgb: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) array, got {getattr(rgb, 'shape', type(rgb))}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got {rgb.dtype}")
    return rgb.astype(np.float32, copy=False)


def guided_coefficients(alpha_low: np.ndarray, rgb_low: np.ndarray, radius: int = DEFAULT_RADIUS,
                        eps: float = DEFAULT_EPS) -> np.ndarray:
    """``(h, w, 4)`` float32: the local affine model ``(A_r, A_g, A_b, b)`` of ``alpha_low`` on ``rgb_low``, box-averaged."""
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if not isinstance(alpha_low, np.ndarray) or alpha_low.ndim != 2:
        raise ValueError(f"alpha_low must be an (h, w) array, got {getattr(alpha_low, 'shape', type(alpha_low))}")
    guide = _unit_rgb(rgb_low, "rgb_low").astype(np.float64)
    if guide.shape[:2] != alpha_low.shape:
        raise ValueError(f"rgb_low {guide.shape[:2]} and alpha_low {alpha_low.shape} differ in size")
    p = alpha_low.astype(np.float64)
    mean_i = _box(guide, radius)  # (h, w, 3)
    mean_p = _box(p, radius)
    cov_ip = _box(guide * p[..., None], radius) - mean_i * mean_p[..., None]
    # the symmetric 3 x 3 colour covariance per pixel (+ eps on the diagonal), inverted by cofactors
    v = {}
    for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        v[i, j] = _box(guide[..., i] * guide[..., j], radius) - mean_i[..., i] * mean_i[..., j]
        if i == j:
            v[i, j] = v[i, j] + eps
    a, b, c, d, e, f = v[0, 0], v[0, 1], v[0, 2], v[1, 1], v[1, 2], v[2, 2]
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * c00 + b * c01 + c * c02
    x, y, z = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    coef = np.empty(p.shape + (4,), dtype=np.float64)
    coef[..., 0] = (c00 * x + c01 * y + c02 * z) / det
    coef[..., 1] = (c01 * x + c11 * y + c12 * z) / det
    coef[..., 2] = (c02 * x + c12 * y + c22 * z) / det
    coef[..., 3] = mean_p - (coef[..., :3] * mean_i).sum(axis=2)
    return _box(coef, radius).astype(np.float32)


def guided_upsample(alpha_low: np.ndarray, rgb_low: np.ndarray, rgb_full: np.ndarray,
                    radius: int = DEFAULT_RADIUS, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Upsample ``alpha_low`` to the size of ``rgb_full`` along the image's edges (fast guided filter).

    ``radius`` is the window radius in low-resolution pixels, ``eps`` the ridge (larger: smoother,
    closer to bilinear). Works channel by channel, so the extra memory at full size is about three
    float32 planes (a 24 MP image: ~300 MB).
    """
    if not isinstance(rgb_full, np.ndarray) or rgb_full.ndim != 3 or rgb_full.shape[2] != 3:
        raise ValueError(f"rgb_full must be an (H, W, 3) array, got {getattr(rgb_full, 'shape', type(rgb_full))}")
    full = rgb_full if rgb_full.dtype == np.uint8 else _unit_rgb(rgb_full, "rgb_full")
    coef = guided_coefficients(alpha_low, rgb_low, radius, eps)
    h, w = full.shape[:2]
    if full.dtype == np.uint8:  # fold the 1/255 into the (small) colour coefficients
        coef[..., :3] /= 255.0
    out = cv2.resize(coef[..., 3], (w, h), interpolation=cv2.INTER_LINEAR)
    for ch in range(3):
        a_up = cv2.resize(coef[..., ch], (w, h), interpolation=cv2.INTER_LINEAR)
        np.multiply(a_up, full[..., ch], out=a_up)
        out += a_up
    np.clip(out, 0.0, 1.0, out=out)
    return out
