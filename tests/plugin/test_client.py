"""DaemonClient against a real daemon subprocess (blocking and non-blocking styles, timeouts)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import zmq

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon
from clickmatte.plugin.client import DaemonClient, DaemonError, DaemonTimeout, MatteResult, OpenResult, ServerInfo
from clickmatte.plugin.protocol import ProtocolError, image_digest

W, H = 72, 56


def bgra_picture(w: int = W, h: int = H, seed: int = 0) -> bytes:
    """BGRA bytes (Krita's layout) without numpy: a bright rectangle on a dark background."""
    out = bytearray()
    for y in range(h):
        for x in range(w):
            inside = w // 4 <= x < 3 * w // 4 and h // 4 <= y < 3 * h // 4
            v = (200 + (x * 7 + y * 3 + seed) % 50) if inside else ((x * 13 + y * 5 + seed) % 40)
            out += bytes((v, (v + 10) % 256, (v + 20) % 256, 255))
    return bytes(out)


@pytest.fixture(scope="module")
def endpoint():
    with tempfile.TemporaryDirectory(prefix="cm-client-") as tmp:
        ep = f"ipc://{tmp}/d.sock" if zmq.has("ipc") else free_tcp_endpoint()
        proc, c = start_daemon(ep, ["--device", "cpu", "--max-sessions", "4"], str(Path(tmp) / "d.log"),
                               startup_timeout_s=240)
        c.disconnect()
        try:
            yield ep
        finally:
            stop_daemon(proc)


@pytest.fixture
def client(endpoint):
    c = DaemonClient(endpoint, timeout_ms=60000, retries=0, client_name="test")
    yield c
    c.disconnect()


CLICKS = [{"x": W // 2, "y": H // 2, "label": "fg"}, {"x": 1, "y": 1, "label": "bg"}]


def test_blocking_api_round_trip(client):
    info = client.hello()
    assert isinstance(info, ServerInfo) and info.protocol == "1.4" and "max_image_pixels" in info.limits
    data = bgra_picture()
    s = client.open(data, W, H)  # defaults: 4 channels, uint8, BGRA
    assert isinstance(s, OpenResult) and (s.width, s.height) == (W, H)
    assert s.digest == image_digest(data, W, H, 4, "uint8", "BGRA")
    m = client.predict(s.session, CLICKS)
    assert isinstance(m, MatteResult) and m.dtype == "uint8" and isinstance(m.alpha, bytes)
    assert len(m.alpha) == W * H and len(m.uncertainty) == W * H and m.uncertainty_scale == 0.25
    r = client.refine(s.session, top_n=1, regions=[[0, 0, 8, 8]], alpha_dtype="uint16", uncertainty=True)
    assert r.dtype == "uint16" and len(r.alpha) == 2 * W * H and len(r.patches) == 1
    assert client.close(s.session) is True


def test_error_replies_raise_daemon_error_with_code_and_message(client):
    with pytest.raises(DaemonError) as ei:
        client.predict("no-such-session", CLICKS)
    assert ei.value.code == "unknown_session" and "unknown session" in ei.value.message
    # malformed requests never leave the client
    with pytest.raises(ProtocolError):
        client.predict("s", [{"x": 1, "y": 1, "label": "maybe"}])
    with pytest.raises(ProtocolError):
        client.open(b"short", W, H)


def test_non_blocking_send_and_poll(client):
    assert client.poll(0) is None  # nothing pending: returns at once
    rid = client.send_open(bgra_picture(seed=1), W, H)
    assert rid in client.pending
    reply = None
    deadline = time.monotonic() + 60
    while reply is None and time.monotonic() < deadline:
        reply = client.poll(50)  # what an editor's UI timer would do
    assert reply is not None and reply.id == rid and reply.ok and reply.request_op == "open"
    session = reply.result().session
    pid = client.send_predict(session, CLICKS, preview=36)
    hid = client.send_hello()
    got = {}
    while len(got) < 2:
        r = client.poll(60000)
        assert r is not None
        got[r.id] = r
    m = got[pid].result()
    assert (m.width, m.height, m.full_width, m.full_height) == (36, 28, W, H)
    assert got[hid].result().protocol == "1.4"
    assert client.pending == []


def test_need_pixels_reply_in_the_non_blocking_style(client):
    digest = image_digest(bgra_picture(seed=99), W, H, 4, "uint8", "BGRA")
    client.send_open(digest=digest)
    r = client.poll(60000)
    assert r.need_pixels and r.ok
    with pytest.raises(DaemonError) as ei:
        r.result()
    assert ei.value.code == "need_pixels"


def test_blocking_call_while_non_blocking_requests_are_in_flight(client):
    s = client.open(bgra_picture(seed=2), W, H).session
    pid = client.send_predict(s, CLICKS)
    info = client.hello()  # its reply arrives after the predict's; the predict's is kept for poll
    assert info.protocol == "1.4"
    r = client.poll(60000)
    assert r is not None and r.id == pid and r.result().session == s
    client.close(s)


def test_timeouts_never_hang():
    nobody = free_tcp_endpoint()
    c = DaemonClient(nobody, timeout_ms=300, retries=2)
    try:
        t0 = time.monotonic()
        with pytest.raises(DaemonTimeout) as ei:
            c.hello()
        elapsed = time.monotonic() - t0
        assert 0.8 <= elapsed < 10  # three tries of 300 ms, each on a fresh socket
        assert "hello" in str(ei.value) and ei.value.code == "timeout"
        assert isinstance(ei.value, TimeoutError)
        rid = c.send_predict("s", CLICKS)
        r = c.poll(5000)
        assert r is not None and r.id == rid and isinstance(r.error, DaemonTimeout) and not r.ok
        with pytest.raises(DaemonTimeout):
            r.result()
        assert c.poll(0) is None and c.pending == []
    finally:
        c.disconnect()


def test_constructor_checks():
    with pytest.raises(ValueError):
        DaemonClient("tcp://127.0.0.1:1", timeout_ms=0)
    with pytest.raises(ValueError):
        DaemonClient("tcp://127.0.0.1:1", server_key="x" * 40)  # CURVE needs both keys
    with DaemonClient("tcp://127.0.0.1:1", timeout_ms=100, retries=0) as c:
        assert c.endpoint == "tcp://127.0.0.1:1"


def test_a_daemon_of_another_major_version_is_a_clear_error():
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    c = DaemonClient(f"tcp://127.0.0.1:{port}", timeout_ms=10000, retries=0)
    try:
        rid = c.send_hello()
        assert router.poll(10000)
        ident, magic, header = router.recv_multipart()
        assert magic == b"clickmatte/1" and b'"hello"' in header
        router.send_multipart([ident, b"clickmatte/2", b'{"id": "x", "op": "hello"}'])
        r = c.poll(10000)
        assert r is not None and r.id == rid and r.error is not None
        assert r.error.code == "unsupported_version" and "clickmatte/2" in r.error.message
    finally:
        c.disconnect()
        router.close(0)
        ctx.term()
