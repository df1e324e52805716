"""Training samples from real photos of whole objects with binary masks (``real_objects/duts_tr``).

A saliency mask says which pixels belong to the object(s), not how opaque they are: its edge is a
few pixels of anti-aliasing, not matting ground truth. So every sample carries a ``weight`` map,
1 where the loss may look (pixels at least ``band`` px from the mask's edge) and 0 in the band
around the edge and in the padding that squares the photo. Several objects in one mask are one
target.

- :class:`RealObjectBank` loads the photos and masks once, long side at ``size``.
- :class:`RealObjectSampler` draws a whole photo (flipped, scaled 0.8-1.1, placed at a random
  offset on a ``size`` x ``size`` canvas padded by edge replication) with clicks on the whole
  object, and sometimes a degraded previous alpha with corrective clicks, as
  :class:`~.data.CompositeSampler` does for matting samples.
- :class:`MixedSampler` draws from a real-object sampler with probability ``p_real``, else from the
  matting sampler.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

from .click_sampling import corrective_clicks, degrade_alpha, sample_clicks
from .data import Sample
from ..image_io import read_alpha, read_rgb

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")


def mask_names(root: os.PathLike | str) -> list[str]:
    """Stems of ``root/image/*`` that have a ``root/mask/STEM.png``, sorted."""
    root = Path(root)
    if not (root / "image").is_dir() or not (root / "mask").is_dir():
        raise ValueError(f"{root} needs image/ and mask/ folders")
    stems = sorted(p.stem for p in (root / "image").iterdir() if p.suffix.lower() in IMAGE_EXTS)
    return [s for s in stems if (root / "mask" / f"{s}.png").is_file()]


def edge_weight(mask: np.ndarray, band: int) -> np.ndarray:
    """``(H, W)`` float32: 1 where ``mask`` (float in [0, 1]) is definite (< 0.05 or > 0.95) and at
    least ``band`` px from the 0.5 level set, else 0."""
    if band < 0:
        raise ValueError(f"band must be >= 0, got {band}")
    fg = mask > 0.5
    if fg.all() or not fg.any():
        dist = np.full(mask.shape, np.inf, np.float32)
    else:  # distance to the nearest pixel on the other side (the image border is no edge)
        dist = np.where(fg, distance_transform_edt(fg), distance_transform_edt(~fg))
    definite = (mask < 0.05) | (mask > 0.95)
    return ((dist > band) & definite).astype(np.float32)


class RealObjectBank:
    """``images[i]`` uint8 (h, w, 3) and ``masks[i]`` float32 (h, w) in [0, 1], long side ``size``."""

    def __init__(self, root: os.PathLike | str, size: int, names: Optional[Sequence[str]] = None,
                 limit: int = 0) -> None:
        if size < 32:
            raise ValueError(f"size must be >= 32, got {size}")
        root = Path(root)
        stems = list(names) if names is not None else mask_names(root)
        if limit > 0:
            stems = stems[:limit]
        if not stems:
            raise ValueError(f"no photos with masks under {root}")
        by_stem = {p.stem: p for p in (root / "image").iterdir() if p.suffix.lower() in IMAGE_EXTS}
        self.names = stems
        self.images: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        for s in stems:
            img = read_rgb(by_stem[s])
            m = read_alpha(root / "mask" / f"{s}.png")
            if m.shape != img.shape[:2]:
                m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
            k = size / max(img.shape[:2])
            if k != 1.0:
                wh = (max(1, round(img.shape[1] * k)), max(1, round(img.shape[0] * k)))
                interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
                img, m = cv2.resize(img, wh, interpolation=interp), cv2.resize(m, wh, interpolation=interp)
            self.images.append(np.ascontiguousarray(img))
            self.masks.append(np.clip(m, 0, 1).astype(np.float32))

    def __len__(self) -> int:
        return len(self.images)


class RealObjectSampler:
    """Draws weighted :class:`~.data.Sample` s (``kind == "real"``) of size ``size`` from a bank."""

    def __init__(self, bank: RealObjectBank, size: int, band: int = 3, p_prev: float = 0.4,
                 scale: tuple[float, float] = (0.8, 1.1)) -> None:
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be 0 < lo <= hi, got {scale}")
        self.bank, self.size, self.band, self.p_prev, self.scale = bank, size, band, p_prev, scale

    def sample(self, rng: np.random.Generator) -> Sample:
        s = self.size
        i = int(rng.integers(len(self.bank)))
        img, m = self.bank.images[i], self.bank.masks[i]
        if rng.random() < 0.5:
            img, m = img[:, ::-1], m[:, ::-1]
        h, w = m.shape
        k = float(rng.uniform(*self.scale)) * s / max(h, w)
        nh, nw = min(s, max(8, round(h * k))), min(s, max(8, round(w * k)))
        img = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        m = cv2.resize(np.ascontiguousarray(m), (nw, nh), interpolation=cv2.INTER_LINEAR)
        weight = edge_weight(m, self.band)
        y0, x0 = int(rng.integers(0, s - nh + 1)), int(rng.integers(0, s - nw + 1))
        pads = (y0, s - nh - y0, x0, s - nw - x0)
        image = cv2.copyMakeBorder(img, *pads, cv2.BORDER_REPLICATE)
        target = cv2.copyMakeBorder(m, *pads, cv2.BORDER_CONSTANT, value=0.0)
        weight = cv2.copyMakeBorder(weight, *pads, cv2.BORDER_CONSTANT, value=0.0)
        if rng.random() < 0.3:  # sensor noise
            image = np.clip(image.astype(np.float32) + rng.normal(0, rng.uniform(1, 6), image.shape), 0, 255).astype(np.uint8)
        # clicks only where the mask is trusted: the band and the padding are neither fg nor bg
        click_target = np.where(weight > 0, target, 0.5).astype(np.float32)
        prev = None
        if rng.random() < self.p_prev and (click_target > 0.95).any():
            prev = degrade_alpha(rng, target)
            clicks = sample_clicks(rng, click_target, None, p=1 / 3, max_clicks=8, margin=10)
            clicks += corrective_clicks(rng, prev, click_target, int(rng.integers(1, 4)))
        else:
            clicks = sample_clicks(rng, click_target, None, margin=10)
        return Sample(np.ascontiguousarray(image), target.astype(np.float32), clicks, prev, "real",
                      weight=weight.astype(np.float32))


class MixedSampler:
    """``real.sample`` with probability ``p_real``, else ``matting.sample``."""

    def __init__(self, matting, real: RealObjectSampler, p_real: float) -> None:
        if not 0.0 <= p_real <= 1.0:
            raise ValueError(f"p_real must be in [0, 1], got {p_real}")
        self.matting, self.real, self.p_real = matting, real, p_real

    def sample(self, rng: np.random.Generator) -> Sample:
        return self.real.sample(rng) if rng.random() < self.p_real else self.matting.sample(rng)
