"""Simulated user clicks: the error-driven evaluation simulator and random training clicks.

Clicks are dicts ``{"x": int, "y": int, "label": "fg"|"bg"}`` in pixel coordinates of the
alpha they were drawn from (x = column, y = row), the format of :mod:`clickmatte.model.inference.clicks`.

- :func:`next_click` is the standard error-driven simulator (RITM, Sofiiuk et al. 2022;
  f-BRS; the NoC protocol): binarise ground truth and prediction at 0.5, take the false
  negatives (foreground missed) and false positives (background taken), and click at the
  most interior point (maximum of the distance transform, image borders counting as boundary;
  on a ridge of equal depth, the ridge pixel nearest to the ridge's centroid)
  of the largest error region. "Largest" is measured as in RITM by the radius of the biggest
  disk that fits into the region (``by="distance"``, the default), or by pixel count
  (``by="area"``). A missed-foreground region yields an ``"fg"`` click, a false-positive
  region a ``"bg"`` click. The first click (no prediction yet) lands at the interior of the
  foreground. Pixels already clicked are never clicked again.
- :func:`fixed_clicks` is the fixed, error-blind protocol: clicks alternate fg, bg, fg, bg, ...
  and each lands at the point deepest inside the true foreground (fg) or background (bg),
  depth counted to the region's boundary, the image border and every earlier click. The same
  clicks whatever the network answers, so k clicks compare weights on identical input.
- :func:`random_clicks` draws training clicks: ``m ~ Geometric(p)`` (mean ``1/p``, 6 for the
  paper's ``p = 1/6``), foreground clicks inside the eroded definite foreground, background
  clicks inside the eroded definite background, the first click foreground with high probability.
"""
from __future__ import annotations

from typing import Literal, Optional, Sequence

import cv2
import numpy as np
from scipy import ndimage

from ..inference.clicks import ClickLike, as_click

BINARY_THRESHOLD = 0.5
DEFINITE_FG = 0.95
DEFINITE_BG = 0.05


def _unit_alpha(a: np.ndarray, name: str) -> np.ndarray:
    """``(H, W)`` uint8 or float alpha -> float32 in [0, 1]."""
    if not isinstance(a, np.ndarray) or a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty (H, W) array, got {getattr(a, 'shape', type(a))}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got {a.dtype}")
    return np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0)


