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

from dataclasses import dataclass
from typing import Optional

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


@dataclass(frozen=True)
class Guide:
    """What the filter needs of the low-resolution guide image alone (not of the alpha): the image ``rgb``
    ``(h, w, 3)`` float64 in [0, 1], its box means ``mean`` and the inverse of its regularised local colour
    covariance, as the six entries ``inv`` ``(h, w, 6)`` (00, 01, 02, 11, 12, 22) of the symmetric 3 x 3
    matrix. Computed once per image by :func:`guide_statistics` and reused for every alpha on it."""

    radius: int
    eps: float
    rgb: np.ndarray
    mean: np.ndarray
    inv: np.ndarray


def guide_statistics(rgb_low: np.ndarray, radius: int = DEFAULT_RADIUS, eps: float = DEFAULT_EPS) -> Guide:
    """The alpha-independent part of the filter for ``rgb_low`` ``(h, w, 3)`` (uint8 or float in [0, 1])."""
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    guide = _unit_rgb(rgb_low, "rgb_low").astype(np.float64)
    mean = _box(guide, radius)
    # the symmetric 3 x 3 colour covariance per pixel (+ eps on the diagonal), inverted by cofactors
    v = {}
    for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        v[i, j] = _box(guide[..., i] * guide[..., j], radius) - mean[..., i] * mean[..., j]
        if i == j:
            v[i, j] = v[i, j] + eps
    a, b, c, d, e, f = v[0, 0], v[0, 1], v[0, 2], v[1, 1], v[1, 2], v[2, 2]
    cof = (d * f - e * e, c * e - b * f, b * e - c * d, a * f - c * c, b * c - a * e, a * d - b * b)
    det = a * cof[0] + b * cof[1] + c * cof[2]
    return Guide(int(radius), float(eps), guide, mean, np.stack(cof, axis=-1) / det[..., None])


def guided_coefficients(alpha_low: np.ndarray, rgb_low: Optional[np.ndarray] = None, radius: int = DEFAULT_RADIUS,
                        eps: float = DEFAULT_EPS, guide: Optional[Guide] = None) -> np.ndarray:
    """``(h, w, 4)`` float32: the local affine model ``(A_r, A_g, A_b, b)`` of ``alpha_low`` on ``rgb_low``, box-averaged.

    ``guide`` (from :func:`guide_statistics`, with its own radius and eps) replaces ``rgb_low``/``radius``/``eps``.
    """
    if guide is None:
        if rgb_low is None:
            raise ValueError("need rgb_low or a precomputed guide")
        guide = guide_statistics(rgb_low, radius, eps)
    if not isinstance(alpha_low, np.ndarray) or alpha_low.ndim != 2:
        raise ValueError(f"alpha_low must be an (h, w) array, got {getattr(alpha_low, 'shape', type(alpha_low))}")
    if guide.mean.shape[:2] != alpha_low.shape:
        raise ValueError(f"rgb_low {guide.mean.shape[:2]} and alpha_low {alpha_low.shape} differ in size")
    r, mean_i, inv = guide.radius, guide.mean, guide.inv
    p = alpha_low.astype(np.float64)
    mean_p = _box(p, r)
    cov_ip = _box(guide.rgb * p[..., None], r) - mean_i * mean_p[..., None]
    x, y, z = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    coef = np.empty(p.shape + (4,), dtype=np.float64)
    coef[..., 0] = inv[..., 0] * x + inv[..., 1] * y + inv[..., 2] * z
    coef[..., 1] = inv[..., 1] * x + inv[..., 3] * y + inv[..., 4] * z
    coef[..., 2] = inv[..., 2] * x + inv[..., 4] * y + inv[..., 5] * z
    coef[..., 3] = mean_p - (coef[..., :3] * mean_i).sum(axis=2)
    return _box(coef, r).astype(np.float32)


def guided_upsample(alpha_low: np.ndarray, rgb_low: Optional[np.ndarray], rgb_full: np.ndarray,
                    radius: int = DEFAULT_RADIUS, eps: float = DEFAULT_EPS, guide: Optional[Guide] = None) -> np.ndarray:
    """Upsample ``alpha_low`` to the size of ``rgb_full`` along the image's edges (fast guided filter).

    ``radius`` is the window radius in low-resolution pixels, ``eps`` the ridge (larger: smoother,
    closer to bilinear). Works channel by channel, so the extra memory at full size is the output and one
    float32 scratch plane (a 24 MP image: ~200 MB). ``guide`` (:func:`guide_statistics` of ``rgb_low``) spares
    recomputing the image's part of the filter for each new alpha on the same image.
    """
    if not isinstance(rgb_full, np.ndarray) or rgb_full.ndim != 3 or rgb_full.shape[2] != 3:
        raise ValueError(f"rgb_full must be an (H, W, 3) array, got {getattr(rgb_full, 'shape', type(rgb_full))}")
    full = rgb_full if rgb_full.dtype == np.uint8 else _unit_rgb(rgb_full, "rgb_full")
    coef = guided_coefficients(alpha_low, rgb_low, radius, eps, guide=guide)
    h, w = full.shape[:2]
    if full.dtype == np.uint8:  # fold the 1/255 into the (small) colour coefficients
        coef[..., :3] /= 255.0
    out = cv2.resize(coef[..., 3], (w, h), interpolation=cv2.INTER_LINEAR)
    a_up = np.empty((h, w), np.float32)  # one scratch plane for the three channels (fresh pages cost time)
    for ch in range(3):
        cv2.resize(np.ascontiguousarray(coef[..., ch]), (w, h), dst=a_up, interpolation=cv2.INTER_LINEAR)
        np.multiply(a_up, full[..., ch], out=a_up)
        out += a_up
    np.clip(out, 0.0, 1.0, out=out)
    return out
