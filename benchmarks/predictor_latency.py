"""In-process Predictor latency: coarse prediction per click and refinement of N patches.

    .venv/bin/python benchmarks/predictor_latency.py [--sizes 1,4] [--repeats 5] [--device auto] [--threads N]
                                                     [--no-flip-tta] [--no-prior-pass]

Prints one table row per image size (megapixels): set_image, predict for a first click (no
previous alpha: with the prior pass, one more coarse pass) and for a click added to earlier ones
(previous alpha fed back), median / p90 over repeats, each repeat a new click; refine top-8
(median). Uses the shipped checkpoint (or an untrained network of the same architecture when none
is there: same cost).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Optional, Sequence

import numpy as np
import torch

from clickmatte.model.predictor import DEFAULT_CONTEXT_SIZE, Predictor


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(yy - h / 2, xx - w / 2) / (0.3 * min(h, w))
    base = np.where(r[..., None] < 1, [200, 150, 120], [40, 90, 60]).astype(np.float32)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,4", help="comma-separated megapixels")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--top-n", type=int, default=8)
    ap.add_argument("--no-flip-tta", dest="flip_tta", action="store_false", help="coarse net once, not also mirrored")
    ap.add_argument("--no-prior-pass", dest="prior_pass", action="store_false",
                    help="no extra first pass when there is no previous alpha")
    ap.add_argument("--no-guided", dest="guided", action="store_false",
                    help="upsample the coarse alpha bilinearly (not along the image's edges)")
    ap.add_argument("--context-size", type=int, default=DEFAULT_CONTEXT_SIZE,
                    help="long side of the first, coarser pass (0 = off)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    pred = Predictor(device=a.device, flip_tta=a.flip_tta, prior_pass=a.prior_pass, guided=a.guided,
                     context_size=a.context_size)
    print(f"device={pred.device} threads={torch.get_num_threads()} working_size={pred.working_size} "
          f"flip_tta={pred.flip_tta} prior_pass={pred.prior_pass} guided={pred.guided} context_size={pred.context_size}")
    print("| MP | size | set_image s | first click median s | p90 s | next click median s | p90 s "
          "| refine top-%d median s |" % a.top_n)
    print("|---|---|---|---|---|---|---|---|")
    for mp in (float(s) for s in a.sizes.split(",")):
        w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
        h = int(round(mp * 1e6 / w))
        img = photo_like(h, w)
        t = time.perf_counter()
        pred.set_image(img)
        t_set = time.perf_counter() - t
        pred.predict([(w // 2, h // 2, "fg")])  # warm-up
        rng = np.random.default_rng(1)
        tp, tn, tr = [], [], []
        for i in range(a.repeats):
            clicks = [(w // 2, h // 2, "fg"), (int(rng.integers(w // 10)), int(rng.integers(h // 10)), "bg")]
            if pred.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            first, _ = pred.predict(clicks[:1])
            tp.append(time.perf_counter() - t)
            t = time.perf_counter()
            pred.predict(clicks, prev_alpha=first)
            tn.append(time.perf_counter() - t)
            t = time.perf_counter()
            pred.refine(top_n=a.top_n)
            tr.append(time.perf_counter() - t)
        p90 = lambda v: sorted(v)[min(len(v) - 1, int(0.9 * len(v)))]  # noqa: E731
        print(f"| {mp:g} | {w}x{h} | {t_set:.3f} | {statistics.median(tp):.3f} | {p90(tp):.3f} "
              f"| {statistics.median(tn):.3f} | {p90(tn):.3f} | {statistics.median(tr):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
