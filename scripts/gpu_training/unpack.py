"""On the GPU box: rebuild comp1k_crops-style folders and the foreground cache from a pack.

``python scripts/gpu_training/unpack.py [--pack DIR] [--data DIR] [--cache DIR]``: the pack made by
``make_pack.py`` becomes ``DATA/image/*.png`` + ``DATA/alpha/*.png`` and, for crops with a foreground,
``CACHE/*.npy`` (as :func:`clickmatte.model.training.data.foreground_cache_path` names them).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from clickmatte.model.training.data import foreground_cache_path
from clickmatte.model.image_io import read_alpha, read_rgb


def unpack(pack: Path, data: Path, cache: Path) -> tuple[int, int]:
    """Unpack; returns (crops, foregrounds) written."""
    for d in (data / "image", data / "alpha", cache):
        d.mkdir(parents=True, exist_ok=True)
    n_fg = 0
    for ap in sorted((pack / "alpha").glob("*.png")):
        n = ap.name
        Image.open(pack / "img" / n.replace(".png", ".jpg")).convert("RGB").save(data / "image" / n)
        (data / "alpha" / n).write_bytes(ap.read_bytes())
        fgp = pack / "fg" / n.replace(".png", ".jpg")
        if fgp.is_file():
            img, a = read_rgb(data / "image" / n), read_alpha(data / "alpha" / n)
            np.save(foreground_cache_path(cache, img, a), np.asarray(Image.open(fgp).convert("RGB")))
            n_fg += 1
    return len(list((data / "alpha").glob("*.png"))), n_fg


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", type=Path, default=Path("gpu/pack"))
    ap.add_argument("--data", type=Path, default=Path("/tmp/data/comp1k_crops"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/cache"))
    a = ap.parse_args(argv)
    if not (a.pack / "alpha").is_dir():
        ap.error(f"--pack {a.pack}: no alpha/ folder (make one with make_pack.py)")
    n, n_fg = unpack(a.pack, a.data, a.cache)
    print("unpacked", n, "crops,", n_fg, "foregrounds", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
