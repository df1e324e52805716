"""Generated training pictures: backgrounds (:func:`synth_background`: colour fields, blobs, stripes,
noise), objects (:func:`synth_object`: shapes with strands, see-through nets and veils, multi-part objects,
textured from the background photos) and :func:`camouflage` (a background in the target's colours).
All take a ``numpy`` random generator; colours are uint8 or float32 in [0, 1] as each function says.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .augment import random_affine


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
