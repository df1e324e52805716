"""Per-click latency through the daemon for 1, 4, 12 and 24 MP images, and the daemon's overhead.

``python benchmarks/latency.py [--sizes 1,4,12,24] [--repeats 3] [--device cpu] [--endpoint E]``

For each size (4:3 BGRA uint8 image, as Krita sends it): open once (pixels sent), predict at preview
size (long side 1024) and at full size, refine top-8; median and best of ``--repeats`` tries each.
Then the same 1 MP predict in-process (``Predictor.predict``), interleaved with daemon full-size
predicts, to show the protocol + daemon overhead (target <= 10 % of a 1 MP predict). The daemon's
RSS after each size and its peak (VmHWM, target <= 2 GB at 24 MP) come from /proc.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon
from clickmatte.plugin.client import DaemonClient
from clickmatte.plugin.protocol import DEFAULT_TOP_N

from daemon_load import rss_mb  # same folder


def shape_for(mp: float) -> Tuple[int, int]:
    """(height, width) of a 4:3 image with about ``mp`` megapixels."""
    w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
    return int(round(w * 3 / 4)), w


def make_bgra(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A disc on a textured background, ``(h, w, 4)`` uint8 BGRA, built without float64 copies."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 4), np.uint8)
    img[..., :3] = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
    img[..., 3] = 255
    r = min(h, w) // 3
    for y0 in range(max(0, h // 2 - r), min(h, h // 2 + r), 1024):
        y1 = min(y0 + 1024, h // 2 + r, h)
        yy = np.arange(y0, y1)[:, None]
        xx = np.arange(w)[None, :]
        inside = (xx - w // 2) ** 2 + (yy - h // 2) ** 2 < r * r
        img[y0:y1][inside, :3] += 140
    return img


def timed(fn: Callable[[], object], repeats: int) -> List[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fmt(ts: List[float]) -> str:
    return f"median {statistics.median(ts) * 1000:8.0f} ms  best {min(ts) * 1000:8.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,4,12,24", help="megapixels, comma separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--endpoint", default=None, help="use this daemon instead of starting one (no RSS then)")
    ap.add_argument("--skip-inprocess", action="store_true")
    a = ap.parse_args()
    sizes = [float(s) for s in a.sizes.split(",")]

    tmp = tempfile.TemporaryDirectory(prefix="cm-lat-")
    proc = None
    endpoint = a.endpoint
    if endpoint is None:
        endpoint = free_tcp_endpoint()
        proc, c0 = start_daemon(endpoint, ["--device", a.device, "--max-image-mp", str(max(sizes) + 1),
                                           "--max-cache-mb", "4096", "--log-level", "WARNING"],
                                os.path.join(tmp.name, "d.log"))
        c0.disconnect()
    c = DaemonClient(endpoint, timeout_ms=600000, retries=0)
    print(f"latency through the daemon at {endpoint} (device {c.hello().device})")
    if proc:
        print(f"  daemon RSS idle (model loaded): {rss_mb(proc.pid):.0f} MiB")
    clicks_for = lambda h, w: [{"x": w // 2, "y": h // 2, "label": "fg"}, {"x": w // 20, "y": h // 20, "label": "bg"},
                               {"x": w // 2 + w // 8, "y": h // 2, "label": "fg"}]
    one_mp_session: Optional[str] = None
    one_mp = None
    for mp in sizes:
        h, w = shape_for(mp)
        img = make_bgra(h, w)
        data = img.data  # no copy
        t0 = time.perf_counter()
        s = c.open(data, w, h, 4, "uint8", "BGRA", use_cache=False).session
        t_open = time.perf_counter() - t0
        clicks = clicks_for(h, w)
        c.predict(s, clicks, preview=1024)  # first call at a new shape pays one-off set-up costs
        tp = timed(lambda: c.predict(s, clicks, preview=1024), a.repeats)
        tf = timed(lambda: c.predict(s, clicks), a.repeats)
        tr = timed(lambda: c.refine(s, top_n=DEFAULT_TOP_N), a.repeats)
        rss = f", daemon RSS {rss_mb(proc.pid):.0f} MiB, peak so far {rss_mb(proc.pid, 'VmHWM'):.0f} MiB" if proc else ""
        print(f"{w}x{h} ({w * h / 1e6:.1f} MP): open {t_open * 1000:.0f} ms{rss}")
        print(f"    predict preview 1024: {fmt(tp)}")
        print(f"    predict full size   : {fmt(tf)}")
        print(f"    refine top-8        : {fmt(tr)}")
        if one_mp is None or abs(mp - 1.0) < abs(one_mp[4] - 1.0):
            if one_mp_session is not None:
                c.close(one_mp_session)
            one_mp_session, one_mp = s, (img, h, w, clicks, mp)
        else:
            c.close(s)
        del img, data

    if not a.skip_inprocess and one_mp is not None and one_mp_session is not None:
        from clickmatte.model import Predictor

        img, h, w, clicks, mp = one_mp
        pred = Predictor(device=a.device)
        pred.set_image(np.ascontiguousarray(img[..., 2::-1]))  # BGRA -> RGB
        pred.predict(clicks)
        t_in: List[float] = []
        t_d: List[float] = []
        over: List[float] = []
        for _ in range(max(5, a.repeats * 2)):  # interleaved so that both see the same machine load
            t_in += timed(lambda: pred.predict(clicks), 1)
            t0 = time.perf_counter()
            m = c.predict(one_mp_session, clicks)
            t_d.append(time.perf_counter() - t0)
            over.append(t_d[-1] - m.timing["model_ms"] / 1000.0)  # everything but the network itself
        med_in = statistics.median(t_in)
        med_over = statistics.median(over)
        print(f"{w}x{h} ({w * h / 1e6:.1f} MP) predict in-process (Predictor.predict): {fmt(t_in)}")
        print(f"{w}x{h} ({w * h / 1e6:.1f} MP) predict through the daemon (round trip) : {fmt(t_d)}")
        print(f"    protocol + daemon overhead (round trip - daemon's model time): median {med_over * 1000:.1f} ms, "
              f"best {min(over) * 1000:.1f} ms = {med_over / med_in * 100:.1f} % of the in-process predict "
              f"(target <= 10 %)")
    if proc:
        peak = rss_mb(proc.pid, "VmHWM")
        print(f"daemon peak RSS (VmHWM): {peak:.0f} MiB ({'within' if peak <= 2048 else 'OVER'} the 2 GB budget)")
    c.disconnect()
    if proc:
        stop_daemon(proc)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
