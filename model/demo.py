"""Direct demo: run the Predictor on an image with a clicks file and write the outputs.

``python -m clickmatte.model.demo --image IMG --clicks CLICKS.json --out DIR``
(the daemon-based ``clickmatte matte`` is the main job; this calls the model in-process).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .inference.predictor import Predictor
from .visualize import alpha_to_uint8, colorize_uncertainty, preview, uncertainty_to_uint8


def load_clicks(path: Path, image_name: str) -> list[dict]:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        if image_name not in data:
            raise ValueError(f"{path} has no clicks for {image_name!r} (keys: {sorted(data)})")
        data = data[image_name]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of clicks")
    return data


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--image", required=True, type=Path)
    ap.add_argument("--clicks", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--refine-top-n", type=int, default=0,
                    help="patches to refine at full resolution (default 0 = none)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    if args.refine_top_n < 0:
        ap.error(f"--refine-top-n must be >= 0, got {args.refine_top_n}")
    rgb = np.asarray(Image.open(args.image).convert("RGB"))
    clicks = load_clicks(args.clicks, args.image.name)
    pred = Predictor(device=args.device)
    pred.set_image(rgb)
    alpha, sigma = pred.predict(clicks)
    if args.refine_top_n > 0:
        alpha = pred.refine(top_n=args.refine_top_n)
    args.out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(alpha_to_uint8(alpha)).save(args.out / "alpha.png")
    Image.fromarray(colorize_uncertainty(uncertainty_to_uint8(sigma))).save(args.out / "uncertainty.png")
    Image.fromarray(preview(rgb, alpha, sigma, clicks)).save(args.out / "preview.png")
    print(f"wrote {args.out}/alpha.png, uncertainty.png, preview.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
