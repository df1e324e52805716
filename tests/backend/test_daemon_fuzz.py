"""Fuzz every header field of every op, and every buffer-spec field, against a real daemon process.

Each generated message is a valid request of one op with 1..3 of its fields (top-level or nested:
a click's ``x``, a region's corner, a buffer's ``dtype``) replaced by an arbitrary JSON value (lists,
dicts, 400-digit and negative integers, floats, NaN, strings, booleans, null) or removed. The
protocol's own :func:`decode` is the oracle: when it refuses the message, the daemon must answer an
error with the same code and id; when it accepts it, the daemon answers the op or a non-internal
error. After every message a ``hello`` must still be answered, and at the end the daemon process is
still the one that started, with no internal error in its log.

Run count: ``CLICKMATTE_FUZZ_EXAMPLES`` (default 200; ``CLICKMATTE_FUZZ_EXAMPLES=10000`` for the
acceptance run).
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon
from clickmatte.plugin.protocol import MAGIC, ProtocolError, decode, encode, hello_request, image_digest

from fuzzing import changes_for, fuzz_examples, header_bytes, mutate

TIMEOUT_MS = 60000
W = H = 40
COUNTS: Dict[str, int] = {"sent": 0, "refused_locally": 0, "answered_ok": 0}


class Fuzzed:
    def __init__(self, endpoint: str, proc: Any, log_path: str, session: str) -> None:
        self.endpoint, self.proc, self.log_path, self.session = endpoint, proc, log_path, session
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def exchange(self, frames: List[bytes]) -> Dict[str, Any]:
        self.sock.send_multipart(frames)
        assert self.sock.poll(TIMEOUT_MS), "no reply from the daemon"
        return decode(self.sock.recv_multipart(), kind="reply").header


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Fuzzed]:
    with tempfile.TemporaryDirectory(prefix="cm-fuzz-") as tmp:
        log = os.path.join(tmp, "daemon.log")
        endpoint = free_tcp_endpoint()
        # many sessions: the opens the fuzz makes never evict the session its predicts and refines use
        proc, client = start_daemon(endpoint, ["--device", "cpu", "--max-sessions", "100000", "--max-image-mp", "0.05",
                                               "--log-level", "INFO"], log, startup_timeout_s=240)
        try:
            rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
            session = client.open(rgb.tobytes(), W, H, 3, "uint8", "RGB").session
            client.predict(session, [{"x": 20, "y": 20, "label": "fg"}])
            client.disconnect()
            f = Fuzzed(endpoint, proc, log, session)
            yield f
            f.sock.close(0)
            f.ctx.term()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


IMAGE = {"name": "image", "width": W, "height": H, "channels": 3, "dtype": "uint8", "order": "RGB"}
MASK = {"name": "mask", "width": W, "height": H, "channels": 1, "dtype": "uint8", "order": "A"}
PIXELS = bytes(range(256)) * (W * H * 3 // 256) + bytes(W * H * 3 % 256)
DIGEST = image_digest(PIXELS, W, H, 3, "uint8", "RGB")


def templates(session: str) -> Dict[str, Tuple[Dict[str, Any], List[bytes]]]:
    """A valid request of every op (and of every buffer the ops take), with its frames."""
    output = {"preview": 64, "alpha_dtype": "uint8", "uncertainty": True}
    return {
        "hello": ({"id": "f", "op": "hello", "protocol": "1.2", "client": "fuzz"}, []),
        "open_digest": ({"id": "f", "op": "open", "digest": DIGEST, "resume": False}, []),
        "open_pixels": ({"id": "f", "op": "open", "digest": DIGEST, "resume": True, "buffers": [dict(IMAGE)]}, [PIXELS]),
        "predict": ({"id": "f", "op": "predict", "session": session, "prev_alpha": "auto",
                     "clicks": [{"x": 20, "y": 20, "label": "fg"}, {"x": 1.5, "y": 2, "label": "bg"}], **output}, []),
        "refine_top": ({"id": "f", "op": "refine", "session": session, "top_n": 1, **output}, []),
        "refine_regions": ({"id": "f", "op": "refine", "session": session, "top_n": None,
                            "regions": [[0, 0, 16, 16], [20, 20, 5, 5]], **output}, []),
        "refine_mask": ({"id": "f", "op": "refine", "session": session, "top_n": 2, "buffers": [dict(MASK)], **output},
                        [b"\x01" * (W * H)]),
        "close": ({"id": "f", "op": "close", "session": "fuzz-no-such-session"}, []),
        "status": ({"id": "f", "op": "status", "request": "fuzz-1"}, []),
        "foreground": ({"id": "f", "op": "foreground", "session": session, "buffers": [dict(MASK, name="alpha")]},
                       [bytes(range(256)) * (W * H // 256) + bytes(W * H % 256)]),
    }


OK_REPLIES = {"hello": {"hello"}, "open": {"open", "need_pixels"}, "predict": {"predict"}, "refine": {"refine"},
              "close": {"close"}, "status": {"status"}, "foreground": {"foreground"}}
NON_INTERNAL = {"bad_request", "too_large", "unknown_session", "superseded", "busy", "unsupported_version"}


def check_one(f: Fuzzed, frames: List[bytes]) -> None:
    COUNTS["sent"] += 1
    try:
        msg = decode(frames, kind="request")
        local = None
    except ProtocolError as exc:
        msg, local = None, exc
    h = f.exchange(frames)
    if local is not None:
        COUNTS["refused_locally"] += 1
        assert h["op"] == "error", (h, local)
        assert h["code"] == local.code, (h, str(local))
        assert h["id"] == local.request_id, (h, local.request_id)
    else:
        assert msg is not None
        assert h["id"] == msg.id
        if h["op"] == "error":
            assert h["code"] in NON_INTERNAL, h
        else:
            COUNTS["answered_ok"] += 1
            assert h["op"] in OK_REPLIES[msg.op], h
    # a healthy next request
    alive = f.exchange(encode(hello_request("alive", "fuzz")))
    assert alive["op"] == "hello" and alive["id"] == "alive"


@st.composite
def fuzzed_request(draw: Any, session: str) -> List[bytes]:
    name = draw(st.sampled_from(sorted(templates(session))))
    header, buffers = templates(session)[name]
    h = mutate(header, draw(changes_for(header)))
    return [MAGIC, header_bytes(h), *buffers]


def test_fuzzed_fields_of_every_op_get_error_replies_and_the_daemon_keeps_serving(fuzzed):
    n = fuzz_examples()

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(fuzzed_request(fuzzed.session))
    def run(frames: List[bytes]) -> None:
        check_one(fuzzed, frames)

    run()
    assert fuzzed.proc.poll() is None, "the daemon exited"
    log = open(fuzzed.log_path, errors="replace").read()
    assert "internal error" not in log and "Traceback" not in log, log[-3000:]
    assert COUNTS["sent"] >= n and COUNTS["refused_locally"] > 0 and COUNTS["answered_ok"] > 0
    print(f"fuzz: {COUNTS['sent']} messages, {COUNTS['refused_locally']} refused by decode, "
          f"{COUNTS['answered_ok']} answered ok, daemon exits: 0")


@pytest.mark.parametrize("name,frames,code", [
    ("list in alpha_dtype", [MAGIC, b'{"id":1,"op":"predict","session":"s","clicks":[],"alpha_dtype":[1]}'],
     "bad_request"),
    ("list in a buffer dtype", [MAGIC, header_bytes({"id": 2, "op": "open", "buffers": [dict(IMAGE, dtype=["uint8"])]}),
                                PIXELS], "bad_request"),
    ("dict in a buffer dtype", [MAGIC, header_bytes({"id": 3, "op": "open", "buffers": [dict(IMAGE, dtype={})]}),
                                PIXELS], "bad_request"),
    ("dict in a buffer order", [MAGIC, header_bytes({"id": 4, "op": "open", "buffers": [dict(IMAGE, order={})]}),
                                PIXELS], "bad_request"),
    ("click x of 10**400", [MAGIC, header_bytes({"id": 5, "op": "predict", "session": "s",
                                                 "clicks": [{"x": 10 ** 400, "y": 1, "label": "fg"}]})], "bad_request"),
    ("top_n of 10**400", [MAGIC, header_bytes({"id": 6, "op": "refine", "session": "s", "top_n": 10 ** 400})],
     "bad_request"),
    ("region of 10**400", [MAGIC, header_bytes({"id": 7, "op": "refine", "session": "s",
                                                "regions": [[0, 0, 10 ** 400, 1]]})], "bad_request"),
    ("non-ascii digits in protocol", [MAGIC, header_bytes({"id": 8, "op": "hello", "protocol": "١.٢"})],
     "bad_request"),
    ("negative integer protocol", [MAGIC, header_bytes({"id": 9, "op": "hello", "protocol": -1})], "bad_request"),
    ("width of 10**400", [MAGIC, header_bytes({"id": 10, "op": "open", "buffers": [dict(IMAGE, width=10 ** 400)]}),
                          PIXELS], "too_large"),
])
def test_messages_that_killed_the_daemon_are_bad_requests(fuzzed, name, frames, code):
    h = fuzzed.exchange(frames)
    assert h["op"] == "error" and h["code"] == code, (name, h)
    assert fuzzed.exchange(encode(hello_request("alive")))["op"] == "hello"
    assert fuzzed.proc.poll() is None
