"""Matting error metrics (Rhemann et al. 2009), on the whole image (clicks give no trimap).

All functions take a prediction and a ground truth of the same shape ``(H, W)``: either
float arrays in [0, 1] or uint8 arrays in [0, 255] (divided by 255). They follow the
reference evaluation code of Deep Image Matting (Xu et al. 2017, the MATLAB
``compute_*_loss`` functions and their common Python port), with the trimap mask replaced by
"every pixel":

- :func:`sad`: sum of absolute differences, **divided by 1000** (the reporting unit).
- :func:`mse`: plain mean squared error (tables conventionally show it x 1e3; the
  function returns the plain mean, see :data:`MSE_REPORT_SCALE`).
- :func:`grad_error`: sum over pixels of ``(|grad a_p| - |grad a_g|)^2`` with first derivatives of
  a Gaussian (sigma 1.4, replicate border), **divided by 1000**.
- :func:`conn_error`: connectivity error (threshold step 0.1, theta 0.15, p = 1, 4-connected
  largest component), **divided by 1000**.

For binary ground truth (interactive segmentation) and for what a click changes near itself:

- :func:`iou`: intersection over union of prediction and ground truth, both binarised at 0.5.
- :func:`local_mae`: mean absolute alpha error inside a disk around a point (a click).
"""
from __future__ import annotations

from typing import Any, Mapping

import cv2
import numpy as np

MSE_REPORT_SCALE = 1e3  # tables show MSE x 1e3 ("MSE x1e-3 units")
GRAD_SIGMA = 1.4
CONN_STEP = 0.1
CONN_THETA = 0.15


def as_unit_alpha(a: np.ndarray, name: str = "alpha") -> np.ndarray:
    """``(H, W)`` uint8 (0..255) or float (0..1) -> float64 in [0, 1]; ``ValueError`` otherwise.

    Floats may overshoot [0, 1] by 1e-3 (rounding) and are clipped; more is an error.
    """
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be (H, W), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got {a.dtype}")
    out = a.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or infinity")
    lo, hi = float(out.min()), float(out.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(f"{name} must lie in [0, 1] (float) or be uint8; got range [{lo:g}, {hi:g}]")
    return np.clip(out, 0.0, 1.0)


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = as_unit_alpha(pred, "pred")
    g = as_unit_alpha(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape, got {p.shape} and {g.shape}")
    return p, g


def sad(pred: np.ndarray, gt: np.ndarray) -> float:
    """Sum of absolute alpha differences over the image, divided by 1000."""
    p, g = _pair(pred, gt)
    return float(np.abs(p - g).sum() / 1000.0)


def sad_split(pred: np.ndarray, gt: np.ndarray, low: float = 0.05, high: float = 0.95) -> dict[str, float]:
    """SAD (/1000) split by the ground truth: ``definite`` over pixels with ``gt <= low`` or ``gt >= high``
    (plain foreground or background, what a fg/bg click names), ``soft`` over the rest (hair, glass,
    nets, blur). The two add up to :func:`sad`."""
    p, g = _pair(pred, gt)
    err = np.abs(p - g)
    soft = (g > low) & (g < high)
    return {"definite": float(err[~soft].sum() / 1000.0), "soft": float(err[soft].sum() / 1000.0)}


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared alpha difference over the image (plain mean; multiply by 1e3 for tables)."""
    p, g = _pair(pred, gt)
    return float(np.mean((p - g) ** 2))


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))


def gaussian_derivative_kernels(sigma: float = GRAD_SIGMA, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """The ``gaussgradient`` kernels of the reference code: ``(hx, hy)``, each ``(S, S)``, L2-normalised.

    ``hx`` differentiates along x (columns), ``hy = hx.T`` along y. ``S = 2 * halfsize + 1`` with
    ``halfsize = ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma epsilon)))`` (9 for sigma 1.4).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = _gauss(u, sigma)
    dg = -u * g / sigma**2
    hx = g[:, None] * dg[None, :]  # rows: Gaussian in y; columns: derivative in x
    hx = hx / np.sqrt(np.sum(hx * hx))
    return hx, hx.T.copy()


