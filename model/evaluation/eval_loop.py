"""The evaluation loop of ``clickmatte-eval`` (matting mode): clicks one at a time on each image, every
prediction scored (:func:`evaluate_image`), over a data folder and one or more engines (:func:`run_evaluation`,
settings in :class:`EvalConfig`), the report written by :mod:`clickmatte.model.evaluation.eval_report`.
"""
from __future__ import annotations

import heapq
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from .click_simulator import DEFINITE_BG, DEFINITE_FG, next_click
from ..inference.config import PredictorConfig
from .eval_data import find_pairs, load_clicks_file, load_pair, norm_name
from .eval_engines import ENGINES, Engine, NetEngine, make_engine
from .metrics import all_metrics, local_change, mse, sad_split
from .refine_study import refine_both

NOC_MSE = 10e-3
NOC_CAP = 10


def evaluate_image(
    engine: Engine,
    rgb: np.ndarray,
    gt: np.ndarray,
    given_clicks: Optional[Sequence[dict]] = None,
    max_clicks: int = 5,
    noc_cap: int = NOC_CAP,
    noc_mse: float = NOC_MSE,
    refine_top_n: int = 0,
    refine_random: bool = False,
    rng: Optional[np.random.Generator] = None,
    feed_prev_alpha: bool = True,
) -> tuple[dict, dict]:
    """Score one image with one engine.

    ``rgb``: ``(H, W, 3)`` uint8; ``gt``: ``(H, W)`` uint8 alpha. Returns ``(record, final)``:
    ``record`` is the JSON-ready result (``per_click`` for k = 1..max_clicks, ``noc``,
    ``noc_reached``, ``mse_trace``, ``clicks``, ``local``: for each click k = 2..max_clicks the mean
    absolute error within ``LOCAL_RADIUS`` px of it before and after it
    (:func:`clickmatte.model.evaluation.metrics.local_change`), optional ``refine``), ``final`` holds the
    arrays at ``max_clicks`` (``alpha``, ``uncertainty``, ``clicks``) for the contact sheet.
    ``feed_prev_alpha``: pass the previous prediction to ``engine.predict`` (RITM-style).
    Raises ``ValueError`` (e.g. an image the engine does not accept, a click outside it).
    """
    rng = rng or np.random.default_rng(0)
    t0 = time.perf_counter()
    engine.set_image(rgb)
    set_image_s = time.perf_counter() - t0
    total = max(max_clicks, noc_cap)
    clicks: list[dict] = []
    per_click: list[dict] = []
    mse_trace: list[float] = []
    local: list[dict] = []  # per new click k >= 2 (k <= max_clicks): the error near it before and after
    prev: Optional[np.ndarray] = None
    sigma: Optional[np.ndarray] = None
    noc: Optional[int] = None
    final: dict = {}
    refine: Optional[dict] = None
    for k in range(1, total + 1):
        if given_clicks is not None:
            if k > len(given_clicks):
                break
            c = dict(given_clicks[k - 1])
        else:
            c = next_click(gt, prev, clicks)
            if c is None:
                break
        clicks.append(c)
        t1 = time.perf_counter()
        alpha, sigma = engine.predict(clicks, prev_alpha=prev if feed_prev_alpha else None)
        secs = time.perf_counter() - t1
        if prev is not None and k <= max_clicks:
            local.append({"k": k, **local_change(c, prev, alpha, gt)})
        prev = alpha
        e = mse(alpha, gt)
        mse_trace.append(e)
        if noc is None and e <= noc_mse:
            noc = k
        if k <= max_clicks:
            split = sad_split(alpha, gt, DEFINITE_BG, DEFINITE_FG)
            per_click.append({"k": k, **all_metrics(alpha, gt), "sad_definite": split["definite"],
                              "sad_soft": split["soft"], "seconds": secs, "carried": False})
        if k == max_clicks:
            final = {"alpha": alpha, "uncertainty": sigma, "clicks": list(clicks)}
            if refine_top_n > 0 and isinstance(engine, NetEngine):
                refine = refine_both(engine, gt, refine_top_n, refine_random, rng)
        if k >= max_clicks and noc is not None:
            break
    if not clicks:
        raise ValueError("no clicks to evaluate (empty clicks list, or nothing to click)")
    while len(per_click) < max_clicks:  # no error left / no more clicks: the last prediction stands
        last = dict(per_click[-1])
        last.update(k=len(per_click) + 1, seconds=None, carried=True)
        per_click.append(last)
    if not final:
        final = {"alpha": prev, "uncertainty": sigma, "clicks": list(clicks)}
        if refine_top_n > 0 and isinstance(engine, NetEngine):
            refine = refine_both(engine, gt, refine_top_n, refine_random, rng)
    if refine is not None:
        refine["coarse"] = {kk: per_click[-1][kk] for kk in ("sad", "mse", "grad", "conn")}
    record = {
        "size": [int(gt.shape[1]), int(gt.shape[0])],
        "clicks": clicks,
        "per_click": per_click,
        "mse_trace": mse_trace,
        "noc": noc if noc is not None else noc_cap,
        "noc_reached": noc is not None,
        "set_image_seconds": set_image_s,
        "soft_fraction": soft_fraction(gt),
        "local": local,
    }
    if refine is not None:
        record["refine"] = refine
    return record, final


