"""Request queue: latest click wins, and several clients interleave without mixing up replies."""
from __future__ import annotations

import numpy as np

from clickmatte.plugin.client import DaemonClient

FG = {"x": 50, "y": 40, "label": "fg"}


def poll_all(client: DaemonClient, n: int, timeout_ms: int = 120000) -> dict:
    replies = {}
    while len(replies) < n:
        r = client.poll(timeout_ms)
        assert r is not None, f"only {len(replies)} of {n} replies arrived"
        replies[r.id] = r
    return replies


def test_queued_predicts_for_one_session_are_superseded_by_the_newest(tcp_daemon, make_image):
    c = DaemonClient(tcp_daemon.endpoint, timeout_ms=120000, retries=0)
    try:
        busy = c.open(make_image(200, 150, seed=1).tobytes(), 200, 150, 3, "uint8", "RGB").session
        s = c.open(make_image(100, 80, seed=2).tobytes(), 100, 80, 3, "uint8", "RGB").session
        # keep the daemon busy, then queue three predicts for s behind it
        slow = c.send_predict(busy, [FG])
        slow2 = c.send_refine(busy, top_n=8)
        ids = [c.send_predict(s, [dict(FG, x=10 + i)]) for i in range(3)]
        other = c.send_hello()  # other requests are never superseded
        replies = poll_all(c, 6)
        assert replies[slow].ok and replies[slow2].ok
        assert replies[other].ok
        assert [replies[i].superseded for i in ids] == [True, True, False]
        assert replies[ids[2]].result().session == s
        assert c.close(s) and c.close(busy)
    finally:
        c.disconnect()


def test_predict_followed_by_refine_is_not_superseded(tcp_daemon, make_image):
    c = DaemonClient(tcp_daemon.endpoint, timeout_ms=120000, retries=0)
    try:
        busy = c.open(make_image(200, 150, seed=1).tobytes(), 200, 150, 3, "uint8", "RGB").session
        s = c.open(make_image(100, 80, seed=4).tobytes(), 100, 80, 3, "uint8", "RGB").session
        slow = c.send_predict(busy, [FG])
        p1 = c.send_predict(s, [FG])
        ref = c.send_refine(s, top_n=None, regions=[[0, 0, 50, 40]])  # needs p1's result: p1 must run
        p2 = c.send_predict(s, [FG, {"x": 2, "y": 2, "label": "bg"}])
        replies = poll_all(c, 4)
        assert replies[slow].ok and replies[p1].ok and replies[ref].ok and replies[p2].ok
        assert replies[ref].result().patches
    finally:
        c.disconnect()


def test_clients_interleave_and_each_gets_its_own_replies(tcp_daemon, make_image):
    clients = [DaemonClient(tcp_daemon.endpoint, timeout_ms=120000, retries=0) for _ in range(3)]
    try:
        sessions = []
        for k, c in enumerate(clients):
            w, h = 64 + 16 * k, 48 + 8 * k
            sessions.append((c.open(make_image(w, h, seed=30 + k).tobytes(), w, h, 3, "uint8", "RGB").session, w, h))
        sent = []
        for round_ in range(3):
            for c, (s, w, h) in zip(clients, sessions):
                sent.append((c, c.send_predict(s, [{"x": w // 2, "y": h // 2, "label": "fg"}], uncertainty=False)))
                sent.append((c, c.send_hello()))
        for c, (s, w, h) in zip(clients, sessions):
            mine = [rid for cc, rid in sent if cc is c]
            got = poll_all(c, len(mine))
            assert set(got) == set(mine)
            for rid in mine:
                r = got[rid]
                if r.request_op == "predict":
                    # the newest predict of each round may supersede an older one of the same session
                    assert r.ok or r.superseded
                    if r.ok:
                        m = r.result()
                        assert (m.session, m.width, m.height) == (s, w, h)
                        assert np.frombuffer(m.alpha, np.uint8).size == w * h
                else:
                    assert r.ok and r.op == "hello"
            assert got[mine[-2]].ok  # the last predict always runs
    finally:
        for c in clients:
            c.disconnect()
