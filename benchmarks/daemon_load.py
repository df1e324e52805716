"""Load test: N clients x M requests against one daemon on loopback, concurrently.

``python benchmarks/daemon_load.py [--clients 4] [--requests 20] [--size 320x240] [--max-seconds 120]
[--endpoint E]``

Each client (own thread, own DEALER socket) opens its own image once, then sends M blocking
requests in turn (predict at preview size, predict at full size, refine top-4, hello), one at a
time, so none is superseded. Bounded in count (M per client) and time (no new request after
``--max-seconds``). Prints latency p50/p99 per op and overall, throughput, error replies, lost
replies (timeouts: must be 0), and the daemon's RSS before and after (for a daemon it started).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon
from clickmatte.plugin.client import DaemonClient, DaemonError, DaemonTimeout


def rss_mb(pid: int, field: str = "VmRSS") -> Optional[float]:
    """Resident set size (``VmRSS``) or its peak (``VmHWM``) of a process in MiB, from /proc (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def picture(w: int, h: int, seed: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2
    img = rng.integers(0, 80, (h, w, 4), dtype=np.uint8)
    img[disc, :3] += 150
    img[..., 3] = 255
    return img.tobytes()


def pct(xs: List[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=20, help="requests per client")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--timeout-ms", type=int, default=120000)
    ap.add_argument("--endpoint", default=None, help="use this daemon instead of starting one")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="cm-load-")
    endpoint = a.endpoint
    if endpoint is None:
        endpoint = free_tcp_endpoint()
        proc, c = start_daemon(endpoint, ["--device", a.device, "--max-sessions", str(a.clients + 2),
                                          "--log-level", "WARNING"], os.path.join(tmp.name, "d.log"))
        c.disconnect()
    rss_before = rss_mb(proc.pid) if proc else None

    ops = ["predict_preview", "predict_full", "refine", "hello"]
    lat: Dict[str, List[float]] = {k: [] for k in ops}
    counts = {"ok": 0, "error": 0, "lost": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + a.max_seconds

    def run(k: int) -> None:
        c = DaemonClient(endpoint, timeout_ms=a.timeout_ms, retries=0)
        try:
            s = c.open(picture(w, h, k), w, h, 4, "uint8", "BGRA").session
            clicks = [{"x": w // 2, "y": h // 2, "label": "fg"}, {"x": 2, "y": 2, "label": "bg"}]
            for i in range(a.requests):
                if time.monotonic() > deadline:
                    break
                op = ops[i % len(ops)]
                t0 = time.perf_counter()
                try:
                    if op == "predict_preview":
                        c.predict(s, clicks, preview=128)
                    elif op == "predict_full":
                        c.predict(s, clicks)
                    elif op == "refine":
                        c.refine(s, top_n=4)
                    else:
                        c.hello()
                    dt = time.perf_counter() - t0
                    with lock:
                        lat[op].append(dt)
                        counts["ok"] += 1
                except DaemonTimeout:
                    with lock:
                        counts["lost"] += 1
                except DaemonError as exc:
                    with lock:
                        counts["error"] += 1
                    print(f"client {k}: error reply {exc.code}: {exc.message}", file=sys.stderr)
            c.close(s)
        finally:
            c.disconnect()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    rss_after = rss_mb(proc.pid) if proc else None
    peak = rss_mb(proc.pid, "VmHWM") if proc else None
    if proc:
        stop_daemon(proc)
    tmp.cleanup()

    allv = [x for v in lat.values() for x in v]
    total = counts["ok"] + counts["error"] + counts["lost"]
    print(f"daemon_load: {a.clients} clients x {a.requests} requests, {w}x{h} images, endpoint {endpoint}")
    for op in ops:
        v = lat[op]
        print(f"  {op:16s} n={len(v):4d}  p50 {pct(v, 50) * 1000:8.1f} ms  p99 {pct(v, 99) * 1000:8.1f} ms")
    print(f"  {'all':16s} n={len(allv):4d}  p50 {pct(allv, 50) * 1000:8.1f} ms  p99 {pct(allv, 99) * 1000:8.1f} ms"
          f"  mean {statistics.mean(allv) * 1000 if allv else float('nan'):.1f} ms")
    print(f"  throughput {total / wall:.2f} requests/s over {wall:.1f} s; ok {counts['ok']}, "
          f"error replies {counts['error']}, lost replies {counts['lost']}")
    if rss_before is not None:
        print(f"  daemon RSS before {rss_before:.0f} MiB, after {rss_after:.0f} MiB, peak {peak:.0f} MiB")
    return 0 if counts["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
