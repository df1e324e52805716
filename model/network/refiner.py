"""Local refinement (Wei et al.): k x k full-resolution patches of RGB + coarse alpha + sigma.

- :class:`PatchRefiner` is the network: a small U-Net on a patch with a context margin,
  predicting a residual on the coarse alpha of the patch's centre ``k x k`` pixels.
- :func:`select_patches` picks the top-N most uncertain non-overlapping patches, optionally
  restricted to rectangles or a mask, or to windows whose coarse alpha is mostly not soft
  (:func:`window_soft_fraction`); :func:`covering_patches` tiles a region completely.
- :func:`crop_patches` / :func:`paste_patches` move patches between the full-resolution image and
  the network (paste can be limited to a mask, so "refine selection" never touches pixels
  outside it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Box = tuple[int, int, int, int]  # x, y, w, h in pixels

SOFT_LOW, SOFT_HIGH = 0.05, 0.95  # alpha strictly between these is "soft" (neither sure foreground nor background)


@dataclass
class RefinerConfig:
    patch_size: int = 64
    margin: int = 16
    width: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RefinerConfig":
        return cls(**d)


def _cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class PatchRefiner(nn.Module):
    """``forward(rgb, alpha, sigma)`` on patches with context.

    Inputs are ``(B, 3|1|1, k + 2m, k + 2m)``: RGB in [0, 1], coarse alpha in [0, 1], sigma > 0.
    Returns the refined alpha of the centre, ``(B, 1, k, k)`` in [0, 1].
    """

    def __init__(self, config: Optional[RefinerConfig] = None) -> None:
        super().__init__()
        self.config = config or RefinerConfig()
        w = self.config.width
        self.enc1 = nn.Sequential(_cbr(5, w), _cbr(w, w))
        self.enc2 = nn.Sequential(_cbr(w, 2 * w, stride=2), _cbr(2 * w, 2 * w))
        self.enc3 = nn.Sequential(_cbr(2 * w, 2 * w, stride=2), _cbr(2 * w, 2 * w))
        self.dec2 = _cbr(4 * w, 2 * w)
        self.dec1 = nn.Sequential(_cbr(3 * w + 5, w), _cbr(w, w))
        self.head = nn.Conv2d(w, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, rgb: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        k, m = self.config.patch_size, self.config.margin
        size = k + 2 * m
        if rgb.shape[-2:] != (size, size) or alpha.shape[-2:] != (size, size):
            raise ValueError(f"patches must be {size}x{size}, got {tuple(rgb.shape[-2:])}")
        x = torch.cat([(rgb * 255.0 - 127.0) / 128.0, alpha * 2 - 1, torch.log(sigma.clamp_min(1e-4))], 1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1, x], 1))
        out = (alpha + self.head(d1)).clamp(0.0, 1.0)
        return out[..., m : m + k, m : m + k]


def _window_sums(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, kh: int, kw: int, dtype=np.float64) -> np.ndarray:
    """Sum of ``values`` (``(H, W)``) over the ``kh`` x ``kw`` windows with top-left corners ``ys`` x ``xs``.

    ``dtype`` float64: real values, summed in float64; int64: 0/1 or small integer values (``uint8``), summed
    exactly. One summed-area table (OpenCV's ``integral``: no float64 copy of the image-sized input)."""
    if np.dtype(dtype) == np.int64:
        src, depth = np.ascontiguousarray(values, dtype=np.uint8), cv2.CV_32S  # exact up to 2**31 (MAX_SIDE**2 < that)
    else:
        keep = values.dtype in (np.float32, np.float64)
        src, depth = np.ascontiguousarray(values if keep else values.astype(np.float32)), cv2.CV_64F
    ii = cv2.integral(src, sdepth=depth)
    y0, x0 = ys[:, None], xs[None, :]
    corners = [ii[y0 + kh, x0 + kw], ii[y0, x0 + kw], ii[y0 + kh, x0], ii[y0, x0]]  # only the grid points widen
    a, b, c, d = (v.astype(dtype, copy=False) for v in corners)
    return a - b - c + d


def _window_scores(sigma: np.ndarray, k: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of ``sigma`` in every k x k window whose top-left lies on a ``stride`` grid."""
    h, w = sigma.shape
    kh, kw = min(k, h), min(k, w)
    ys = np.unique(np.append(np.arange(0, h - kh + 1, stride), h - kh))
    xs = np.unique(np.append(np.arange(0, w - kw + 1, stride), w - kw))
    return _window_sums(sigma, ys, xs, kh, kw), ys, xs


def window_soft_fraction(alpha: np.ndarray, ys: np.ndarray, xs: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Fraction of soft pixels (``SOFT_LOW < alpha < SOFT_HIGH``) in each ``kh`` x ``kw`` window.

    ``alpha``: ``(H, W)`` float in [0, 1]; ``ys``/``xs``: the windows' top-left rows/columns.
    Returns ``(len(ys), len(xs))`` float64 in [0, 1].
    """
    soft = ((alpha > SOFT_LOW) & (alpha < SOFT_HIGH)).view(np.uint8)
    return _window_sums(soft, np.asarray(ys), np.asarray(xs), kh, kw, dtype=np.int64) / float(kh * kw)


def check_max_soft(max_soft: Optional[float], alpha: Optional[np.ndarray], shape: tuple[int, int]) -> None:
    """``ValueError`` unless ``max_soft`` is None, or in [0, 1] with an ``alpha`` of ``shape``."""
    if max_soft is None:
        return
    if not 0.0 <= max_soft <= 1.0:
        raise ValueError(f"max_soft must be in [0, 1], got {max_soft}")
    if not isinstance(alpha, np.ndarray) or alpha.shape != shape:
        raise ValueError(f"max_soft needs the coarse alpha of shape {shape}, got {getattr(alpha, 'shape', alpha)}")


def select_patches(
    sigma: np.ndarray,
    top_n: int,
    patch_size: int = 64,
    regions: Optional[Sequence[Box]] = None,
    mask: Optional[np.ndarray] = None,
    alpha: Optional[np.ndarray] = None,
    max_soft: Optional[float] = None,
) -> list[Box]:
    """Top-N non-overlapping ``patch_size`` windows by total uncertainty.

    ``sigma``: ``(H, W)`` float uncertainty. Only windows that overlap ``regions`` (list of
    ``(x, y, w, h)``) or ``mask`` (``(H, W)`` bool) are candidates, when given. With
    ``max_soft`` (in [0, 1]) and the coarse ``alpha`` (``(H, W)`` float in [0, 1]), a window
    whose soft fraction (:func:`window_soft_fraction`) exceeds ``max_soft`` is no candidate.
    Returns boxes ``(x, y, w, h)`` ordered by decreasing uncertainty; fewer than ``top_n`` if
    no more fit.
    """
    if sigma.ndim != 2:
        raise ValueError(f"sigma must be (H, W), got shape {sigma.shape}")
    if top_n < 0:
        raise ValueError(f"top_n must be >= 0, got {top_n}")
    h, w = sigma.shape
    check_max_soft(max_soft, alpha, (h, w))
    k = patch_size
    stride = max(1, k // 16)
    scores, ys, xs = _window_scores(sigma, k, stride)
    kh, kw = min(k, h), min(k, w)
    allowed = _allowed_windows(ys, xs, kh, kw, h, w, regions, mask)
    if max_soft is not None and alpha is not None:  # check_max_soft: alpha comes with max_soft
        allowed &= window_soft_fraction(alpha, ys, xs, kh, kw) <= max_soft
    scores = np.where(allowed, scores, -np.inf)
    boxes: list[Box] = []
    for _ in range(top_n):
        idx = int(np.argmax(scores))
        gy, gx = divmod(idx, scores.shape[1])
        if not np.isfinite(scores[gy, gx]):
            break
        y, x = int(ys[gy]), int(xs[gx])
        boxes.append((x, y, kw, kh))
        # suppress every window overlapping this one
        sy = (ys > y - kh) & (ys < y + kh)
        sx = (xs > x - kw) & (xs < x + kw)
        scores[np.ix_(sy, sx)] = -np.inf
    return boxes


def _allowed_windows(ys, xs, kh, kw, h, w, regions, mask) -> np.ndarray:
    allowed = np.ones((len(ys), len(xs)), dtype=bool)
    if regions is None and mask is None:
        return allowed
    allowed[:] = False
    if regions is not None:
        for (rx, ry, rw, rh) in _check_regions(regions, w, h):
            oy = (ys < ry + rh) & (ys + kh > ry)
            ox = (xs < rx + rw) & (xs + kw > rx)
            allowed |= oy[:, None] & ox[None, :]
    if mask is not None:
        allowed |= _window_sums(_check_mask(mask, h, w), ys, xs, kh, kw, dtype=np.int64) > 0
    return allowed


def _check_regions(regions: Sequence[Box], w: int, h: int) -> list[Box]:
    out = []
    for r in regions:
        if len(r) != 4:
            raise ValueError(f"a region is (x, y, w, h), got {r!r}")
        rx, ry, rw, rh = (int(v) for v in r)
        if rw <= 0 or rh <= 0:
            raise ValueError(f"region {r!r} has no area")
        x0, y0, x1, y1 = max(0, rx), max(0, ry), min(w, rx + rw), min(h, ry + rh)
        if x0 >= x1 or y0 >= y1:
            raise ValueError(f"region {r!r} lies outside the {w}x{h} image")
        out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def _check_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    if mask.shape != (h, w):
        raise ValueError(f"mask must be ({h}, {w}), got {mask.shape}")
    return mask.astype(bool)


def covering_patches(
    height: int, width: int, patch_size: int = 64, regions: Optional[Sequence[Box]] = None,
    mask: Optional[np.ndarray] = None,
) -> list[Box]:
    """Non-overlapping (except at the image border) windows that cover the regions/mask completely."""
    k = patch_size
    kh, kw = min(k, height), min(k, width)
    rects: list[Box] = []
    if regions is not None:
        rects.extend(_check_regions(regions, width, height))
    if mask is not None:
        m = _check_mask(mask, height, width)
        if m.any():
            yy, xx = np.nonzero(m)
            rects.append((int(xx.min()), int(yy.min()), int(xx.max() - xx.min() + 1), int(yy.max() - yy.min() + 1)))
    boxes: set[Box] = set()
    for rx, ry, rw, rh in rects:
        for y in range(ry, ry + rh, kh):
            for x in range(rx, rx + rw, kw):
                bx, by = min(x, width - kw), min(y, height - kh)
                if mask is not None and regions is None and not m[by : by + kh, bx : bx + kw].any():
                    continue
                boxes.add((bx, by, kw, kh))
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def crop_patches(arr: np.ndarray, boxes: Sequence[Box], margin: int, size: int) -> np.ndarray:
    """Crop ``(H, W, C)`` ``arr`` at ``boxes`` with ``margin`` context (edge-replicated) to ``size``.

    Returns ``(N, C, size + 2*margin, size + 2*margin)``. Boxes smaller than ``size`` (tiny
    images) are edge-padded.
    """
    if arr.ndim != 3:
        raise ValueError(f"arr must be (H, W, C), got {arr.shape}")
    h, w, c = arr.shape
    full = size + 2 * margin
    out = np.empty((len(boxes), c, full, full), dtype=arr.dtype)
    for i, (x, y, bw, bh) in enumerate(boxes):
        y0, x0 = y - margin, x - margin
        ys = np.clip(np.arange(y0, y0 + full), 0, h - 1)
        xs = np.clip(np.arange(x0, x0 + full), 0, w - 1)
        out[i] = arr[np.ix_(ys, xs)].transpose(2, 0, 1)
    return out


def paste_patches(
    alpha: np.ndarray, boxes: Sequence[Box], patches: np.ndarray, mask: Optional[np.ndarray] = None
) -> np.ndarray:
    """Return a copy of ``(H, W)`` ``alpha`` with ``(N, k, k)`` ``patches`` written at ``boxes``.

    With ``mask`` (``(H, W)`` bool) only pixels inside the mask change.
    """
    out = alpha.copy()
    for (x, y, bw, bh), p in zip(boxes, patches):
        region = p[:bh, :bw].astype(out.dtype)
        if mask is None:
            out[y : y + bh, x : x + bw] = region
        else:
            m = mask[y : y + bh, x : x + bw]
            out[y : y + bh, x : x + bw][m] = region[m]
    return out