def gradient_magnitude(a: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """``|grad a|`` of a float ``(H, W)`` array with Gaussian-derivative filters (convolution, replicate border)."""
    hx, hy = gaussian_derivative_kernels(sigma)
    # cv2.filter2D correlates: flip the kernels to convolve, as MATLAB's imfilter(..., 'conv') does.
    gx = cv2.filter2D(a, cv2.CV_64F, cv2.flip(hx, -1), borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, cv2.flip(hy, -1), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def grad_error(pred: np.ndarray, gt: np.ndarray, sigma: float = GRAD_SIGMA) -> float:
    """Gradient error: ``sum_p (|grad pred_p| - |grad gt_p|)^2 / 1000`` over the whole image."""
    p, g = _pair(pred, gt)
    diff = gradient_magnitude(p, sigma) - gradient_magnitude(g, sigma)
    return float(np.sum(diff**2) / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a bool mask (all False if the mask is empty)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def connectivity_levels(p: np.ndarray, g: np.ndarray, step: float = CONN_STEP) -> np.ndarray:
    """``l_i`` of Rhemann et al.: the threshold at which pixel i leaves the largest common component.

    ``p`` and ``g`` are float ``(H, W)`` in [0, 1]. Pixels still connected at threshold 1 get 1.
    """
    n = int(round(1.0 / step))
    if n < 1 or abs(n * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 (e.g. 0.1), got {step}")
    thresholds = np.arange(n + 1, dtype=np.float64) / n  # exact 0, 0.1, ..., 1
    level = np.full(p.shape, -1.0)
    for i in range(1, n + 1):
        t = thresholds[i]
        omega = _largest_component((p >= t) & (g >= t))
        newly_out = (level == -1.0) & ~omega
        level[newly_out] = thresholds[i - 1]
    level[level == -1.0] = 1.0
    return level


def conn_error(pred: np.ndarray, gt: np.ndarray, step: float = CONN_STEP, theta: float = CONN_THETA) -> float:
    """Connectivity error (p = 1): ``sum_i |phi(pred_i) - phi(gt_i)| / 1000``.

    ``phi(a_i) = 1 - d_i * [d_i >= theta]`` with ``d_i = a_i - l_i``, ``l_i`` from
    :func:`connectivity_levels` on the pair (pred, gt).
    """
    p, g = _pair(pred, gt)
    level = connectivity_levels(p, g, step)
    dp, dg = p - level, g - level
    phi_p = 1.0 - dp * (dp >= theta)
    phi_g = 1.0 - dg * (dg >= theta)
    return float(np.sum(np.abs(phi_p - phi_g)) / 1000.0)


METRIC_NAMES = ("sad", "mse", "grad", "conn")


def all_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """``{"sad", "mse", "grad", "conn"}`` for one prediction (SAD/Grad/Conn /1000, MSE plain mean)."""
    p, g = _pair(pred, gt)
    return {"sad": sad(p, g), "mse": mse(p, g), "grad": grad_error(p, g), "conn": conn_error(p, g)}


IOU_THRESHOLD = 0.5
LOCAL_RADIUS = 30  # px, full-image pixels: the neighbourhood of a click in the local-error report


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float = IOU_THRESHOLD) -> float:
    """Intersection over union of ``pred > threshold`` and ``gt > threshold``, in [0, 1].

    Both ``(H, W)``, uint8 or float in [0, 1]. Two empty masks agree completely: 1.0.
    """
    p, g = _pair(pred, gt)
    pb, gb = p > threshold, g > threshold
    union = int(np.count_nonzero(pb | gb))
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pb & gb) / union)


def disk_mask(h: int, w: int, x: float, y: float, radius: float) -> np.ndarray:
    """``(h, w)`` bool: pixels whose centre lies within ``radius`` px of ``(x, y)`` (x = column, y = row)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    yy, xx = np.ogrid[0:h, 0:w]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius * radius


def local_mae(pred: np.ndarray, gt: np.ndarray, x: float, y: float, radius: float = LOCAL_RADIUS) -> float:
    """Mean ``|pred - gt|`` (alpha units, [0, 1]) over the pixels within ``radius`` px of ``(x, y)``.

    ``pred``, ``gt``: ``(H, W)``, uint8 or float in [0, 1]; the disk is clipped at the image border.
    ``ValueError`` when the point lies outside the image.
    """
    p, g = _pair(pred, gt)
    h, w = g.shape
    if not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"point ({x}, {y}) lies outside the {w}x{h} image")
    m = disk_mask(h, w, x, y, radius)
    return float(np.abs(p[m] - g[m]).mean())


def local_change(click: Mapping[str, Any], before: np.ndarray, after: np.ndarray, gt: np.ndarray,
                 radius: float = LOCAL_RADIUS) -> dict[str, Any]:
    """What one click did near itself: ``{"label", "x", "y", "before", "after", "still_wrong"}``.

    ``click``: ``{"x", "y", "label": "fg"|"bg"}`` in pixels of the ``(H, W)`` arrays; ``before``
    and ``after``: the predictions without and with it; ``gt``: the ground truth (all uint8 or
    float in [0, 1]). ``before`` / ``after``: :func:`local_mae` within ``radius`` px (alpha units);
    ``still_wrong``: the clicked pixel is on the wrong side of 0.5 after the click (a fg click whose
    pixel stays <= 0.5, a bg click whose pixel stays > 0.5).
    """
    label = str(click["label"])
    if label not in ("fg", "bg"):
        raise ValueError(f"click label must be 'fg' or 'bg', got {label!r}")
    x, y = float(click["x"]), float(click["y"])
    a = as_unit_alpha(after, "after")
    h, w = a.shape
    xi, yi = min(w - 1, max(0, int(round(x)))), min(h - 1, max(0, int(round(y))))
    return {"label": label, "x": x, "y": y,
            "before": local_mae(before, gt, x, y, radius), "after": local_mae(a, gt, x, y, radius),
            "still_wrong": bool((a[yi, xi] > IOU_THRESHOLD) != (label == "fg"))}
