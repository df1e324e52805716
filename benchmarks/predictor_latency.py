"""In-process Predictor latency per click, in milliseconds and in encoder passes timed in the same run.

    .venv/bin/python benchmarks/predictor_latency.py [--sizes 1,4,24] [--repeats 5] [--device auto|cpu|cuda]
        [--threads N] [--top-n N] [--preview N] [inference settings: --working-size N, --no-flip-tta, ...]

An absolute time does not carry from one machine to the next, so every repeat also times one
**reference encoder pass**: the network's EfficientNet-Lite0 encoder as built (fp32, NCHW, not fused,
eval mode) on a ``(1, 6, 512, 512)`` input, interleaved with the clicks it is compared with. Each
click is timed between two reference passes and printed as median ms and as the median of its
ratios to the mean of those two passes (the "enc" columns; robust to a machine whose load drifts): first click (no previous alpha), next click (the first click's alpha fed back as
uint8, as the daemon keeps it; the conversion is timed too), refine top-N, and with ``--preview N``
a live-preview click (``Predictor.predict(..., preview=N)``: outputs at long side N). On CUDA every
timed call is bracketed by ``torch.cuda.synchronize()``. Uses the shipped checkpoint (or an
untrained network of the same architecture when none is there: same cost).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch

from clickmatte.model.image_io import alpha_to_u8
from clickmatte.model.inference.config import add_predictor_arguments, predictor_config_from_args
from clickmatte.model.inference.predictor import Predictor, load_default_model, resolve_device
from clickmatte.plugin.protocol import DEFAULT_TOP_N

REFERENCE_SIDE = 512
REFERENCE_PLANES = 6


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``(h, w, 3)`` uint8: a warm disc on a green background with noise (built in uint8, no float copies)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(30, 60, (h, w, 3), dtype=np.uint8)
    img[..., 1] += 40
    r = int(0.3 * min(h, w))
    cv2.circle(img, (w // 2, h // 2), r, (200, 150, 120), thickness=-1)
    noise = rng.integers(0, 24, (h, w, 1), dtype=np.uint8)
    img += noise  # at most 200 + 23: no overflow
    return img


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes (device work included)."""
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,4,24", help="comma-separated megapixels (4:3 images)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch (and OpenCV) CPU threads; 0 = library default")
    ap.add_argument("--top-n", type=int, default=DEFAULT_TOP_N, help="patches to refine (default: %(default)s, the protocol's)")
    ap.add_argument("--checkpoint", default=None, help="weights (default: the shipped ones)")
    add_predictor_arguments(ap)
    ap.add_argument("--preview", type=int, default=0, help="also time a live-preview click at this long side (0 = off)")
    a = ap.parse_args(argv)
    try:
        settings = predictor_config_from_args(a)
        if a.top_n < 0:
            raise ValueError(f"--top-n must be >= 0, got {a.top_n}")
    except ValueError as exc:
        ap.error(str(exc))
    if a.threads:
        torch.set_num_threads(a.threads)
        cv2.setNumThreads(a.threads)
    device = resolve_device(a.device)
    model = load_default_model(a.checkpoint)
    reference = copy.deepcopy(model.net.encoder).to(device).eval()  # before the predictor prepares its own copy
    ref_in = torch.randn(1, REFERENCE_PLANES, REFERENCE_SIDE, REFERENCE_SIDE, device=device)

    @torch.inference_mode()
    def encoder_pass() -> None:
        reference(ref_in)

    pred = Predictor(model=model, device=device, config=settings)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    print(f"device={pred.device} {gpu} threads={torch.get_num_threads()} {pred.settings()}")
    print(f"reference: encoder pass at {REFERENCE_SIDE}x{REFERENCE_SIDE}, {REFERENCE_PLANES} planes, fp32, "
          f"unfused; 'enc' = median of click / mean of the reference passes timed just before and after it")
    cols = ["first click", "next click", f"refine top-{a.top_n}"] + ([f"preview {a.preview}"] if a.preview else [])
    print("| MP | size | encoder pass ms | set_image ms | " + " | ".join(f"{c} ms | enc" for c in cols) + " |")
    print("|---|---|---|---|" + "---|---|" * len(cols))
    for _ in range(3):  # warm-up of the reference (first calls allocate)
        timed(encoder_pass, device)
    for mp in (float(s) for s in a.sizes.split(",")):
        w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
        h = int(round(mp * 1e6 / w))
        img = photo_like(h, w)
        t_set = timed(lambda: pred.set_image(img), device)
        pred.predict([(w // 2, h // 2, "fg")])  # warm-up
        rng = np.random.default_rng(1)
        ms: dict[str, list[float]] = {c: [] for c in cols}
        ratios: dict[str, list[float]] = {c: [] for c in cols}
        encs: list[float] = [timed(encoder_pass, device)]
        for _ in range(a.repeats):
            clicks = [(w // 2, h // 2, "fg"), (int(rng.integers(w // 10)), int(rng.integers(h // 10)), "bg")]
            box: dict[str, np.ndarray] = {}
            calls: dict[str, Callable[[], object]] = {
                "first click": lambda: box.update(first=pred.predict(clicks[:1])[0]),
                "next click": lambda: pred.predict(clicks, prev_alpha=alpha_to_u8(box["first"])),
                cols[2]: lambda: pred.refine(top_n=a.top_n),
            }
            if a.preview:
                calls[cols[3]] = lambda: pred.predict(clicks, preview=a.preview)
            for c in cols:  # each click between two reference passes: its ratio to their mean
                t = timed(calls[c], device)
                encs.append(timed(encoder_pass, device))
                ms[c].append(t)
                ratios[c].append(t / (0.5 * (encs[-2] + encs[-1])))
        cells = [f"{1e3 * statistics.median(ms[c]):.0f} | {statistics.median(ratios[c]):.2f}" for c in cols]
        print(f"| {mp:g} | {w}x{h} | {1e3 * statistics.median(encs):.0f} | {1e3 * t_set:.0f} | "
              + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
