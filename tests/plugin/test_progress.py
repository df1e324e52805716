"""Busy is not gone: the ``status`` op and the controller's progress, against a real daemon process
slowed on purpose (``--test-delay-s``: every predict / refine waits that long first).

The daemon is shared by the module; the last test kills it (a daemon that is really gone).
"""
from __future__ import annotations

import os
import signal
import tempfile
import time
from typing import Iterator

import pytest

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon
from clickmatte.plugin.client import DaemonClient
from clickmatte.plugin.controller import HEARTBEAT_S
from clickmatte.plugin.host import Point

from test_controller import BG1, FG1, FG2, disc_image, make, reference

DELAY_S = 2.0


@pytest.fixture(scope="module")
def slow() -> Iterator[tuple]:
    with tempfile.TemporaryDirectory(prefix="cm-slow-") as tmp:
        ep = free_tcp_endpoint()
        proc, client = start_daemon(ep, ["--device", "cpu", "--test-delay-s", str(DELAY_S)],
                                    os.path.join(tmp, "daemon.log"), startup_timeout_s=300)
        client.disconnect()
        try:
            yield ep, proc
        finally:
            stop_daemon(proc)


def test_status_says_running_queued_or_unknown_while_the_model_works(slow) -> None:
    ep, _proc = slow
    img = disc_image()
    with DaemonClient(ep, timeout_ms=60000, retries=0) as c, DaemonClient(ep, timeout_ms=60000, retries=0) as other:
        s = c.open(img.data, img.width, img.height, img.channels, img.dtype, img.order).session
        first = c.send_predict(s, [Point.make(*FG1).as_click()])
        second = c.send_refine(s, top_n=2)
        st = c.status(first, timeout_ms=2000)
        while st.state == "queued":  # until the worker takes it up (at once, unless the machine is loaded)
            # nothing of ours is ahead of it but, for a moment, the open whose reply the worker has just sent
            assert st.ahead == (0 if st.running_op is None else 1) and st.running_op in (None, "open"), st
            time.sleep(0.05)
            st = c.status(first, timeout_ms=2000)
        t0 = time.monotonic()
        st = c.status(first, timeout_ms=2000)  # answered at once although the model is busy
        answered_in = time.monotonic() - t0
        assert (st.state, st.running_op, st.queued) == ("running", "predict", 1)
        assert st.request == first and st.elapsed_s >= 0 and st.running_s is not None
        st2 = c.status(second, timeout_ms=2000)
        assert (st2.state, st2.ahead) == ("queued", 1)
        # another connection cannot see our requests, and an id never sent is unknown
        assert other.status(first, timeout_ms=2000).state == "unknown"
        assert c.status("never-sent", timeout_ms=2000).state == "unknown"
        replies = {}
        while len(replies) < 2:
            r = c.poll(30000)
            assert r is not None
            replies[r.id] = r
        assert replies[first].ok and replies[second].ok
        idle = c.status(first, timeout_ms=2000)
        deadline = time.monotonic() + 5  # the worker sends the reply, then marks itself idle
        while idle.running_op is not None and time.monotonic() < deadline:
            time.sleep(0.05)
            idle = c.status(first, timeout_ms=2000)
        assert (idle.state, idle.queued, idle.running_op) == ("unknown", 0, None)
    print(f"status answered in {answered_in * 1000:.0f} ms while a {DELAY_S:g} s predict ran")


def test_slow_daemon_shows_progress_and_the_late_result_is_applied(slow) -> None:
    ep, _proc = slow
    host, ctl = make(ep, timeout_s=1.0, top_n=0)  # each answer takes twice the timeout
    try:
        ctl.add_point(*FG1)
        ctl.matte()
        seen_working = False
        deadline = time.monotonic() + 60
        while ctl.busy and time.monotonic() < deadline:
            ctl.tick(wait_ms=50)
            if ctl.connection.startswith("working"):
                seen_working = True
                assert ctl.status.startswith("working") and ctl.status_level == "busy"
        assert not ctl.busy, ctl.status
        assert seen_working
        msgs = [m for _lvl, m in host.messages]
        assert not any("no answer" in m or "is clickmatte-daemon running" in m for m in msgs), msgs
        assert any(m.startswith("working ... ") and m.endswith(" s") for m in msgs), msgs
        assert ctl.status_level == "info" and ctl.status.startswith("matte done"), ctl.status
        assert ctl.connection.startswith(f"connected to {ep}")
        assert host.mask == reference(ep, host.image, [FG1])

        # newer points while a matte runs: the late answer for the old points is dropped, the newer applied
        writes = len(host.mask_writes)
        ctl.add_point(*BG1)
        ctl.matte()
        for _ in range(40):  # the first request is in flight
            ctl.tick(wait_ms=50)
        ctl.add_point(*FG2)
        ctl.matte()
        assert ctl.run_until_idle(120), ctl.status
        assert ctl.status.startswith("matte done (3 point(s)"), ctl.status
        assert len(host.mask_writes) == writes + 1  # only the newest points' matte was written
        # points only added to the mask's [FG1]: that mask (what the user saw) is the previous alpha, not the
        # dropped answer for [FG1, BG1] that the daemon's session holds
        assert host.mask == reference(ep, host.image, [FG1, BG1, FG2], history=[[FG1]])
    finally:
        ctl.close()


def test_killed_daemon_says_no_answer_within_the_timeout(slow) -> None:
    ep, proc = slow
    timeout_s = 2.0
    host, ctl = make(ep, timeout_s=timeout_s, top_n=0)
    try:
        ctl.add_point(*FG1)
        ctl.add_point(*BG1)
        ctl.matte()
        deadline = time.monotonic() + 30
        while not ctl.connection.startswith("working") and time.monotonic() < deadline:
            ctl.tick(wait_ms=50)
        assert ctl.connection.startswith("working"), ctl.status
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        assert ctl.run_until_idle(timeout_s + HEARTBEAT_S + 5), ctl.status
        took = time.monotonic() - t0
        assert ctl.status_level == "error" and "no answer" in ctl.status and ep in ctl.status, ctl.status
        assert ctl.connection.startswith("not answering")
        print(f"killed daemon reported after {took:.2f} s (timeout {timeout_s:g} s, heartbeat {HEARTBEAT_S:g} s)")
    finally:
        ctl.close()
