"""The GIMP plug-in's blocking actions (``plugin/gimp/actions.py``) over the in-memory host, against a
real daemon process (real model, CPU). Runs without GIMP; tests/editors/test_gimp.py runs the same
actions inside a real GIMP.

The model may be untrained: results are compared with the daemon's own answer to the same request.
"""
from __future__ import annotations

import sys
import time
from typing import Iterator, Optional

import numpy as np
import pytest

from clickmatte.backend.embedded import free_tcp_endpoint
from clickmatte.plugin.client import DaemonClient
from clickmatte.plugin.gimp.actions import ActionError, make_client, run_action, selection_bbox
from clickmatte.plugin.host import HostError, ImageData, Point
from clickmatte.plugin.settings import Settings

from fake_host import FakeHost

W, H = 128, 96
POINTS = [Point(64.0, 48.0, "fg"), Point(58.0, 44.0, "fg"), Point(8.0, 8.0, "bg")]
SEL_BOX = (24, 16, 40, 32)


def disc_rgb() -> ImageData:
    """What the GIMP adapter sends: RGB u8 of a bright disc on a dark, slightly textured background."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.empty((H, W, 3), np.uint8)
    img[...] = (22, 34, 48)
    img[(xx - 64) ** 2 + (yy - 48) ** 2 <= 30 ** 2] = (236, 214, 170)
    img[..., 1] += (xx % 7).astype(np.uint8)
    return ImageData(W, H, 3, "uint8", "RGB", img.tobytes())


def box_plane(box) -> bytes:
    sel = np.zeros((H, W), np.uint8)
    x, y, w, h = box
    sel[y : y + h, x : x + w] = 255
    return sel.tobytes()


def plane(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8).reshape(H, W)


@pytest.fixture()
def client(endpoint: str) -> Iterator[DaemonClient]:
    c = make_client(Settings(endpoint=endpoint, timeout_s=120.0))
    try:
        yield c
    finally:
        c.disconnect()


def host_with_points(image: Optional[ImageData] = None) -> FakeHost:
    host = FakeHost(image or disc_rgb())
    host.doc_points = list(POINTS)
    return host


def reference(endpoint: str, top_n: int = 0, mask: Optional[bytes] = None) -> dict:
    img = disc_rgb()
    with DaemonClient(endpoint, timeout_ms=120000, retries=0) as c:
        s = c.open(img.data, W, H, 3, "uint8", "RGB").session
        m = c.predict(s, [p.as_click() for p in POINTS])
        out = {"alpha": plane(m.alpha), "uncertainty": plane(m.uncertainty)}
        if top_n:
            r = c.refine(s, top_n=top_n)
            out.update(refined=plane(r.alpha), patches=[tuple(p) for p in r.patches])
        if mask is not None:
            out["refined"] = plane(c.refine(s, top_n=None, mask=mask, mask_width=W, mask_height=H).alpha)
        return out


def test_matte_writes_the_daemons_alpha_and_guide(endpoint: str, client: DaemonClient) -> None:
    host = host_with_points()
    steps = []
    res = run_action("matte", host, client, top_n=0, progress=lambda f, t: steps.append(f))
    ref = reference(endpoint)
    np.testing.assert_array_equal(plane(host.mask), ref["alpha"])
    np.testing.assert_array_equal(plane(host.guide), ref["uncertainty"])
    assert host.mask_writes == [None] and host.guide_writes == 1
    assert res.points == 3 and res.boxes is None and res.guide
    assert steps == sorted(steps) and steps[-1] == 1.0  # the progress bar only moves forward


def test_matte_with_auto_refine_writes_the_refined_alpha_once(endpoint: str, client: DaemonClient) -> None:
    host = host_with_points()
    run_action("matte", host, client, top_n=2, guide=False)
    ref = reference(endpoint, top_n=2)
    np.testing.assert_array_equal(plane(host.mask), ref["refined"])
    assert host.mask_writes == [None] and host.guide_writes == 0


def test_refine_selection_rewrites_only_the_selection(endpoint: str, client: DaemonClient) -> None:
    host = host_with_points()
    host.mask = bytes([255]) * (W * H)  # the user painted the mask white: any change shows
    host.selection = box_plane(SEL_BOX)
    res = run_action("refine-selection", host, client)
    assert res.boxes == [SEL_BOX] and host.mask_writes == [[SEL_BOX]]
    ref = reference(endpoint, mask=host.selection)
    inside = plane(host.selection) > 0
    after = plane(host.mask)
    assert (after[~inside] == 255).all()
    np.testing.assert_array_equal(after[inside], ref["refined"][inside])
    assert host.guide_writes == 0


def test_refine_uncertain_rewrites_only_the_refined_patches(endpoint: str, client: DaemonClient) -> None:
    host = host_with_points()
    host.mask = bytes([255]) * (W * H)
    res = run_action("refine-uncertain", host, client, top_n=2)
    ref = reference(endpoint, top_n=2)
    assert res.boxes == ref["patches"] and 1 <= len(res.boxes) <= 2
    expected = np.full((H, W), 255, np.uint8)
    for x, y, w, h in ref["patches"]:
        expected[y : y + h, x : x + w] = ref["refined"][y : y + h, x : x + w]
    np.testing.assert_array_equal(plane(host.mask), expected)


class RecordingClient(DaemonClient):
    """A real client that also keeps what each ``open`` returned."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint, timeout_ms=120000, retries=0)
        self.opened: list = []

    def open(self, *args, **kwargs):
        result = super().open(*args, **kwargs)
        self.opened.append(result)
        return result