def interior_distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each ``mask`` pixel to the nearest non-mask pixel or image border.

    ``mask``: ``(H, W)`` bool. Returns float32 ``(H, W)``, 0 outside the mask; a pixel on the
    image border inside the mask has distance 1 (the border counts as boundary).
    """
    # scipy's exact transform, not cv2's DIST_MASK_PRECISE: the latter differs in the last bits from
    # call to call, which flipped argmax ties (the same training step drew different clicks)
    padded = np.pad(mask.astype(bool), 1, mode="constant")
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1].astype(np.float32)


def _best_region(mask: np.ndarray, dist: np.ndarray, by: str) -> tuple[float, Optional[np.ndarray]]:
    """Largest 8-connected region of ``mask`` that still has a clickable pixel (``dist > 0``).

    Returns ``(score, region mask)``, score = max distance or pixel count; ``(0, None)`` if none.
    """
    if not mask.any():
        return 0.0, None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    peaks = np.zeros(n, dtype=np.float64)
    np.maximum.at(peaks, labels.ravel(), dist.ravel().astype(np.float64))
    peaks[0] = 0.0  # label 0 is the outside of the mask
    scores = stats[:, cv2.CC_STAT_AREA].astype(np.float64) if by == "area" else peaks.copy()
    scores[peaks <= 0.0] = 0.0  # regions whose every pixel was clicked already
    best_label = int(np.argmax(scores))
    best_score = float(scores[best_label])
    if best_score <= 0.0:
        return 0.0, None
    return best_score, labels == best_label


def _clicked_pixels(clicks: Sequence[ClickLike], h: int, w: int) -> np.ndarray:
    done = np.zeros((h, w), dtype=bool)
    for c in (as_click(c) for c in clicks):
        x, y = int(round(c.x)), int(round(c.y))
        if 0 <= x < w and 0 <= y < h:
            done[y, x] = True
    return done


def next_click(
    gt_alpha: np.ndarray,
    pred_alpha: Optional[np.ndarray] = None,
    prev_clicks: Sequence[ClickLike] = (),
    by: Literal["distance", "area"] = "distance",
) -> Optional[dict]:
    """The next simulated click, or ``None`` when the binarised prediction has no error left.

    ``gt_alpha`` and ``pred_alpha``: ``(H, W)`` float in [0, 1] or uint8, binarised at 0.5
    (``> 0.5`` is foreground). ``pred_alpha=None`` means "nothing predicted yet" (all
    background), so the first click lands at the interior of the foreground; an image with no
    foreground at all gets a background click at the interior of the background.
    Returns ``{"x", "y", "label"}`` with integer pixel coordinates.
    """
    if by not in ("distance", "area"):
        raise ValueError(f"by must be 'distance' or 'area', got {by!r}")
    gt = _unit_alpha(gt_alpha, "gt_alpha") > BINARY_THRESHOLD
    h, w = gt.shape
    if pred_alpha is None:
        pred = np.zeros_like(gt)
        if not gt.any():
            pred = np.ones_like(gt)  # no foreground at all: ask for background instead
    else:
        pred = _unit_alpha(pred_alpha, "pred_alpha") > BINARY_THRESHOLD
        if pred.shape != gt.shape:
            raise ValueError(f"pred_alpha {pred.shape} and gt_alpha {gt.shape} differ in shape")
    done = _clicked_pixels(prev_clicks, h, w)
    fn = gt & ~pred
    fp = ~gt & pred
    fn_dist = interior_distance(fn)
    fp_dist = interior_distance(fp)
    fn_dist[done] = 0.0  # as RITM's not-clicked map: never the same pixel twice
    fp_dist[done] = 0.0
    fn_score, fn_region = _best_region(fn, fn_dist, by)
    fp_score, fp_region = _best_region(fp, fp_dist, by)
    if fn_region is None and fp_region is None:
        return None
    if fp_region is None or (fn_region is not None and fn_score >= fp_score):
        dist, region, label = fn_dist, fn_region, "fg"
    else:
        dist, region, label = fp_dist, fp_region, "bg"
    assert region is not None
    masked = np.where(region, dist, -1.0)
    peak = float(masked.max())
    ties = np.argwhere(masked >= peak - 1e-4)  # a ridge of equal depth: take its middle
    centre = ties.mean(axis=0)
    y, x = ties[int(np.argmin(((ties - centre) ** 2).sum(axis=1)))]
    return {"x": int(x), "y": int(y), "label": label}


def fixed_clicks(gt_alpha: np.ndarray, n: int, known: Optional[np.ndarray] = None) -> list[dict]:
    """``n`` clicks of the fixed protocol for one ``(H, W)`` ground truth (float [0, 1] or uint8).

    Labels alternate ``"fg"``, ``"bg"``, ``"fg"``, ... starting with fg (bg first, and bg only, when
    the truth has no foreground; fg only when it has no background). Each click is the maximum of the
    distance transform of its region (``> 0.5`` for fg, ``<= 0.5`` for bg) where the image border and
    the pixels of all earlier clicks count as boundary; on a ridge of equal depth, the ridge pixel
    nearest to its centroid. A region with no pixel left gives no more clicks of its label, so the
    list may be shorter than ``n``. ``known``: optional ``(H, W)`` bool; pixels outside it belong to
    neither region (a trimap's unknown band) and count as boundary. Returns ``[{"x", "y", "label"}, ...]`` in click order.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    gt = _unit_alpha(gt_alpha, "gt_alpha") > BINARY_THRESHOLD
    h, w = gt.shape
    ok = np.ones_like(gt)
    if known is not None:
        if not isinstance(known, np.ndarray) or known.shape != gt.shape:
            raise ValueError(f"known must be an (H, W) = {gt.shape} array, got {getattr(known, 'shape', type(known))}")
        ok = known.astype(bool)
    regions = {"fg": gt & ok, "bg": ~gt & ok}
    order = [label for label in ("fg", "bg") if regions[label].any()]
    out: list[dict] = []
    i = 0
    while len(out) < n and order:
        label = order[i % len(order)]
        c = _deepest(regions[label], _clicked_pixels(out, h, w), label)
        if c is None:
            order.remove(label)
            continue
        out.append(c)
        i += 1
    return out


def deepest_click(gt_alpha: np.ndarray, label: str, clicks: Sequence[ClickLike] = (),
                  known: Optional[np.ndarray] = None) -> Optional[dict]:
    """One click of the fixed protocol's kind: the point deepest inside the true ``label`` region
    (``"fg"``: ``gt_alpha > 0.5``, ``"bg"``: the rest; only ``known`` pixels when given), with the image
    border and the pixels of ``clicks`` counting as boundary. ``None`` when the region has no pixel left."""
    if label not in ("fg", "bg"):
        raise ValueError(f"label must be 'fg' or 'bg', got {label!r}")
    gt = _unit_alpha(gt_alpha, "gt_alpha") > BINARY_THRESHOLD
    region = gt if label == "fg" else ~gt
    if known is not None:
        if not isinstance(known, np.ndarray) or known.shape != gt.shape:
            raise ValueError(f"known must be an (H, W) = {gt.shape} array, got {getattr(known, 'shape', type(known))}")
        region = region & known.astype(bool)
    return _deepest(region, _clicked_pixels(clicks, *gt.shape), label)


def _deepest(region: np.ndarray, done: np.ndarray, label: str) -> Optional[dict]:
    dist = interior_distance(region & ~done)
    peak = float(dist.max())
    if peak <= 0.0:
        return None
    ties = np.argwhere(dist >= peak - 1e-4)  # a ridge of equal depth: take its middle
    centre = ties.mean(axis=0)
    y, x = ties[int(np.argmin(((ties - centre) ** 2).sum(axis=1)))]
    return {"x": int(x), "y": int(y), "label": label}


def _interior_pixels(mask: np.ndarray, margin: int) -> np.ndarray:
    """``(N, 2)`` (y, x) of ``mask`` pixels at least ``margin`` px inside; all of ``mask`` if none are."""
    if margin > 0 and mask.any():
        inner = interior_distance(mask) > margin
        if inner.any():
            return np.argwhere(inner)
    return np.argwhere(mask)


def random_clicks(
    gt_alpha: np.ndarray,
    rng: np.random.Generator,
    p: float = 1.0 / 6.0,
    max_clicks: int = 24,
    first_fg_prob: float = 0.9,
    fg_prob: float = 0.5,
    margin: int = 3,
    fg_threshold: float = DEFINITE_FG,
    bg_threshold: float = DEFINITE_BG,
) -> list[dict]:
    """Random training clicks for one ``(H, W)`` ground-truth alpha (float [0, 1] or uint8).

    The count is ``m ~ Geometric(p)`` on {1, 2, ...} (mean ``1/p``), capped at ``max_clicks``.
    The first click is foreground with probability ``first_fg_prob``, later ones with
    ``fg_prob``. Foreground clicks fall where ``alpha > fg_threshold``, background clicks where
    ``alpha < bg_threshold``, at least ``margin`` px inside those regions when possible (the
    un-eroded region otherwise). A label whose region is empty is replaced by the other one; an
    alpha with neither definite region gives ``[]``. Returns ``[{"x", "y", "label"}, ...]``.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}")
    for name, v in (("first_fg_prob", first_fg_prob), ("fg_prob", fg_prob)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    a = _unit_alpha(gt_alpha, "gt_alpha")
    pools = {
        "fg": _interior_pixels(a > fg_threshold, margin),
        "bg": _interior_pixels(a < bg_threshold, margin),
    }
    m = min(int(rng.geometric(p)), max_clicks)
    out: list[dict] = []
    for i in range(m):
        label = "fg" if rng.random() < (first_fg_prob if i == 0 else fg_prob) else "bg"
        if len(pools[label]) == 0:
            label = "bg" if label == "fg" else "fg"
        pool = pools[label]
        if len(pool) == 0:
            return []
        y, x = pool[int(rng.integers(len(pool)))]
        out.append({"x": int(x), "y": int(y), "label": label})
    return out
