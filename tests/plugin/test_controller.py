"""The session controller over the in-memory host, against a real daemon process (real model, CPU).

The model may be untrained: assertions are about what the controller does with the daemon's
answers (compared with the daemon's own answer to the same request), not about matte quality.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon
from clickmatte.plugin.client import DaemonClient
from clickmatte.plugin.controller import Controller
from clickmatte.plugin.host import ImageData, Point
from clickmatte.plugin.settings import Settings

from fake_host import FakeHost

W, H = 128, 96
FG1, FG2, BG1 = (64, 48, "fg"), (58, 44, "fg"), (8, 8, "bg")


def disc_image(wide: bool = False) -> ImageData:
    """A bright disc on a dark, slightly textured background, BGRA, u8 (or u16 = v * 257)."""
    yy, xx = np.mgrid[0:H, 0:W]
    inside = (xx - 64) ** 2 + (yy - 48) ** 2 <= 30 ** 2
    img = np.empty((H, W, 4), np.uint8)
    img[...] = (48, 34, 22, 255)
    img[inside] = (170, 214, 236, 255)
    img[..., 1] += (xx % 7).astype(np.uint8)
    if wide:
        return ImageData(W, H, 4, "uint16", "BGRA", (img.astype(np.uint16) * 257).astype("<u2").tobytes())
    return ImageData(W, H, 4, "uint8", "BGRA", img.tobytes())


def make(endpoint: str, image: ImageData = None, **kw) -> tuple:
    host = FakeHost(image or disc_image())
    kw.setdefault("auto_start", False)  # these tests start their daemons themselves (test_launcher: the plugin does)
    settings = Settings(endpoint=endpoint, timeout_s=kw.pop("timeout_s", 120.0), **kw)
    return host, Controller(host, settings)


def reference(endpoint: str, image: ImageData, points, top_n: int = 0, mask: bytes = None, history=()) -> bytes:
    """The daemon's own full-size answer (blocking client) for the same request, after predictions
    for the point lists in ``history`` in the same session (a click-by-click session feeds each
    answer back when points are only added)."""
    with DaemonClient(endpoint, timeout_ms=120000, retries=0) as c:
        s = c.open(image.data, image.width, image.height, image.channels, image.dtype, image.order)
        for earlier in history:
            c.predict(s.session, [Point.make(*p).as_click() for p in earlier])
        m = c.predict(s.session, [Point.make(*p).as_click() for p in points])
        alpha = m.alpha
        if top_n:
            alpha = c.refine(s.session, top_n=top_n).alpha
        if mask is not None:
            alpha = c.refine(s.session, top_n=None, mask=mask, mask_width=image.width, mask_height=image.height).alpha
        return bytes(alpha)


def plane(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8).reshape(H, W)


def test_points_give_mask_and_guide(endpoint: str) -> None:
    host, ctl = make(endpoint, top_n=2)
    ctl.connect()
    ctl.add_point(*FG1)
    ctl.add_point(*BG1)
    assert host.doc_points == [Point(*map(float, FG1[:2]), "fg"), Point(*map(float, BG1[:2]), "bg")]
    ctl.matte()
    assert ctl.run_until_idle(120), ctl.status
    assert host.mask is not None and host.guide is not None, host.messages
    assert host.mask_writes[0] is None  # the full matte replaces everything ...
    assert host.mask_writes[-1] and all(len(b) == 4 for b in host.mask_writes[-1])  # ... refine only patches
    assert host.mask == reference(endpoint, host.image, [FG1, BG1], top_n=2)
    assert ctl.server_info is not None and ctl.server_info.device == "cpu"
    assert host.messages[-1][0] == "info" and "refined" in host.messages[-1][1]
    assert host.busy_changes[0] is True and host.busy_changes[-1] is False
    # the matte and its refine are one undo step of the host (mask twice, guide once inside it)
    assert host.undo_steps == [("ClickMatte Matte", 2, 1)]
    ctl.close()


def test_editor_undo_of_a_matte_sets_it_aside_until_redo(endpoint: str) -> None:
    """While the editor's undo shows an earlier mask, Refine selection predicts afresh (a full write) and the
    mask is not fed back; once redo brings the last matte back, Refine only touches the selection."""
    host, ctl = make(endpoint, top_n=0)
    ctl.add_point(*FG1)
    ctl.add_point(*BG1)
    ctl.matte()
    assert ctl.run_until_idle(120), ctl.status
    host.selection = np.pad(np.full((16, 16), 255, np.uint8), ((40, 40), (56, 56))).tobytes()
    host.undo_events = ["other"]  # Ctrl+Z put the mask from before the Matte back
    ctl.tick()
    assert ctl._mask_points is None and ctl.alpha is None
    host.undo_events = ["latest"]  # Ctrl+Shift+Z: the matte is back
    ctl.tick()
    assert ctl._mask_points == ctl.points and ctl.alpha == host.mask
    n = len(host.mask_writes)
    ctl.refine_selection()
    assert ctl.run_until_idle(120), ctl.status
    assert all(b is not None for b in host.mask_writes[n:])  # only the selection's patches
    host.undo_events = ["other"]
    ctl.tick()
    n = len(host.mask_writes)
    ctl.refine_selection()
    assert ctl.run_until_idle(120), ctl.status
    assert host.mask_writes[n] is None  # the matte was set aside: predicted afresh first
    assert [s[0] for s in host.undo_steps] == ["ClickMatte Matte", "ClickMatte Refine", "ClickMatte Refine"]
    ctl.close()


def test_16_bit_image(endpoint: str) -> None:
    img = disc_image(wide=True)
    host, ctl = make(endpoint, image=img, top_n=0)
    ctl.add_point(*FG1)
    ctl.matte()
    assert ctl.run_until_idle(120), ctl.status
    assert host.mask == reference(endpoint, img, [FG1])
    ctl.close()


def test_live_preview_drops_outdated_replies(endpoint: str) -> None:
    host, ctl = make(endpoint, live=True, preview_size=64)
    ctl.add_point(*FG1)  # starts a preview job at once
    ctl.add_point(*BG1)  # points change before its reply: that reply must be dropped
    assert ctl.run_until_idle(120), ctl.status
    assert len(host.mask_writes) == 1 and host.mask_writes[0] is None
    assert len(host.mask) == W * H  # the preview was scaled up to the image size
    assert host.undo_steps == [] and host.mask_points is None  # previews are no undo step and no full matte
    assert "preview" in ctl.status and "2 point" in ctl.status
    # the full matte of the same points afterwards is written in full; previews leave the session's
    # matte and click chain alone, so it equals a fresh session's answer to [FG1, BG1]
    ctl.matte(top_n=0)
    assert ctl.run_until_idle(120)
    assert host.mask == reference(endpoint, host.image, [FG1, BG1])
    ctl.close()


def test_undo_redo_and_click_toggle(endpoint: str) -> None:
    host, ctl = make(endpoint)
    ctl.click(10, 10, "fg")
    ctl.click(50, 50, "bg")
    assert [p.label for p in ctl.points] == ["fg", "bg"]
    ctl.click(50.5, 49.5, "fg", radius=2)  # on an existing point: removes it
    assert [(p.x, p.y) for p in ctl.points] == [(10.0, 10.0)]
    assert ctl.undo() and len(ctl.points) == 2 and host.doc_points == ctl.points
    assert ctl.undo() and len(ctl.points) == 1
    assert ctl.redo() and len(ctl.points) == 2
    assert ctl.undo() and ctl.undo() and ctl.points == [] and not ctl.undo()
    assert host.doc_points == []
    with pytest.raises(ValueError):
        ctl.add_point(1, 2, "maybe")


def test_points_edited_in_the_document_are_adopted(endpoint: str) -> None:
    host, ctl = make(endpoint)
    ctl.add_point(*FG1)
    host.doc_points = [Point(70.0, 40.0, "fg"), Point(5.0, 90.0, "bg")]  # the user moved/drew shapes
    ctl.tick()
    assert ctl.points == host.doc_points
    assert ctl.undo() and ctl.points == [Point(64.0, 48.0, "fg")]
    ctl.tick()  # the host shows what the controller has: nothing to adopt
    assert ctl.points == [Point(64.0, 48.0, "fg")]


def test_refine_selection_changes_only_selected_pixels(endpoint: str) -> None:
    host, ctl = make(endpoint, top_n=0)
    ctl.add_point(*FG1)
    ctl.add_point(*BG1)
    ctl.matte()
    assert ctl.run_until_idle(120)
    before = plane(host.mask).copy()
    sel = np.zeros((H, W), np.uint8)
    sel[20:60, 24:54] = 255
    host.selection = sel.tobytes()
    ctl.refine_selection()
    assert ctl.run_until_idle(120), ctl.status
    after = plane(host.mask)
    assert np.array_equal(after[sel == 0], before[sel == 0])
    assert host.mask == reference(endpoint, host.image, [FG1, BG1], mask=host.selection)
    assert "selection" in ctl.status
    print(f"refine-selection changed {(after != before).sum()} of {(sel > 0).sum()} selected pixels")


def test_refine_selection_without_selection_says_so(endpoint: str) -> None:
    host, ctl = make(endpoint)
    ctl.add_point(*FG1)
    ctl.refine_selection()
    assert not ctl.busy and ctl.status_level == "warning" and "select" in ctl.status


def test_reset_clears_points_and_outputs(endpoint: str) -> None:
    host, ctl = make(endpoint, top_n=0)
    ctl.add_point(*FG1)
    ctl.matte()
    assert ctl.run_until_idle(120) and host.mask is not None
    ctl.reset()
    assert ctl.points == [] and host.doc_points == [] and host.mask is None and host.cleared == 1
    assert ctl.undo() and ctl.points == [Point(64.0, 48.0, "fg")]


def test_host_error_becomes_a_status_line(endpoint: str) -> None:
    host, ctl = make(endpoint)
    host.fail_read = "ClickMatte works on 8- or 16-bit RGB layers"
    ctl.add_point(*FG1)
    ctl.matte()
    assert ctl.run_until_idle(10)
    assert ctl.status_level == "error" and "RGB layers" in ctl.status and host.mask is None


def test_daemon_down_gives_a_status_line_within_the_timeout() -> None:
    dead = free_tcp_endpoint()  # nothing listens there
    host, ctl = make(dead, timeout_s=1.0)
    ctl.add_point(*FG1)
    ctl.matte()
    t0 = time.monotonic()
    assert ctl.run_until_idle(15)
    waited = time.monotonic() - t0
    assert ctl.status_level == "error" and "no answer" in ctl.status and dead in ctl.status
    assert host.mask is None
    print(f"daemon down reported after {waited:.2f} s (timeout 1 s)")
    ctl.tick()  # still usable: no exception, nothing pending
    assert not ctl.busy


def test_slow_daemon_shows_waiting_then_gives_up() -> None:
    """A peer that accepts requests but never answers: the editor keeps running, the status says so."""
    import zmq

    ctx = zmq.Context.instance()
    silent = ctx.socket(zmq.ROUTER)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        ep = f"tcp://127.0.0.1:{port}"
        host, ctl = make(ep, timeout_s=4.5)
        ctl.add_point(*FG1)
        ctl.matte()
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            assert ctl.tick(wait_ms=50)  # returns promptly, still busy
        assert any(lvl == "busy" and "waiting for the daemon" in msg for lvl, msg in host.messages)
        assert ctl.run_until_idle(15)
        assert ctl.status_level == "error" and "no answer" in ctl.status
        assert silent.poll(0)  # the request did reach the peer
        ctl.close()
    finally:
        silent.close(linger=0)


def chained_reference(endpoint: str, image: ImageData, steps, top_n: int) -> bytes:
    """What a daemon that never restarted answers: one session, each point list predicted (the last answer
    fed back, ``prev_alpha`` "auto") and refined in its ``top_n`` most uncertain patches, in turn."""
    with DaemonClient(endpoint, timeout_ms=120000, retries=0) as c:
        s = c.open(image.data, image.width, image.height, image.channels, image.dtype, image.order)
        for pts in steps:
            alpha = c.predict(s.session, [Point.make(*p).as_click() for p in pts]).alpha
            if top_n:
                alpha = c.refine(s.session, top_n=top_n).alpha
        return bytes(alpha)


@pytest.mark.parametrize("who_knows", ["controller", "document"])
def test_daemon_restart_gives_the_same_matte(tmp_path, who_knows: str) -> None:
    """The daemon forgets the session (restart): the controller opens the image again by itself, and when
    points were only added it sends the host's mask as the previous alpha, so the matte equals the one a
    daemon that never restarted gives. ``document``: a new controller after the restart (a reopened editor),
    the mask's points read from the document (``read_mask_points``, like GIMP's mask parasite)."""
    ep = free_tcp_endpoint()
    args = ["--device", "cpu"]
    proc, c = start_daemon(ep, args, str(tmp_path / "d1.log"), startup_timeout_s=300)
    c.disconnect()
    host, ctl = make(ep, top_n=2)
    host.keeps_mask_points = who_knows == "document"
    try:
        ctl.add_point(*FG1)
        ctl.matte()
        assert ctl.run_until_idle(120) and host.mask is not None
        first_session = ctl.session
        stop_daemon(proc)
        t0 = time.monotonic()
        proc, c = start_daemon(ep, args, str(tmp_path / "d2.log"), startup_timeout_s=300)
        c.disconnect()
        if who_knows == "document":
            ctl.close()
            ctl = Controller(host, ctl.settings)
            ctl.sync_points()  # the new controller adopts the document's points
        ctl.add_point(*BG1)
        ctl.matte()
        assert ctl.run_until_idle(120), ctl.status
        print(f"restart + matte: {time.monotonic() - t0:.1f} s")
        assert ctl.status_level == "info" and ctl.session and ctl.session != first_session
        chained = chained_reference(ep, host.image, [[FG1], [FG1, BG1]], top_n=2)
        fresh = chained_reference(ep, host.image, [[FG1, BG1]], top_n=2)
        got, want = plane(host.mask).astype(int), plane(chained).astype(int)
        print(f"after the restart vs never restarted: max |diff| {np.abs(got - want).max()}; "
              f"vs a fresh session: max |diff| {np.abs(got - plane(fresh).astype(int)).max()}")
        assert host.mask == chained
        assert host.mask != fresh  # the previous alpha matters: without it the answer differs
    finally:
        ctl.close()
        stop_daemon(proc)


def noise_image() -> ImageData:
    """Texture everywhere and no clear object: the daemon's matte of it is soft all over."""
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    img[..., 3] = 255
    return ImageData(W, H, 4, "uint8", "BGRA", img.tobytes())


def test_refine_top_that_refines_nothing_says_why(endpoint: str) -> None:
    image = noise_image()
    with DaemonClient(endpoint, timeout_ms=120000, retries=0) as c:  # precondition: the daemon picks no patch here
        s = c.open(image.data, W, H, 4, "uint8", "BGRA")
        c.predict(s.session, [Point.make(*FG1).as_click(), Point.make(*BG1).as_click()])
        assert c.refine(s.session, top_n=2).patches == [], "this picture no longer gives a patch-free refine"
    host, ctl = make(endpoint, image=image, top_n=0)
    ctl.connect()
    ctl.add_point(*FG1)
    ctl.add_point(*BG1)
    ctl.matte()
    assert ctl.run_until_idle(120), ctl.status
    before = host.mask
    ctl.refine_top(2)
    assert ctl.run_until_idle(120), ctl.status
    level, text = host.messages[-1]
    assert level == "info" and "nothing refined" in text and "Refine selection" in text
    assert host.mask == before  # the mask is untouched
    ctl.close()
