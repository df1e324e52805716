"""Report files of ``clickmatte-eval``: summary numbers, ``summary.md``, ``sad_vs_clicks.png``, ``worst.png``.

Units: SAD, Grad and Conn are already divided by 1000; MSE is stored as the plain mean
(``"mse"``) and shown x 1e3 in tables (``"mse_x1e3"`` in the summaries).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from .metrics import LOCAL_RADIUS, METRIC_NAMES, MSE_REPORT_SCALE
from ..visualize import alpha_to_uint8, colorize_uncertainty, draw_clicks, uncertainty_to_uint8

TILE_HEIGHT = 160
COLUMNS = ("input", "clicks", "alpha", "uncertainty", "ground truth")


def _mean(values: list[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _metric_means(rows: list[dict]) -> dict[str, Optional[float]]:
    out: dict[str, Optional[float]] = {m: _mean([r[m] for r in rows]) for m in METRIC_NAMES}
    out["mse_x1e3"] = None if out["mse"] is None else out["mse"] * MSE_REPORT_SCALE
    return out


def summarize_engine(images: dict[str, dict], max_clicks: int) -> dict:
    """Means over images: per click count, NoC@MSE10, seconds, and the refinement ablation."""
    per_click = []
    for k in range(1, max_clicks + 1):
        rows = [rec["per_click"][k - 1] for rec in images.values()]
        per_click.append({"k": k, **_metric_means(rows), "seconds": _mean([r["seconds"] for r in rows]),
                          "n_images": len(rows)})
    out: dict[str, Any] = {
        "n_images": len(images),
        "per_click": per_click,
        "noc_mean": _mean([rec["noc"] for rec in images.values()]),
        "noc_reached_fraction": _mean([1.0 if rec["noc_reached"] else 0.0 for rec in images.values()]),
        "seconds_per_prediction": _mean([r["seconds"] for rec in images.values() for r in rec["per_click"]]),
    }
    local = summarize_local(images)
    if local is not None:
        out["local"] = local
    by_region = _by_region(images, max_clicks)
    if by_region:
        out["by_region"] = by_region
    by_soft = _by_soft(images, max_clicks)
    if by_soft:
        out["by_soft"] = by_soft
    refined = [rec["refine"] for rec in images.values() if "refine" in rec]
    if refined:
        ref: dict[str, Any] = {"n_images": len(refined), "top_n": refined[0]["top_n"],
                               "coarse": _metric_means([r["coarse"] for r in refined])}
        for kind in ("top", "random"):
            rows = [r[kind] for r in refined if kind in r]
            if rows:
                ref[kind] = {**_metric_means(rows), "seconds": _mean([r["seconds"] for r in rows]),
                             "patches": _mean([float(len(r["boxes"])) for r in rows])}
        out["refine"] = ref
    return out


def _local_means(rows: list[dict]) -> dict[str, Any]:
    n = len(rows)
    return {"n_clicks": n,
            "before": _mean([r["before"] for r in rows]),
            "after": _mean([r["after"] for r in rows]),
            "worse_share": (sum(1 for r in rows if r["after"] > r["before"]) / n) if n else None,
            "still_wrong_share": (sum(1 for r in rows if r["still_wrong"]) / n) if n else None}


def summarize_local(images: dict[str, dict]) -> Optional[dict]:
    """Does a click fix what it points at? Over every new click k >= 2 of every image (the records'
    ``local`` lists, :func:`clickmatte.model.evaluation.metrics.local_change`): the mean error within
    ``LOCAL_RADIUS`` px before and after the click, the share of clicks after which it went up
    (strictly), the share whose own pixel is still on the wrong side of 0.5; all clicks, then fg and
    bg apart. None for reports whose records lack the field (older versions)."""
    recs = list(images.values())
    if not recs or not all("local" in rec for rec in recs):
        return None
    rows = [r for rec in recs for r in rec["local"]]
    return {**_local_means(rows), "radius": LOCAL_RADIUS,
            "by_label": {lab: _local_means([r for r in rows if r["label"] == lab]) for lab in ("fg", "bg")}}


def local_markdown(engines: dict[str, dict]) -> list[str]:
    """The ``summary.md`` section of :func:`summarize_local` (empty when no engine has it)."""
    rows = [(n, e["summary"]["local"]) for n, e in engines.items() if e["summary"].get("local")]
    if not rows:
        return []
    radius = rows[0][1].get("radius", LOCAL_RADIUS)
    lines = ["", "## Do clicks fix what they point at?", "",
             f"Every new click from the 2nd on: mean |Δα| within {radius} px of the click with the prediction "
             "before it and after it; the share of clicks after which that error went up; the share whose "
             "clicked pixel is still on the wrong side of 0.5 afterwards.", "",
             "| engine | clicks | n | error before | error after | went up | pixel still wrong |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, loc in rows:
        for label, g in (("all", loc), ("fg", loc["by_label"]["fg"]), ("bg", loc["by_label"]["bg"])):
            lines.append(f"| {name} | {label} | {g['n_clicks']} | {_fmt(g['before'], 4)} | {_fmt(g['after'], 4)} | "
                         f"{_fmt_share(g['worse_share'])} | {_fmt_share(g['still_wrong_share'])} |")
    return lines


def _fmt_share(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _by_region(images: dict[str, dict], max_clicks: int) -> list[dict]:
    """Mean SAD on definite and on soft ground-truth pixels per click count (``metrics.sad_split``).
    Empty for reports whose records lack the fields (older versions)."""
    recs = list(images.values())
    if not recs or not all("sad_soft" in r for rec in recs for r in rec["per_click"]):
        return []
    return [{"k": k, "sad_definite": float(np.mean([rec["per_click"][k - 1]["sad_definite"] for rec in recs])),
             "sad_soft": float(np.mean([rec["per_click"][k - 1]["sad_soft"] for rec in recs]))}
            for k in range(1, max_clicks + 1)]


def _by_soft(images: dict[str, dict], max_clicks: int) -> list[dict]:
    """SAD at 1 and ``max_clicks`` clicks for the images with the least and the most soft ground truth
    (split at the median ``soft_fraction``; the lower half gets ``n // 2`` images). Empty without the
    field (reports of older versions) or with fewer than 2 images."""
    recs = [r for r in images.values() if r.get("soft_fraction") is not None]
    if len(recs) < 2 or len(recs) != len(images):
        return []
    recs.sort(key=lambda r: r["soft_fraction"])
    half = len(recs) // 2
    out = []
    for name, group in (("less soft", recs[:half]), ("more soft", recs[half:]), ("all", recs)):
        first = float(np.mean([r["per_click"][0]["sad"] for r in group]))
        last = float(np.mean([r["per_click"][max_clicks - 1]["sad"] for r in group]))
        out.append({"group": name, "n_images": len(group),
                    "soft_min": group[0]["soft_fraction"], "soft_max": group[-1]["soft_fraction"],
                    "sad_first": first, "sad_last": last,
                    "change": _relative_change(first, last)})
    return out


def _relative_change(first: float, last: float) -> Optional[float]:
    """``(last - first) / first``, or None when ``first`` is not positive."""
    return (last - first) / first if first > 0 else None


def _fmt_change(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:+.1f} %"


def _fmt(v: Optional[float], digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def summary_markdown(report: dict) -> str:
    """The Markdown summary: per-click means per engine, NoC, timing, refinement, skipped images."""
    cfg = report["config"]
    lines = [
        "# clickmatte-eval summary",
        "",
        f"- data: `{cfg['data']}`" + (f" ({cfg['names_source']})" if cfg.get("names_source") else ""),
        f"- clicks: {report['clicks_source']}; up to {cfg['max_clicks']} clicks in the table",
        f"- metrics on the whole image: SAD = sum|Δα|/1000, MSE shown ×1e3, Grad and Conn /1000 "
        f"(Rhemann et al. 2009); NoC@MSE10 = clicks until MSE ≤ {cfg['noc_mse'] * 1e3:g}e-3, cap {cfg['noc_cap']}",
        f"- skipped: {len(report['skipped'])}, failed: {len(report['failed'])}",
        *[f"- engine `{n}` merged from `{e['merged_from']}`" for n, e in report["engines"].items() if "merged_from" in e],
        *[f"- note: {n}" for n in report.get("notes", [])],
        "",
        "## Error by number of clicks",
        "",
        "| engine | clicks | images | SAD | MSE ×1e3 | Grad | Conn | s / prediction |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, eng in report["engines"].items():
        for row in eng["summary"]["per_click"]:
            lines.append(
                f"| {name} | {row['k']} | {row['n_images']} | {_fmt(row['sad'])} | {_fmt(row['mse_x1e3'])} | "
                f"{_fmt(row['grad'])} | {_fmt(row['conn'])} | {_fmt(row['seconds'])} |"
            )
    lines += ["", "## Clicks to reach MSE ≤ 10e-3", "",
              "| engine | images | mean NoC@MSE10 | reached | mean s / prediction |", "|---|---:|---:|---:|---:|"]
    for name, eng in report["engines"].items():
        s = eng["summary"]
        reached = "–" if s["noc_reached_fraction"] is None else f"{100 * s['noc_reached_fraction']:.0f} %"
        lines.append(f"| {name} | {s['n_images']} | {_fmt(s['noc_mean'], 2)} | {reached} | "
                     f"{_fmt(s['seconds_per_prediction'])} |")
    soft_rows = [(n, e["summary"]["by_soft"]) for n, e in report["engines"].items() if e["summary"].get("by_soft")]
    if soft_rows and cfg["max_clicks"] > 1:
        k = cfg["max_clicks"]
        lines += ["", "## What clicks change, by how much of the ground truth is soft", "",
                  "Soft = 5 % < alpha < 95 % (hair, glass, nets, blur), where a fg/bg click says little. "
                  "Images split at the median soft share.", "",
                  f"| engine | images | soft share | SAD 1 click | SAD {k} clicks | change |",
                  "|---|---|---|---:|---:|---:|"]
        for name, groups in soft_rows:
            for g in groups:
                lines.append(f"| {name} | {g['group']}: {g['n_images']} | {100 * g['soft_min']:.0f}–"
                             f"{100 * g['soft_max']:.0f} % | {_fmt(g['sad_first'])} | {_fmt(g['sad_last'])} | "
                             f"{_fmt_change(g['change'])} |")
    region_rows = [(n, e["summary"]["by_region"]) for n, e in report["engines"].items() if e["summary"].get("by_region")]
    if region_rows and cfg["max_clicks"] > 1:
        k = cfg["max_clicks"]
        lines += ["", "## Where the error sits: definite vs soft ground truth", "",
                  "SAD summed over the pixels whose ground truth is definite (alpha ≤ 5 % or ≥ 95 %: what a fg/bg "
                  "click names) and over the soft ones; the two add up to the SAD above.", "",
                  f"| engine | pixels | SAD 1 click | SAD {k} clicks | change |", "|---|---|---:|---:|---:|"]
        for name, rows in region_rows:
            for key, label in (("sad_definite", "definite"), ("sad_soft", "soft")):
                a, b = rows[0][key], rows[k - 1][key]
                lines.append(f"| {name} | {label} | {_fmt(a)} | {_fmt(b)} | {_fmt_change(_relative_change(a, b))} |")
    lines += local_markdown(report["engines"])
    refine_rows = [(n, e["summary"]["refine"]) for n, e in report["engines"].items() if "refine" in e["summary"]]
    if refine_rows:
        lines += ["", f"## Patch refinement at {cfg['max_clicks']} clicks", "",
                  "| engine | patches | images | SAD | MSE ×1e3 | Grad | Conn | s (refine) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, ref in refine_rows:
            c = ref["coarse"]
            lines.append(f"| {name} | none (coarse) | {ref['n_images']} | {_fmt(c['sad'])} | {_fmt(c['mse_x1e3'])} | "
                         f"{_fmt(c['grad'])} | {_fmt(c['conn'])} | – |")
            for kind, label in (("top", "top-{n} by uncertainty"), ("random", "{n} random")):
                if kind in ref:
                    r = ref[kind]
                    lab = label.format(n=ref["top_n"]) + f" (mean {r['patches']:.1f})"
                    lines.append(f"| {name} | {lab} | {ref['n_images']} | {_fmt(r['sad'])} | {_fmt(r['mse_x1e3'])} | "
                                 f"{_fmt(r['grad'])} | {_fmt(r['conn'])} | {_fmt(r['seconds'])} |")
    elif cfg.get("refine_top_n"):
        lines += ["", "Patch refinement applies to the net engine only."]
    if report["skipped"] or report["failed"]:
        lines += ["", "## Skipped / failed", ""]
        lines += [f"- skipped `{s['name']}`: {s['reason']}" for s in report["skipped"]]
        lines += [f"- failed `{f['name']}` ({f['engine']}): {f['reason']}" for f in report["failed"]]
    return "\n".join(lines) + "\n"


def plot_sad_vs_clicks(report: dict, path: Path) -> None:
    """``path`` (PNG): mean SAD against the number of clicks, one line per engine."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for name, eng in report["engines"].items():
        rows = [r for r in eng["summary"]["per_click"] if r["sad"] is not None]
        if rows:
            ax.plot([r["k"] for r in rows], [r["sad"] for r in rows], marker="o", label=f"{name} ({eng['summary']['n_images']} images)")
    ax.set_xlabel("number of clicks")
    ax.set_ylabel("mean SAD (Σ|Δα| / 1000)")
    ax.set_title("SAD vs clicks")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend()
        ax.set_xticks(sorted({int(x) for line in ax.lines for x in line.get_xdata()}))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _tile(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_NEAREST
    out = cv2.resize(img, (width, height), interpolation=interp)
    return out if out.ndim == 3 else np.repeat(out[..., None], 3, axis=2)


def _label(width: int, text: str, height: int = 22) -> np.ndarray:
    bar = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (4, height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def contact_row(item: dict, height: int = TILE_HEIGHT) -> np.ndarray:
    """input | clicks | alpha | uncertainty | ground truth for one image, ``height`` px tall, RGB uint8."""
    rgb, gt = item["rgb"], item["gt"]
    h, w = gt.shape
    s = height / h
    small = _tile(rgb, height)
    scaled = [{"x": (c["x"] + 0.5) * s - 0.5, "y": (c["y"] + 0.5) * s - 0.5, "label": c["label"]} for c in item["clicks"]]
    tiles = [
        small,
        draw_clicks(small, scaled, radius=max(3, height // 40)),
        _tile(alpha_to_uint8(item["alpha"]), height),
        _tile(colorize_uncertainty(uncertainty_to_uint8(item["uncertainty"])), height),
        _tile(gt, height),
    ]
    gap = np.full((height, 4, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for t in tiles:
        parts += [t, gap]
    return np.concatenate(parts[:-1], axis=1)


def contact_sheet(worst: dict[str, list[dict]], height: int = TILE_HEIGHT) -> Optional[np.ndarray]:
    """Rows of :func:`contact_row` (worst first, per engine) under a header; ``None`` if empty.

    Each row is labelled with the item's ``caption`` (e.g. its IoU), else its SAD."""
    rows = []
    for engine, items in worst.items():
        for it in items:
            row = contact_row(it, height)
            n = len(it["clicks"])
            score = it.get("caption") or f"SAD {it['sad']:.3f}"
            rows.append(_label(row.shape[1], f"{engine}  {it['name']}  {score} with {n} click(s)"))
            rows.append(row)
    if not rows:
        return None
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    tile_w = (rows[1].shape[1] - 16) // 5
    header = _label(width, "   |   ".join(COLUMNS) if tile_w < 90 else "")
    if tile_w >= 90:
        for i, name in enumerate(COLUMNS):
            cv2.putText(header, name, (i * (tile_w + 4) + 4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header] + rows, axis=0)


def write_outputs(report: dict, worst: dict[str, list[dict]], out: Path) -> None:
    """Write ``report.json``, ``summary.md``, ``sad_vs_clicks.png`` and ``worst.png`` into ``out``."""
    write_report_files(report, worst, out, summary_markdown(report), lambda p: plot_sad_vs_clicks(report, p),
                       "sad_vs_clicks.png")


def write_report_files(report: dict, worst: dict[str, list[dict]], out: Path, summary: str,
                       plot: Any, plot_name: str) -> None:
    """Write ``report.json``, ``summary.md`` (the text ``summary``), the curve (``plot(path)`` draws it into
    ``out / plot_name``) and ``worst.png`` (the contact sheet of ``worst``) into ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=_json_default), encoding="utf-8")
    (out / "summary.md").write_text(summary, encoding="utf-8")
    plot(out / plot_name)
    sheet = contact_sheet(worst)
    if sheet is None:
        sheet = _label(400, "no image was evaluated")
    cv2.imwrite(str(out / "worst.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def load_report(d: str, mode: str = "alpha") -> dict:
    """The ``report.json`` of an earlier run in folder ``d``; ``ValueError`` if there is none, or if it
    was made in another mode (``"alpha"``: matting, reports without a ``mode`` field; ``"mask"``)."""
    path = Path(d) / "report.json"
    try:
        other = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(other["engines"], dict) or not isinstance(other["config"], dict):
            raise TypeError("engines/config are not objects")
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"--compare {d}: no readable clickmatte-eval report ({exc})") from exc
    if other.get("mode", "alpha") != mode:
        raise ValueError(f"--compare {d}: that report is in {other.get('mode', 'alpha')} mode, this run in {mode} mode")
    return other


def merge_reports(report: dict, others: Sequence[tuple[str, dict]]) -> None:
    """Add the engines of earlier reports ``[(folder, report), ...]`` to ``report``, in place.

    A name already present gets the folder name appended (``"net (old_run)"``). Differences in
    data, selection, clicks file or click count are listed in ``report["notes"]``.
    """
    notes = report.setdefault("notes", [])
    for d, other in others:
        ocfg = other["config"]
        for key in ("data", "max_clicks", "names_source", "clicks_file", "limit"):
            a, b = ocfg.get(key), report["config"].get(key)
            if key in ("data", "clicks_file") and isinstance(a, str) and isinstance(b, str):
                a, b = str(Path(a).resolve()), str(Path(b).resolve())  # one folder, spelt two ways, is the same
            if a != b:
                notes.append(f"{d}: {key} differs ({ocfg.get(key)!r} vs {report['config'].get(key)!r})")
        for name, eng in other["engines"].items():
            new = name if name not in report["engines"] else f"{name} ({Path(d).name})"
            report["engines"][new] = {**eng, "merged_from": str(d)}
        report["skipped"] += [{**s, "name": f"{s['name']} (in {d})"} for s in other.get("skipped", [])]
        report["failed"] += [{**f, "engine": f"{f['engine']} (in {d})"} for f in other.get("failed", [])]
