"""MattingEngine: the one model the daemon owns, switched between cached images.

The model package (and torch) is imported only in :meth:`MattingEngine.load`, so the daemon's
configuration parsing and ``--help`` stay cheap. One ``Predictor`` serves every session: before a
request the session's image becomes the predictor's image (the working-resolution input tensor is
cached per image, so switching back and forth costs nothing), and the session's last alpha and
uncertainty are put back before a refine.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from clickmatte.model.image_io import alpha_to_u8
from clickmatte.model.inference.config import MAX_SIDE, MIN_SIDE, PredictorConfig
from clickmatte.plugin.protocol import DEFAULT_TOP_N

from .sessions import ImageEntry, Session

log = logging.getLogger("clickmatte.daemon")

Box = Tuple[int, int, int, int]


def file_digest(path: Path) -> str:
    """``"sha256:" + hex`` of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


@dataclass(eq=False)
class RefinePlan:
    """A refinement in progress: the patches to refine, cut from ``base`` (the session's alpha when the
    plan was made) and written into ``out`` as they are done, ``done`` of them so far. The session's
    alpha becomes ``out`` only when every patch is done (:meth:`MattingEngine.finish_refine`)."""

    boxes: List[Box]
    mask: Optional[np.ndarray]
    base: np.ndarray
    sigma: np.ndarray
    out: np.ndarray
    done: int = 0
    model_s: float = 0.0
    chunks: int = 0
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.done >= len(self.boxes)


