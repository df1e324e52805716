"""Load test: N clients x M predicts against one daemon on loopback, concurrently.

``python benchmarks/daemon_load.py [--clients 8] [--requests 20] [--size 320x240] [--max-seconds 600]
[--endpoint E] [--device cpu]``

Each client (own thread, own DEALER socket) opens its own image (a different size per client, so
that a reply routed to the wrong client shows), asks for one predict alone to get the reference
answer, and then, all clients at once, sends M blocking predicts with the same clicks, one at a time
(so none is superseded). Every reply is checked: lost (no reply within the timeout), misrouted
(another session's or another size's answer), or different from the reference (not byte-identical).
Prints, in one run: replies lost, misrouted, different, error replies, latency p50 / p95 / max,
throughput, and the daemon's RSS before and its peak during the load (for a daemon it started; the
kernel's peak counter is reset before the load). Exit status 1 if any reply was lost or misrouted.
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


def reset_peak_rss(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


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
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=20, help="predicts per client")
    ap.add_argument("--size", default="320x240", help="image size of client 0; client k's is 8k px wider")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="no new request after this")
    ap.add_argument("--timeout-ms", type=int, default=300000)
    ap.add_argument("--endpoint", default=None, help="use this daemon instead of starting one")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.clients < 1 or a.requests < 1:
        raise ValueError("--clients and --requests must be >= 1")
    w0, h = (int(v) for v in a.size.lower().split("x"))

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="cm-load-")
    endpoint = a.endpoint
    if endpoint is None:
        endpoint = free_tcp_endpoint()
        proc, c = start_daemon(endpoint, ["--device", a.device, "--max-sessions", str(a.clients + 2),
                                          "--log-level", "WARNING"], os.path.join(tmp.name, "d.log"))
        c.disconnect()

    lat: List[float] = []
    counts = {"ok": 0, "error": 0, "lost": 0, "misrouted": 0, "different": 0}
    lock = threading.Lock()
    ready = threading.Barrier(a.clients + 1)
    go = threading.Event()
    deadline = [0.0]

    def run(k: int) -> None:
        w = w0 + 8 * k
        c = DaemonClient(endpoint, timeout_ms=a.timeout_ms, retries=0)
        s = None
        try:
            s = c.open(picture(w, h, k), w, h, 4, "uint8", "BGRA").session
            clicks = [{"x": w // 2, "y": h // 2, "label": "fg"}, {"x": 2, "y": 2, "label": "bg"}]
            ref = c.predict(s, clicks, prev_alpha=False)  # alone: the reference answer
            ready.wait()
            go.wait()
            for _ in range(a.requests):
                if time.monotonic() > deadline[0]:
                    break
                t0 = time.perf_counter()
                try:
                    m = c.predict(s, clicks, prev_alpha=False)
                    dt = time.perf_counter() - t0
                    with lock:
                        lat.append(dt)
                        counts["ok"] += 1
                        if m.session != s or (m.width, m.height) != (w, h):
                            counts["misrouted"] += 1
                        elif m.alpha != ref.alpha or m.uncertainty != ref.uncertainty:
                            counts["different"] += 1
                except DaemonTimeout:
                    with lock:
                        counts["lost"] += 1
                except DaemonError as exc:
                    with lock:
                        counts["error"] += 1
                    print(f"client {k}: error reply {exc.code}: {exc.message}", file=sys.stderr)
        except BaseException:
            ready.abort()
            raise
        finally:
            if s is not None:
                try:
                    c.close(s)
                except (DaemonError, DaemonTimeout):
                    pass
            c.disconnect()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(a.clients)]
    for t in threads:
        t.start()
    ready.wait()  # every client has its session and reference
    rss_before = rss_mb(proc.pid) if proc else None
    exact_peak = reset_peak_rss(proc.pid) if proc else False
    peak_sampled = rss_before or 0.0
    t0 = time.perf_counter()
    deadline[0] = time.monotonic() + a.max_seconds
    go.set()
    while any(t.is_alive() for t in threads):
        if proc:
            peak_sampled = max(peak_sampled, rss_mb(proc.pid) or 0.0)
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    peak = (rss_mb(proc.pid, "VmHWM") if exact_peak else peak_sampled) if proc else None
    if proc:
        stop_daemon(proc)
    tmp.cleanup()

    sent = counts["ok"] + counts["error"] + counts["lost"]
    print(f"daemon_load: {a.clients} clients x {a.requests} predicts (full size, {w0}..{w0 + 8 * (a.clients - 1)}"
          f"x{h}), endpoint {endpoint}")
    print(f"  replies: {sent} sent, {counts['ok']} ok, lost {counts['lost']}, misrouted {counts['misrouted']}, "
          f"different from the sequential answer {counts['different']}, error replies {counts['error']}")
    print(f"  latency p50 {pct(lat, 50) * 1000:.1f} ms, p95 {pct(lat, 95) * 1000:.1f} ms, "
          f"max {max(lat) * 1000 if lat else float('nan'):.1f} ms, "
          f"mean {statistics.mean(lat) * 1000 if lat else float('nan'):.1f} ms")
    print(f"  throughput {sent / wall:.2f} predicts/s over {wall:.1f} s")
    if proc:
        print(f"  daemon RSS before the load {rss_before:.0f} MiB, peak during it {peak:.0f} MiB"
              f"{'' if exact_peak else ' (sampled every 50 ms)'}")
    return 0 if counts["lost"] == 0 and counts["misrouted"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
