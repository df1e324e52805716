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
"""
from __future__ import annotations

import argparse
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from .click_simulator import DEFINITE_BG, DEFINITE_FG, fixed_clicks, next_click
from .eval_report import _fmt, local_markdown, summarize_local, write_report_files
from .eval_data import find_pairs, load_pair
from .eval_engines import Engine, NetEngine, make_engine
from .eval_loop import keep_worst, progress_bar
from .eval_report import load_report, merge_reports
from ..evaluate import MASK_NOC_CAP, _finish, _read_names_file
from .refine_study import random_boxes
from .metrics import LOCAL_RADIUS, iou, local_change, sad_split
from ..inference.config import PredictorConfig, predictor_config_from_args
from ..inference.predictor import Predictor

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


def _to_u8(alpha: np.ndarray) -> np.ndarray:
    """The daemon's way to keep and feed back a previous alpha: ``(H, W)`` float [0, 1] -> uint8, rounded."""
    return (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


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
        fed = _to_u8(prev) if (prev is not None and feed_prev_alpha) else None
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


def summarize_mask_engine(images: dict[str, dict], max_clicks: int) -> dict:
    """Means over images: the IoU curve (k = 1..max_clicks), IoU / SAD at the table's k, NoC, local error."""
    recs = list(images.values())
    out: dict[str, Any] = {"n_images": len(recs)}
    if not recs:
        return out
    curve = []
    for k in range(1, max_clicks + 1):
        rows = [rec["per_click"][k - 1] for rec in recs]
        curve.append({"k": k, "iou": float(np.mean([r["iou"] for r in rows])),
                      "sad_definite": float(np.mean([r["sad_definite"] for r in rows])),
                      "sad": float(np.mean([r["sad"] for r in rows])),
                      "n_measured": sum(1 for r in rows if not r["carried"])})
    out["per_click"] = curve
    out["iou_at"] = {str(k): curve[k - 1]["iou"] for k in IOU_KS if k <= max_clicks}
    out["sad_definite_at"] = {str(k): curve[k - 1]["sad_definite"] for k in SAD_KS if k <= max_clicks}
    out["sad_at"] = {str(k): curve[k - 1]["sad"] for k in SAD_KS if k <= max_clicks}
    last = [rec["per_click"][-1]["sad"] > rec["per_click"][0]["sad"] for rec in recs]
    out["worse_share"] = float(np.mean(last))  # SAD at k = max_clicks above SAD at k = 1
    out["worse_images"] = int(sum(last))
    out["noc"] = {}
    for t in NOC_THRESHOLDS:
        key = _key(t)
        never = sum(1 for rec in recs if not rec["noc_reached"][key])
        out["noc"][key] = {"mean": float(np.mean([rec["noc"][key] for rec in recs])), "never": never,
                           "never_share": never / len(recs)}
    secs = [r["seconds"] for rec in recs for r in rec["per_click"] if r["seconds"] is not None]
    out["seconds_per_prediction"] = float(np.mean(secs)) if secs else None
    out["clicks_simulated"] = float(np.mean([rec["simulated"] for rec in recs]))
    local = summarize_local(images)
    if local is not None:
        out["local"] = local
    refine = summarize_refine(images)
    if refine is not None:
        out["refine"] = refine
    return out


def summarize_refine(images: dict[str, dict]) -> Optional[dict]:
    """The refinement ablation over images, per click count k that every image has refined: means of IoU, SAD and
    definite-pixel SAD for ``"coarse"`` (none) and each refined kind, its mean patch count and seconds, and
    ``"lower_share"``: the share of images whose definite-pixel SAD that kind lowered. None without refinement."""
    recs = list(images.values())
    if not recs or not all("refine" in rec["per_click"][0] for rec in recs):
        return None
    at: dict[str, dict] = {}
    for i in range(len(recs[0]["per_click"])):
        rows = [rec["per_click"][i] if i < len(rec["per_click"]) else {} for rec in recs]
        if not all("refine" in r for r in rows):
            break
        metrics = ("iou", "sad", "sad_definite")
        entry: dict[str, Any] = {"coarse": {m: float(np.mean([r[m] for r in rows])) for m in metrics}}
        for kind in REFINE_KINDS:
            ref = [(r, r["refine"][kind]) for r in rows if kind in r["refine"]]
            if len(ref) != len(rows):
                continue
            entry[kind] = {m: float(np.mean([x[m] for _, x in ref])) for m in ("iou", "sad", "sad_definite", "seconds")}
            entry[kind]["patches"] = float(np.mean([len(x["boxes"]) for _, x in ref]))
            entry[kind]["lower_share"] = float(np.mean([x["sad_definite"] < r["sad_definite"] for r, x in ref]))
        at[str(i + 1)] = entry
    return {"n_images": len(recs), "at": at}


def mask_summary_markdown(report: dict) -> str:
    """The Markdown summary of a mask-mode report: one row per engine (side by side), the IoU curve,
    the local error around clicks, skipped / failed images."""
    cfg = report["config"]
    cap = cfg["max_clicks"]
    engines = report["engines"]
    lines = [
        "# clickmatte-eval summary (mask mode: interactive segmentation)",
        "",
        f"- data: `{cfg['data']}`" + (f" ({cfg['names_source']})" if cfg.get("names_source") else "")
        + (f", the first {cfg['limit']} names in sorted order" if cfg.get("limit") else ""),
        (f"- clicks: {report['clicks_source']}; cap {cap}; an image stops once IoU ≥ {cfg['stop_iou']:g} "
         f"and k ≥ {min(max(IOU_KS), cap)} (later k carry its last prediction; NoC and everything at "
         f"k ≤ {min(max(IOU_KS), cap)} measured)" if cfg.get("protocol", "simulator") == "simulator" else
         f"- clicks: {report['clicks_source']}; {cap} per image, no early stop"),
        "- IoU with prediction and mask binarised at 0.5; NoC@85 / NoC@90 = clicks until IoU ≥ 0.85 / 0.90 "
        f"({cap} when never reached; 'never' counts those images); SAD = Σ|Δα|/1000 on the mask's definite "
        "pixels (≤ 5 % or ≥ 95 %)",
        f"- skipped: {len(report['skipped'])}, failed: {len(report['failed'])}",
        *[f"- engine `{n}`: checkpoint `{e.get('description', {}).get('checkpoint')}`"
          + (f", merged from `{e['merged_from']}`" if "merged_from" in e else "") for n, e in engines.items()],
        *[f"- note: {n}" for n in report.get("notes", [])],
        "",
        "## Side by side",
        "",
    ]
    ks = [k for k in IOU_KS if k <= cap]
    sks = [k for k in SAD_KS if k <= cap]
    head = (["engine", "images"] + [f"IoU@{k}" for k in ks] + ["NoC@85", "never 85", "NoC@90", "never 90"]
            + [f"SAD def @{k}" for k in sks] + [f"SAD @{k}" for k in sks] + [f"worse @{cap} than @1", "s / prediction"])
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, eng in engines.items():
        s = eng["summary"]
        if not s.get("per_click"):
            lines.append(f"| {name} | 0 |" + " – |" * (len(head) - 2))
            continue
        cells = [name, str(s["n_images"])] + [_fmt(s["iou_at"][str(k)]) for k in ks]
        for t in NOC_THRESHOLDS:
            n = s["noc"][_key(t)]
            cells += [_fmt(n["mean"], 2), str(n["never"])]
        cells += [_fmt(s["sad_definite_at"][str(k)]) for k in sks] + [_fmt(s["sad_at"][str(k)]) for k in sks]
        cells += [f"{s['worse_images']} ({s['worse_share']:.0%})" if "worse_images" in s else "–",
                  _fmt(s["seconds_per_prediction"])]
        lines.append("| " + " | ".join(cells) + " |")
    with_curve = [(n, e["summary"]) for n, e in engines.items() if e["summary"].get("per_click")]
    if with_curve:
        lines += ["", "## Mean IoU by number of clicks", "",
                  "`measured`: images still being clicked at that k (the others carry their last prediction).", "",
                  "| clicks | " + " | ".join(f"{n} IoU | measured" for n, _ in with_curve) + " |",
                  "|---:|" + "---:|---:|" * len(with_curve)]
        for k in range(1, cap + 1):
            cells = [str(k)]
            for _, s in with_curve:
                row = s["per_click"][k - 1] if k <= len(s["per_click"]) else None
                cells += [_fmt(row["iou"]), str(row["n_measured"])] if row else ["–", "–"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += local_markdown(engines)
    lines += refine_markdown(report)
    if report["skipped"] or report["failed"]:
        lines += ["", "## Skipped / failed", ""]
        lines += [f"- skipped `{s['name']}`: {s['reason']}" for s in report["skipped"]]
        lines += [f"- failed `{f['name']}` ({f['engine']}): {f['reason']}" for f in report["failed"]]
    return "\n".join(lines) + "\n"


def refine_markdown(report: dict) -> list[str]:
    """The summary's refinement section: per engine and click count, none / top-N / random-N side by side."""
    cfg = report["config"]
    rows = [(n, e["summary"]["refine"]) for n, e in report["engines"].items() if e["summary"].get("refine")]
    if not rows:
        return ["", "Patch refinement applies to the net engine only."] if cfg.get("refine_top_n") else []
    n = cfg.get("refine_top_n")
    kinds = f"none / top-{n} by uncertainty" + (f" / {n} random" if cfg.get("refine_random") else "")
    lines = ["", f"## Patch refinement after each click ({kinds})", "",
             "Each refinement starts from the coarse prediction of that click; the coarse one is fed back. "
             "`lower`: share of images whose definite-pixel SAD it lowered.", "",
             "| engine | clicks | IoU none | IoU top | IoU random | SAD def none | SAD def top | SAD def random "
             "| SAD none | SAD top | SAD random | lower top | lower random | patches top / random |",
             "|---|---:|" + "---:|" * 12]
    for name, ref in rows:
        for k, e in ref["at"].items():
            t, r = e.get("top", {}), e.get("random", {})
            cells = [name, k]
            for m in ("iou", "sad_definite", "sad"):
                cells += [_fmt(e["coarse"][m], 4 if m == "iou" else 3), _fmt(t.get(m), 4 if m == "iou" else 3),
                          _fmt(r.get(m), 4 if m == "iou" else 3)]
            cells += [_fmt(t.get("lower_share"), 2), _fmt(r.get("lower_share"), 2),
                      f"{_fmt(t.get('patches'), 1)} / {_fmt(r.get('patches'), 1)}"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_iou_vs_clicks(report: dict, path: Path) -> None:
    """``path`` (PNG): mean IoU against the number of clicks, one line per engine."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for name, eng in report["engines"].items():
        rows = eng["summary"].get("per_click") or []
        if rows:
            ax.plot([r["k"] for r in rows], [r["iou"] for r in rows], marker="o", markersize=3,
                    label=f"{name} ({eng['summary']['n_images']} images)")
    for t in NOC_THRESHOLDS:
        ax.axhline(t, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("number of clicks")
    ax.set_ylabel("mean IoU")
    ax.set_title("IoU vs clicks")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_mask_outputs(report: dict, worst: dict[str, list[dict]], out: Path) -> None:
    """Write ``report.json``, ``summary.md``, ``iou_vs_clicks.png`` and ``worst.png`` into ``out``."""
    write_report_files(report, worst, out, mask_summary_markdown(report), lambda p: plot_iou_vs_clicks(report, p),
                       "iou_vs_clicks.png")


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
