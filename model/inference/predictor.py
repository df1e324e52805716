"""Predictor: ``set_image`` once, then cheap ``predict(clicks)`` and ``refine(...)`` per action.

Shaped like segment-anything's ``SamPredictor``. All arrays are numpy:

- image: ``(H, W, 3)`` uint8 RGB (``(H, W, 4)`` RGBA accepted, alpha ignored), sides within
  :data:`~clickmatte.model.inference.config.MIN_SIDE`..:data:`~clickmatte.model.inference.config.MAX_SIDE`;
- clicks: ``[{"x", "y", "label": "fg"|"bg"}, ...]`` or ``(x, y, label)`` in full-image pixels;
- alpha: ``(H, W)`` float32 in [0, 1]; uncertainty: ``(H, W)`` float32 sigma > 0 (the scale of a
  Laplace distribution over the true alpha, in alpha units: ~0 sure, >= 0.25 very unsure).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .clicks import Click, ClickLike, encode_clicks, normalize_clicks, scale_clicks
from .config import MAX_SIDE, MIN_SIDE, PredictorConfig
from .guided_upsample import Guide, guide_statistics, guided_upsample
from .local_merge import guard_mask, merge_mask
from ..network.refiner import Box, covering_patches, crop_patches, paste_patches, select_patches
from ..network.registry import DEFAULT_CHECKPOINT, ClickMatteModel, build_model, load_checkpoint

log = logging.getLogger(__name__)



def resolve_device(device: Union[str, torch.device] = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; ``"cuda"`` without CUDA raises ``ValueError``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return torch.device(device)


def load_default_model(checkpoint: Optional[Union[str, os.PathLike]] = None) -> ClickMatteModel:
    """The shipped checkpoint (or ``checkpoint``). Without shipped weights: an untrained net and a warning."""
    if checkpoint is not None:
        return load_checkpoint(checkpoint)
    if DEFAULT_CHECKPOINT.is_file():
        return load_checkpoint(DEFAULT_CHECKPOINT)
    log.warning("no trained weights at %s: using an UNTRAINED network", DEFAULT_CHECKPOINT)
    return build_model("clickmatte-lite0")


def validate_image(image: np.ndarray) -> np.ndarray:
    """Return the RGB part of an ``(H, W, 3|4)`` uint8 image, or raise ``ValueError``."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3) RGB or (H, W, 4) RGBA, got shape {image.shape}")
    h, w = image.shape[:2]
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise ValueError(f"image sides must be within {MIN_SIDE}..{MAX_SIDE} px, got {w}x{h}")
    return np.ascontiguousarray(image[:, :, :3])


