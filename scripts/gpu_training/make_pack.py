"""Pack the training data for the GPU box (under 64 MiB): JPEG q95 images and foregrounds, PNG alphas.

``python scripts/gpu_training/make_pack.py [--crops DIR] [--backgrounds DIR] [--cache DIR] [--out DIR]
[--dev N]``: the training crops of ``--crops`` (comp1k_crops layout, dev split left out) with their
cached foregrounds from ``--cache``, the first N dev crops (images and alphas only) and the
backgrounds, written to ``--out`` (emptied first) as ``img/``, ``fg/``, ``alpha/``, ``bg/``.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from clickmatte.model.training.data import foreground_cache_path
from clickmatte.model.image_io import read_alpha, read_rgb
from clickmatte.model.training.splits import dev_names, train_names


def make_pack(crops: Path, backgrounds: Path, cache: Path, out: Path, n_dev: int) -> tuple[int, int]:
    """Write the pack; returns (training crops, dev crops) packed."""
    shutil.rmtree(out, ignore_errors=True)
    for d in ("img", "fg", "alpha", "bg"):
        (out / d).mkdir(parents=True)
    tr = train_names(sorted(os.listdir(crops / "alpha")))
    dev = dev_names()[:n_dev]
    for n in tr + dev:
        img = read_rgb(crops / "image" / n)
        Image.fromarray(img).save(out / "img" / n.replace(".png", ".jpg"), quality=95)
        shutil.copy(crops / "alpha" / n, out / "alpha" / n)
        if n in tr:
            fg = np.load(foreground_cache_path(cache, img, read_alpha(crops / "alpha" / n)))
            Image.fromarray(fg).save(out / "fg" / n.replace(".png", ".jpg"), quality=95)
    for p in sorted(backgrounds.glob("*.png")):
        Image.open(p).convert("RGB").save(out / "bg" / (p.stem + ".jpg"), quality=92)
    return len(tr), len(dev)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crops", type=Path, default=Path("../shared/data/comp1k_crops"))
    ap.add_argument("--backgrounds", type=Path, default=Path("../shared/data/backgrounds"))
    ap.add_argument("--cache", type=Path, default=Path("runs/cache"), help="foreground cache of the training crops")
    ap.add_argument("--out", type=Path, default=Path("gpu/pack"), help="pack folder (emptied first)")
    ap.add_argument("--dev", type=int, default=24, help="dev crops to pack (images and alphas)")
    a = ap.parse_args(argv)
    if a.dev < 0:
        ap.error("--dev must be >= 0")
    n_tr, n_dev = make_pack(a.crops, a.backgrounds, a.cache, a.out, a.dev)
    print(n_tr, "train", n_dev, "dev")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