def test_matte_again_with_an_added_point_refines_the_previous_matte(endpoint: str) -> None:
    """Each GIMP call is a new process; the daemon's session carries the previous matte over."""
    img = disc_rgb()
    img = ImageData(W, H, 3, "uint8", "RGB", bytes([img.data[0] ^ 1]) + img.data[1:])  # its own digest
    host = FakeHost(img)
    runs = [POINTS[:2], POINTS, POINTS, POINTS[:1] + POINTS[2:]]  # add a point, same again, remove one
    masks = []
    with RecordingClient(endpoint) as client:
        for points in runs:
            host.doc_points = list(points)
            run_action("matte", host, client, guide=False)
            masks.append(plane(host.mask))
        opened = client.opened
    assert [o.resumed for o in opened] == [False, True, True, True]
    assert len({o.session for o in opened}) == 1

    with DaemonClient(endpoint, timeout_ms=120000, retries=0) as c:
        def fresh(points) -> np.ndarray:
            s = c.open(img.data, W, H, 3, "uint8", "RGB").session
            return plane(c.predict(s, [p.as_click() for p in points]).alpha)

        s = c.open(img.data, W, H, 3, "uint8", "RGB").session
        c.predict(s, [p.as_click() for p in POINTS[:2]])
        chained = plane(c.predict(s, [p.as_click() for p in POINTS]).alpha)
        np.testing.assert_array_equal(masks[0], fresh(POINTS[:2]))
        np.testing.assert_array_equal(masks[1], chained)  # the first matte was fed back
        assert not np.array_equal(masks[1], fresh(POINTS))
        np.testing.assert_array_equal(masks[2], masks[1])  # the same points: the same answer
        np.testing.assert_array_equal(masks[3], fresh(runs[3]))  # a point removed: afresh