def soft_fraction(gt: np.ndarray) -> float:
    """Share of ``(H, W)`` uint8 ground-truth pixels that are neither definite foreground nor definite
    background (5 % < alpha < 95 %: hair, glass, nets, blur) — where a fg/bg click says little."""
    a = gt.astype(np.float32) / 255.0
    return float(((a > DEFINITE_BG) & (a < DEFINITE_FG)).mean())


@dataclass
class EvalConfig:
    data: str
    out: str
    engines: list[str] = field(default_factory=lambda: ["net"])
    clicks_file: Optional[str] = None
    max_clicks: int = 5
    checkpoint: Optional[str] = None
    device: str = "auto"
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    refine_top_n: int = 0
    refine_random: bool = False
    names: Optional[list[str]] = None
    names_source: Optional[str] = None
    limit: Optional[int] = None
    noc_cap: int = NOC_CAP
    noc_mse: float = NOC_MSE
    worst: int = 4
    seed: int = 0
    feed_prev_alpha: bool = True
    compare: list[str] = field(default_factory=list)


def run_evaluation(cfg: EvalConfig, progress: bool = True) -> dict:
    """Evaluate every engine on the data, write the report files to ``cfg.out``, return the report dict."""
    from .eval_report import load_report, merge_reports, summarize_engine, write_outputs

    if cfg.max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {cfg.max_clicks}")
    if cfg.refine_top_n < 0:
        raise ValueError(f"refine_top_n must be >= 0, got {cfg.refine_top_n}")
    for e in cfg.engines:
        if e not in ENGINES:
            raise ValueError(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    others = [(d, load_report(d)) for d in cfg.compare]  # fail early, before the long run
    data = Path(cfg.data)
    pairs, skipped = find_pairs(data, cfg.names)
    given = load_clicks_file(Path(cfg.clicks_file)) if cfg.clicks_file else None
    if cfg.limit is not None:
        pairs = pairs[: max(0, cfg.limit)]
    engines = {name: make_engine(name, cfg.checkpoint, cfg.device, cfg.predictor) for name in cfg.engines}
    results: dict[str, dict[str, dict]] = {name: {} for name in engines}
    failed: list[dict] = []
    worst: dict[str, list] = {name: [] for name in engines}  # min-heaps of (sad, counter, payload)
    counter = 0
    bar = progress_bar(len(pairs) * len(engines), progress)
    for pair in pairs:
        try:
            rgb, gt = load_pair(pair)
        except ValueError as exc:
            skipped.append({"name": pair.name, "reason": str(exc)})
            bar.update(len(engines))
            continue
        clicks = None
        if given is not None:
            clicks = given.get(norm_name(pair.name))
            if not clicks:
                skipped.append({"name": pair.name, "reason": "no clicks for it in the clicks file"})
                bar.update(len(engines))
                continue
        for name, engine in engines.items():
            rng = np.random.default_rng([cfg.seed, counter])
            try:
                rec, final = evaluate_image(
                    engine, rgb, gt, clicks, cfg.max_clicks, cfg.noc_cap, cfg.noc_mse,
                    cfg.refine_top_n, cfg.refine_random, rng, cfg.feed_prev_alpha,
                )
            except (ValueError, cv2.error) as exc:
                failed.append({"name": pair.name, "engine": name, "reason": str(exc).strip()})
                bar.update(1)
                continue
            results[name][pair.name] = rec
            counter += 1
            item = (rec["per_click"][-1]["sad"], counter,
                    {"name": pair.name, "rgb": rgb, "gt": gt, **final, "sad": rec["per_click"][-1]["sad"]})
            keep_worst(worst[name], item, cfg.worst)
            bar.update(1)
            bar.set_postfix_str(f"{name} {pair.name} SAD@{cfg.max_clicks}={rec['per_click'][-1]['sad']:.2f}")
    bar.close()
    report = {
        "mode": "alpha",
        "config": asdict(cfg),
        "units": {"sad": "sum |da| / 1000", "mse": "plain mean (tables show x1e3)", "grad": "/1000",
                  "conn": "/1000", "seconds": "per prediction", "noc": f"clicks to MSE <= {cfg.noc_mse:g}, cap {cfg.noc_cap}"},
        "clicks_source": "file" if given is not None else "simulator (error-driven, RITM-style)",
        "skipped": skipped,
        "failed": failed,
        "engines": {
            name: {
                "description": getattr(engines[name], "description", {}),
                "images": results[name],
                "summary": summarize_engine(results[name], cfg.max_clicks),
            }
            for name in engines
        },
    }
    merge_reports(report, others)
    worst_items = {name: [it[2] for it in sorted(worst[name], reverse=True)] for name in engines}
    write_outputs(report, worst_items, Path(cfg.out))
    return report


def keep_worst(heap: list, item: tuple, n: int) -> None:
    """Keep the ``n`` items of highest score in the min-heap ``heap`` (``item`` = (score, counter, payload); the
    lowest score is dropped first): a score of SAD, or of minus IoU, keeps the worst images."""
    if len(heap) < n:
        heapq.heappush(heap, item)
    elif n > 0:
        heapq.heappushpop(heap, item)


class _NoBar:
    """The progress bar's methods, doing nothing."""

    def update(self, n: int = 1) -> None: ...

    def set_postfix_str(self, s: str) -> None: ...

    def close(self) -> None: ...


def progress_bar(total: int, enabled: bool) -> Any:
    """A tqdm bar on stderr over ``total`` runs, or a silent stand-in (``update``, ``set_postfix_str``, ``close``)
    when ``enabled`` is False."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _NoBar()
    return tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True)
