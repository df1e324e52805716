"""Every op round-trips through a real daemon process, over TCP loopback and over ipc://."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from clickmatte.model.inference.config import FLAG_HELP, PredictorConfig
from clickmatte.plugin.client import DaemonClient, DaemonError
from clickmatte.plugin.protocol import ProtocolError, image_digest

CLICKS = [{"x": 48, "y": 32, "label": "fg"}, {"x": 3, "y": 3, "label": "bg"}]


def alpha_of(m) -> np.ndarray:
    dt = np.uint8 if m.dtype == "uint8" else np.dtype("<u2")
    return np.frombuffer(m.alpha, dt).reshape(m.height, m.width)


def help_defaults(argv: list[str]) -> dict[str, str]:
    """Setting -> the text in ``(default: ...)`` of its flag's help, from ``python -m <module> --help``."""
    out = subprocess.run([sys.executable, "-m", *argv, "--help"], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "200", "PATH": ""}).stdout
    out = re.sub(r"\n\s{10,}", " ", out)  # help texts wrapped onto continuation lines
    found = {}
    for name in FLAG_HELP:
        flag = ("--no-" if isinstance(getattr(PredictorConfig(), name), bool) else "--") + name.replace("_", "-")
        m = re.search(rf"^\s*{flag}\b.*?\(default: ([^)]*)\)", out, re.M)
        assert m, (argv, flag)
        found[name] = m.group(1)
    return found


@pytest.fixture
def dclient(daemon):
    c = DaemonClient(daemon.endpoint, timeout_ms=60000, retries=0)
    yield c
    c.disconnect()


def test_hello_reports_versions_device_model_limits(dclient):
    info = dclient.hello()
    assert info.protocol == "1.4"
    assert info.server.startswith("clickmatte")
    assert info.device == "cpu"
    assert info.model["loaded"] is True and info.model["name"].startswith("clickmatte")
    defaults = PredictorConfig().as_dict()
    assert {k: info.model[k] for k in defaults} == defaults  # the daemon runs with the library's defaults
    # and says so as its --help and clickmatte-eval --help do
    shown = {n: ("on" if v else "off") if isinstance(v, bool) else str(v) for n, v in info.model.items()
             if n in FLAG_HELP}
    assert help_defaults(["clickmatte.backend.daemon"]) == shown == help_defaults(["clickmatte.model.evaluate"])
    assert info.limits["max_image_pixels"] == 50000
    assert info.limits["max_sessions"] == 6
    assert info.limits["min_side"] == 32


def test_open_predict_refine_close_round_trip(dclient, make_image):
    rgb = make_image(96, 64)
    s = dclient.open(rgb.tobytes(), 96, 64, 3, "uint8", "RGB")
    assert (s.width, s.height) == (96, 64)
    assert len(s.session) >= 32  # secrets.token_urlsafe(24)
    m = dclient.predict(s.session, CLICKS)
    assert (m.width, m.height, m.full_width, m.full_height, m.dtype) == (96, 64, 96, 64, "uint8")
    assert len(m.alpha) == 96 * 64 and m.uncertainty is not None and len(m.uncertainty) == 96 * 64
    assert m.patches == []
    # the most uncertain patches: on an image no larger than the working size only mostly-sure ones
    # (--refine-max-soft), so this synthetic picture may get fewer than asked, or none
    r = dclient.refine(s.session, top_n=2)
    assert len(r.patches) <= 2
    before, after = alpha_of(m), alpha_of(r)
    limit = dclient.hello().model["refine_max_soft"]
    for x, y, w, h in r.patches:
        assert 0 <= x and 0 <= y and x + w <= 96 and y + h <= 64
        window = before[y:y + h, x:x + w].astype(np.float32) / 255.0
        assert ((window > 0.05) & (window < 0.95)).mean() <= limit + 0.01  # (uint8 rounding)
    assert r.uncertainty is None
    # outside the refined patches alpha is unchanged
    outside = np.ones((64, 96), bool)
    for x, y, w, h in r.patches:
        outside[y:y + h, x:x + w] = False
    assert np.array_equal(before[outside], after[outside])
    # a region is refined whatever its matte: the patches cover it
    rr = dclient.refine(s.session, top_n=None, regions=[[10, 8, 30, 20]])
    covered = np.zeros((64, 96), bool)
    for x, y, w, h in rr.patches:
        covered[y:y + h, x:x + w] = True
    assert covered[8:28, 10:40].all()
    assert dclient.close(s.session) is True
    assert dclient.close(s.session) is False
    with pytest.raises(DaemonError) as ei:
        dclient.predict(s.session, CLICKS)
    assert ei.value.code == "unknown_session"


