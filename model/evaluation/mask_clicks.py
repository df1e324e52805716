"""Mask mode, one image (see ``mask_eval.py`` for the protocol): the click loop of :func:`evaluate_mask_image`
(simulator or fixed clicks, the previous alpha fed back, early stop), its per-click scores and the
refinement ablation (:func:`refine_ablation`); NoC (:func:`noc_at`) and the thresholds and k of the tables."""
from __future__ import annotations

import time
import zlib
from typing import Optional, Sequence

import numpy as np

from ..evaluate import MASK_NOC_CAP
from ..image_io import alpha_to_u8
from ..inference.predictor import Predictor
from .click_simulator import DEFINITE_BG, DEFINITE_FG, fixed_clicks, next_click
from .eval_engines import Engine, NetEngine
from .metrics import LOCAL_RADIUS, iou, local_change, sad_split
from .refine_study import random_boxes


NOC_THRESHOLDS = (0.85, 0.90)
IOU_KS = (1, 2, 3, 5)
SAD_KS = (1, 3, 5)
STOP_IOU = 0.90
PROTOCOLS = ("simulator", "fixed")


def noc_at(ious: Sequence[float], threshold: float, cap: int) -> tuple[int, bool]:
    """Number of clicks until IoU >= ``threshold``: ``(first k, True)``, or ``(cap, False)`` when no
    k <= ``cap`` reaches it. ``ious[i]`` is the IoU after ``i + 1`` clicks (values in [0, 1])."""
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    for i, v in enumerate(ious[:cap]):
        if v >= threshold:
            return i + 1, True
    return cap, False


def _key(t: float) -> str:
    return f"{round(100 * t)}"


REFINE_KINDS = ("top", "random")


