"""``clickmatte-eval``: measure click-guided matting like a matting paper.

For every ``image/NAME.png`` + ``alpha/NAME.png`` pair in a data folder and every engine
(the network ``net`` and/or the ``classical`` GrabCut + closed-form pipeline), clicks are
added one at a time and each prediction is scored on the whole image with SAD, MSE, Grad and
Conn (:mod:`clickmatte.model.metrics`), plus the seconds it took. Clicks come from a JSON file
(``{"NAME.png": [{"x", "y", "label"}, ...]}``, the first k for k = 1..max) or from the
error-driven simulator (:func:`clickmatte.model.click_simulator.next_click`), which sees the
previous prediction; the network also gets it as ``prev_alpha`` (RITM-style;
``--no-prev-alpha`` turns that off). ``--engine net,classical`` runs both engines on the same
images with the same click protocol and puts them side by side in one report.

NoC@MSE10: the number of clicks after which MSE <= 10e-3, capped at 10 (10 when never
reached). To measure it the simulator goes on past ``--max-clicks`` up to 10 clicks (only MSE
is computed for those extra clicks; the per-click table stops at ``--max-clicks``). With a
clicks file the clicks it holds are the limit. When the simulator finds no error left, or the
file has no more clicks, the last prediction stands for the remaining click counts
(``"carried": true`` in the report, no time counted).

Does a click fix what it points at? For every click k = 2..``--max-clicks`` the report holds
the mean absolute error within 30 px of it before and after it (``"local"``,
:func:`clickmatte.model.metrics.local_change`); the summary gives the means and the share of
clicks after which that error went up.

Outputs in ``--out``: ``report.json`` (every number), ``summary.md``, ``sad_vs_clicks.png``
and ``worst.png`` (see :mod:`clickmatte.model.eval_report`).

``--masks DIR`` (instead of ``--data``) scores binary object masks as interactive segmentation
(IoU at k clicks, NoC@85 / NoC@90, cap 20): :mod:`clickmatte.model.mask_eval`.
"""
from __future__ import annotations

import argparse
import heapq
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

import cv2
import numpy as np

from .click_simulator import DEFINITE_BG, DEFINITE_FG, next_click
from .metrics import all_metrics, local_change, mse, sad_split
from .config import PredictorConfig, add_predictor_arguments, predictor_config_from_args
from .refiner import check_max_soft, window_soft_fraction


log = logging.getLogger(__name__)

ENGINES = ("net", "classical")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NOC_MSE = 10e-3
NOC_CAP = 10
MASK_NOC_CAP = 20  # the mask mode's default cap (clickmatte.model.mask_eval), the interactive-segmentation standard


class Engine(Protocol):
    """What the evaluator needs from an engine (``Predictor`` and ``ClassicalEngine`` both fit)."""

    def set_image(self, image: np.ndarray) -> None: ...

    def predict(self, clicks: Sequence[dict], prev_alpha: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]: ...


# -- data -------------------------------------------------------------------------------------
@dataclass
class Pair:
    name: str
    image_path: Path
    alpha_path: Path


