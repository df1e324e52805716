"""How the net does on real photographs that are not composites: errors where a trimap is sure.

    .venv/bin/python benchmarks/real_photos.py [--data ../shared/data] [--checkpoint PATH] [--max-clicks 5]
                                               [--refine-top-n N [--refine-random] [--seed S]] [--protocol fixed]
                                               [--threads N] [--out DIR]

The real photos in ``../shared/data`` have no ground-truth alpha, but they have hand-drawn trimaps:
``alphamatting_test_noGT`` (donkey, net, pineapple, troll; alphamatting.com Trimap1) and the
``lemur`` (pymatting's example trimap). Where a trimap says "surely foreground" the matte must be 1,
where it says "surely background" it must be 0 — that catches the gross failures (a dark face
dropped, a bright background kept) a composite-trained net is prone to on real photos.

Clicks come from the evaluation simulator (``click_simulator.next_click``) run on the trimap's
known pixels only (the unknown band never asks for a click); ``--protocol fixed`` places them instead
at fg, bg, fg, ... deepest inside the trimap's sure regions (``click_simulator.fixed_clicks``), blind to the
network's answer, so more clicks that say nothing new about the errors are also tested. Prints, per photo and per click count:
the mean absolute alpha error over the known pixels, and the share of known pixels on the wrong
side of 0.5. ``--out DIR`` also writes a preview per photo (clicks | alpha | uncertainty | cut-out).

``--refine-top-n N``: after each click the coarse matte is also refined in the N most uncertain 64 x 64
patches (``Predictor.refine``, the product's automatic choice) and, with ``--refine-random``, in as many
random non-overlapping patches (``clickmatte.model.evaluation.refine_study.random_boxes``, same soft limit; seeded from
``--seed`` and the photo's name). Both start from the same coarse matte, which stays the one fed back
with the next click; the tables give none / top-N / random-N side by side, and the share of refined
patch pixels that lie in the trimap's unknown band (where the error is not measured: these photos have
no true alpha, so there is no SAD on the unknown band to report).
"""
from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from clickmatte.model.evaluation.click_simulator import fixed_clicks, next_click
from clickmatte.model.image_io import read_rgb
from clickmatte.model.evaluation.refine_study import random_boxes
from clickmatte.model.inference.config import add_predictor_arguments, predictor_config_from_args
from clickmatte.model.inference.predictor import Predictor, load_default_model
from clickmatte.model.visualize import preview


def find_photos(data: Path) -> list[tuple[str, Path, Path]]:
    """``(name, image, trimap)`` of every real photo with a trimap under ``data``."""
    out = []
    am = data / "alphamatting_test_noGT"
    for img in sorted((am / "input_lowres").glob("*.png")):
        tri = am / "trimap_lowres" / "Trimap1" / img.name
        if tri.is_file():
            out.append((img.stem, img, tri))
    lemur = data / "lemur"
    if (lemur / "lemur.png").is_file() and (lemur / "lemur_trimap.png").is_file():
        out.append(("lemur", lemur / "lemur.png", lemur / "lemur_trimap.png"))
    return out


