"""Merging a new answer with the previous alpha: only where the clicks ask for it, or everywhere but
against them.

After clicks are added to a chain whose previous alpha is known, the network's new answer may also
change parts far from (or right next to) a click that were already right. :func:`merge_mask` keeps
the change only in the regions the clicks pull towards their label, in the way of FocalClick's
progressive merge, extended to soft alpha:

- a foreground click keeps the connected region of pixels whose alpha went *up* by more than
  ``threshold`` that touches the click's disk;
- a background click keeps the connected region whose alpha went *down* by more than ``threshold``
  that touches its disk;
- the union of these regions is grown by ``grow`` pixels (the soft edge around a changed part) and
  feathered, and the result is a weight in [0, 1]: 1 takes the new alpha, 0 keeps the previous one.

A click that lands on a part the previous alpha already had right moves nothing, so it cannot break
the part around it; changes that no click points at are dropped.

:func:`guard_mask` is the milder rule: the new answer is kept everywhere except where it moves a
part a click stands on against that click's label. A foreground click guards the connected part of
sure foreground (previous alpha >= ``1 - sure``) under its disk from going down, a background click
the sure background (<= ``sure``) under its disk from going up; a region that another click pulls
its way (the :func:`merge_mask` regions) is not guarded.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .clicks import Click

#: the least change of alpha (in [0, 1]) that counts as moved towards a click's label
DEFAULT_THRESHOLD = 0.1
#: pixels (at the resolution of the arrays) by which the kept regions grow to take their soft edges
DEFAULT_GROW = 4


def merge_mask(
    prev: np.ndarray,
    new: np.ndarray,
    clicks: Sequence[Click],
    radius: float,
    threshold: float = DEFAULT_THRESHOLD,
    grow: int = DEFAULT_GROW,
) -> np.ndarray:
    """The weight of the new answer, ``(h, w)`` float32 in [0, 1].

    ``prev`` and ``new``: ``(h, w)`` float alphas in [0, 1] at one resolution; ``clicks`` in pixels of
    that resolution; ``radius`` (> 0) of each click's disk in those pixels; ``threshold`` in (0, 1);
    ``grow`` >= 0 pixels. ValueError for mismatched shapes or out-of-range settings.
    """
    if prev.shape != new.shape or prev.ndim != 2:
        raise ValueError(f"prev and new must be equal (h, w) arrays, got {prev.shape} and {new.shape}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be within (0, 1), got {threshold}")
    if not radius > 0 or grow < 0:
        raise ValueError(f"radius must be > 0 and grow >= 0, got {radius}, {grow}")
    h, w = prev.shape
    diff = new.astype(np.float32) - prev.astype(np.float32)
    keep = _touching(diff > threshold, [c for c in clicks if c.is_fg], radius)
    keep |= _touching(diff < -threshold, [c for c in clicks if not c.is_fg], radius)
    if not keep.any():
        return np.zeros((h, w), np.float32)
    weight = keep.astype(np.float32)
    if grow > 0:
        k = 2 * grow + 1
        weight = cv2.dilate(weight, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        weight = cv2.blur(weight, (k, k))
        weight = np.maximum(weight, keep.astype(np.float32))
    return np.clip(weight, 0.0, 1.0)


#: the previous alpha at or beyond which (``1 - sure`` for foreground, ``sure`` for background) a
#: clicked part counts as sure and is guarded
DEFAULT_SURE = 0.1


def _touching(region: np.ndarray, clicks: Sequence[Click], radius: float) -> np.ndarray:
    """The connected parts (8-connected) of the bool ``region`` that meet any click's disk."""
    if not clicks or not region.any():
        return np.zeros(region.shape, bool)
    n, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    disks = np.zeros(region.shape, np.uint8)
    r = max(1, int(round(radius)))
    for c in clicks:
        cv2.circle(disks, (int(round(c.x)), int(round(c.y))), r, 1, thickness=-1)
    touched = np.unique(labels[(disks > 0) & region])
    return np.isin(labels, touched) if touched.size else np.zeros(region.shape, bool)


def guard_mask(
    prev: np.ndarray,
    new: np.ndarray,
    clicks: Sequence[Click],
    radius: float,
    threshold: float = DEFAULT_THRESHOLD,
    sure: float = DEFAULT_SURE,
    grow: int = DEFAULT_GROW,
) -> np.ndarray:
    """The weight of the new answer under the guard rule (module docstring), ``(h, w)`` float32 in [0, 1].

    Arguments as :func:`merge_mask`; ``sure`` in (0, 0.5). The guarded pixels (weight 0) are those of a
    clicked sure part that moved against the click by more than ``threshold``; ``grow`` feathers them.
    """
    if prev.shape != new.shape or prev.ndim != 2:
        raise ValueError(f"prev and new must be equal (h, w) arrays, got {prev.shape} and {new.shape}")
    if not 0.0 < threshold < 1.0 or not 0.0 < sure < 0.5:
        raise ValueError(f"threshold must be within (0, 1) and sure within (0, 0.5), got {threshold}, {sure}")
    if not radius > 0 or grow < 0:
        raise ValueError(f"radius must be > 0 and grow >= 0, got {radius}, {grow}")
    prev = prev.astype(np.float32)
    diff = new.astype(np.float32) - prev
    fg = [c for c in clicks if c.is_fg]
    bg = [c for c in clicks if not c.is_fg]
    pulled_up = _touching(diff > threshold, fg, radius)
    pulled_down = _touching(diff < -threshold, bg, radius)
    guarded = (_touching(prev >= 1.0 - sure, fg, radius) & (diff < -threshold) & ~pulled_down) | (
        _touching(prev <= sure, bg, radius) & (diff > threshold) & ~pulled_up
    )
    if not guarded.any():
        return np.ones(prev.shape, np.float32)
    hold = guarded.astype(np.float32)
    if grow > 0:
        k = 2 * grow + 1
        hold = np.maximum(cv2.blur(cv2.dilate(hold, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), (k, k)), hold)
    return np.clip(1.0 - hold, 0.0, 1.0)
