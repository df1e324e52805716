"""Do clicks select *which* object is foreground? Measured on two-object composites of dev crops.

    .venv/bin/python benchmarks/click_selection.py [--data ../shared/data/comp1k_crops] [--n 40] [--checkpoint PATH]

Each composite holds two foregrounds (A and B, from the held-out dev split) side by side on a
background photo. The net gets one foreground click on A's solid interior and one background click
on B's, then the reverse. A trial counts as "selected" when the predicted matte overlaps the clicked
object more than the other (IoU at alpha 0.5). Prints selection rate, mean IoU with the clicked
object, mean IoU with the other one, and the mean SAD against the clicked object's alpha.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from clickmatte.model.evaluation.click_simulator import interior_distance
from clickmatte.model.training.data import CropBank, augment_layer, load_backgrounds
from clickmatte.model.inference.predictor import Predictor, load_default_model
from clickmatte.model.training.splits import dev_names


def interior_point(mask: np.ndarray) -> Optional[tuple[int, int]]:
    if not mask.any():
        return None
    d = interior_distance(mask)
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return int(x), int(y)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = (a | b).sum()
    return float((a & b).sum() / u) if u else 0.0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/comp1k_crops")
    ap.add_argument("--backgrounds", default="../shared/data/backgrounds")
    ap.add_argument("--n", type=int, default=40, help="number of composites (2 trials each)")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    names = [n for n in dev_names() if (Path(a.data) / "alpha" / n).is_file()]
    if len(names) < 2:
        print(f"need dev crops under {a.data}", file=sys.stderr)
        return 2
    bank = CropBank(a.data, names)
    bgs = load_backgrounds(a.backgrounds)
    pred = Predictor(load_default_model(a.checkpoint), device="cpu")
    rng = np.random.default_rng(a.seed)
    s = a.size
    sel, iou_t, iou_o, sads = [], [], [], []
    done = 0
    while done < a.n:
        i, j = rng.choice(len(bank), 2, replace=False)
        fa, aa = augment_layer(rng, bank.foregrounds[i], bank.alphas[i], s, (0.4, 0.55), 10.0, 0.0)
        fb, ab = augment_layer(rng, bank.foregrounds[j], bank.alphas[j], s, (0.4, 0.55), 10.0, 0.0)
        # place A on the left half and B on the right half
        m = np.float32([[1, 0, -s * 0.22], [0, 1, 0]])
        fa, aa = cv2.warpAffine(fa, m, (s, s)), cv2.warpAffine(aa, m, (s, s))
        m = np.float32([[1, 0, s * 0.22], [0, 1, 0]])
        fb, ab = cv2.warpAffine(fb, m, (s, s)), cv2.warpAffine(ab, m, (s, s))
        bg = bgs[int(rng.integers(len(bgs)))].astype(np.float32) / 255 if bgs else np.full((s, s, 3), 0.5, np.float32)
        bg = cv2.resize(bg, (s, s))
        ab = ab * (1 - aa)
        comp = fa * aa[..., None] + fb * ab[..., None] + bg * (1 - aa - ab)[..., None]
        img = np.clip(comp * 255 + 0.5, 0, 255).astype(np.uint8)
        pa, pb = interior_point(aa > 0.95), interior_point(ab > 0.95)
        if pa is None or pb is None:
            continue
        pred.set_image(img)
        for tgt, oth, pf, pbg in ((aa, ab, pa, pb), (ab, aa, pb, pa)):
            alpha, _ = pred.predict([(pf[0], pf[1], "fg"), (pbg[0], pbg[1], "bg")])
            m_pred = alpha > 0.5
            it, io = iou(m_pred, tgt > 0.5), iou(m_pred, oth > 0.5)
            sel.append(it > io)
            iou_t.append(it)
            iou_o.append(io)
            sads.append(float(np.abs(alpha - tgt).sum() / 1000))
        done += 1
    print(f"composites: {done}, trials: {len(sel)} (fg click on one object, bg click on the other, both ways)")
    print(f"selected the clicked object: {100 * np.mean(sel):.1f} %")
    print(f"mean IoU with the clicked object: {np.mean(iou_t):.3f}; with the other object: {np.mean(iou_o):.3f}")
    print(f"mean SAD vs the clicked object's alpha: {np.mean(sads):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