def test_matte_after_a_daemon_restart_feeds_the_documents_mask_back(tmp_path) -> None:
    """The mask's tag holds its matte's points; with points only added, the mask goes to the daemon as
    the previous alpha: after a restart the matte equals the one a daemon that never restarted gives."""
    from clickmatte.backend.embedded import start_daemon, stop_daemon

    ep = free_tcp_endpoint()
    proc, c = start_daemon(ep, ["--device", "cpu"], str(tmp_path / "d1.log"), startup_timeout_s=300)
    c.disconnect()
    host = FakeHost(disc_rgb())
    host.keeps_mask_points = True  # like the GIMP adapter's mask parasite
    try:
        host.doc_points = list(POINTS[:2])
        with make_client(Settings(endpoint=ep, timeout_s=120.0)) as client:
            run_action("matte", host, client, top_n=2, guide=False)
        assert host.mask_points == POINTS[:2]
        stop_daemon(proc)
        proc, c = start_daemon(ep, ["--device", "cpu"], str(tmp_path / "d2.log"), startup_timeout_s=300)
        c.disconnect()
        host.doc_points = list(POINTS)
        with make_client(Settings(endpoint=ep, timeout_s=120.0)) as client:
            run_action("matte", host, client, top_n=2, guide=False)
        with DaemonClient(ep, timeout_ms=120000, retries=0) as d:
            def chain(steps) -> np.ndarray:
                s = d.open(host.image.data, W, H, 3, "uint8", "RGB").session
                for pts in steps:
                    d.predict(s, [p.as_click() for p in pts])
                    alpha = d.refine(s, top_n=2).alpha
                return plane(alpha)

            never_restarted, fresh = chain([POINTS[:2], POINTS]), chain([POINTS])
        np.testing.assert_array_equal(plane(host.mask), never_restarted)
        assert not np.array_equal(plane(host.mask), fresh)
    finally:
        stop_daemon(proc)


def test_refine_selection_needs_a_selection_inside_the_layer(client: DaemonClient) -> None:
    host = host_with_points()
    with pytest.raises(HostError, match="needs a selection"):
        run_action("refine-selection", host, client)
    host.selection = bytes(W * H)
    with pytest.raises(HostError, match="does not overlap"):
        run_action("refine-selection", host, client)
    assert host.mask is None


def test_missing_daemon_is_a_clear_error_within_seconds() -> None:
    dead = free_tcp_endpoint()
    c = make_client(Settings(endpoint=dead, timeout_s=120.0))
    host = host_with_points()
    t0 = time.monotonic()
    with pytest.raises(ActionError, match=f"No ClickMatte daemon answers at {dead}") as info:
        run_action("matte", host, c)
    c.disconnect()
    assert time.monotonic() - t0 < 15  # the hello timeout (5 s), not the 120 s job timeout
    assert "clickmatte-daemon --bind" in str(info.value)
    assert host.mask is None and host.guide is None


def test_daemon_errors_carry_the_daemons_text(client: DaemonClient) -> None:
    tiny = ImageData(20, 20, 3, "uint8", "RGB", bytes(20 * 20 * 3))  # below the daemon's minimum side
    host = FakeHost(tiny)
    host.doc_points = [Point(5.0, 5.0, "fg")]
    with pytest.raises(ActionError) as info:
        run_action("matte", host, client)
    text = str(info.value)
    assert "The ClickMatte daemon failed to" in text and "[bad_request]" in text and "20" in text
    assert host.mask is None


def test_host_output_check_runs_before_any_daemon_work() -> None:
    class ForeignMaskHost(FakeHost):
        def check_outputs(self) -> None:
            raise HostError("layer already has a mask that ClickMatte did not make")

    host = ForeignMaskHost(disc_rgb())
    host.doc_points = list(POINTS)
    c = make_client(Settings(endpoint=free_tcp_endpoint(), timeout_s=60.0))  # nobody there: must not be asked
    t0 = time.monotonic()
    with pytest.raises(HostError, match="did not make"):
        run_action("matte", host, c)
    c.disconnect()
    assert time.monotonic() - t0 < 2


def test_bad_arguments_are_value_errors(client: DaemonClient) -> None:
    host = host_with_points()
    with pytest.raises(ValueError, match="action"):
        run_action("sharpen", host, client)
    with pytest.raises(ValueError, match="top_n"):
        run_action("matte", host, client, top_n=-1)
    with pytest.raises(ValueError, match="top_n >= 1"):
        run_action("refine-uncertain", host, client, top_n=0)