class MattingEngine:
    """Owns the Predictor. ``device``: ``auto|cpu|cuda[:N]``; ``checkpoint``: path or None (shipped weights);
    ``config``: the Predictor's settings (None: the defaults)."""

    min_side = MIN_SIDE
    max_side = MAX_SIDE

    def __init__(self, device: str = "auto", checkpoint: Optional[Path] = None,
                 config: Optional[PredictorConfig] = None) -> None:
        self.device_request = device
        self.checkpoint = checkpoint
        self.config = config if config is not None else PredictorConfig()
        self.predictor: Any = None
        self.model_info: Dict[str, Any] = {"name": "clickmatte-lite0", "loaded": False, **self.settings()}
        self._current: Optional[ImageEntry] = None

    def settings(self) -> Dict[str, Any]:
        """The inference settings hello shows: the Predictor's (:meth:`PredictorConfig.as_dict`) and ``top_n``,
        the patches a refine without regions takes when the request gives none (the protocol's default)."""
        return {**self.config.as_dict(), "top_n": DEFAULT_TOP_N}

    @property
    def loaded(self) -> bool:
        return self.predictor is not None

    @property
    def device(self) -> str:
        return str(self.predictor.device) if self.predictor is not None else self.device_request

    def load(self) -> None:
        """Import the model and build the Predictor. Raises ValueError (e.g. CUDA requested but absent,
        bad checkpoint) with a message fit for the user."""
        if self.predictor is not None:
            return
        from clickmatte.model import DEFAULT_CHECKPOINT, Predictor, load_default_model, resolve_device

        device = resolve_device(self.device_request)  # ValueError if CUDA is absent
        model = load_default_model(self.checkpoint)
        self.predictor = Predictor(model=model, device=device, config=self.config)
        ckpt = self.checkpoint if self.checkpoint is not None else (DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None)
        self.model_info = {  # no paths: hello tells any client what runs, not where it lives on the server
            "name": getattr(model, "name", "clickmatte-lite0"),
            "loaded": True,
            "trained": ckpt is not None,
            "weights": Path(ckpt).name if ckpt is not None else None,
            "digest": file_digest(Path(ckpt)) if ckpt is not None else None,
            "patch_size": int(model.refiner.config.patch_size),
            **self.settings(),
        }
        log.info("model %s on %s (%s)", self.model_info["name"], self.device,
                 f"checkpoint {ckpt}, {self.model_info['digest']}" if ckpt else "UNTRAINED: no checkpoint")

    # -- per-request work ---------------------------------------------------------------------
    def _activate(self, entry: ImageEntry) -> None:
        p = self.predictor
        if self._current is entry and p.image is entry.rgb:
            return
        if entry.work is not None:
            p.set_image_state((entry.rgb, entry.work))
        else:
            p.set_image(entry.rgb)  # ValueError for sides outside the model's range
            entry.work = p.image_state()[1]
        self._current = entry

    def forget(self, entry: ImageEntry) -> None:
        """Drop the predictor's reference to ``entry`` (e.g. when evicted) so its memory can be freed."""
        if self._current is entry:
            self.predictor.reset_image()
            self._current = None

    def check_image(self, height: int, width: int) -> None:
        if not (self.min_side <= height <= self.max_side and self.min_side <= width <= self.max_side):
            raise ValueError(f"image sides must be within {self.min_side}..{self.max_side} px, got {width}x{height}")

    def predict(self, session: Session, clicks: Sequence[Dict[str, Any]], prev_alpha: Union[bool, str] = False,
                preview: Optional[int] = None, given_prev: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Clicks -> ``(alpha, sigma)``, ``(H, W)`` float32 at full size; stored in the session.

        ``preview=N``: a live-preview answer (``Predictor.predict(..., preview=N)``: one cheap pass, outputs
        at long side at most N), fed the same previous alpha as a full predict would be, and not stored:
        the session keeps its last full-size matte, clicks and previous-alpha chain.

        ``prev_alpha``: True feeds the session's last alpha back into the net, False does not;
        ``"auto"`` feeds it back when ``clicks`` only add clicks to those of the session's last
        prediction (RITM-style, how the net was trained and evaluated), answers the same clicks
        as they were answered the last time, and starts afresh otherwise (clicks moved or removed).
        The order of the clicks does not matter (the net sees them as one map): an editor may list
        a new point anywhere, e.g. GIMP reads its points path by path.

        ``given_prev``: an ``(H, W)`` uint8 alpha of the image's size (the editor's own mask) fed back
        instead of the session's last alpha, with ``prev_alpha=True``. It is stored as the input of this
        prediction, so the same clicks with ``"auto"`` later get the same answer. The protocol's decode and
        the predict op have checked the request (its buffer's type and size, ``prev_alpha``); the
        Predictor checks the alpha's shape again for callers that come here directly.
        """
        self.load()
        self._activate(session.image)
        key = tuple(sorted((float(c["x"]), float(c["y"]), str(c["label"])) for c in clicks))
        last = session.clicks
        if given_prev is not None:
            prev = given_prev
        elif prev_alpha == "auto" and key == last:
            prev = session.prev_in  # the same input as last time: the same answer
        else:
            extends = last is not None and len(key) > len(last) and not Counter(last) - Counter(key)
            feed = prev_alpha is True or (prev_alpha == "auto" and extends)
            prev = alpha_to_u8(session.alpha) if feed and session.alpha is not None else None
        if preview is not None:
            return self.predictor.predict(list(clicks), prev_alpha=prev, preview=preview)
        alpha, sigma = self.predictor.predict(list(clicks), prev_alpha=prev)
        session.alpha, session.sigma = alpha, sigma
        session.clicks, session.prev_in = key, prev
        return alpha, sigma

    def foreground(self, session: Session, alpha_u8: np.ndarray) -> np.ndarray:
        """The session image's foreground colours under ``alpha_u8`` (``(H, W)`` uint8 of the image's
        size): pymatting's ``estimate_foreground_ml`` (multi-level, no halo of the old background),
        ``(H, W, 3)`` uint8. Pure CPU; the model is not needed."""
        from pymatting import estimate_foreground_ml

        rgb = session.image.rgb
        if alpha_u8.shape != rgb.shape[:2] or alpha_u8.dtype != np.uint8:
            raise ValueError(f"alpha must be uint8 {rgb.shape[1]}x{rgb.shape[0]}, got {alpha_u8.dtype} "
                             f"{alpha_u8.shape[1] if alpha_u8.ndim > 1 else '?'}x{alpha_u8.shape[0]}")
        fg = estimate_foreground_ml(rgb.astype(np.float64) / 255.0, alpha_u8.astype(np.float64) / 255.0)
        return np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def refine(self, session: Session, top_n: Optional[int], regions: Optional[List[Box]],
               mask: Optional[np.ndarray]) -> Tuple[np.ndarray, List[Box]]:
        """Refine the session's last prediction in one go -> ``(alpha (H, W) float32, boxes changed)``."""
        plan = self.plan_refine(session, top_n, regions, mask)
        while not self.refine_step(session, plan, max_seconds=float("inf")):
            pass
        return self.finish_refine(session, plan), list(plan.boxes)

    def plan_refine(self, session: Session, top_n: Optional[int], regions: Optional[List[Box]],
                    mask: Optional[np.ndarray]) -> RefinePlan:
        """Choose the patches a refine of the session's last prediction works on, as the Predictor does:
        the ``top_n`` (None: the protocol's :data:`DEFAULT_TOP_N`) most uncertain (only mostly-sure ones when the coarse pass ran
        at the image's own size, ``config.refine_max_soft``), or those covering ``regions`` / ``mask`` (at
        most ``top_n`` most uncertain of them when given). ValueError for regions outside the image."""
        if session.alpha is None or session.sigma is None:
            raise ValueError("nothing to refine: send a predict for this session first")
        if top_n is not None and top_n < 0:
            raise ValueError(f"top_n must be >= 0, got {top_n}")
        self.load()
        from clickmatte.model.network.refiner import covering_patches, select_patches

        p = self.predictor
        h, w = session.image.height, session.image.width
        k = int(p.model.refiner.config.patch_size)
        if mask is not None and mask.shape != (h, w):
            raise ValueError(f"mask must be ({h}, {w}), got {mask.shape}")
        if regions is None and mask is None:
            boxes = select_patches(session.sigma, DEFAULT_TOP_N if top_n is None else top_n, k,
                                   alpha=session.alpha, max_soft=p.max_soft_for(h, w))
        else:
            boxes = covering_patches(h, w, k, regions=regions, mask=mask)
            if top_n is not None and len(boxes) > top_n:
                boxes = select_patches(session.sigma, top_n, k, regions=regions, mask=mask)
        boxes = [tuple(int(v) for v in b) for b in boxes]  # type: ignore[misc]
        return RefinePlan(boxes, mask, session.alpha, session.sigma, session.alpha.copy())  # type: ignore[arg-type]

    def refine_step(self, session: Session, plan: RefinePlan, max_seconds: float = 0.25) -> bool:
        """Refine the plan's next patches, batch by batch, until ``max_seconds`` have passed (at least one
        batch); True when every patch is done. Other requests may run between steps: the patches are
        cut from the plan's own copy of the image and alpha, not from the predictor's state."""
        if plan.finished:
            return True
        import torch

        from clickmatte.model.network.refiner import crop_patches

        p = self.predictor
        refiner = p.model.refiner
        k, m = int(refiner.config.patch_size), int(refiner.config.margin)
        batch = max(1, int(p.refine_batch) if p.device.type == "cuda" else min(4, int(p.refine_batch)))
        t0 = time.perf_counter()
        rgb_img = session.image.rgb
        with torch.inference_mode():
            while not plan.finished:
                chunk = plan.boxes[plan.done: plan.done + batch]
                rgb = torch.from_numpy(crop_patches(rgb_img, chunk, m, k)).to(p.device).float() / 255.0
                a = torch.from_numpy(crop_patches(plan.base[..., None], chunk, m, k)).to(p.device)
                s = torch.from_numpy(crop_patches(plan.sigma[..., None], chunk, m, k)).to(p.device)
                out = refiner(rgb, a, s)[:, 0].float().cpu().numpy()
                for (x, y, bw, bh), patch in zip(chunk, out):  # in place: no full-size copy per batch
                    region = patch[:bh, :bw].astype(plan.out.dtype)
                    if plan.mask is None:
                        plan.out[y: y + bh, x: x + bw] = region
                    else:
                        sel = plan.mask[y: y + bh, x: x + bw]
                        plan.out[y: y + bh, x: x + bw][sel] = region[sel]
                plan.done += len(chunk)
                if time.perf_counter() - t0 >= max_seconds:
                    break
        plan.model_s += time.perf_counter() - t0
        plan.chunks += 1
        return plan.finished

    def finish_refine(self, session: Session, plan: RefinePlan) -> np.ndarray:
        """The refined alpha of a finished plan, stored as the session's alpha."""
        if not plan.finished:
            raise ValueError("the refinement is not finished")
        session.alpha = plan.out
        return plan.out
