"""Carry the training crops losslessly to the GPU box for ``scripts/finetune_refiner.py``.

Here: ``.venv/bin/python scripts/gpu_training/refiner_pack.py pack`` writes the train split's
images as lossless WebP and its alphas as PNG to ``gpu/rpack`` (~45 MB; ``gpu/`` is git-ignored).
There: ``python3 scripts/gpu_training/refiner_pack.py unpack /tmp/rdata`` rebuilds a
comp1k_crops-style folder (``image/NAME.png``, ``alpha/NAME.png``). The refiner sees fine detail,
so unlike ``make_pack.py`` (JPEG q95 for matting) nothing here is lossy.
"""
import os
import shutil
import sys
from pathlib import Path

import cv2

PACK = Path("gpu/rpack")


def pack(src: Path = Path("../shared/data/comp1k_crops")) -> None:
    from clickmatte.model.training.splits import train_names

    shutil.rmtree(PACK, ignore_errors=True)
    for d in ("image", "alpha"):
        (PACK / d).mkdir(parents=True)
    names = train_names(sorted(os.listdir(src / "alpha")))
    for n in names:
        img = cv2.imread(str(src / "image" / n), cv2.IMREAD_COLOR)
        ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])  # 101 = lossless
        if not ok or not (cv2.imdecode(buf, cv2.IMREAD_COLOR) == img).all():
            raise RuntimeError(f"lossless WebP failed for {n}")
        (PACK / "image" / (Path(n).stem + ".webp")).write_bytes(buf.tobytes())
        shutil.copy(src / "alpha" / n, PACK / "alpha" / n)
    print(len(names), "train crops packed in", PACK)


def unpack(dst: Path) -> None:
    for d in ("image", "alpha"):
        (dst / d).mkdir(parents=True, exist_ok=True)
    for p in sorted((PACK / "image").glob("*.webp")):
        cv2.imwrite(str(dst / "image" / (p.stem + ".png")), cv2.imread(str(p), cv2.IMREAD_COLOR))
        shutil.copy(PACK / "alpha" / (p.stem + ".png"), dst / "alpha" / (p.stem + ".png"))
    print("unpacked", len(list((dst / "image").glob("*.png"))), "crops to", dst, flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["pack"]:
        pack()
    elif sys.argv[1:2] == ["unpack"] and len(sys.argv) == 3:
        unpack(Path(sys.argv[2]))
    else:
        raise SystemExit("usage: refiner_pack.py pack | unpack DIR")