def test_no_points_surfaces_the_hosts_message(client: DaemonClient) -> None:
    class NoPoints(FakeHost):
        def read_points(self):
            raise HostError("ClickMatte found no points.")

    host = NoPoints(disc_rgb())
    with pytest.raises(HostError, match="no points"):
        run_action("matte", host, client)
    assert host.mask is None


def test_selection_bbox() -> None:
    assert selection_bbox(box_plane(SEL_BOX), W, H) == SEL_BOX
    assert selection_bbox(bytes(W * H), W, H) is None
    p = bytearray(W * H)
    p[5 * W + 7] = 1
    p[9 * W + 100] = 200
    assert selection_bbox(bytes(p), W, H) == (7, 5, 94, 5)
    with pytest.raises(ValueError):
        selection_bbox(b"\x00" * 3, W, H)


def test_make_client_without_pyzmq_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zmq", None)  # "import zmq" now raises ImportError
    monkeypatch.delitem(sys.modules, "clickmatte.plugin.client", raising=False)
    with pytest.raises(ActionError, match="pyzmq is not importable") as info:
        make_client(Settings())
    assert "clickmatte-install gimp" in str(info.value) and "python3-zmq" in str(info.value)


def test_make_client_needs_both_curve_keys() -> None:
    s = Settings(server_public_key="x" * 40)
    with pytest.raises(ActionError, match="client key"):
        make_client(s)


# -- the daemon started by Matte (GIMP: blocking, a fresh plug-in process per call) --------------------
def test_matte_starts_the_local_daemon_and_leaves_it_for_the_next_call(tmp_path) -> None:
    import re

    from clickmatte.installers.plugin_files import daemon_command
    from clickmatte.plugin import launcher as L
    from clickmatte.plugin.gimp.actions import ensure_daemon

    ep = free_tcp_endpoint()
    settings = Settings(endpoint=ep, daemon_path=daemon_command()[0], timeout_s=5.0)
    launcher = L.Launcher(log_dir=tmp_path, extra_args=["--device", "cpu"])
    texts = []
    try:
        daemon = ensure_daemon(settings, progress=lambda f, t: texts.append(t), launcher=launcher)
        assert daemon is not None and daemon.ready and launcher.get(ep) is daemon
        counts = [int(re.fullmatch(r"starting the model \.\.\. (\d+) s", t).group(1)) for t in texts]
        assert counts and counts == sorted(counts) and counts[-1] >= 1
        host = host_with_points()
        c = make_client(settings)
        run_action("matte", host, c)
        c.disconnect()
        assert host.mask == bytes(reference(ep)["alpha"].tobytes())
        # the next call (another plug-in process) finds it listening: nothing is started again
        assert ensure_daemon(settings, launcher=L.Launcher(log_dir=tmp_path)) is None
        print(f"GIMP path: model ready after {daemon.ready_s:.1f} s")
    finally:
        launcher.shutdown()


def test_matte_with_a_broken_daemon_program_says_so(tmp_path) -> None:
    from clickmatte.plugin import launcher as L
    from clickmatte.plugin.gimp.actions import ensure_daemon

    ep = free_tcp_endpoint()
    missing = tmp_path / "nowhere" / "clickmatte-daemon"
    with pytest.raises(ActionError, match="does not exist") as info:
        ensure_daemon(Settings(endpoint=ep, daemon_path=str(missing)), launcher=L.Launcher(log_dir=tmp_path))
    assert str(missing) in str(info.value) and ep in str(info.value)
    failing = tmp_path / "failing-daemon"
    failing.write_text("#!/bin/sh\necho 'no CUDA here' >&2\nexit 2\n")
    failing.chmod(0o755)
    with pytest.raises(ActionError, match="exited with status 2.*no CUDA here"):
        ensure_daemon(Settings(endpoint=ep, daemon_path=str(failing)), launcher=L.Launcher(log_dir=tmp_path))
    # off, or remote: nothing is started
    assert ensure_daemon(Settings(endpoint=ep, daemon_path=str(failing), auto_start=False)) is None
    assert ensure_daemon(Settings(endpoint="tcp://192.0.2.1:5557", daemon_path=str(failing))) is None
