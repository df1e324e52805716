"""Clicks and previous alphas for training samples: :func:`sample_clicks` (foreground clicks in a target's
solid interior, background clicks in the solid background or on a distractor), :func:`degrade_alpha` (an
imperfect previous prediction made from the ground truth, RITM-style) and :func:`corrective_clicks` (clicks
on the largest errors of such a previous alpha). Alphas are ``(S, S)`` float32 in [0, 1].
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..evaluation.click_simulator import interior_distance
from ..inference.clicks import Click


def _interior_points(mask: np.ndarray, rng: np.random.Generator, n: int, margin: int) -> list[tuple[int, int]]:
    """``n`` random points of ``mask``, preferring points at least ``margin`` px from its edge."""
    if n <= 0 or not mask.any():
        return []
    dist = interior_distance(mask)
    ys, xs = np.nonzero(dist >= margin)
    if len(ys) == 0:
        ys, xs = np.nonzero(dist >= dist.max() * 0.5)
    if len(ys) == 0:
        ys, xs = np.nonzero(mask)
    idx = rng.integers(len(ys), size=n)
    return [(int(xs[i]), int(ys[i])) for i in idx]


def sample_clicks(rng: np.random.Generator, target: np.ndarray, distractor: Optional[np.ndarray] = None,
                  p: float = 1 / 6, max_clicks: int = 24, margin: int = 6, soft: bool = False) -> list[Click]:
    """Training clicks: ``m ~ Geometric(p)`` (capped), the first in the foreground.

    Foreground clicks fall where ``target > 0.95``, background clicks where ``target < 0.05``;
    with ``soft=True`` the target is binarised at 0.5 instead (as the evaluation simulator and a
    user do: a foreground click on hair or a veil that is only partly opaque). With a
    ``distractor`` alpha, about half of the background clicks land on it.
    """
    m = int(min(max_clicks, rng.geometric(p)))
    fg_mask = target > (0.5 if soft else 0.95)
    bg_mask = target <= 0.5 if soft else target < 0.05
    labels = [True] + [bool(rng.random() < 0.5) for _ in range(m - 1)]
    if not bg_mask.any():
        labels = [True] * m
    if not fg_mask.any():
        labels = [False] * m
    n_fg = sum(labels)
    n_bg = m - n_fg
    clicks = [Click(x, y, True) for x, y in _interior_points(fg_mask, rng, n_fg, margin)]
    if n_bg:
        if distractor is not None:
            on_d = bg_mask & (distractor > 0.95)
            k = int(rng.binomial(n_bg, 0.5)) if on_d.any() else 0
            clicks += [Click(x, y, False) for x, y in _interior_points(on_d, rng, k, margin)]
            n_bg -= k
        clicks += [Click(x, y, False) for x, y in _interior_points(bg_mask, rng, n_bg, margin)]
    return clicks


def degrade_alpha(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """A plausible imperfect previous prediction made from the ground truth."""
    a = alpha.copy()
    h, w = a.shape
    if rng.random() < 0.7:
        k = int(rng.integers(3, 25)) | 1
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        a = cv2.erode(a, ker) if rng.random() < 0.5 else cv2.dilate(a, ker)
    for _ in range(int(rng.integers(0, 4))):  # wrong blobs
        blob = np.zeros((h, w), np.float32)
        cv2.ellipse(blob, (int(rng.integers(w)), int(rng.integers(h))),
                    (int(rng.integers(8, w // 3)), int(rng.integers(8, h // 3))), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        val = float(rng.random() < 0.5)
        a = np.where(blob > 0, val, a)
    if rng.random() < 0.5:
        s = rng.uniform(0.1, 0.4)
        small = cv2.resize(a, (max(4, int(w * s)), max(4, int(h * s))), interpolation=cv2.INTER_AREA)
        a = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.5, 3.0))
    return np.clip(a, 0, 1).astype(np.float32)


def corrective_clicks(rng: np.random.Generator, prev: np.ndarray, target: np.ndarray, n: int) -> list[Click]:
    """Up to ``n`` clicks at the interior of the largest error regions of ``prev`` (label from ``target``)."""
    out: list[Click] = []
    fn = (target > 0.95) & (prev < 0.5)
    fp = (target < 0.05) & (prev >= 0.5)
    for _ in range(n):
        best = None
        for mask, is_fg in ((fn, True), (fp, False)):
            if not mask.any():
                continue
            dist = interior_distance(mask)
            d = float(dist.max())
            if best is None or d > best[0]:
                y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
                best = (d, int(x), int(y), is_fg, mask)
        if best is None or best[0] < 3:
            break
        _, x, y, is_fg, mask = best
        out.append(Click(x, y, is_fg))
        cv2.circle(mask.view(np.uint8), (x, y), 20, 0, -1)  # do not click the same region twice
    return out
