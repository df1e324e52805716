"""Training samples: the crop bank and the sampler that composes samples with clicks (and a simulated
previous alpha).

- :class:`CropBank` holds real (image, alpha) crops and their estimated foreground colours
  (pymatting's ``estimate_foreground_ml``, cached on disk).
- :class:`CompositeSampler` draws :class:`Sample` s: a real crop as it is, a crop re-composited on another
  background (photos or generated), or a **multi-object** composite of two foregrounds where the
  target is the object carrying the foreground clicks and background clicks may fall on the
  other — so that clicks select which object is foreground. Layers are warped by :mod:`.augment`,
  generated backgrounds and objects come from :mod:`.synthetic`, clicks and previous alphas from
  :mod:`.click_sampling` (``m ~ Geometric(1/6)`` clicks per sample; with some probability a degraded
  ground truth as the previous alpha plus corrective clicks on its errors).
- :func:`pack_batch` stacks samples in compact dtypes for a DataLoader worker.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from .augment import augment_layer, random_affine
from .click_sampling import corrective_clicks, degrade_alpha, sample_clicks
from ..inference.clicks import Click, encode_clicks
from ..image_io import read_alpha, read_rgb
from .synthetic import camouflage, synth_background, synth_object


def foreground_cache_path(cache_dir: os.PathLike | str, image: np.ndarray, alpha: np.ndarray) -> Path:
    """Where :class:`CropBank` caches the uint8 foreground estimate of ``image`` (uint8) + ``alpha`` (float32)."""
    key = hashlib.sha1(image.tobytes() + alpha.tobytes()).hexdigest()[:16]
    return Path(cache_dir) / f"fg_{key}.npy"


class CropBank:
    """Real crops: ``images[i]`` uint8 HxWx3, ``alphas[i]`` float32 HxW, ``foregrounds[i]`` float32 HxWx3 in [0, 1]
    (empty with ``foregrounds=False``)."""

    def __init__(self, root: os.PathLike | str, names: Sequence[str], cache_dir: Optional[os.PathLike | str] = None,
                 foregrounds: bool = True) -> None:
        root = Path(root)
        if not names:
            raise ValueError("CropBank needs at least one crop name")
        self.names = list(names)
        self.images = [read_rgb(root / "image" / n) for n in self.names]
        self.alphas = [read_alpha(root / "alpha" / n) for n in self.names]
        # foreground colours are only needed for re-compositing (skip them for validation-only banks)
        self.foregrounds = [self._foreground(i, cache_dir) for i in range(len(self.names))] if foregrounds else []

    def _foreground(self, i: int, cache_dir: Optional[os.PathLike | str]) -> np.ndarray:
        img, a = self.images[i], self.alphas[i]
        path = foreground_cache_path(cache_dir, img, a) if cache_dir else None
        if path is not None and path.is_file():
            return np.load(path).astype(np.float32) / 255.0
        from pymatting import estimate_foreground_ml

        fg = estimate_foreground_ml(img.astype(np.float64) / 255.0, a.astype(np.float64))
        fg8 = np.clip(np.rint(fg * 255), 0, 255).astype(np.uint8)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, fg8)
        return fg8.astype(np.float32) / 255.0

    def __len__(self) -> int:
        return len(self.names)


def load_backgrounds(folder: os.PathLike | str) -> list[np.ndarray]:
    folder = Path(folder)
    return [read_rgb(p) for p in sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg"))]


@dataclass
class Sample:
    image: np.ndarray  # (S, S, 3) uint8
    alpha: np.ndarray  # (S, S) float32 target
    clicks: list[Click]
    prev_alpha: Optional[np.ndarray]  # (S, S) float32 or None
    kind: str
    weight: Optional[np.ndarray] = None  # (S, S) float32 in {0, 1}: where a mask target is trusted (None: all of it, matting ground truth)


class CompositeSampler:
    """Draws :class:`Sample` s of size ``size`` from a :class:`CropBank` and backgrounds."""

    def __init__(self, bank: CropBank, backgrounds: Sequence[np.ndarray], size: int = 256,
                 p_original: float = 0.25, p_multi: float = 0.35, p_prev: float = 0.4,
                 p_synth_bg: float = 0.3, p_soft_clicks: float = 0.0, p_synth_obj: float = 0.0,
                 p_see_through: float = 0.0, p_camouflage: float = 0.0, p_zoom: float = 0.0,
                 p_parts: float = 0.0) -> None:
        if size < 32:
            raise ValueError(f"size must be >= 32, got {size}")
        self.bank, self.backgrounds, self.size = bank, list(backgrounds), size
        self.p_original, self.p_multi, self.p_prev, self.p_synth_bg = p_original, p_multi, p_prev, p_synth_bg
        self.p_soft_clicks = p_soft_clicks  # share of samples whose clicks binarise the alpha at 0.5
        self.p_synth_obj = p_synth_obj  # share of composited layers that are synthetic objects (synth_object)
        self.p_see_through = p_see_through  # share of synthetic objects that are nets, lace or veils
        self.p_camouflage = p_camouflage  # share of composites whose background takes the target's colours
        self.p_zoom = p_zoom  # share of single-object samples magnified 1.6-2.6x: objects larger than the frame
        self.p_parts = p_parts  # share of synthetic objects made of 2-3 unlike-looking parts (synth_object)

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        s = self.size
        if not self.backgrounds or rng.random() < self.p_synth_bg:
            return synth_background(rng, s).astype(np.float32) / 255.0
        bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        m = random_affine(rng, bg.shape[0], s, (1.0, 1.6), 10.0, 0.1)
        if rng.random() < 0.5:
            bg = bg[:, ::-1]
        out = cv2.warpAffine(np.ascontiguousarray(bg), m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.3:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(1, 4))
        return out.astype(np.float32) / 255.0

    def _layer(self, rng: np.random.Generator, i: int, scale: tuple[float, float], max_rot: float,
               jitter: float) -> tuple[np.ndarray, np.ndarray]:
        """Foreground ``i`` of the bank, or (with ``p_synth_obj``) a synthetic object, warped to the canvas."""
        if rng.random() < self.p_synth_obj:
            f, a = synth_object(rng, self.backgrounds, self.size, self.p_see_through, self.p_parts)
            return augment_layer(rng, f, a, self.size, (scale[0] + 0.3, scale[1] + 0.3), max_rot, jitter)
        return augment_layer(rng, self.bank.foregrounds[i], self.bank.alphas[i], self.size, scale, max_rot, jitter)

    def sample(self, rng: np.random.Generator) -> Sample:
        s = self.size
        i = int(rng.integers(len(self.bank)))
        distractor = None
        u = rng.random()
        # a photo's subject often fills the frame: its interior, far from any edge, must stay solid
        zoom = float(rng.uniform(1.6, 2.6)) if rng.random() < self.p_zoom else 1.0
        if u < self.p_original:
            kind = "original"
            img = self.bank.images[i]
            a = self.bank.alphas[i]
            m = random_affine(rng, img.shape[0], s, (0.8 * zoom, 1.2 * zoom), 10.0, 0.05)
            if rng.random() < 0.5:
                img, a = img[:, ::-1], a[:, ::-1]
            image = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            target = np.clip(cv2.warpAffine(np.ascontiguousarray(a), m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), 0, 1)
        elif u < self.p_original + self.p_multi:
            kind = "multi"
            j = int(rng.integers(len(self.bank)))
            bg = self._background(rng)
            fa, aa = self._layer(rng, i, (0.4, 0.7), 20.0, 0.28)
            fb, ab = self._layer(rng, j, (0.4, 0.7), 20.0, 0.28)
            if rng.random() < self.p_camouflage:
                bg = camouflage(bg, fa, aa, float(rng.uniform(0.6, 1.0)))
            if rng.random() < 0.5:  # distractor behind the target
                comp = fb * ab[..., None] + bg * (1 - ab[..., None])
                comp = fa * aa[..., None] + comp * (1 - aa[..., None])
                target, distractor = aa, ab * (1 - aa)
            else:  # distractor in front
                comp = fa * aa[..., None] + bg * (1 - aa[..., None])
                comp = fb * ab[..., None] + comp * (1 - ab[..., None])
                target, distractor = aa * (1 - ab), ab
            image = np.clip(comp * 255 + 0.5, 0, 255).astype(np.uint8)
        else:
            kind = "recomposite"
            bg = self._background(rng)
            f, a = self._layer(rng, i, (0.8 * zoom, 1.25 * zoom), 15.0, 0.1)
            if rng.random() < self.p_camouflage:
                bg = camouflage(bg, f, a, float(rng.uniform(0.6, 1.0)))
            comp = f * a[..., None] + bg * (1 - a[..., None])
            image = np.clip(comp * 255 + 0.5, 0, 255).astype(np.uint8)
            target = a
        if rng.random() < 0.3:  # sensor noise
            image = np.clip(image.astype(np.float32) + rng.normal(0, rng.uniform(1, 6), image.shape), 0, 255).astype(np.uint8)
        target = target.astype(np.float32)
        prev = None
        soft = bool(rng.random() < self.p_soft_clicks)
        if rng.random() < self.p_prev and (target > 0.95).any():
            prev = degrade_alpha(rng, target)
            base = sample_clicks(rng, target, distractor, p=1 / 3, max_clicks=8, soft=soft)
            clicks = base + corrective_clicks(rng, prev, target, int(rng.integers(1, 4)))
        else:
            clicks = sample_clicks(rng, target, distractor, soft=soft)
        return Sample(np.ascontiguousarray(image), target, clicks, prev, kind)


def _stack(samples: Sequence[Sample], radius: float) -> dict[str, np.ndarray]:
    """rgb uint8 (B,3,S,S); clicks, prev, alpha float32 (B,2|1|1,S,S)."""
    s = samples[0].image.shape[0]
    return {
        "rgb": np.stack([x.image.transpose(2, 0, 1) for x in samples]),
        "clicks": np.stack([encode_clicks(x.clicks, s, s, radius) for x in samples]),
        "prev": np.stack([(x.prev_alpha if x.prev_alpha is not None else np.zeros((s, s), np.float32))[None]
                          for x in samples]).astype(np.float32),
        "alpha": np.stack([x.alpha[None] for x in samples]).astype(np.float32),
        "weight": np.stack([(x.weight if x.weight is not None else np.ones((s, s), np.float32))[None]
                            for x in samples]).astype(np.float32),
        "is_mask": np.array([x.weight is not None for x in samples], np.float32),
    }


def pack_batch(samples: Sequence[Sample], radius: float) -> dict[str, np.ndarray]:
    """Stack samples in compact dtypes for the trip from a DataLoader worker: rgb uint8 (B,3,S,S), click
    disks uint8 (B,2,S,S) (fg, bg), prev and alpha float16 (B,1,S,S) in [0, 1], weight uint8 (B,1,S,S)
    in {0, 1} (where the target is trusted), is_mask uint8 (B,) (1 for mask targets)."""
    b = _stack(samples, radius)
    return {"rgb": b["rgb"], "clicks": b["clicks"].astype(np.uint8),
            "prev": b["prev"].astype(np.float16), "alpha": b["alpha"].astype(np.float16),
            "weight": b["weight"].astype(np.uint8), "is_mask": b["is_mask"].astype(np.uint8)}