def read_image(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from an 8-bit file (gray is expanded, an alpha channel dropped)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError("unreadable image file")
    if raw.dtype != np.uint8:
        raise ValueError(f"image is {raw.dtype}, expected 8-bit")
    if raw.ndim == 2:
        return np.repeat(raw[..., None], 3, axis=2)
    if raw.shape[2] == 4:
        raw = raw[:, :, :3]
    if raw.shape[2] != 3:
        raise ValueError(f"image has {raw.shape[2]} channels")
    return np.ascontiguousarray(raw[:, :, ::-1])


def read_alpha(path: Path) -> np.ndarray:
    """``(H, W)`` uint8 alpha from an 8-bit gray file, or an RGB(A) file whose colour channels are equal.

    An RGBA file is accepted only when its own alpha channel is fully opaque (otherwise which
    channel holds the matte is ambiguous). Raises ``ValueError`` with the reason.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError("unreadable alpha file")
    if raw.dtype != np.uint8:
        raise ValueError(f"alpha is {raw.dtype}, expected 8-bit gray")
    if raw.ndim == 2:
        return raw
    if raw.shape[2] == 4:
        if not np.all(raw[:, :, 3] == 255):
            raise ValueError("alpha file is RGBA with a non-opaque alpha channel (ambiguous)")
        raw = raw[:, :, :3]
    if raw.shape[2] != 3:
        raise ValueError(f"alpha has {raw.shape[2]} channels")
    if not (np.array_equal(raw[:, :, 0], raw[:, :, 1]) and np.array_equal(raw[:, :, 1], raw[:, :, 2])):
        raise ValueError("alpha file is RGB with unequal channels (not a gray matte)")
    return np.ascontiguousarray(raw[:, :, 0])


def _norm_name(name: str) -> str:
    return Path(name.strip()).stem


def find_pairs(data: Path, names: Optional[Sequence[str]] = None, truth: str = "alpha") -> tuple[list[Pair], list[dict]]:
    """Pairs ``image/NAME`` + ``TRUTH/NAME.png`` in ``data`` (optionally only ``names``), and what was skipped.

    ``truth``: the ground-truth folder, ``"alpha"`` (mattes) or ``"mask"`` (binary masks). Names
    are matched with or without their extension. Returns ``(pairs sorted by name,
    [{"name", "reason"}])``; reading the pixels happens later (:func:`load_pair`).
    """
    if truth not in ("alpha", "mask"):
        raise ValueError(f"truth must be 'alpha' or 'mask', got {truth!r}")
    img_dir, alpha_dir = data / "image", data / truth
    if not img_dir.is_dir():
        raise ValueError(f"{data} has no image/ folder")
    images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}
    alphas = (
        {p.stem: p for p in sorted(alpha_dir.iterdir()) if p.suffix.lower() == ".png" and p.is_file()}
        if alpha_dir.is_dir() else {}
    )
    skipped: list[dict] = []
    if names is None:
        wanted = sorted(images)
        skipped += [{"name": alphas[s].name, "reason": f"{truth} without an image"} for s in sorted(set(alphas) - set(images))]
    else:
        wanted = []
        for n in names:
            s = _norm_name(n)
            if s not in images:
                skipped.append({"name": n, "reason": f"not found in {img_dir}"})
            elif s not in wanted:
                wanted.append(s)
    pairs = []
    for s in wanted:
        if s not in alphas:
            skipped.append({"name": images[s].name, "reason": f"missing {truth}/{s}.png"})
            continue
        pairs.append(Pair(images[s].name, images[s], alphas[s]))
    return pairs, skipped


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb (H, W, 3) uint8, alpha (H, W) uint8)``; ``ValueError`` when unreadable or mismatched."""
    rgb = read_image(pair.image_path)
    alpha = read_alpha(pair.alpha_path)
    if rgb.shape[:2] != alpha.shape:
        raise ValueError(f"size mismatch: image {rgb.shape[1]}x{rgb.shape[0]}, alpha {alpha.shape[1]}x{alpha.shape[0]}")
    return rgb, alpha


def load_clicks_file(path: Path) -> dict[str, list[dict]]:
    """``{"NAME.png": [{"x", "y", "label"}, ...]}`` from JSON, keyed by name stem; ``ValueError`` if malformed."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read clicks file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object {{\"NAME.png\": [clicks]}}")
    out: dict[str, list[dict]] = {}
    for name, clicks in raw.items():
        if not isinstance(clicks, list) or not all(
            isinstance(c, dict) and {"x", "y", "label"} <= set(c) for c in clicks
        ):
            raise ValueError(f"{path}: clicks for {name!r} must be a list of {{\"x\", \"y\", \"label\"}}")
        out[_norm_name(name)] = clicks
    return out


# -- engines ----------------------------------------------------------------------------------
class NetEngine:
    """The network through :class:`clickmatte.model.Predictor` (``predict`` and ``refine``) with the
    settings ``config`` (None: the defaults)."""

    name = "net"

    def __init__(self, checkpoint: Optional[str] = None, device: str = "auto",
                 config: Optional[PredictorConfig] = None) -> None:
        from .predictor import Predictor, load_default_model
        from .registry import DEFAULT_CHECKPOINT

        model = load_default_model(checkpoint)
        self.predictor = Predictor(model=model, device=device, config=config)
        path = checkpoint or (DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None)
        self.description = {"checkpoint": str(path) if path else None, "trained": path is not None,
                            "model": model.name, "meta": _jsonable(model.meta),
                            "device": str(self.predictor.device), **self.predictor.config.as_dict()}

    def set_image(self, image: np.ndarray) -> None:
        self.predictor.set_image(image)

    def predict(self, clicks: Sequence[dict], prev_alpha: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        return self.predictor.predict(clicks, prev_alpha=prev_alpha)


def _jsonable(x: Any) -> Any:
    try:
        json.dumps(x)
        return x
    except (TypeError, ValueError):
        return repr(x)


def make_engine(name: str, checkpoint: Optional[str] = None, device: str = "auto",
                config: Optional[PredictorConfig] = None) -> Engine:
    """``"net"`` -> :class:`NetEngine` (with the settings ``config``), ``"classical"`` -> :class:`ClassicalEngine`;
    ``ValueError`` otherwise."""
    if name == "net":
        return NetEngine(checkpoint, device, config)
    if name == "classical":
        from .classical import ClassicalEngine

        return ClassicalEngine()
    raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")


# -- one image ------------------------------------------------------------------------------
def random_boxes(h: int, w: int, n: int, k: int, rng: np.random.Generator,
                 alpha: Optional[np.ndarray] = None, max_soft: Optional[float] = None) -> list[tuple[int, int, int, int]]:
    """Up to ``n`` random non-overlapping ``min(k, w) x min(k, h)`` boxes ``(x, y, w, h)`` inside an ``h x w`` image.

    Each box is drawn uniformly among the positions (on the same ``k // 8`` grid as the
    uncertainty-driven selection) that overlap no earlier box; with ``max_soft`` and the coarse
    ``alpha`` (``(h, w)``), only among windows at most that fraction soft, as the uncertainty-driven
    selection of the predictor (:func:`clickmatte.model.refiner.window_soft_fraction`). Fewer than
    ``n`` only when no position is left.
    """
    check_max_soft(max_soft, alpha, (h, w))
    kh, kw = min(k, h), min(k, w)
    stride = max(1, k // 8)
    ys = np.unique(np.append(np.arange(0, h - kh + 1, stride), h - kh))
    xs = np.unique(np.append(np.arange(0, w - kw + 1, stride), w - kw))
    free = np.ones((len(ys), len(xs)), dtype=bool)
    if max_soft is not None and alpha is not None:
        free &= window_soft_fraction(alpha, ys, xs, kh, kw) <= max_soft
    boxes: list[tuple[int, int, int, int]] = []
    while len(boxes) < n and free.any():
        cand = np.argwhere(free)
        gy, gx = cand[int(rng.integers(len(cand)))]
        y, x = int(ys[gy]), int(xs[gx])
        boxes.append((x, y, kw, kh))
        free[np.ix_((ys > y - kh) & (ys < y + kh), (xs > x - kw) & (xs < x + kw))] = False
    return boxes


def _refine_both(engine: NetEngine, gt: np.ndarray, top_n: int, with_random: bool, rng: np.random.Generator) -> dict:
    """Top-N uncertain patches vs the same number of random patches, both from the same coarse state."""
    p = engine.predictor
    assert p.alpha is not None and p.uncertainty is not None
    coarse_a, coarse_s = p.alpha.copy(), p.uncertainty.copy()
    out: dict[str, Any] = {"top_n": top_n}
    t0 = time.perf_counter()
    top = p.refine(top_n=top_n)
    out["top"] = {**all_metrics(top, gt), "seconds": time.perf_counter() - t0,
                  "boxes": [list(map(int, b)) for b in p.last_patches]}
    n_done = len(p.last_patches)
    if with_random:
        p.alpha, p.uncertainty = coarse_a.copy(), coarse_s.copy()
        h, w = gt.shape
        boxes = random_boxes(h, w, n_done, p.model.refiner.config.patch_size, rng,
                             alpha=coarse_a, max_soft=p.image_max_soft)
        t0 = time.perf_counter()
        ra = p.refine(top_n=None, regions=boxes) if boxes else coarse_a
        secs = time.perf_counter() - t0
        if sorted(map(tuple, p.last_patches)) != sorted(boxes) and boxes:
            log.warning("refine(regions=...) refined %s instead of %s", p.last_patches, boxes)
        out["random"] = {**all_metrics(ra, gt), "seconds": secs, "boxes": [list(map(int, b)) for b in p.last_patches]}
    p.alpha, p.uncertainty = coarse_a, coarse_s
    return out


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
    (:func:`clickmatte.model.metrics.local_change`), optional ``refine``), ``final`` holds the
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
                refine = _refine_both(engine, gt, refine_top_n, refine_random, rng)
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
            refine = _refine_both(engine, gt, refine_top_n, refine_random, rng)
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


# -- the whole run ----------------------------------------------------------------------------
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
    from .eval_report import summarize_engine, write_outputs

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
    bar = _progress(len(pairs) * len(engines), progress)
    for pair in pairs:
        try:
            rgb, gt = load_pair(pair)
        except ValueError as exc:
            skipped.append({"name": pair.name, "reason": str(exc)})
            bar.update(len(engines))
            continue
        clicks = None
        if given is not None:
            clicks = given.get(_norm_name(pair.name))
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
            if len(worst[name]) < cfg.worst:
                heapq.heappush(worst[name], item)
            elif cfg.worst > 0:
                heapq.heappushpop(worst[name], item)
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


class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def set_postfix_str(self, s: str) -> None: ...

    def close(self) -> None: ...


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _NoBar()
    return tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True)


# -- command line -----------------------------------------------------------------------------
def _read_names_file(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read names file {path}: {exc}") from exc
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clickmatte-eval",
        description=(
            "Evaluate click-guided matting on DIR/image/NAME.png + DIR/alpha/NAME.png: SAD, MSE, Grad, Conn "
            "(whole image) per number of clicks, seconds per prediction, and NoC@MSE10 (clicks until "
            "MSE <= 10e-3, capped at 10; the simulator keeps clicking past --max-clicks up to 10 for it). "
            "Writes report.json, summary.md, sad_vs_clicks.png and worst.png to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder with image/ and alpha/ (8-bit gray alpha PNGs): matting mode")
    src.add_argument("--masks", metavar="DIR",
                     help="folder with image/ and mask/ (8-bit binary object masks): mask mode, scored as "
                          "interactive segmentation (IoU at k clicks, NoC@85/90 with the standard simulator up to "
                          f"--max-clicks, default {MASK_NOC_CAP}; SAD on definite mask pixels; the error near each "
                          "click before and after it); see clickmatte.model.mask_eval")
    p.add_argument("--out", required=True, help="report folder (created)")
    p.add_argument("--clicks", help='JSON {"NAME.png": [{"x","y","label"}, ...]}; the first k are used for k clicks. '
                                    "Without it clicks come from the error-driven simulator.")
    p.add_argument("--max-clicks", type=int, default=None,
                   help=f"click counts 1..N in the per-click table (default 5); with --masks the NoC cap "
                        f"(default {MASK_NOC_CAP})")
    p.add_argument("--engine", default="net",
                   help="engine(s), comma-separated: net, classical, or net,classical to put both side by side "
                        "in one report (same images, same click protocol)")
    p.add_argument("--checkpoint", help="network checkpoint (default: the shipped weights, else untrained)")
    p.add_argument("--device", default="auto", help="net engine device: auto, cpu, cuda[:N]")
    add_predictor_arguments(p)  # net engine: --working-size, --no-flip-tta, ...
    p.add_argument("--refine-top-n", type=int, default=0,
                   help="net engine: also refine the N most uncertain patches at --max-clicks (0 = off)")
    p.add_argument("--refine-random", action="store_true",
                   help="with --refine-top-n: also refine the same number of random non-overlapping patches "
                        "(the uncertainty-vs-random ablation)")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--names-file", help="only these names (one per line, with or without .png)")
    sel.add_argument("--split", choices=["dev"], help="only the fixed dev split of comp1k_crops (clickmatte.model.splits)")
    p.add_argument("--limit", type=int, help="only the first N images in sorted name order (after selection)")
    p.add_argument("--compare", action="append", default=[], metavar="REPORT_DIR",
                   help="also show the engines of an earlier clickmatte-eval report of the same mode (its numbers; "
                        "repeatable), e.g. another checkpoint's. The other way to put engines side by side, "
                        "besides --engine net,classical")
    p.add_argument("--no-prev-alpha", action="store_true",
                   help="do not feed the previous prediction back to the network with each new click")
    p.add_argument("--worst", type=int, default=4, help="images per engine on the worst.png contact sheet")
    p.add_argument("--seed", type=int, default=0, help="seed for the random refinement patches")
    p.add_argument("--protocol", choices=["simulator", "fixed"], default="simulator",
                   help="with --masks: where the clicks go. simulator: the error-driven standard simulator; fixed: "
                        "fg, bg, fg, ... at the deepest points of the true regions, the same clicks whatever the "
                        "network answers, --max-clicks per image (use e.g. --max-clicks 5)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: torch's own); 1 is much faster on a machine busy with other "
                        "jobs, where threads spin against each other")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if not engines or bad or len(set(engines)) != len(engines):
        parser.error(f"--engine takes a comma-separated list of distinct engines from {', '.join(ENGINES)}")
    if args.max_clicks is not None and args.max_clicks < 1:
        parser.error("--max-clicks must be >= 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    if args.masks is not None:
        from .mask_eval import main_masks

        return main_masks(parser, args, engines)
    if args.max_clicks is None:
        args.max_clicks = 5
    if args.refine_top_n < 0:
        parser.error("--refine-top-n must be >= 0")
    if args.refine_random and args.refine_top_n <= 0:
        parser.error("--refine-random needs --refine-top-n N (the number of random patches)")
    if args.protocol != "simulator":
        parser.error("--protocol applies with --masks only (matting mode: --clicks FILE gives fixed clicks)")
    names: Optional[list[str]] = None
    source = None
    try:
        if args.names_file:
            names, source = _read_names_file(args.names_file), f"file {args.names_file}"
        elif args.split == "dev":
            from .splits import dev_names

            names, source = dev_names(), "split dev"
        cfg = EvalConfig(
            data=args.data, out=args.out, engines=engines, clicks_file=args.clicks, max_clicks=args.max_clicks,
            checkpoint=args.checkpoint, device=args.device, predictor=predictor_config_from_args(args),
            refine_top_n=args.refine_top_n, refine_random=args.refine_random,
            names=names, names_source=source,
            limit=args.limit, worst=max(0, args.worst), seed=args.seed, feed_prev_alpha=not args.no_prev_alpha,
            compare=list(args.compare),
        )
        report = run_evaluation(cfg, progress=not args.quiet)
    except ValueError as exc:
        print(f"clickmatte-eval: error: {exc}", file=sys.stderr)
        return 2
    return _finish(report, args.out)


def _finish(report: dict, out: str) -> int:
    for s in report["skipped"]:
        print(f"skipped {s['name']}: {s['reason']}", file=sys.stderr)
    for f in report["failed"]:
        print(f"failed {f['engine']} on {f['name']}: {f['reason']}", file=sys.stderr)
    print((Path(out) / "summary.md").read_text(encoding="utf-8"))
    evaluated = sum(len(e["images"]) for e in report["engines"].values() if "merged_from" not in e)
    if evaluated == 0:
        print("clickmatte-eval: error: no image could be evaluated", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