def read_trimap(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` int8: 1 sure foreground, 0 sure background, -1 unknown."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ValueError(f"cannot read {path}")
    t = raw if raw.ndim == 2 else raw[..., 0]
    if t.shape != shape:
        raise ValueError(f"trimap {path} is {t.shape}, image is {shape}")
    out = np.full(t.shape, -1, np.int8)
    out[t >= 250] = 1
    out[t <= 5] = 0
    return out


def simulated_click(tri: np.ndarray, pred: Optional[np.ndarray], clicks: list[dict]) -> Optional[dict]:
    """The simulator's next click, with the unknown band counted as already right."""
    gt = (tri == 1).astype(np.float32)
    return next_click(gt, None if pred is None else np.where(tri < 0, gt, pred).astype(np.float32), clicks)


def known_errors(alpha: np.ndarray, tri: np.ndarray) -> tuple[float, float]:
    """(mean |alpha - trimap| over known pixels, share of known pixels on the wrong side of 0.5)."""
    known = tri >= 0
    t = tri[known].astype(np.float32)
    a = alpha[known]
    return float(np.abs(a - t).mean()), float(((a > 0.5) != (t > 0.5)).mean())


Box = tuple[int, int, int, int]


def refined_variants(pred: Predictor, top_n: int, with_random: bool,
                     rng: np.random.Generator) -> dict[str, tuple[np.ndarray, list[Box]]]:
    """The predictor's last (coarse) matte refined in its ``top_n`` most uncertain patches (``"top"``) and, with
    ``with_random``, in as many random non-overlapping patches drawn with ``rng`` (``"random"``): ``{kind:
    ((H, W) float32 alpha, boxes (x, y, w, h))}``. Both start from the same coarse state; the predictor holds it
    again afterwards."""
    if pred.alpha is None or pred.uncertainty is None:
        raise ValueError("nothing to refine: call predict() first")
    coarse_a, coarse_s = pred.alpha, pred.uncertainty
    out: dict[str, tuple[np.ndarray, list[Box]]] = {"top": (pred.refine(top_n=top_n), list(pred.last_patches))}
    if with_random:
        pred.alpha, pred.uncertainty = coarse_a, coarse_s
        h, w = coarse_a.shape
        boxes = random_boxes(h, w, len(out["top"][1]), pred.model.refiner.config.patch_size, rng,
                             alpha=coarse_a, max_soft=pred.image_max_soft)
        ra = pred.refine(top_n=None, regions=boxes) if boxes else coarse_a
        out["random"] = (ra, list(pred.last_patches) if boxes else [])
    pred.alpha, pred.uncertainty = coarse_a, coarse_s
    pred.last_patches = []
    return out


def unknown_share(boxes: Sequence[Box], tri: np.ndarray) -> Optional[float]:
    """Share of the pixels of ``boxes`` that the trimap calls unknown (None without boxes)."""
    cover = np.zeros(tri.shape, bool)
    for x, y, w, h in boxes:
        cover[y:y + h, x:x + w] = True
    n = int(cover.sum())
    return float((tri[cover] < 0).mean()) if n else None


def _table(title: str, names: Sequence[str], rows: np.ndarray, ks: Sequence[int]) -> None:
    """Print ``rows`` (photos x ks x (mae, wrong)) and their mean."""
    print(title)
    print("photo       " + "  ".join(f"  MAE@{k} wrong@{k}" for k in ks))
    for name, row in zip(names, rows):
        print(f"{name:10s}  " + "  ".join(f"{m:7.4f} {w * 100:6.2f}%" for m, w in row))
    print(f"{'mean':10s}  " + "  ".join(f"{m:7.4f} {w * 100:6.2f}%" for m, w in rows.mean(axis=0)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data", help="folder holding alphamatting_test_noGT/ and lemur/")
    ap.add_argument("--checkpoint", help="network checkpoint (default: the shipped weights)")
    ap.add_argument("--max-clicks", type=int, default=5)
    add_predictor_arguments(ap)
    ap.add_argument("--refine-top-n", type=int, default=0, metavar="N",
                    help="also refine the N most uncertain patches after each click (0 = off)")
    ap.add_argument("--refine-random", action="store_true",
                    help="with --refine-top-n: also refine as many random patches (the uncertainty-vs-random ablation)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random patches")
    ap.add_argument("--protocol", choices=["simulator", "fixed"], default="simulator",
                    help="simulator: each click at the largest error (default); fixed: fg, bg, fg, ... at the deepest "
                         "points of the trimap's sure regions, the same clicks whatever the network answers")
    ap.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's own)")
    ap.add_argument("--out", help="folder for the previews (created)")
    a = ap.parse_args(argv)
    if a.refine_top_n < 0:
        ap.error("--refine-top-n must be >= 0")
    if a.refine_random and a.refine_top_n < 1:
        ap.error("--refine-random needs --refine-top-n N")
    if a.threads is not None:
        if a.threads < 1:
            ap.error("--threads must be >= 1")
        import torch

        torch.set_num_threads(a.threads)
    photos = find_photos(Path(a.data))
    if not photos:
        print(f"no photos with trimaps under {a.data}", file=sys.stderr)
        return 2
    try:
        settings = predictor_config_from_args(a)
    except ValueError as exc:
        ap.error(str(exc))
    pred = Predictor(load_default_model(a.checkpoint), device="cpu", config=settings)
    out = Path(a.out) if a.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    ks = list(range(1, a.max_clicks + 1))
    kinds = ["none"] + ([f"top-{a.refine_top_n}"] if a.refine_top_n else []) + (
        [f"random-{a.refine_top_n}"] if a.refine_random else [])
    tables: dict[str, list] = {kind: [] for kind in kinds}
    shares: dict[str, list[float]] = {kind: [] for kind in kinds[1:]}
    names = []
    print("photo       " + "  ".join(f"  MAE@{k} wrong@{k}" for k in ks) + "   (none: the coarse matte)")
    for name, img_path, tri_path in photos:
        rgb = read_rgb(img_path)
        tri = read_trimap(tri_path, rgb.shape[:2])
        pred.set_image(rgb)
        rng = np.random.default_rng([a.seed, zlib.crc32(name.encode("utf-8"))])
        clicks: list[dict] = []
        alpha = sigma = None
        rows: dict[str, list] = {kind: [] for kind in kinds}
        fixed = fixed_clicks((tri == 1).astype(np.float32), len(ks), known=tri >= 0) if a.protocol == "fixed" else None
        for k in ks:
            if fixed is not None:
                c = fixed[k - 1] if k <= len(fixed) else None
            else:
                c = simulated_click(tri, alpha, clicks)
            if c is not None:
                clicks.append(c)
                alpha, sigma = pred.predict(clicks, prev_alpha=alpha)
            assert alpha is not None
            rows["none"].append(known_errors(alpha, tri))
            if a.refine_top_n:
                pred.alpha, pred.uncertainty = alpha, sigma  # the coarse state of this click (also when none was added)
                for kind, (ra, boxes) in zip(kinds[1:], refined_variants(pred, a.refine_top_n, a.refine_random,
                                                                        rng).values()):
                    rows[kind].append(known_errors(ra, tri))
                    share = unknown_share(boxes, tri)
                    if share is not None:
                        shares[kind].append(share)
        names.append(name)
        for kind in kinds:
            tables[kind].append(rows[kind])
        print(f"{name:10s}  " + "  ".join(f"{m:7.4f} {w * 100:6.2f}%" for m, w in rows["none"]), flush=True)
        if out and alpha is not None and sigma is not None:
            cv2.imwrite(str(out / f"{name}.png"), cv2.cvtColor(preview(rgb, alpha, sigma, clicks), cv2.COLOR_RGB2BGR))
    arrays = {kind: np.array(tables[kind]) for kind in kinds}
    for kind in kinds:
        print()
        _table(f"refine: {kind}", names, arrays[kind], ks)
    if len(kinds) > 1:
        print()
        print("mean MAE on trimap-known pixels  " + "  ".join(f"{kind:>10s}" for kind in kinds))
        for i, k in enumerate(ks):
            print(f"{k} clicks{'':24s}  " + "  ".join(f"{arrays[kind][:, i, 0].mean():10.5f}" for kind in kinds))
        for kind in kinds[1:]:
            sh = shares[kind]
            where = f"{100 * float(np.mean(sh)):.1f} % (mean over {len(sh)} refinements)" if sh else "– (no patches)"
            print(f"{kind}: refined patch pixels in the trimap's unknown band {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