def _mask_scores(alpha: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """IoU (both at 0.5), whole-image SAD and SAD on the mask's definite pixels (/1000) of one ``(H, W)`` alpha."""
    split = sad_split(alpha, mask, DEFINITE_BG, DEFINITE_FG)
    return {"iou": iou(alpha, mask), "sad": split["definite"] + split["soft"], "sad_definite": split["definite"]}


def image_rng(seed: int, name: str) -> np.random.Generator:
    """The random-patch generator of one image: seeded from ``seed`` and the name (not its position in the run)."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def refine_ablation(predictor: Predictor, mask: np.ndarray, top_n: int, with_random: bool,
                    rng: np.random.Generator) -> tuple[dict, dict[str, np.ndarray]]:
    """Refine the predictor's last (coarse) prediction two ways and score both against ``mask``.

    ``"top"``: :meth:`Predictor.refine` with ``top_n`` (the ``top_n`` most uncertain non-overlapping
    patches, the predictor's soft limit applied). ``"random"`` (with ``with_random``): as many random
    non-overlapping patches as the top-N refined, drawn with ``rng`` by :func:`random_boxes` under the
    same soft limit. Both start from the same coarse alpha and uncertainty, and the predictor is left
    holding them again. ``mask``: ``(H, W)`` uint8 of the image's size. Returns ``(record, alphas)``:
    ``record[kind]`` = ``{"iou", "sad", "sad_definite", "boxes": [[x, y, w, h]], "seconds"}`` and
    ``alphas[kind]`` the refined ``(H, W)`` float32 alpha. ``ValueError`` for ``top_n < 1`` or no prediction.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    if predictor.alpha is None or predictor.uncertainty is None:
        raise ValueError("nothing to refine: the predictor has no prediction")
    coarse_a, coarse_s = predictor.alpha, predictor.uncertainty
    record: dict[str, dict] = {}
    alphas: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    top = predictor.refine(top_n=top_n)
    record["top"] = {**_mask_scores(top, mask), "boxes": [list(map(int, b)) for b in predictor.last_patches],
                     "seconds": time.perf_counter() - t0}
    alphas["top"] = top
    if with_random:
        predictor.alpha, predictor.uncertainty = coarse_a, coarse_s
        h, w = coarse_a.shape
        boxes = random_boxes(h, w, len(record["top"]["boxes"]), predictor.model.refiner.config.patch_size, rng,
                             alpha=coarse_a, max_soft=predictor.image_max_soft)
        t0 = time.perf_counter()
        ra = predictor.refine(top_n=None, regions=boxes) if boxes else coarse_a
        done = [list(map(int, b)) for b in predictor.last_patches] if boxes else []
        record["random"] = {**_mask_scores(ra, mask), "boxes": done, "seconds": time.perf_counter() - t0}
        alphas["random"] = ra
    predictor.alpha, predictor.uncertainty = coarse_a, coarse_s
    predictor.last_patches = []
    return record, alphas


def evaluate_mask_image(
    engine: Engine,
    rgb: np.ndarray,
    mask: np.ndarray,
    max_clicks: int = MASK_NOC_CAP,
    stop_iou: float = STOP_IOU,
    stop_after: int = max(IOU_KS),
    feed_prev_alpha: bool = True,
    local_radius: float = LOCAL_RADIUS,
    refine_top_n: int = 0,
    refine_random: bool = False,
    rng: Optional[np.random.Generator] = None,
    protocol: str = "simulator",
) -> tuple[dict, dict]:
    """Simulate up to ``max_clicks`` clicks on one image and score each prediction against ``mask``.

    ``rgb``: ``(H, W, 3)`` uint8; ``mask``: ``(H, W)`` uint8 (binarised at 0.5 for the clicks and the
    IoU). Returns ``(record, final)``: ``record`` is JSON-ready (``per_click`` for k = 1..max_clicks
    with ``iou``, ``sad``, ``sad_definite``, ``seconds``, ``carried``; ``noc`` / ``noc_reached`` keyed
    ``"85"``, ``"90"``; ``clicks``; ``local``; ``simulated``: clicks actually made; ``stop``: why the
    simulation ended: ``"iou"``, ``"no error"`` or ``"cap"``); ``final`` holds the arrays after
    ``min(stop_after, clicks made)`` clicks (``alpha``, ``uncertainty``, ``clicks``) for the contact sheet.
    ``refine_top_n`` > 0 with a :class:`NetEngine`: after each click k <= ``stop_after`` the row also
    holds ``"refine"`` (:func:`refine_ablation`, random patches from ``rng`` when ``refine_random``);
    the coarse alpha stays the one fed back and scored in the other fields. Other engines are not refined.
    ``protocol="fixed"``: the clicks are :func:`fixed_clicks` of ``mask`` (no early stop; ``stop`` is
    ``"cap"``, or ``"no clicks"`` when the mask runs out of places to click).
    Raises ``ValueError`` for bad arguments or an image the engine does not accept.
    """
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}")
    if not 0.0 < stop_iou <= 1.0:
        raise ValueError(f"stop_iou must be in (0, 1], got {stop_iou}")
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask must be (H, W) = {rgb.shape[:2]}, got {getattr(mask, 'shape', type(mask))}")
    if refine_top_n < 0:
        raise ValueError(f"refine_top_n must be >= 0, got {refine_top_n}")
    if refine_random and refine_top_n < 1:
        raise ValueError("refine_random needs refine_top_n >= 1 (the number of random patches)")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    fixed = fixed_clicks(mask, max_clicks) if protocol == "fixed" else None
    refining = refine_top_n > 0 and isinstance(engine, NetEngine)
    rng = rng if rng is not None else np.random.default_rng(0)
    t0 = time.perf_counter()
    engine.set_image(rgb)
    set_image_s = time.perf_counter() - t0
    clicks: list[dict] = []
    per_click: list[dict] = []
    local: list[dict] = []
    prev: Optional[np.ndarray] = None
    sigma: Optional[np.ndarray] = None
    final: dict = {}
    best = 0.0
    stop = "cap"
    for k in range(1, max_clicks + 1):
        if fixed is not None:
            if k > len(fixed):
                stop = "no clicks"
                break
            c = fixed[k - 1]
        else:
            c = next_click(mask, prev, clicks)
        if c is None:
            stop = "no error"
            break
        clicks.append(c)
        fed = alpha_to_u8(prev) if (prev is not None and feed_prev_alpha) else None
        t1 = time.perf_counter()
        alpha, sigma = engine.predict(clicks, prev_alpha=fed)
        secs = time.perf_counter() - t1
        scores = _mask_scores(alpha, mask)
        j = scores["iou"]
        per_click.append({"k": k, **scores, "seconds": secs, "carried": False})
        if refining and k <= stop_after:
            assert isinstance(engine, NetEngine)
            per_click[-1]["refine"] = refine_ablation(engine.predictor, mask, refine_top_n, refine_random, rng)[0]
        if prev is not None:
            local.append({"k": k, **local_change(c, prev, alpha, mask, local_radius)})
        prev = alpha
        best = max(best, j)
        if k == stop_after:
            final = {"alpha": alpha, "uncertainty": sigma, "clicks": list(clicks)}
        if fixed is None and best >= stop_iou and k >= stop_after:
            stop = "iou"
            break
    if not per_click:
        raise ValueError("nothing to click: the mask gives the simulator no first click")
    simulated = len(per_click)
    while len(per_click) < max_clicks:  # stopped early: the last prediction stands
        last = dict(per_click[-1])
        last.update(k=len(per_click) + 1, seconds=None, carried=True)
        if last["k"] > stop_after:  # the refinement ablation is made at k <= stop_after only
            last.pop("refine", None)
        per_click.append(last)
    if not final:
        final = {"alpha": prev, "uncertainty": sigma, "clicks": list(clicks)}
    ious = [r["iou"] for r in per_click]
    nocs = {_key(t): noc_at(ious, t, max_clicks) for t in NOC_THRESHOLDS}
    record = {
        "size": [int(mask.shape[1]), int(mask.shape[0])],
        "clicks": clicks,
        "per_click": per_click,
        "simulated": simulated,
        "stop": stop,
        "noc": {key: n for key, (n, _) in nocs.items()},
        "noc_reached": {key: reached for key, (_, reached) in nocs.items()},
        "local": local,
        "set_image_seconds": set_image_s,
    }
    return record, final
