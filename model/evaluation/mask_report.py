"""Mask mode's report (see ``mask_eval.py``): per-engine summaries (:func:`summarize_mask_engine`,
:func:`summarize_refine`), the ``summary.md`` tables, the IoU-vs-clicks plot and the report files."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .eval_report import _fmt, local_markdown, summarize_local, write_report_files
from .mask_clicks import IOU_KS, NOC_THRESHOLDS, REFINE_KINDS, SAD_KS, _key


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
