"""Training data: re-composited matting samples with clicks (and a simulated previous alpha).

- :class:`CropBank` holds real (image, alpha) crops and their estimated foreground colours
  (pymatting's ``estimate_foreground_ml``, cached on disk).
- :func:`augment_layer` warps a foreground (flip, scale, rotation, shift, colour jitter).
- :class:`CompositeSampler` draws samples: a real crop as it is, a crop re-composited on another
  background (photos or generated), or a **multi-object** composite of two foregrounds where the
  target is the object carrying the foreground clicks and background clicks may fall on the
  other — so that clicks select which object is foreground.
- Clicks: ``m ~ Geometric(1/6)`` per sample (radius set by the encoder), foreground clicks in
  the target's solid interior, background clicks in the solid background; with some probability a
  previous alpha (a degraded ground truth, RITM-style) plus corrective clicks on its errors.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from .click_simulator import interior_distance
from .clicks import Click, encode_clicks


def read_rgb(path: os.PathLike | str) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_alpha(path: os.PathLike | str) -> np.ndarray:
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ValueError(f"cannot read alpha {path}")
    if a.ndim == 3:
        a = a[..., 0]
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    return a.astype(np.float32) / scale


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


def synth_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A generated background: smooth colour field, blurred blobs, stripes or noise (uint8)."""
    kind = rng.integers(4)
    if kind == 0:  # smooth colour gradient
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = np.linspace(0, 1, size, dtype=np.float32)
        ang = rng.uniform(0, np.pi)
        yy, xx = np.meshgrid(t, t, indexing="ij")
        g = (np.cos(ang) * xx + np.sin(ang) * yy)
        g = (g - g.min()) / (np.ptp(g) + 1e-6)
        img = c0 * (1 - g[..., None]) + c1 * g[..., None]
    elif kind == 1:  # blurred blobs
        img = np.full((size, size, 3), rng.uniform(0, 255, 3), np.float32)
        for _ in range(rng.integers(5, 30)):
            c = tuple(int(v) for v in rng.uniform(0, 255, 3))
            cv2.circle(img, (int(rng.integers(size)), int(rng.integers(size))), int(rng.integers(5, size // 3)), c, -1)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 8))
    elif kind == 2:  # stripes / texture
        img = np.full((size, size, 3), rng.uniform(0, 255, 3), np.float32)
        period = rng.uniform(4, 40)
        t = np.arange(size, dtype=np.float32)
        s = (np.sin(2 * np.pi * t / period) > 0).astype(np.float32)
        img = img * (0.6 + 0.4 * (s[None, :, None] if rng.random() < 0.5 else s[:, None, None]))
    else:  # coloured noise
        img = rng.uniform(0, 255, (size // 8 + 1, size // 8 + 1, 3)).astype(np.float32)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0, 12, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def camouflage(bg: np.ndarray, fg: np.ndarray, alpha: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Recolour a background towards a foreground's colours (Reinhard colour transfer in Lab).

    ``bg``, ``fg``: ``(H, W, 3)`` float32 RGB in [0, 1]; ``alpha``: ``(H, W)`` float in [0, 1], the
    foreground's coverage (its colour statistics are alpha-weighted). ``strength`` in [0, 1]: 0 leaves
    ``bg`` as it is, 1 gives it the foreground's per-channel Lab mean and spread. Returns float32
    ``(H, W, 3)`` in [0, 1].

    Real photos often put an object on a background of its own colours (an orange fruit on orange
    flowers, a tan dog on sand); a net trained only on contrasting composites reads "looks like the
    background" as "partly transparent" and turns such objects translucent. Composites on camouflaged
    backgrounds teach it to keep an opaque object opaque from its shape and texture.
    """
    if bg.ndim != 3 or bg.shape[2] != 3 or fg.shape != bg.shape or alpha.shape != bg.shape[:2]:
        raise ValueError(f"bg {bg.shape}, fg {fg.shape} and alpha {alpha.shape} must be (H, W, 3), (H, W, 3), (H, W)")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    w = np.clip(alpha, 0, 1).astype(np.float32)
    total = float(w.sum())
    if total < 1.0 or strength == 0.0:
        return bg.astype(np.float32)
    lab_bg = cv2.cvtColor(np.clip(bg, 0, 1).astype(np.float32), cv2.COLOR_RGB2LAB)
    lab_fg = cv2.cvtColor(np.clip(fg, 0, 1).astype(np.float32), cv2.COLOR_RGB2LAB)
    mu_f = (lab_fg * w[..., None]).reshape(-1, 3).sum(0) / total
    sd_f = np.sqrt(((lab_fg - mu_f) ** 2 * w[..., None]).reshape(-1, 3).sum(0) / total)
    mu_b = lab_bg.reshape(-1, 3).mean(0)
    sd_b = lab_bg.reshape(-1, 3).std(0)
    moved = (lab_bg - mu_b) / np.maximum(sd_b, 1e-3) * np.maximum(sd_f, 1.0) + mu_f
    moved[..., 0] = np.clip(moved[..., 0], 0, 100)
    rgb = np.clip(cv2.cvtColor(moved.astype(np.float32), cv2.COLOR_LAB2RGB), 0, 1)
    return ((1 - strength) * bg + strength * rgb).astype(np.float32)


def synth_shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """A solid blob (float32 ``(size, size)`` in {0, 1}): a union of ellipses and a random polygon, smoothed."""
    m = np.zeros((size, size), np.float32)
    c = rng.uniform(0.3, 0.7, 2) * size
    for _ in range(int(rng.integers(1, 5))):
        centre = (int(c[0] + rng.normal(0, size * 0.12)), int(c[1] + rng.normal(0, size * 0.12)))
        axes = (int(rng.uniform(0.08, 0.3) * size), int(rng.uniform(0.08, 0.3) * size))
        cv2.ellipse(m, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    if rng.random() < 0.6:  # a star-like polygon: limbs, ears, corners
        n = int(rng.integers(5, 14))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.1, 0.45, n) * size
        pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(m, [pts], 1.0)
    m = cv2.GaussianBlur(m, (0, 0), rng.uniform(1.0, 6.0))
    return (m > 0.5).astype(np.float32)


def add_strands(rng: np.random.Generator, alpha: np.ndarray, n: int) -> np.ndarray:
    """Thin anti-aliased hair-like curves growing out of the edge of ``alpha`` (partial alpha)."""
    h, w = alpha.shape
    edge = np.argwhere((alpha > 0.5) & (cv2.erode((alpha > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0))
    if len(edge) == 0:
        return alpha
    layer = np.zeros((h * 4, w * 4), np.uint8)  # drawn at 4x, area-averaged down: sub-pixel thin strands
    cy, cx = np.argwhere(alpha > 0.5).mean(axis=0)
    for _ in range(n):
        y, x = edge[int(rng.integers(len(edge)))].astype(np.float64)
        ang = np.arctan2(y - cy, x - cx) + rng.normal(0, 0.6)  # outward, roughly
        steps = int(rng.integers(4, 14))
        pts = [(x, y)]
        for _ in range(steps):
            ang += rng.normal(0, 0.25)
            x, y = x + 3 * np.cos(ang), y + 3 * np.sin(ang)
            pts.append((x, y))
        p = (np.array(pts) * 4).astype(np.int32)
        cv2.polylines(layer, [p], False, int(rng.integers(120, 256)), int(rng.integers(1, 6)), cv2.LINE_AA)
    strands = cv2.resize(layer, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return np.maximum(alpha, strands)


def see_through(rng: np.random.Generator, size: int) -> np.ndarray:
    """An opacity pattern (float32 ``(size, size)`` in [0, 1]) for nets, lace, mesh and veils.

    A mesh of threads (drawn at 4x and area-averaged: sub-pixel threads, anti-aliased) over a
    semi-transparent base, or a veil whose opacity varies smoothly like folds of cloth; either
    covers the whole object or a random region of it (the rest stays solid).
    """
    if rng.random() < 0.6:  # mesh / net / lace
        big = size * 4
        layer = np.zeros((big, big), np.uint8)
        period = rng.uniform(3, 14) * 4
        thick = int(max(1, rng.uniform(0.15, 0.5) * period))
        angles = [rng.uniform(0, np.pi)]
        if rng.random() >= 0.2:  # a second set of threads crossing the first: a net (else parallel threads)
            angles.append(rng.uniform(0, np.pi))
        for ang in angles:
            d = np.array([np.cos(ang), np.sin(ang)])
            n = np.array([-d[1], d[0]])
            for k in np.arange(-big, big, period):
                p0 = big / 2 + n * k - d * big * 1.5
                p1 = big / 2 + n * k + d * big * 1.5
                cv2.line(layer, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 255, thick, cv2.LINE_AA)
        threads = cv2.resize(layer, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        if rng.random() < 0.5:  # cloth drapes: warp the mesh smoothly
            flow = cv2.resize(rng.normal(0, size * 0.02, (6, 6, 2)).astype(np.float32), (size, size),
                              interpolation=cv2.INTER_CUBIC)
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
            threads = cv2.remap(threads, xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        base = rng.uniform(0.0, 0.5)
        pattern = base + (rng.uniform(0.7, 1.0) - base) * threads
    else:  # veil: smooth partial opacity
        lo = rng.uniform(0.15, 0.6)
        noise = cv2.resize(rng.random((5, 5)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        pattern = lo + (rng.uniform(lo, 0.95) - lo) * np.clip(noise, 0, 1)
    if rng.random() < 0.5:  # only part of the object is see-through (a lace hem, a veil over a face)
        region = cv2.GaussianBlur(synth_shape(rng, size), (0, 0), 2.0)
        pattern = 1.0 - region * (1.0 - pattern)
    return np.clip(pattern, 0, 1).astype(np.float32)


def part_masks(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """``n`` soft part masks (float32 ``(n, size, size)``, summing to 1 at every pixel) that cut the canvas
    into regions: nearest of ``n`` random seeds, with boundaries bent by a smooth random warp, like the
    parts of one object (face and suit, cup and saucer, head and body)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seeds = rng.uniform(0.2, 0.8, (n, 2)) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = cv2.resize(rng.normal(0, size * 0.08, (4, 4, 2)).astype(np.float32), (size, size),
                      interpolation=cv2.INTER_CUBIC)
    x, y = xx + flow[..., 0], yy + flow[..., 1]
    d = np.stack([(x - sx) ** 2 + (y - sy) ** 2 for sx, sy in seeds])
    hard = (d == d.min(axis=0, keepdims=True)).astype(np.float32)
    soft = np.stack([cv2.GaussianBlur(m, (0, 0), 1.0) for m in hard])
    return (soft / np.maximum(soft.sum(axis=0, keepdims=True), 1e-6)).astype(np.float32)


def _texture(rng: np.random.Generator, textures: Sequence[np.ndarray], size: int) -> np.ndarray:
    """A photo crop of ``textures`` (80 %) or a generated pattern, float32 ``(size, size, 3)`` in [0, 1]."""
    if textures and rng.random() < 0.8:
        t = textures[int(rng.integers(len(textures)))]
        m = random_affine(rng, t.shape[0], size, (0.8, 2.0), 180.0, 0.2)
        return cv2.warpAffine(np.ascontiguousarray(t), m, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT).astype(np.float32) / 255.0
    return synth_background(rng, size).astype(np.float32) / 255.0


def synth_object(rng: np.random.Generator, textures: Sequence[np.ndarray], size: int,
                 p_see_through: float = 0.0, p_parts: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic foreground: a solid textured blob with a soft, sometimes hairy edge.

    Teaches what the hair-crop data lacks: large opaque objects of any colour and texture (dark fur,
    faces, fruit) that a foreground click should keep whole; with ``p_see_through`` the object is
    (partly) a net, lace or veil (:func:`see_through`); with ``p_parts`` it is made of 2-3 parts that
    look unlike each other (:func:`part_masks`, each part its own texture and brightness), yet all of
    it is the target, as a face above an orange suit is one astronaut. Returns ``(fg, alpha)``: float32
    ``(size, size, 3)`` and ``(size, size)`` in [0, 1].
    """
    a = synth_shape(rng, size)
    if rng.random() < 0.5:
        a = add_strands(rng, a, int(rng.integers(20, 200)))
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 1.5))  # a soft edge
    if rng.random() < p_see_through:
        a = a * see_through(rng, size)
    fg = _texture(rng, textures, size)
    if p_parts > 0 and rng.random() < p_parts:  # (no draw when off: the same objects as before)
        parts = part_masks(rng, size, int(rng.integers(2, 4)))
        tex = [fg] + [_texture(rng, textures, size) * rng.uniform(0.5, 1.3) for _ in range(len(parts) - 1)]
        fg = np.einsum("nhw,nhwc->hwc", parts, np.stack(tex))
    if rng.random() < 0.5:  # shading: objects are lit from one side
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        ang = rng.uniform(0, 2 * np.pi)
        fg = fg * (0.6 + 0.6 * (np.cos(ang) * xx + np.sin(ang) * yy))[..., None]
    return np.clip(fg, 0, 1).astype(np.float32), np.clip(a, 0, 1).astype(np.float32)


def random_affine(rng: np.random.Generator, src: int, dst: int, scale: tuple[float, float],
                  max_rot: float, center_jitter: float) -> np.ndarray:
    s = rng.uniform(*scale) * dst / src
    ang = rng.uniform(-max_rot, max_rot)
    m = cv2.getRotationMatrix2D((src / 2, src / 2), ang, s)
    cx = dst / 2 + rng.uniform(-center_jitter, center_jitter) * dst
    cy = dst / 2 + rng.uniform(-center_jitter, center_jitter) * dst
    m[0, 2] += cx - src / 2
    m[1, 2] += cy - src / 2
    return m


def augment_layer(rng: np.random.Generator, fg: np.ndarray, alpha: np.ndarray, dst: int,
                  scale: tuple[float, float] = (0.8, 1.25), max_rot: float = 15.0,
                  center_jitter: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Warp a foreground (float HxWx3 in [0, 1]) and its alpha onto a ``dst`` x ``dst`` canvas."""
    if rng.random() < 0.5:
        fg, alpha = fg[:, ::-1], alpha[:, ::-1]
    m = random_affine(rng, fg.shape[0], dst, scale, max_rot, center_jitter)
    f = cv2.warpAffine(np.ascontiguousarray(fg), m, (dst, dst), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a = cv2.warpAffine(np.ascontiguousarray(alpha), m, (dst, dst), flags=cv2.INTER_LINEAR, borderValue=0)
    # appearance: foregrounds of any colour and brightness (the crops are mostly light hair and fur,
    # which otherwise teaches "bright = foreground")
    u = rng.random()
    if u < 0.2:
        f = 1.0 - f  # dark hair from light hair
    elif u < 0.4:
        f = f * rng.uniform(0.1, 0.5)  # darker object
    if rng.random() < 0.3:
        f = f[..., rng.permutation(3)]
    # colour jitter: gain, bias, saturation
    f = f * rng.uniform(0.75, 1.25, 3).astype(np.float32) + rng.uniform(-0.06, 0.06)
    gray = f.mean(axis=2, keepdims=True)
    f = gray + (f - gray) * rng.uniform(0.6, 1.3)
    return np.clip(f, 0, 1).astype(np.float32), np.clip(a, 0, 1).astype(np.float32)


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