def shrink_area(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(H, W)`` uint8 or float32 -> ``(height, width)`` float32 in the input's units, box-filtered (``INTER_AREA``).

    For a factor of 2 or more the plane first goes through an integer factor ``k`` in its own dtype (OpenCV's
    fast area path; the last ``H mod k`` rows and ``W mod k`` columns are left out), then, as float32, to the
    exact size: a 24 MP uint8 plane to 512 px costs about a fifth of one direct area resize."""
    h, w = plane.shape[:2]
    k = min(h // height, w // width)
    if k >= 2:
        plane = cv2.resize(plane[: h // k * k, : w // k * k], (w // k, h // k), interpolation=cv2.INTER_AREA)
    return cv2.resize(plane.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_AREA)


class Predictor:
    """Interactive matting on one image at a time: :meth:`set_image` once, then :meth:`predict` per click
    change and :meth:`refine` for full-resolution patches.

    - ``model``: a :class:`~clickmatte.model.network.registry.ClickMatteModel` (None: the shipped weights, or an
      untrained net with a warning when there are none); ``device``: ``"auto"`` (CUDA when present),
      ``"cpu"`` or ``"cuda[:N]"`` (ValueError when CUDA is absent).
    - ``config``: a :class:`~clickmatte.model.inference.config.PredictorConfig` (None: the defaults): working size,
      flip TTA, prior and context passes, guided upsampling, the soft limit of automatic refinement,
      preview size, refine batch and click radius; keyword ``overrides`` replace single settings of it,
      e.g. ``Predictor(model, working_size=320)`` (ValueError for unknown names or bad values). The
      settings in force are :attr:`config`.
    - Images are ``(H, W, 3)`` uint8 RGB (RGBA: alpha ignored), sides within ``MIN_SIDE..MAX_SIDE``;
      alpha out is ``(H, W)`` float32 in [0, 1], uncertainty ``(H, W)`` float32 sigma > 0, both at the
      full image size.
    """

    def __init__(
        self,
        model: Optional[ClickMatteModel] = None,
        device: Union[str, torch.device] = "auto",
        config: Optional[PredictorConfig] = None,
        **overrides: Any,
    ) -> None:
        cfg = (config if config is not None else PredictorConfig()).replace(**overrides)
        self.config = cfg
        self.device = resolve_device(device)
        self.model = (model if model is not None else load_default_model()).to(self.device).eval()
        self.reset_image()

    # -- settings (read-only views of ``config``) --------------------------------------------
    working_size = property(lambda self: self.config.working_size)
    flip_tta = property(lambda self: self.config.flip_tta)
    prior_pass = property(lambda self: self.config.prior_pass)
    guided = property(lambda self: self.config.guided)
    preview_working_size = property(lambda self: self.config.preview_working_size)
    refine_batch = property(lambda self: self.config.refine_batch)
    radius = property(lambda self: float(self.config.radius))
    guide_radius = property(lambda self: self.config.guide_radius)
    guide_eps = property(lambda self: float(self.config.guide_eps))

    @property
    def context_size(self) -> Optional[int]:
        """``config.context_size``, None when off (0)."""
        return self.config.context_size or None

    @property
    def native_max_soft(self) -> Optional[float]:
        """``config.refine_max_soft``, None when it sets no limit (1)."""
        limit = self.config.refine_max_soft
        return None if limit >= 1.0 else float(limit)

    # -- state -----------------------------------------------------------------------------
    def reset_image(self) -> None:
        self.image: Optional[np.ndarray] = None
        self._work_rgb: Optional[torch.Tensor] = None
        self._guide: Optional[Guide] = None  # the image's part of the guided filter, made at the first predict
        self._context_rgb: Optional[torch.Tensor] = None  # the context pass's copy, made at the first predict
        self._preview_rgb: Optional[torch.Tensor] = None  # the preview pass's copy, made at the first preview
        self.alpha: Optional[np.ndarray] = None
        self.uncertainty: Optional[np.ndarray] = None
        self.last_patches: list[Box] = []

    def image_state(self) -> tuple[np.ndarray, torch.Tensor]:
        """The current image and its working-resolution tensor, to cache and restore with :meth:`set_image_state`."""
        if self.image is None or self._work_rgb is None:
            raise ValueError("no image set: call set_image() first")
        return self.image, self._work_rgb

    def set_image_state(self, state: tuple[np.ndarray, torch.Tensor],
                        alpha: Optional[np.ndarray] = None, uncertainty: Optional[np.ndarray] = None) -> None:
        """Switch back to an image from :meth:`image_state` (no resizing), optionally with its last prediction."""
        image, work = state
        self.reset_image()
        self.image, self._work_rgb = image, work
        self.alpha, self.uncertainty = alpha, uncertainty

    def settings(self) -> dict:
        """The inference settings in force as plain JSON types (:meth:`PredictorConfig.as_dict`)."""
        return self.config.as_dict()

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of the current image."""
        if self.image is None:
            raise ValueError("no image set: call set_image() first")
        return self.image.shape[0], self.image.shape[1]

    def max_soft_for(self, height: int, width: int) -> Optional[float]:
        """The soft-fraction limit of automatic refinement for an image of ``height`` x ``width``:
        ``config.refine_max_soft`` when the coarse pass runs at the image's own size, else None (no limit;
        also None when the setting is 1)."""
        return self.native_max_soft if self.working_shape(height, width) == (height, width) else None

    @property
    def image_max_soft(self) -> Optional[float]:
        """:meth:`max_soft_for` the current image."""
        return self.max_soft_for(*self.image_size)

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        s = min(1.0, self.working_size / max(height, width))
        return max(1, round(height * s)), max(1, round(width * s))

    def set_image(self, image: np.ndarray) -> None:
        """Store ``image`` (``(H, W, 3|4)`` uint8) and its working-resolution copy."""
        rgb = validate_image(image)
        h, w = rgb.shape[:2]
        wh, ww = self.working_shape(h, w)
        small = rgb if (wh, ww) == (h, w) else cv2.resize(rgb, (ww, wh), interpolation=cv2.INTER_AREA)
        self.reset_image()
        self.image = rgb
        self._work_rgb = torch.from_numpy(small).to(self.device).permute(2, 0, 1)[None].float() / 255.0

    # -- prediction ------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(
        self, clicks: Sequence[ClickLike], prev_alpha: Optional[np.ndarray] = None, preview: Optional[int] = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clicks (+ optional previous ``(H, W)`` alpha, float in [0, 1] or uint8) -> ``(alpha, uncertainty)``.

        Both outputs are ``(H, W)`` float32 at the full image size. ``preview=N`` (>= 1) asks for a cheap
        live-preview answer instead: one plain pass of the coarse net (no flip, prior or context pass) at
        long side ``min(N, preview_working_size)``, outputs resized bilinearly to long side ``min(N, max(H, W))``;
        the predictor's last prediction (what :meth:`refine` works on) is left as it was.
        """
        h, w = self.image_size
        cl = normalize_clicks(clicks, w, h)
        if preview is not None:
            return self._preview(cl, prev_alpha, int(preview))
        assert self._work_rgb is not None
        wh, ww = self._work_rgb.shape[-2:]
        cmap = self._click_map(cl, w, h, wh, ww)
        prev = None
        prev_full = prev_work = None
        if prev_alpha is not None:
            prev_work, prev_full = self._prev_inputs(prev_alpha, h, w, wh, ww)
            prev = torch.from_numpy(prev_work)[None, None].to(self.device)
        ctx = self._context_input()
        if ctx is not None:  # a first, coarser look keeps large objects whole; its answer is the previous alpha
            ch, cw = ctx.shape[-2:]
            ctx_prev = None if prev is None else F.interpolate(prev, size=(ch, cw), mode="area")
            ctx_alpha, _ = self._net(ctx, self._click_map(cl, w, h, ch, cw), ctx_prev, with_sigma=False)
            prev = F.interpolate(ctx_alpha.float().clamp(0.0, 1.0), size=(wh, ww), mode="bilinear", align_corners=False)
        alpha_t, sigma_t = self._net(self._work_rgb, cmap, prev)
        assert sigma_t is not None
        alpha = alpha_t[0, 0].float().cpu().numpy()
        sigma = sigma_t[0, 0].float().cpu().numpy()
        weight = None
        if self.config.click_merge != "off" and prev_work is not None:
            rule = merge_mask if self.config.click_merge == "local" else guard_mask
            weight = rule(prev_work, np.clip(alpha, 0.0, 1.0), scale_clicks(cl, ww / w, wh / h), self.radius)
        # full-size work in place where it can be (a 24 MP plane is ~100 MB): no temporaries of that size
        if (wh, ww) != (h, w):
            if self.guided:  # edges follow the full-resolution image; the output comes clipped to [0, 1]
                if self._guide is None:
                    small = (self._work_rgb[0].permute(1, 2, 0) * 255.0).round().byte().cpu().numpy()
                    self._guide = guide_statistics(small, self.guide_radius, self.guide_eps)
                alpha = guided_upsample(np.clip(alpha, 0.0, 1.0), None, self.image, guide=self._guide)
            else:
                alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
                np.clip(alpha, 0.0, 1.0, out=alpha)
            sigma = cv2.resize(sigma, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            alpha = np.clip(alpha, 0.0, 1.0)
        alpha = alpha.astype(np.float32, copy=False)
        if weight is not None and prev_full is not None:  # the previous alpha outside what the clicks moved
            if weight.shape != (h, w):
                weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
            alpha = (prev_full + weight * (alpha - prev_full)).astype(np.float32, copy=False)
        sigma = sigma.astype(np.float32, copy=False)
        np.maximum(sigma, 1e-6, out=sigma)
        self.alpha, self.uncertainty = alpha, sigma
        self.last_patches = []
        return alpha, sigma

    def _preview(self, cl: Sequence[Click], prev_alpha: Optional[np.ndarray], preview: int) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`predict` ``preview``: ``(h, w)`` float32 alpha in [0, 1] and sigma > 0 at the preview size."""
        if preview < 1:
            raise ValueError(f"preview must be >= 1, got {preview}")
        h, w = self.image_size
        assert self._work_rgb is not None
        s = min(1.0, min(preview, self.preview_working_size) / max(h, w))
        ph, pw = max(1, round(h * s)), max(1, round(w * s))
        if tuple(self._work_rgb.shape[-2:]) == (ph, pw):
            rgb = self._work_rgb
        else:
            if self._preview_rgb is None or tuple(self._preview_rgb.shape[-2:]) != (ph, pw):
                self._preview_rgb = F.interpolate(self._work_rgb, size=(ph, pw), mode="area")
            rgb = self._preview_rgb
        prev = None
        if prev_alpha is not None:
            pa = prev_alpha
            if not isinstance(pa, np.ndarray) or pa.shape != (h, w):
                raise ValueError(f"prev_alpha must be a ({h}, {w}) array, got {getattr(pa, 'shape', type(pa))}")
            if (ph, pw) != (h, w) and pa.dtype in (np.uint8, np.float32):  # shrink first: cheap at full size
                pa = cv2.resize(pa, (pw, ph), interpolation=cv2.INTER_AREA)
            pa = self._check_alpha(pa, *pa.shape)
            if pa.shape != (ph, pw):
                pa = cv2.resize(pa, (pw, ph), interpolation=cv2.INTER_AREA)
            prev = torch.from_numpy(pa)[None, None].to(self.device)
        alpha_t, sigma_t = self.model.net(rgb, self._click_map(cl, w, h, ph, pw), prev)
        alpha = alpha_t[0, 0].float().clamp(0.0, 1.0).cpu().numpy()
        sigma = sigma_t[0, 0].float().clamp_min(1e-6).cpu().numpy()
        so = min(1.0, preview / max(h, w))
        oh, ow = max(1, round(h * so)), max(1, round(w * so))
        if (oh, ow) != (ph, pw):
            alpha = cv2.resize(alpha, (ow, oh), interpolation=cv2.INTER_LINEAR)
            sigma = cv2.resize(sigma, (ow, oh), interpolation=cv2.INTER_LINEAR)
        return np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False), sigma.astype(np.float32, copy=False)

    def _click_map(self, clicks: Sequence[Click], w: int, h: int, out_h: int, out_w: int) -> torch.Tensor:
        """Clicks in image pixels (``w`` x ``h``) as the net's ``(1, 2, out_h, out_w)`` click-disk input."""
        scaled = scale_clicks(clicks, out_w / w, out_h / h)
        return torch.from_numpy(encode_clicks(scaled, out_h, out_w, self.radius))[None].to(self.device)

    def _context_input(self) -> Optional[torch.Tensor]:
        """The working image at ``context_size`` (long side), or None when the context pass does not apply
        (switched off, or the working image is not larger than that)."""
        assert self._work_rgb is not None
        wh, ww = self._work_rgb.shape[-2:]
        if self.context_size is None or max(wh, ww) <= self.context_size:
            return None
        if self._context_rgb is None:
            s = self.context_size / max(wh, ww)
            size = (max(1, round(wh * s)), max(1, round(ww * s)))
            self._context_rgb = F.interpolate(self._work_rgb, size=size, mode="area")
        return self._context_rgb

    def _net(self, rgb: torch.Tensor, cmap: torch.Tensor, prev: Optional[torch.Tensor],
             with_sigma: bool = True) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """One answer of the coarse net, ``(1, 1, h, w)`` alpha and sigma (None unless ``with_sigma``), with the
        prior pass and flip TTA. Only the final pass on the plain view runs the uncertainty decoder: the prior
        and mirrored passes give alpha alone (sigma is the plain view's, the alpha is the two views' mean)."""
        net = self.model.net
        if prev is None and self.prior_pass:  # the net's own first answer becomes the previous alpha
            view = (lambda t: t.flip(-1)) if self.flip_tta else (lambda t: t)  # noqa: E731
            prior = view(net.forward_alpha(view(rgb), view(cmap), None))
            prev = prior.float().clamp(0.0, 1.0)
            return net(rgb, cmap, prev) if with_sigma else (net.forward_alpha(rgb, cmap, prev), None)
        if self.flip_tta:  # the image and its mirror, alphas averaged
            rgb2, cmap2 = rgb.flip(-1), cmap.flip(-1)
            prev2 = None if prev is None else prev.flip(-1)
            if self.device.type == "cuda":  # one batch of two on a GPU; two passes are faster on a CPU (AVX2)
                cat = lambda a, b: torch.cat([a, b], 0)  # noqa: E731
                prev_b = None if prev is None else cat(prev, prev2)
                if with_sigma:
                    a_b, s_b = net(cat(rgb, rgb2), cat(cmap, cmap2), prev_b)
                    s1: Optional[torch.Tensor] = s_b[:1]
                else:
                    a_b, s1 = net.forward_alpha(cat(rgb, rgb2), cat(cmap, cmap2), prev_b), None
                a1, a2 = a_b.split(1)
            else:
                a1, s1 = net(rgb, cmap, prev) if with_sigma else (net.forward_alpha(rgb, cmap, prev), None)
                a2 = net.forward_alpha(rgb2, cmap2, prev2)
            return (a1 + a2.flip(-1)) / 2, s1
        return net(rgb, cmap, prev) if with_sigma else (net.forward_alpha(rgb, cmap, prev), None)

    def _prev_inputs(self, prev_alpha: np.ndarray, h: int, w: int, wh: int, ww: int
                     ) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """A previous alpha for :meth:`predict` -> ``(at the working size, at full size or None)``, float32 in [0, 1].
        The full-size copy is made only when it is needed (``click_merge``, or an alpha that is not uint8); a uint8
        one (the daemon's kept alpha, an editor's mask) is shrunk first (:func:`shrink_area`)."""
        if self.config.click_merge != "off" or (wh, ww) == (h, w) or getattr(prev_alpha, "dtype", None) != np.uint8:
            full = self._check_alpha(prev_alpha, h, w)
            work = full if (wh, ww) == (h, w) else cv2.resize(full, (ww, wh), interpolation=cv2.INTER_AREA)
            return work, full
        self._check_alpha_shape(prev_alpha, h, w)
        return shrink_area(prev_alpha, ww, wh) / 255.0, None

    @staticmethod
    def _check_alpha_shape(a: np.ndarray, h: int, w: int) -> None:
        if not isinstance(a, np.ndarray) or a.shape != (h, w):
            raise ValueError(f"prev_alpha must be a ({h}, {w}) array, got {getattr(a, 'shape', type(a))}")

    @classmethod
    def _check_alpha(cls, a: np.ndarray, h: int, w: int) -> np.ndarray:
        cls._check_alpha_shape(a, h, w)
        if a.dtype == np.uint8:
            return a.astype(np.float32) / 255.0
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"prev_alpha must be uint8 or float, got {a.dtype}")
        return np.clip(a.astype(np.float32), 0.0, 1.0)

    @torch.inference_mode()
    def refine(
        self,
        top_n: Optional[int] = None,
        regions: Optional[Sequence[Box]] = None,
        mask: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """Refine the last prediction at full resolution and return the new ``(H, W)`` alpha.

        Without ``regions``/``mask``: the ``top_n`` (an int >= 0, required) most uncertain non-overlapping
        k x k patches (among windows at most :attr:`image_max_soft` soft, when that is set).
        With ``regions`` (``[(x, y, w, h)]``) or ``mask`` (``(H, W)`` bool): the patches covering
        them (at most ``top_n`` most uncertain if ``top_n`` is not None); with ``mask`` only pixels
        inside it change. ValueError before a prediction, for ``top_n < 0``, or for neither ``top_n``
        nor ``regions``/``mask``.
        """
        if self.alpha is None or self.uncertainty is None or self.image is None:
            raise ValueError("nothing to refine: call predict() first")
        if top_n is not None and top_n < 0:
            raise ValueError(f"top_n must be >= 0, got {top_n}")
        if top_n is None and regions is None and mask is None:
            raise ValueError("refine needs top_n (patches to pick), regions or a mask")
        h, w = self.image.shape[:2]
        k = self.model.refiner.config.patch_size
        m = self.model.refiner.config.margin
        if mask is not None:
            if not isinstance(mask, np.ndarray) or mask.shape != (h, w):
                raise ValueError(f"mask must be a ({h}, {w}) array, got {getattr(mask, 'shape', type(mask))}")
            mask = mask.astype(bool)
        if regions is None and mask is None:
            boxes = select_patches(self.uncertainty, top_n, k, alpha=self.alpha, max_soft=self.image_max_soft)
        else:
            boxes = covering_patches(h, w, k, regions=regions, mask=mask)
            if top_n is not None and len(boxes) > top_n:
                boxes = select_patches(self.uncertainty, top_n, k, regions=regions, mask=mask)
        if not boxes:
            self.last_patches = []
            return self.alpha
        refined = []
        for i in range(0, len(boxes), self.refine_batch):
            chunk = boxes[i : i + self.refine_batch]
            # crop per patch: no full-resolution float copies of the image (24 MP stays cheap)
            rgb = torch.from_numpy(crop_patches(self.image, chunk, m, k)).to(self.device).float() / 255.0
            a = torch.from_numpy(crop_patches(self.alpha[..., None], chunk, m, k)).to(self.device)
            s = torch.from_numpy(crop_patches(self.uncertainty[..., None], chunk, m, k)).to(self.device)
            out = self.model.refiner(rgb, a, s)
            refined.append(out[:, 0].float().cpu().numpy())
        patches = np.concatenate(refined, axis=0)
        self.alpha = paste_patches(self.alpha, boxes, patches, mask=mask)
        self.last_patches = list(boxes)
        return self.alpha
