"""Client side: DaemonClient against a real ROUTER socket that answers with fuzzed replies.

Every reply op's template (hello, open, need_pixels, predict, refine, close, error) gets 1..3 of its
fields replaced by arbitrary JSON values (or removed). Whatever comes back, the client gives a
result or raises :class:`DaemonError` (code ``bad_reply`` for what it cannot read), never another
exception, and its next request is answered normally. Run count: ``CLICKMATTE_FUZZ_EXAMPLES``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickmatte.plugin.client import ClientError, DaemonClient, DaemonError
from clickmatte.plugin.protocol import MAGIC

from fuzzing import changes_for, fuzz_examples, header_bytes, mutate

W, H = 8, 4
DIGEST = "sha256:" + "ab" * 32


class FakeDaemon:
    """A ROUTER on loopback that the test drives by hand, and a client connected to it."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.client = DaemonClient(f"tcp://127.0.0.1:{port}", timeout_ms=20000, retries=0)

    def answer(self, header_for: Callable[[str], bytes], buffers: List[bytes]) -> None:
        assert self.router.poll(20000), "the client sent nothing"
        ident, _magic, raw = self.router.recv_multipart()[:3]
        import json

        rid = json.loads(raw)["id"]
        self.router.send_multipart([ident, MAGIC, header_for(rid), *buffers])

    def close(self) -> None:
        self.client.disconnect()
        self.router.close(0)
        self.ctx.term()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDaemon]:
    f = FakeDaemon()
    yield f
    f.close()


ALPHA = {"name": "alpha", "width": W, "height": H, "channels": 1, "dtype": "uint8", "order": "A"}
UNC = {"name": "uncertainty", "width": W, "height": H, "channels": 1, "dtype": "uint8", "order": "A"}
MATTE = {"session": "s", "width": W, "height": H, "full_width": W, "full_height": H, "uncertainty_scale": 0.25,
         "timing": {"model_ms": 1.0, "encode_ms": 0.5}, "buffers": [dict(ALPHA), dict(UNC)]}

# request op -> (how to send it, reply templates: (header, buffers))
TEMPLATES: Dict[str, Tuple[Callable[[DaemonClient], str], List[Tuple[Dict[str, Any], List[bytes]]]]] = {
    "hello": (lambda c: c.send_hello(), [
        ({"op": "hello", "protocol": "1.2", "server": "x", "device": "cpu", "model": {"name": "m"},
          "limits": {"max_message_bytes": 1}}, [])]),
    "open": (lambda c: c.send_open(digest=DIGEST), [
        ({"op": "open", "session": "s", "width": W, "height": H, "digest": DIGEST, "cached": True, "resumed": False},
         []),
        ({"op": "need_pixels", "digest": DIGEST}, [])]),
    "predict": (lambda c: c.send_predict("s", [{"x": 1, "y": 1, "label": "fg"}]), [
        (dict(MATTE, op="predict"), [bytes(W * H), bytes(W * H)])]),
    "refine": (lambda c: c.send_refine("s", top_n=2), [
        (dict(MATTE, op="refine", patches=[[0, 0, 4, 4], [4, 0, 4, 4]]), [bytes(W * H), bytes(W * H)])]),
    "close": (lambda c: c.send_close("s"), [({"op": "close", "session": "s", "closed": True}, [])]),
    "status": (lambda c: c.send_status("r-1"), [
        ({"op": "status", "queued": 2, "queued_bytes": 100, "running": {"op": "predict", "elapsed_s": 1.5},
          "uptime_s": 9.0, "request": {"id": "r-1", "state": "queued", "ahead": 1, "elapsed_s": 0.5}}, []),
        ({"op": "status", "queued": 0, "queued_bytes": 0, "running": None, "uptime_s": 0.0}, [])]),
    "foreground": (lambda c: c.send_foreground("s", bytes(W * H), W, H), [
        ({"op": "foreground", "session": "s", "width": W, "height": H,
          "buffers": [{"name": "foreground", "width": W, "height": H, "channels": 3, "dtype": "uint8",
                       "order": "RGB"}]}, [bytes(W * H * 3)])]),
}
ERROR = ({"op": "error", "code": "bad_request", "message": "no"}, [])


@st.composite
def fuzzed_reply(draw: Any) -> Tuple[str, Dict[str, Any], List[bytes]]:
    op = draw(st.sampled_from(sorted(TEMPLATES)))
    header, buffers = draw(st.sampled_from(TEMPLATES[op][1] + [ERROR]))
    return op, mutate(header, draw(changes_for(header))), buffers


def exchange(fake: FakeDaemon, op: str, header: Dict[str, Any], buffers: List[bytes]) -> Any:
    rid = TEMPLATES[op][0](fake.client)
    fake.answer(lambda r: header_bytes(dict(header, id=r)), buffers)
    reply = fake.client.poll(20000)
    assert reply is not None and reply.id == rid, "the client lost the reply"
    return reply


def test_fuzzed_replies_give_a_result_or_a_daemon_error(fake):
    seen = {"result": 0, "daemon_error": 0}

    @settings(max_examples=fuzz_examples(), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(fuzzed_reply())
    def run(case: Tuple[str, Dict[str, Any], List[bytes]]) -> None:
        op, header, buffers = case
        reply = exchange(fake, op, header, buffers)
        try:
            reply.result()
            seen["result"] += 1
        except DaemonError:
            seen["daemon_error"] += 1
        # anything else (TypeError, KeyError, ...) fails the test
        ok_header, ok_buffers = TEMPLATES["hello"][1][0]
        assert exchange(fake, "hello", ok_header, ok_buffers).result().device == "cpu"

    run()
    assert seen["daemon_error"] > 0 and seen["result"] > 0


@pytest.mark.parametrize("header,buffers", [
    (dict(MATTE, op="predict", uncertainty_scale=[1]), [bytes(W * H), bytes(W * H)]),
    (dict(MATTE, op="predict", uncertainty_scale=10 ** 400), [bytes(W * H), bytes(W * H)]),
    (dict(MATTE, op="predict", timing=[1, 2]), [bytes(W * H), bytes(W * H)]),
    (dict(MATTE, op="predict", buffers=[dict(ALPHA, dtype=["uint8"])]), [bytes(W * H)]),
    (dict(MATTE, op="predict", buffers=[dict(UNC)]), [bytes(W * H)]),
])
def test_replies_that_raised_type_errors_raise_daemon_error(fake, header, buffers):
    reply = exchange(fake, "predict", header, buffers)
    with pytest.raises(DaemonError) as ei:
        reply.result()
    assert ei.value.code == "bad_reply" and isinstance(ei.value, ClientError)
