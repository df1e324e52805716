"""The refinement study: after a prediction, refine the ``top_n`` most uncertain patches and, from the same
coarse state, the same number of random non-overlapping patches (:func:`random_boxes`, same grid and soft
limit as the predictor's own selection), to see whether the uncertainty points where refinement pays.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Optional

import numpy as np

from .eval_engines import NetEngine
from .metrics import all_metrics
from ..network.refiner import check_max_soft, window_soft_fraction

log = logging.getLogger(__name__)


def random_boxes(h: int, w: int, n: int, k: int, rng: np.random.Generator,
                 alpha: Optional[np.ndarray] = None, max_soft: Optional[float] = None) -> list[tuple[int, int, int, int]]:
    """Up to ``n`` random non-overlapping ``min(k, w) x min(k, h)`` boxes ``(x, y, w, h)`` inside an ``h x w`` image.

    Each box is drawn uniformly among the positions (on the same ``k // 8`` grid as the
    uncertainty-driven selection) that overlap no earlier box; with ``max_soft`` and the coarse
    ``alpha`` (``(h, w)``), only among windows at most that fraction soft, as the uncertainty-driven
    selection of the predictor (:func:`clickmatte.model.network.refiner.window_soft_fraction`). Fewer than
    ``n`` only when no position is left.
    """
    check_max_soft(max_soft, alpha, (h, w))
    kh, kw = min(k, h), min(k, w)
    stride = max(1, k // 8)
    ys = np.unique(np.append(np.arange(0, h - kh + 1, stride), h - kh))
    xs = np.unique(np.append(np.arange(0, w - kw + 1, stride), w - kw))
    free = np.ones((len(ys), len(xs)), dtype=bool)
    if max_soft is not None and alpha is not None:
        free &= window_soft_fraction(alpha, ys, xs, kh, kw) <= max_soft
    boxes: list[tuple[int, int, int, int]] = []
    while len(boxes) < n and free.any():
        cand = np.argwhere(free)
        gy, gx = cand[int(rng.integers(len(cand)))]
        y, x = int(ys[gy]), int(xs[gx])
        boxes.append((x, y, kw, kh))
        free[np.ix_((ys > y - kh) & (ys < y + kh), (xs > x - kw) & (xs < x + kw))] = False
    return boxes


def refine_both(engine: NetEngine, gt: np.ndarray, top_n: int, with_random: bool, rng: np.random.Generator) -> dict:
    """Top-N uncertain patches vs the same number of random patches, both from the same coarse state."""
    p = engine.predictor
    assert p.alpha is not None and p.uncertainty is not None
    coarse_a, coarse_s = p.alpha.copy(), p.uncertainty.copy()
    out: dict[str, Any] = {"top_n": top_n}
    t0 = time.perf_counter()
    top = p.refine(top_n=top_n)
    out["top"] = {**all_metrics(top, gt), "seconds": time.perf_counter() - t0,
                  "boxes": [list(map(int, b)) for b in p.last_patches]}
    n_done = len(p.last_patches)
    if with_random:
        p.alpha, p.uncertainty = coarse_a.copy(), coarse_s.copy()
        h, w = gt.shape
        boxes = random_boxes(h, w, n_done, p.model.refiner.config.patch_size, rng,
                             alpha=coarse_a, max_soft=p.image_max_soft)
        t0 = time.perf_counter()
        ra = p.refine(top_n=None, regions=boxes) if boxes else coarse_a
        secs = time.perf_counter() - t0
        if sorted(map(tuple, p.last_patches)) != sorted(boxes) and boxes:
            log.warning("refine(regions=...) refined %s instead of %s", p.last_patches, boxes)
        out["random"] = {**all_metrics(ra, gt), "seconds": secs, "boxes": [list(map(int, b)) for b in p.last_patches]}
    p.alpha, p.uncertainty = coarse_a, coarse_s
    return out
