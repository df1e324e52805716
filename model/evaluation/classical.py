"""The classical click pipeline (no network): clicks -> GrabCut -> trimap -> closed-form matting.

:class:`ClassicalEngine` has the interface of :class:`clickmatte.model.Predictor` that the
evaluator uses: ``set_image(rgb)`` then ``predict(clicks, prev_alpha=None) -> (alpha, uncertainty)``.

1. GrabCut (OpenCV) initialised with a mask: a disk around each foreground click is sure
   foreground (``GC_FGD``), around each background click sure background (``GC_BGD``); a box
   around the foreground clicks, grown by ``box_margin`` of the image size, is probable
   foreground (``GC_PR_FGD``); the rest is probable background (``GC_PR_BGD``). With only
   background clicks the rest is probable foreground (the user pointed at what to remove).
2. Trimap: the GrabCut segmentation eroded (definite foreground) and dilated (definite
   background outside it); the band in between is unknown. Click disks stay definite.
3. Closed-form matting (Levin et al. 2008, pymatting's ``estimate_alpha_cf``) in the band.

The uncertainty it returns is a Laplace-scale-like map comparable with the network's:
``band_sigma`` (0.25) in the unknown band, ``1e-3`` elsewhere. Degenerate inputs never raise
beyond ``ValueError`` for malformed arguments: no clicks -> alpha 0 everywhere; a GrabCut or
matting failure -> the best earlier stage (the GrabCut mask, or the click disks).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import cv2
import numpy as np

from ..inference.clicks import ClickLike, normalize_clicks

log = logging.getLogger(__name__)

SURE_SIGMA = 1e-3


class ClassicalEngine:
    """GrabCut + closed-form matting driven by clicks.

    ``radius``: click-disk radius at a 512-px long side (scaled with the image, like the
    network's disks at its working size); ``band``: half-width of the unknown band as a
    fraction of the long side (at least 2 px); ``iterations``: GrabCut iterations;
    ``box_margin``: growth of the probable-foreground box around the fg clicks, as a fraction
    of the mean image side; ``max_side``: long side at which GrabCut runs (larger images are
    segmented downscaled, then matted at full size).
    """

    def __init__(
        self,
        radius: float = 15.0,
        band: float = 0.015,
        iterations: int = 5,
        box_margin: float = 0.25,
        band_sigma: float = 0.25,
        max_side: int = 1024,
        seed: int = 0,
    ) -> None:
        if radius <= 0 or band <= 0 or iterations < 1 or box_margin < 0 or band_sigma <= 0 or max_side < 8:
            raise ValueError("radius, band, band_sigma must be > 0, iterations >= 1, box_margin >= 0, max_side >= 8")
        self.radius = float(radius)
        self.band = float(band)
        self.iterations = int(iterations)
        self.box_margin = float(box_margin)
        self.band_sigma = float(band_sigma)
        self.max_side = int(max_side)
        self.seed = int(seed)
        self.image: Optional[np.ndarray] = None
        self.alpha: Optional[np.ndarray] = None
        self.uncertainty: Optional[np.ndarray] = None
        self.trimap: Optional[np.ndarray] = None

    @property
    def description(self) -> dict:
        """The pipeline and its parameters (for reports)."""
        return {"pipeline": "GrabCut (OpenCV) -> erode/dilate trimap -> closed-form matting (pymatting)",
                "radius_at_512": self.radius, "band": self.band, "iterations": self.iterations,
                "box_margin": self.box_margin, "band_sigma": self.band_sigma, "max_side": self.max_side}

    # -- interface shared with Predictor ---------------------------------------------------
    def set_image(self, image: np.ndarray) -> None:
        """Store an ``(H, W, 3|4)`` uint8 RGB(A) image (alpha channel ignored), any size >= 1 px."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise ValueError(f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image))}")
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"image must be (H, W, 3) RGB or (H, W, 4) RGBA, got shape {image.shape}")
        self.image = np.ascontiguousarray(image[:, :, :3])
        self.alpha = self.uncertainty = self.trimap = None

    def predict(
        self, clicks: Sequence[ClickLike], prev_alpha: Optional[np.ndarray] = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clicks -> ``(alpha, uncertainty)``, both ``(H, W)`` float32; alpha in [0, 1], uncertainty > 0.

        ``prev_alpha`` is accepted for interface parity with the network and ignored.
        """
        if self.image is None:
            raise ValueError("no image set: call set_image() first")
        h, w = self.image.shape[:2]
        cl = normalize_clicks(clicks, w, h)
        fg_disks, bg_disks = self._disks(cl, h, w)
        if not cl:
            seg = np.zeros((h, w), bool)
        else:
            seg = self._grabcut(fg_disks, bg_disks, cl)
        trimap = self._trimap(seg, fg_disks, bg_disks)
        alpha = self._matte(trimap)
        unknown = (trimap > 0.0) & (trimap < 1.0)
        sigma = np.where(unknown, self.band_sigma, SURE_SIGMA).astype(np.float32)
        self.alpha, self.uncertainty, self.trimap = alpha, sigma, trimap
        return alpha, sigma

    # -- stages ----------------------------------------------------------------------------
    def disk_radius(self, h: int, w: int) -> int:
        """Click-disk radius in pixels for an ``h`` x ``w`` image (>= 1, at most 1/6 of the short side)."""
        r = self.radius * max(1.0, max(h, w) / 512.0)
        return int(max(1, min(round(r), min(h, w) // 6)))

    def _disks(self, clicks, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        r = self.disk_radius(h, w)
        fg = np.zeros((h, w), np.uint8)
        bg = np.zeros((h, w), np.uint8)
        for c in clicks:
            cv2.circle(fg if c.is_fg else bg, (int(round(c.x)), int(round(c.y))), r, 1, -1)
        fgb, bgb = fg.astype(bool), bg.astype(bool)
        both = fgb & bgb  # overlapping disks of opposite labels: neither is sure there
        return fgb & ~both, bgb & ~both

    def _init_mask(self, fg: np.ndarray, bg: np.ndarray, clicks) -> np.ndarray:
        h, w = fg.shape
        fg_clicks = [c for c in clicks if c.is_fg]
        if fg_clicks:
            mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
            pad = self.box_margin * (h + w) / 2.0 + self.disk_radius(h, w)
            xs = [c.x for c in fg_clicks]
            ys = [c.y for c in fg_clicks]
            x0, x1 = int(max(0, min(xs) - pad)), int(min(w, max(xs) + pad + 1))
            y0, y1 = int(max(0, min(ys) - pad)), int(min(h, max(ys) + pad + 1))
            mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
        else:
            mask = np.full((h, w), cv2.GC_PR_FGD, np.uint8)
        mask[fg] = cv2.GC_FGD
        mask[bg] = cv2.GC_BGD
        is_bg = (mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)
        if not is_bg.any():  # GrabCut needs both models: the image border as probable background
            ring = np.zeros((h, w), bool)
            t = max(1, min(h, w) // 20)
            ring[:t], ring[-t:], ring[:, :t], ring[:, -t:] = True, True, True, True
            mask[ring & (mask == cv2.GC_PR_FGD)] = cv2.GC_PR_BGD
        return mask

    def _grabcut(self, fg: np.ndarray, bg: np.ndarray, clicks) -> np.ndarray:
        """Binary ``(H, W)`` segmentation; falls back to the initial mask if GrabCut cannot run."""
        assert self.image is not None
        h, w = fg.shape
        mask = self._init_mask(fg, bg, clicks)
        fallback = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        has_fg = fallback.any()
        has_bg = ((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)).any()
        if not (has_fg and has_bg) or h * w < 16:
            return fallback
        scale = min(1.0, self.max_side / max(h, w))
        img, m = self.image, mask
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            img = cv2.resize(self.image, size, interpolation=cv2.INTER_AREA)
            m = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        bgd_model = np.zeros((1, 65), np.float64)
        fgd_model = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(self.seed)
        try:
            cv2.grabCut(bgr, m, None, bgd_model, fgd_model, self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error as exc:
            log.warning("GrabCut failed (%s): using the click mask", str(exc).strip().splitlines()[-1])
            return fallback
        seg = (m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)
        if scale < 1.0:
            seg = cv2.resize(seg.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        return (seg | fg) & ~bg

    def _trimap(self, seg: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
        """``(H, W)`` float64 trimap: 1 foreground, 0 background, 0.5 unknown band."""
        h, w = seg.shape
        b = max(2, int(round(self.band * max(h, w))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * b + 1, 2 * b + 1))
        s8 = seg.astype(np.uint8)
        sure_fg = cv2.erode(s8, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
        maybe = cv2.dilate(s8, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
        trimap = np.full((h, w), 0.5)
        trimap[sure_fg] = 1.0
        trimap[~maybe] = 0.0
        trimap[fg] = 1.0
        trimap[bg] = 0.0
        return trimap

    def _matte(self, trimap: np.ndarray) -> np.ndarray:
        """Closed-form alpha in the unknown band; the trimap's own values where matting cannot run."""
        assert self.image is not None
        unknown = (trimap > 0.0) & (trimap < 1.0)
        fallback = np.where(unknown, 0.5, trimap).astype(np.float32)
        if not unknown.any():
            return trimap.astype(np.float32)
        if not (trimap == 1.0).any() or not (trimap == 0.0).any() or min(trimap.shape) < 3:
            # nothing to propagate from one side: the segmentation itself
            return np.where(unknown, 0.5, trimap).astype(np.float32)
        from pymatting import estimate_alpha_cf  # lazy: numba compiles on first import

        try:
            alpha = estimate_alpha_cf(self.image.astype(np.float64) / 255.0, trimap)
        except (ValueError, RuntimeError, ArithmeticError) as exc:
            log.warning("closed-form matting failed (%s): using the trimap", exc)
            return fallback
        alpha = np.nan_to_num(np.asarray(alpha, dtype=np.float64), nan=0.5)
        return np.clip(alpha, 0.0, 1.0).astype(np.float32)
