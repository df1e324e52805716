"""How the net does on real photographs that are not composites: errors where a trimap is sure.

    .venv/bin/python benchmarks/real_photos.py [--data ../shared/data] [--checkpoint PATH] [--max-clicks 5]
                                               [--out DIR]

The real photos in ``../shared/data`` have no ground-truth alpha, but they have hand-drawn trimaps:
``alphamatting_test_noGT`` (donkey, net, pineapple, troll; alphamatting.com Trimap1) and the
``lemur`` (pymatting's example trimap). Where a trimap says "surely foreground" the matte must be 1,
where it says "surely background" it must be 0 — that catches the gross failures (a dark face
dropped, a bright background kept) a composite-trained net is prone to on real photos.

Clicks come from the evaluation simulator (``click_simulator.next_click``) run on the trimap's
known pixels only (the unknown band never asks for a click). Prints, per photo and per click count:
the mean absolute alpha error over the known pixels, and the share of known pixels on the wrong
side of 0.5. ``--out DIR`` also writes a preview per photo (clicks | alpha | uncertainty | cut-out).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from clickmatte.model.click_simulator import next_click
from clickmatte.model.data import read_rgb
from clickmatte.model.predictor import DEFAULT_CONTEXT_SIZE, Predictor, load_default_model
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data", help="folder holding alphamatting_test_noGT/ and lemur/")
    ap.add_argument("--checkpoint", help="network checkpoint (default: the shipped weights)")
    ap.add_argument("--max-clicks", type=int, default=5)
    ap.add_argument("--no-flip-tta", dest="flip_tta", action="store_false")
    ap.add_argument("--no-guided", dest="guided", action="store_false",
                    help="upsample the coarse alpha bilinearly (not along the image's edges)")
    ap.add_argument("--working-size", type=int, default=512, help="long side of the coarse pass")
    ap.add_argument("--context-size", type=int, default=DEFAULT_CONTEXT_SIZE,
                    help="long side of the first, coarser pass (0 = off)")
    ap.add_argument("--out", help="folder for the previews (created)")
    a = ap.parse_args(argv)
    photos = find_photos(Path(a.data))
    if not photos:
        print(f"no photos with trimaps under {a.data}", file=sys.stderr)
        return 2
    pred = Predictor(load_default_model(a.checkpoint), device="cpu", flip_tta=a.flip_tta, guided=a.guided,
                     working_size=a.working_size, context_size=a.context_size)
    out = Path(a.out) if a.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    ks = list(range(1, a.max_clicks + 1))
    print("photo       " + "  ".join(f"  MAE@{k} wrong@{k}" for k in ks))
    table = []
    for name, img_path, tri_path in photos:
        rgb = read_rgb(img_path)
        tri = read_trimap(tri_path, rgb.shape[:2])
        pred.set_image(rgb)
        clicks: list[dict] = []
        alpha = sigma = None
        row = []
        for _ in ks:
            c = simulated_click(tri, alpha, clicks)
            if c is not None:
                clicks.append(c)
                alpha, sigma = pred.predict(clicks, prev_alpha=alpha)
            assert alpha is not None
            row.append(known_errors(alpha, tri))
        table.append(row)
        print(f"{name:10s}  " + "  ".join(f"{m:7.4f} {w * 100:6.2f}%" for m, w in row))
        if out and alpha is not None and sigma is not None:
            cv2.imwrite(str(out / f"{name}.png"), cv2.cvtColor(preview(rgb, alpha, sigma, clicks), cv2.COLOR_RGB2BGR))
    mean = np.array(table).mean(axis=0)
    print(f"{'mean':10s}  " + "  ".join(f"{m:7.4f} {w * 100:6.2f}%" for m, w in mean))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
