"""Bounded work and bounded memory, against a real daemon process on loopback.

- a refine that asks for 10,000 patches runs in steps: a ``hello`` from another client is answered
  within 2 s and another client's ``predict`` between the steps; a newer request for the same session
  supersedes the rest of it;
- admission before allocation: a flood of large messages while the daemon is busy is refused
  (``busy``) instead of held, a message larger than the limit is ``too_large`` (not ``busy``), and the
  daemon's resident memory grows by less than its request-queue cap + 300 MB.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np
import pytest
import zmq

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon
from clickmatte.plugin.client import DaemonClient, DaemonError
from clickmatte.plugin.protocol import MAGIC, BufferSpec, decode, encode, open_request

QUEUE_MB = 96
SIDE = 1536  # 576 non-overlapping 64x64 patches: about a minute of refining on a 2-core CPU
ARGS = ["--device", "cpu", "--max-sessions", "64", "--max-image-mp", "4", "--max-queue-mb", str(QUEUE_MB), "--max-top-n", "10000",
        "--max-region-mp", "1", "--log-level", "INFO"]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise ValueError(f"no {field} for process {pid}")


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of ``pid``; False where that is not possible."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Daemon:
    def __init__(self, endpoint: str, proc, log: str) -> None:
        self.endpoint, self.proc, self.log_path = endpoint, proc, log

    def client(self, timeout_ms: int = 120000) -> DaemonClient:
        return DaemonClient(self.endpoint, timeout_ms=timeout_ms, retries=0)

    def log(self) -> str:
        return open(self.log_path, errors="replace").read()


@pytest.fixture(scope="module")
def big() -> Iterator[Daemon]:
    with tempfile.TemporaryDirectory(prefix="cm-limits-") as tmp:
        log = os.path.join(tmp, "daemon.log")
        endpoint = free_tcp_endpoint()
        proc, c = start_daemon(endpoint, ARGS, log, startup_timeout_s=240)
        c.disconnect()
        try:
            yield Daemon(endpoint, proc, log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def photo(side: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    disc = (xx - side / 2) ** 2 + (yy - side / 2) ** 2 < (side / 3) ** 2
    img = rng.integers(0, 80, (side, side, 3), dtype=np.uint8)
    img[disc] += 150
    return img


@pytest.fixture(scope="module")
def long_session(big: Daemon) -> str:
    c = big.client()
    try:
        s = c.open(photo(SIDE).tobytes(), SIDE, SIDE, 3, "uint8", "RGB").session
        c.predict(s, [{"x": SIDE // 2, "y": SIDE // 2, "label": "fg"}, {"x": 5, "y": 5, "label": "bg"}],
                  uncertainty=False)
        return s
    finally:
        c.disconnect()


def start_long_refine(c: DaemonClient, session: str) -> str:
    rid = c.send_refine(session, top_n=10000)
    time.sleep(1.0)  # the worker has started on it
    return rid


def test_hello_and_other_clients_are_answered_while_a_10000_patch_refine_runs(big, long_session):
    a, b = big.client(), big.client()
    try:
        assert a.hello().limits["max_top_n"] == 10000
        refine = start_long_refine(a, long_session)
        hello_s = []
        for _ in range(3):
            t0 = time.monotonic()
            b.hello(timeout_ms=10000)
            hello_s.append(time.monotonic() - t0)
        assert max(hello_s) < 2.0, hello_s
        # another client's predict runs between the refine's steps
        small = b.open(photo(128, seed=3).tobytes(), 128, 128, 3, "uint8", "RGB").session
        t0 = time.monotonic()
        m = b.predict(small, [{"x": 64, "y": 64, "label": "fg"}], timeout_ms=60000)
        predict_s = time.monotonic() - t0
        assert (m.width, m.height) == (128, 128)
        assert a.poll(0) is None, "the refine finished already: it was not long"
        # a newer request for the same session supersedes the rest of the refine
        t0 = time.monotonic()
        newer = a.send_refine(long_session, top_n=None, regions=[[0, 0, 10, 10]], preview=64)  # cheap
        replies = {}
        while len(replies) < 2:
            r = a.poll(60000)
            assert r is not None
            replies[r.id] = r
        assert replies[refine].superseded, replies[refine].error
        assert replies[newer].ok
        supersede_s = time.monotonic() - t0
        assert replies[newer].result().patches == [(0, 0, 64, 64)]
        print(f"hello during a 10000-patch refine: max {max(hello_s):.3f} s; another client's predict "
              f"{predict_s:.2f} s; refine superseded and the newer request answered in {supersede_s:.2f} s")
        assert "Traceback" not in big.log()
    finally:
        a.disconnect()
        b.disconnect()


def test_refine_limits_are_announced_and_enforced(big, long_session):
    c = big.client()
    try:
        limits = c.hello().limits
        assert limits["max_region_pixels"] == 1_000_000 and limits["max_queue_bytes"] == QUEUE_MB * 2 ** 20
        with pytest.raises(DaemonError) as ei:  # 1536 x 1536 = 2.4 MP > --max-region-mp 1
            c.refine(long_session, top_n=None, regions=[[0, 0, SIDE, SIDE]])
        assert ei.value.code == "too_large" and "max_region_pixels" in ei.value.message
        mask = np.ones((SIDE, SIDE), np.uint8)
        with pytest.raises(DaemonError) as ei:
            c.refine(long_session, top_n=None, mask=mask.tobytes(), mask_width=SIDE, mask_height=SIDE)
        assert ei.value.code == "too_large"
        r = c.refine(long_session, top_n=None, regions=[[0, 0, 100, 100]])  # within the limit
        assert r.patches
    finally:
        c.disconnect()


def _dealer(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)  # the flood is queued on our side, not refused here
    s.connect(endpoint)
    return s


def test_a_flood_is_refused_before_it_is_held_and_memory_stays_bounded(big, long_session):
    side = 2000  # 4 MP RGBA uint16: 32 MB, just within the daemon's message limit (4 MP)
    pixels = np.random.default_rng(5).integers(0, 65535, (side, side, 4), dtype=np.uint16).astype("<u2").tobytes()
    spec = BufferSpec("image", side, side, 4, "uint16", "RGBA")
    a = big.client()
    ctx = zmq.Context()
    socks = [_dealer(ctx, big.endpoint) for _ in range(4)]
    try:
        limit = a.hello().limits["max_message_bytes"]
        assert len(pixels) < limit < 3 * 30_000_000
        refine = start_long_refine(a, long_session)  # the daemon is busy
        pid = big.proc.pid
        base = rss_mb(pid)
        exact = reset_peak_rss(pid)
        per_sock = 4
        for k, s in enumerate(socks):
            for i in range(per_sock):
                s.send_multipart([MAGIC, encode(open_request(f"flood-{k}-{i}", image=spec), [pixels])[1], pixels],
                                 copy=False)
        # one message of three 30 MB frames: each frame passes ZeroMQ's MAXMSGSIZE, the message does not fit
        three = [bytes(30_000_000)] * 3
        header = (b'{"id": "three", "op": "open", "buffers": ['
                  + b",".join(b'{"name": "image%d", "width": 5000, "height": 2000, "channels": 3, "order": "RGB"}' % i
                              for i in range(3)) + b"]}")
        socks[0].send_multipart([MAGIC, header, *three], copy=False)
        peak_sampled = base
        got: Dict[str, dict] = {}
        want = len(socks) * per_sock + 1
        deadline = time.monotonic() + 240
        poller = zmq.Poller()
        for s in socks:
            poller.register(s, zmq.POLLIN)
        while len(got) < want and time.monotonic() < deadline:
            for s, _ in poller.poll(200):
                h = decode(s.recv_multipart(), kind="reply").header
                got[h["id"]] = h
            peak_sampled = max(peak_sampled, rss_mb(pid))
        peak = rss_mb(pid, "VmHWM") if exact else peak_sampled
        assert len(got) == want, f"{want - len(got)} replies lost"
        codes = {rid: (h["code"] if h["op"] == "error" else h["op"]) for rid, h in got.items()}
        assert codes.pop("three") == "too_large", got["three"]
        assert set(codes.values()) <= {"open", "busy"}, codes
        assert list(codes.values()).count("busy") > 0  # the queue really was full
        assert list(codes.values()).count("open") > 0  # and what fitted was served, between the refine's steps
        grew = peak - base
        print(f"flood of {want - 1} x {len(pixels) / 1e6:.0f} MB + 3 x 30 MB while busy: {codes} ; "
              f"daemon RSS {base:.0f} MiB -> peak {peak:.0f} MiB (+{grew:.0f} MiB; cap {QUEUE_MB} MiB + 300)")
        assert grew < QUEUE_MB + 300, f"RSS grew by {grew:.0f} MiB"
        assert big.proc.poll() is None
        newer = a.send_refine(long_session, top_n=None, regions=[[0, 0, 10, 10]], preview=64)
        replies = {}
        while len(replies) < 2:
            r = a.poll(120000)
            assert r is not None
            replies[r.id] = r
        assert replies[refine].superseded and replies[newer].ok
    finally:
        for s in socks:
            s.close(0)
        ctx.term()
        a.disconnect()