def test_same_pixels_in_every_wire_format_give_the_same_alpha(dclient, make_image):
    rgb = make_image(80, 60, seed=3)
    a = np.full((60, 80, 1), 255, np.uint8)
    formats = {
        "RGB8": (rgb, 3, "uint8", "RGB"),
        "BGR8": (rgb[:, :, ::-1], 3, "uint8", "BGR"),
        "BGRA8": (np.concatenate([rgb[:, :, ::-1], a], 2), 4, "uint8", "BGRA"),
        "RGBA16": (np.concatenate([rgb, a], 2).astype("<u2") * 257, 4, "uint16", "RGBA"),
        "BGR16": (rgb[:, :, ::-1].astype("<u2") * 257, 3, "uint16", "BGR"),
    }
    alphas = {}
    for name, (arr, ch, dt, order) in formats.items():
        s = dclient.open(np.ascontiguousarray(arr).tobytes(), 80, 60, ch, dt, order)
        alphas[name] = alpha_of(dclient.predict(s.session, CLICKS[:1]))
        dclient.close(s.session)
    ref = alphas["RGB8"]
    for name, al in alphas.items():
        assert np.array_equal(al, ref), name


def test_open_by_digest_skips_pixels(dclient, make_image):
    rgb = make_image(64, 48, seed=11)
    data = rgb.tobytes()
    digest = image_digest(data, 64, 48, 3, "uint8", "RGB")
    rid = dclient.send_open(digest=digest)
    reply = dclient.poll(60000)
    assert reply is not None and reply.id == rid and reply.need_pixels and reply.header["digest"] == digest
    first = dclient.open(data, 64, 48, 3, "uint8", "RGB")
    assert first.cached is False and first.digest == digest
    again = dclient.open(data, 64, 48, 3, "uint8", "RGB")  # digest first: no pixels sent
    assert again.cached is True and again.session != first.session
    rid = dclient.send_open(digest=digest)
    reply = dclient.poll(60000)
    assert reply.op == "open" and reply.result().cached is True


def test_digest_that_does_not_match_the_pixels_is_refused(dclient, make_image):
    rgb = make_image(64, 48, seed=12)
    wrong = image_digest(b"other", 64, 48, 3, "uint8", "RGB")
    dclient.send_open(rgb.tobytes(), 64, 48, 3, "uint8", "RGB", digest=wrong)
    reply = dclient.poll(60000)
    assert reply.error is not None and reply.error.code == "bad_request" and "digest" in reply.error.message


def test_preview_and_uint16_output(dclient, make_image):
    s = dclient.open(make_image(200, 150).tobytes(), 200, 150, 3, "uint8", "RGB")
    full = dclient.predict(s.session, CLICKS, alpha_dtype="uint16")
    assert (full.width, full.height, full.dtype) == (200, 150, "uint16")
    assert len(full.alpha) == 200 * 150 * 2
    pv = dclient.predict(s.session, CLICKS, preview=50, uncertainty=False)
    assert (pv.width, pv.height, pv.full_width, pv.full_height) == (50, 38, 200, 150)
    assert pv.uncertainty is None and len(pv.alpha) == 50 * 38
    a16 = alpha_of(full).astype(np.float64) / 65535
    a8 = alpha_of(dclient.predict(s.session, CLICKS)).astype(np.float64) / 255
    assert np.abs(a16 - a8).max() <= 0.5 / 255 + 1e-6
    dclient.close(s.session)


def test_refine_regions_and_mask(dclient, make_image):
    w, h = 160, 120
    s = dclient.open(make_image(w, h, seed=5).tobytes(), w, h, 3, "uint8", "RGB")
    base = alpha_of(dclient.predict(s.session, CLICKS))
    r = dclient.refine(s.session, top_n=None, regions=[(100, 70, 10, 10)])
    covered = np.zeros((h, w), bool)
    for x, y, bw, bh in r.patches:
        covered[y:y + bh, x:x + bw] = True
    assert r.patches and covered[70:80, 100:110].all()
    # a selection mask: only selected pixels may change
    base = alpha_of(dclient.predict(s.session, CLICKS))
    mask = np.zeros((h, w), np.uint8)
    mask[10:40, 20:70] = 255
    r = dclient.refine(s.session, top_n=None, mask=mask.tobytes(), mask_width=w, mask_height=h)
    assert r.patches
    after = alpha_of(r)
    assert np.array_equal(after[mask == 0], base[mask == 0])
    # an empty mask changes nothing
    r = dclient.refine(s.session, top_n=None, mask=bytes(w * h), mask_width=w, mask_height=h)
    assert r.patches == [] and np.array_equal(alpha_of(r), after)
    with pytest.raises(DaemonError) as ei:
        dclient.refine(s.session, mask=bytes(10 * 10), mask_width=10, mask_height=10)
    assert ei.value.code == "bad_request" and "mask" in ei.value.message
    dclient.close(s.session)


