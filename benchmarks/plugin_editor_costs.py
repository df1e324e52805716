"""What the plugin core costs on the editor's own thread (pure Python, no numpy), per image size.

``python benchmarks/plugin_editor_costs.py [--sizes 1,4,12] [--repeats 3]``

The controller never waits for the daemon, but some work runs in the editor between polls: the
content digest of the layer (sha256, once per job), scaling a live preview up to the image size
(pure-Python nearest neighbour; the Krita adapter uses QImage instead), colour-mapping the guide,
widening a mask for 16-bit layers, and cutting refined patches out of the alpha. Prints the best
of ``--repeats`` in milliseconds for 4:3 BGRA images of about 1, 4 and 12 megapixels.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable, List

from clickmatte.plugin import raster
from clickmatte.plugin.protocol import image_digest


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times)


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4,12", help="megapixels, comma-separated (default 1,4,12)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{'MP':>5} {'size':>11} {'digest':>8} {'preview->full':>14} {'guide RGBA':>11} {'mask u16':>9} "
          f"{'8 patches':>10}   (ms, best of {args.repeats})")
    for mp in (float(s) for s in args.sizes.split(",")):
        h = int(round((mp * 1e6 * 3 / 4) ** 0.5))
        w = int(round(h * 4 / 3))
        bgra = os.urandom(w * h * 4)
        plane = os.urandom(w * h)
        s = 1024 / max(w, h)
        pw, ph = max(1, round(w * s)), max(1, round(h * s))
        small = os.urandom(pw * ph)
        boxes = [((i * 97) % max(1, w - 64), (i * 53) % max(1, h - 64), 64, 64) for i in range(8)]
        row = [
            best_ms(lambda: image_digest(bgra, w, h, 4, "uint8", "BGRA"), args.repeats),
            best_ms(lambda: raster.resize_nearest(small, pw, ph, w, h), args.repeats),
            best_ms(lambda: raster.guide_rgba(plane, "BGRA"), args.repeats),
            best_ms(lambda: raster.u8_to_u16(plane), args.repeats),
            best_ms(lambda: [raster.crop(plane, w, b) for b in boxes], args.repeats),
        ]
        print(f"{mp:5.1f} {f'{w}x{h}':>11} " + " ".join(f"{v:{n}.1f}" for v, n in zip(row, (8, 14, 11, 9, 10))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
