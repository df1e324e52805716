"""Mask mode of ``clickmatte-eval``: click-guided matting scored as interactive segmentation.

For every ``image/NAME`` + ``mask/NAME.png`` pair of a folder (binary object masks, 8-bit,
e.g. ``real_objects/ecssd_val``) and every engine, clicks come from the standard simulator of
interactive segmentation (RITM, Sofiiuk et al. 2022; :func:`clickmatte.model.evaluation.click_simulator.next_click`):
the first click is a fg click at the point deepest inside the object; each next one is placed at
the point deepest inside the larger error region (the one with the deeper interior point) of the
prediction and the mask, both binarised at 0.5 — false negatives give a fg click, false
positives a bg click. The previous alpha is fed back with every click as the daemon does
(``prev_alpha`` as uint8, rounded as the daemon keeps it: ``backend/engine.py``), and the
engine runs with the settings it is given (the predictor's defaults unless told otherwise, so
the numbers are the product's).

Per image and click count k = 1..``max_clicks`` (the NoC cap, 20 by default): IoU (both at 0.5),
SAD (/1000) on the whole image and on the mask's definite pixels (``<= 5 %`` or ``>= 95 %``:
outside any anti-aliased band), seconds; per new click k >= 2 the error within 30 px of it before
and after it (:func:`clickmatte.model.evaluation.metrics.local_change`). NoC@85 / NoC@90: the first k with
IoU >= 0.85 / 0.90, ``max_clicks`` when never reached (the standard convention; the report also
counts the images that never reach it).

``protocol="fixed"`` (``--protocol fixed``) replaces the simulator by the error-blind fixed protocol of
:func:`clickmatte.model.evaluation.click_simulator.fixed_clicks` (fg, bg, fg, ... each at the point deepest inside
the true foreground / background and away from earlier clicks): every image gets the same ``max_clicks``
clicks whatever the network answers, no early stop. It measures whether more clicks that say nothing
new about the errors still help (``worse_share``: images whose SAD at the last k is higher than at 1).

Early stop (simulator protocol): an image stops being clicked once it has reached IoU >= ``stop_iou`` (0.90) and
k >= ``stop_after`` (5, the largest k of the IoU / SAD table). Its later click counts carry the last
prediction forward (``"carried": true``; RITM itself keeps clicking). So IoU and SAD at k <= 5 and
NoC@85 / NoC@90 are always measured, never carried; only the per-k curve past 5 uses carried
values for the images that stopped. An image whose binarised prediction has no error left gets no
further click either (IoU 1 from there on).

Refinement ablation (``refine_top_n`` N > 0, net engine only): after each click k <= ``stop_after``
(5) the coarse prediction is also refined at full resolution in the N most uncertain 64 x 64
patches (:meth:`clickmatte.model.inference.predictor.Predictor.refine`, the product's automatic choice, soft
limit included) and, with ``refine_random``, in as many random non-overlapping patches
(:func:`clickmatte.model.evaluation.refine_study.random_boxes`, same grid and soft limit; seeded per image from
``seed`` and the image name, so a run is reproducible and independent of ``--limit``). Both start
from the same coarse state and are scored like it (IoU, SAD, definite-pixel SAD: ``per_click[i]
["refine"]``); the coarse alpha is what is fed back and what the simulator sees, so the click
chain, NoC and every coarse number are those of a run without refinement.

Outputs in ``--out``: ``report.json`` (``"mode": "mask"``, every number), ``summary.md``,
``iou_vs_clicks.png`` and ``worst.png`` (lowest IoU at 5 clicks).

This module: the run over a folder (:class:`MaskEvalConfig`, :func:`run_mask_evaluation`, :func:`main_masks`).
One image's click loop is in ``mask_clicks.py``, the summaries, tables and plots in ``mask_report.py``;
their names are importable from here.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import cv2

from ..evaluate import MASK_NOC_CAP, _finish, _read_names_file
from ..inference.config import PredictorConfig, predictor_config_from_args
from .eval_data import find_pairs, load_pair
from .eval_engines import make_engine
from .eval_loop import keep_worst, progress_bar
from .eval_report import load_report, merge_reports
from .mask_clicks import (
    IOU_KS, NOC_THRESHOLDS, PROTOCOLS, REFINE_KINDS, SAD_KS, STOP_IOU, evaluate_mask_image, image_rng,
    noc_at, refine_ablation,
)
from .mask_report import (
    mask_summary_markdown, plot_iou_vs_clicks, refine_markdown, summarize_mask_engine, summarize_refine,
    write_mask_outputs,
)
from .metrics import LOCAL_RADIUS

__all__ = ["MaskEvalConfig", "run_mask_evaluation", "main_masks", "NOC_THRESHOLDS", "IOU_KS", "SAD_KS",
           "STOP_IOU", "PROTOCOLS", "REFINE_KINDS", "noc_at", "image_rng", "refine_ablation", "evaluate_mask_image",
           "summarize_mask_engine", "summarize_refine", "mask_summary_markdown", "refine_markdown",
           "plot_iou_vs_clicks", "write_mask_outputs"]


@dataclass
class MaskEvalConfig:
    data: str
    out: str
    engines: list[str] = field(default_factory=lambda: ["net"])
    max_clicks: int = MASK_NOC_CAP
    checkpoint: Optional[str] = None
    device: str = "auto"
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    names: Optional[list[str]] = None
    names_source: Optional[str] = None
    limit: Optional[int] = None
    stop_iou: float = STOP_IOU
    worst: int = 4
    feed_prev_alpha: bool = True
    refine_top_n: int = 0
    refine_random: bool = False
    seed: int = 0
    compare: list[str] = field(default_factory=list)
    protocol: str = "simulator"
    clicks_file: Optional[str] = None  # always None: the protocol places the clicks (kept for --compare's checks)
    mode: str = "mask"


def run_mask_evaluation(cfg: MaskEvalConfig, progress: bool = True) -> dict:
    """Evaluate every engine on ``cfg.data`` (``image/`` + ``mask/``), write the report to ``cfg.out``, return it.

    ``cfg.limit`` keeps the first N names in sorted order. ``cfg.compare``: folders of earlier
    mask-mode reports whose engines are shown side by side (``ValueError`` for a matting report).
    """
    if cfg.max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {cfg.max_clicks}")
    if not 0.0 < cfg.stop_iou <= 1.0:
        raise ValueError(f"stop_iou must be in (0, 1], got {cfg.stop_iou}")
    if cfg.refine_top_n < 0:
        raise ValueError(f"refine_top_n must be >= 0, got {cfg.refine_top_n}")
    if cfg.refine_random and cfg.refine_top_n < 1:
        raise ValueError("refine_random needs refine_top_n >= 1 (the number of random patches)")
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {cfg.protocol!r}")
    others = [(d, load_report(d, mode="mask")) for d in cfg.compare]  # fail early, before the long run
    pairs, skipped = find_pairs(Path(cfg.data), cfg.names, truth="mask")
    if cfg.limit is not None:
        pairs = pairs[: max(0, cfg.limit)]
    engines = {name: make_engine(name, cfg.checkpoint, cfg.device, cfg.predictor) for name in cfg.engines}
    results: dict[str, dict[str, dict]] = {name: {} for name in engines}
    failed: list[dict] = []
    worst: dict[str, list] = {name: [] for name in engines}  # min-heaps of (-iou, counter, payload)
    counter = 0
    k_show = min(max(IOU_KS), cfg.max_clicks)
    t_start = time.perf_counter()
    bar = progress_bar(len(pairs) * len(engines), progress)
    for pair in pairs:
        try:
            rgb, mask = load_pair(pair)
        except ValueError as exc:
            skipped.append({"name": pair.name, "reason": str(exc)})
            bar.update(len(engines))
            continue
        for name, engine in engines.items():
            try:
                rec, final = evaluate_mask_image(engine, rgb, mask, cfg.max_clicks, cfg.stop_iou,
                                                 feed_prev_alpha=cfg.feed_prev_alpha, refine_top_n=cfg.refine_top_n,
                                                 refine_random=cfg.refine_random, rng=image_rng(cfg.seed, pair.name),
                                                 protocol=cfg.protocol)
            except (ValueError, cv2.error) as exc:
                failed.append({"name": pair.name, "engine": name, "reason": str(exc).strip()})
                bar.update(1)
                continue
            results[name][pair.name] = rec
            counter += 1
            j = rec["per_click"][k_show - 1]["iou"]
            item = (-j, counter, {"name": pair.name, "rgb": rgb, "gt": mask, **final, "sad": 0.0,
                                  "caption": f"IoU@{k_show} {j:.3f}"})
            keep_worst(worst[name], item, cfg.worst)
            bar.update(1)
            bar.set_postfix_str(f"{name} {pair.name} IoU@{k_show}={j:.3f} NoC90={rec['noc']['90']}")
    bar.close()
    report = {
        "mode": "mask",
        "config": asdict(cfg),
        "units": {"iou": "prediction and mask binarised at 0.5", "sad": "sum |da| / 1000",
                  "sad_definite": "sum |da| / 1000 over mask pixels <= 5 % or >= 95 %",
                  "noc": f"clicks to IoU >= 0.85 / 0.90, cap {cfg.max_clicks}",
                  "local": f"mean |da| within {LOCAL_RADIUS} px of a click, before and after it",
                  "seconds": "per prediction"},
        "clicks_source": ("simulator (RITM: deepest point of the larger error region, previous alpha fed back as uint8)"
                          if cfg.protocol == "simulator" else
                          "fixed (fg, bg, fg, ... at the deepest points of the true regions, away from earlier clicks; "
                          "previous alpha fed back as uint8)"),
        "wall_seconds": time.perf_counter() - t_start,
        "skipped": skipped,
        "failed": failed,
        "engines": {
            name: {
                "description": getattr(engines[name], "description", {}),
                "images": results[name],
                "summary": summarize_mask_engine(results[name], cfg.max_clicks),
            }
            for name in engines
        },
    }
    merge_reports(report, others)
    worst_items = {name: [it[2] for it in sorted(worst[name], reverse=True)] for name in engines}
    write_mask_outputs(report, worst_items, Path(cfg.out))
    return report


def main_masks(parser: argparse.ArgumentParser, args: argparse.Namespace, engines: list[str]) -> int:
    """``clickmatte-eval --masks``: the parsed command line (of :func:`clickmatte.model.evaluate.build_parser`)
    -> a mask-mode run; the exit status (0 ok, 1 nothing evaluated, 2 bad input)."""
    for flag, used in (("--clicks", args.clicks), ("--split", args.split)):
        if used:
            parser.error(f"{flag} does not apply with --masks (the simulator places the clicks on ecssd-style data)")
    if args.refine_top_n < 0:
        parser.error("--refine-top-n must be >= 0")
    if args.refine_random and args.refine_top_n <= 0:
        parser.error("--refine-random needs --refine-top-n N (the number of random patches)")
    names, source = None, None
    try:
        if args.names_file:
            names, source = _read_names_file(args.names_file), f"file {args.names_file}"
        cfg = MaskEvalConfig(
            data=args.masks, out=args.out, engines=engines,
            max_clicks=args.max_clicks if args.max_clicks is not None else MASK_NOC_CAP,
            checkpoint=args.checkpoint, device=args.device, predictor=predictor_config_from_args(args),
            names=names, names_source=source, limit=args.limit,
            worst=max(0, args.worst), feed_prev_alpha=not args.no_prev_alpha, compare=list(args.compare),
            refine_top_n=args.refine_top_n, refine_random=args.refine_random, seed=args.seed,
            protocol=args.protocol,
        )
        report = run_mask_evaluation(cfg, progress=not args.quiet)
    except ValueError as exc:
        print(f"clickmatte-eval: error: {exc}", file=sys.stderr)
        return 2
    return _finish(report, args.out)