def test_refine_before_predict_and_bad_clicks_are_errors(dclient, make_image):
    s = dclient.open(make_image(64, 48, seed=9).tobytes(), 64, 48, 3, "uint8", "RGB")
    with pytest.raises(DaemonError) as ei:
        dclient.refine(s.session)
    assert ei.value.code == "bad_request" and "predict" in ei.value.message
    with pytest.raises(DaemonError) as ei:
        dclient.predict(s.session, [{"x": 64, "y": 0, "label": "fg"}])
    assert ei.value.code == "bad_request" and "outside" in ei.value.message
    dclient.close(s.session)


def test_limits_give_too_large_and_bad_request(dclient, make_image):
    big = make_image(300, 200)  # 60000 px > --max-image-mp 0.05
    with pytest.raises(DaemonError) as ei:
        dclient.open(big.tobytes(), 300, 200, 3, "uint8", "RGB")
    assert ei.value.code == "too_large"
    tiny = make_image(20, 20)  # below the model's minimum side
    with pytest.raises(DaemonError) as ei:
        dclient.open(tiny.tobytes(), 20, 20, 3, "uint8", "RGB")
    assert ei.value.code == "bad_request" and "32" in ei.value.message


def test_sessions_are_evicted_lru_beyond_max_sessions(dclient, make_image):
    rgb = make_image(64, 48, seed=21)
    sessions = [dclient.open(rgb.tobytes(), 64, 48, 3, "uint8", "RGB").session for _ in range(7)]
    with pytest.raises(DaemonError) as ei:
        dclient.predict(sessions[0], CLICKS[:1])
    assert ei.value.code == "unknown_session"
    m = dclient.predict(sessions[-1], CLICKS[:1])
    assert m.width == 64
    for s in sessions:
        dclient.close(s)


def test_prev_alpha_is_accepted(dclient, make_image):
    s = dclient.open(make_image(64, 48, seed=2).tobytes(), 64, 48, 3, "uint8", "RGB")
    dclient.predict(s.session, CLICKS[:1])
    m = dclient.predict(s.session, CLICKS, prev_alpha=True)
    assert m.width == 64
    dclient.close(s.session)


def test_prev_alpha_auto_feeds_back_only_when_clicks_are_added(dclient, make_image):
    """The default ("auto"): click by click the last answer goes back in (as the net was trained);
    the same clicks get the same answer again; moved or removed clicks start afresh."""
    rgb = make_image(64, 48, seed=5)

    def session():
        return dclient.open(rgb.tobytes(), 64, 48, 3, "uint8", "RGB").session

    a = session()
    dclient.predict(a, CLICKS[:1])
    chained = alpha_of(dclient.predict(a, CLICKS))  # prev_alpha defaults to "auto"
    b = session()
    dclient.predict(b, CLICKS[:1], prev_alpha=False)
    explicit = alpha_of(dclient.predict(b, CLICKS, prev_alpha=True))
    fresh = alpha_of(dclient.predict(session(), CLICKS, prev_alpha=False))
    assert np.array_equal(chained, explicit)
    assert not np.array_equal(chained, fresh)  # the fed-back alpha changes the answer
    # the same clicks again: the same answer (not the answer fed back into itself)
    assert np.array_equal(alpha_of(dclient.predict(a, CLICKS)), chained)
    # a click removed: not an extension of the last clicks, so no previous alpha
    alone = alpha_of(dclient.predict(a, CLICKS[1:]))
    assert np.array_equal(alone, alpha_of(dclient.predict(session(), CLICKS[1:], prev_alpha=False)))
    # the order of the clicks does not matter: a point added anywhere in the list chains
    c = session()
    dclient.predict(c, CLICKS[1:])
    first_listed = alpha_of(dclient.predict(c, CLICKS[:1] + CLICKS[1:]))
    d = session()
    dclient.predict(d, CLICKS[1:], prev_alpha=False)
    assert np.array_equal(first_listed, alpha_of(dclient.predict(d, CLICKS, prev_alpha=True)))
    assert np.array_equal(alpha_of(dclient.predict(c, CLICKS[::-1])), first_listed)  # reordered: the same clicks
    with pytest.raises(ProtocolError, match="prev_alpha"):  # refused before sending (the daemon too:
        dclient.predict(a, CLICKS, prev_alpha="yes")  # test_daemon_malformed)


def test_prev_alpha_buffer_stands_in_for_the_sessions_last_alpha(dclient, make_image):
    """Protocol 1.4: the editor's own mask sent as ``prev_alpha`` gives, in a brand-new session, the answer
    the session chain gives; a wrong size or a buffer without ``prev_alpha: true`` is refused."""
    rgb = make_image(64, 48, seed=7)

    def session():
        return dclient.open(rgb.tobytes(), 64, 48, 3, "uint8", "RGB").session

    a = session()
    first = dclient.predict(a, CLICKS[:1]).alpha
    chained = alpha_of(dclient.predict(a, CLICKS))  # "auto": the session's last alpha goes back in
    b = session()  # as after a daemon restart: a session that never saw CLICKS[:1]
    given = alpha_of(dclient.predict(b, CLICKS, prev_mask=first, mask_width=64, mask_height=48))
    fresh = alpha_of(dclient.predict(session(), CLICKS, prev_alpha=False))
    assert np.array_equal(given, chained)
    assert not np.array_equal(given, fresh)
    # the given alpha is kept as this prediction's input: the same clicks again, the same answer
    assert np.array_equal(alpha_of(dclient.predict(b, CLICKS)), given)
    with pytest.raises(DaemonError, match="prev_alpha is 32x48"):
        dclient.predict(b, CLICKS, prev_mask=bytes(32 * 48), mask_width=32, mask_height=48)
    header, bufs = dclient._predict_header(b, CLICKS, None, "uint8", True, "auto", first, 64, 48)
    header["prev_alpha"] = "auto"
    with pytest.raises(ProtocolError, match="prev_alpha"):  # refused before sending
        dclient.call(header, bufs)


def test_open_with_resume_returns_the_images_most_recently_used_session(dclient, make_image):
    rgb = make_image(64, 48, seed=31)

    def open_(**kw):
        return dclient.open(rgb.tobytes(), 64, 48, 3, "uint8", "RGB", **kw)

    first = open_(resume=True)  # nothing to resume yet: a new session
    assert first.resumed is False and first.cached is False
    again = open_(resume=True)
    assert again.session == first.session and again.resumed is True and again.cached is True
    plain = open_()  # without resume: a new session, as before protocol 1.2
    assert plain.session != first.session and plain.resumed is False
    assert open_(resume=True).session == plain.session  # now the most recently used one
    dclient.predict(first.session, CLICKS[:1])
    assert open_(resume=True).session == first.session
    for s in (first.session, plain.session):
        dclient.close(s)


def test_resumed_session_feeds_the_previous_alpha_when_clicks_are_added(dclient, make_image):
    """What a GIMP call after another sees: the session (and its last matte) of the call before."""
    rgb = make_image(64, 48, seed=32)

    def open_(**kw):
        return dclient.open(rgb.tobytes(), 64, 48, 3, "uint8", "RGB", **kw)

    dclient.predict(open_(resume=True).session, CLICKS[:1])
    later = open_(resume=True)
    assert later.resumed is True
    chained = alpha_of(dclient.predict(later.session, CLICKS))  # prev_alpha "auto"
    assert np.array_equal(alpha_of(dclient.predict(open_(resume=True).session, CLICKS)), chained)  # same clicks
    b = open_().session
    dclient.predict(b, CLICKS[:1], prev_alpha=False)
    explicit = alpha_of(dclient.predict(b, CLICKS, prev_alpha=True))
    fresh = alpha_of(dclient.predict(open_().session, CLICKS, prev_alpha=False))
    assert np.array_equal(chained, explicit)
    assert not np.array_equal(chained, fresh)
    dclient.close(later.session)
    dclient.close(b)


def test_resume_after_close_or_eviction_opens_a_new_session(dclient, make_image):
    rgb, other = make_image(64, 48, seed=33), make_image(64, 48, seed=34)

    def open_(img, **kw):
        return dclient.open(img.tobytes(), 64, 48, 3, "uint8", "RGB", **kw)

    closed = open_(rgb, resume=True).session
    dclient.close(closed)
    kept = open_(rgb, resume=True)
    assert kept.session != closed and kept.resumed is False
    # the daemon keeps 6 sessions (LRU): a resumed session counts as used and outlives older ones
    others = [open_(other).session for _ in range(5)]
    assert open_(rgb, resume=True).session == kept.session  # kept is now the most recent
    others.append(open_(other).session)  # a 7th session: the oldest of the others goes
    with pytest.raises(DaemonError) as ei:
        dclient.predict(others[0], CLICKS[:1])
    assert ei.value.code == "unknown_session"
    others += [open_(other).session for _ in range(5)]  # now kept is the least recently used
    again = open_(rgb, resume=True)
    assert again.session != kept.session and again.resumed is False
    for s in others + [again.session]:
        dclient.close(s)
