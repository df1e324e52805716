"""Malformed traffic of every kind gets an error reply, and the daemon keeps answering afterwards."""
from __future__ import annotations

import json
from typing import List, Optional

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickmatte.plugin.protocol import MAGIC, decode, hello_request, encode

TIMEOUT_MS = 60000


@pytest.fixture(scope="module")
def raw(tcp_daemon):
    """A bare DEALER socket to the daemon, for sending anything at all."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(tcp_daemon.endpoint)
    yield s
    s.close(0)
    ctx.term()


def exchange(sock: zmq.Socket, frames: List[bytes]) -> dict:
    sock.send_multipart(frames)
    assert sock.poll(TIMEOUT_MS), "no reply from the daemon"
    reply = sock.recv_multipart()
    if reply and reply[0] == b"":  # the daemon echoes a REQ-style empty delimiter
        reply = reply[1:]
    return decode(reply, kind="reply").header


def still_alive(sock: zmq.Socket) -> None:
    h = exchange(sock, encode(hello_request("alive", "test")))
    assert h["op"] == "hello" and h["id"] == "alive"


def header(**fields) -> bytes:
    return json.dumps(fields).encode()


def expect_error(sock: zmq.Socket, frames: List[bytes], code: Optional[str] = None, rid=None) -> dict:
    h = exchange(sock, frames)
    assert h["op"] == "error", h
    if code is not None:
        assert h["code"] == code, h
    if rid is not None:
        assert h["id"] == rid
    assert isinstance(h["message"], str) and h["message"]
    return h


IMG = {"name": "image", "width": 40, "height": 40, "channels": 3, "dtype": "uint8", "order": "RGB"}

CASES = {
    "single frame": ([MAGIC], "bad_request", None),
    "wrong magic": ([b"hello", header(id=1, op="hello")], "bad_request", None),
    "future major": ([b"clickmatte/2", header(id=1, op="hello")], "unsupported_version", None),
    "hello asks for protocol 2": ([MAGIC, header(id=1, op="hello", protocol="2.0")], "unsupported_version", 1),
    "not utf-8": ([MAGIC, b"\xff\xfe{"], "bad_request", None),
    "not json": ([MAGIC, b"{id: 1"], "bad_request", None),
    "json array": ([MAGIC, b"[1, 2]"], "bad_request", None),
    "NaN": ([MAGIC, b'{"id": 1, "op": "predict", "session": "x", "clicks": [{"x": NaN, "y": 1, "label": "fg"}]}'],
            "bad_request", None),
    "missing id": ([MAGIC, header(op="hello")], "bad_request", None),
    "id wrong type": ([MAGIC, header(id=[1], op="hello")], "bad_request", None),
    "unknown op": ([MAGIC, header(id=7, op="explode")], "bad_request", 7),
    "op wrong type": ([MAGIC, header(id=7, op=3)], "bad_request", 7),
    "predict without session": ([MAGIC, header(id=8, op="predict", clicks=[])], "bad_request", 8),
    "session wrong type": ([MAGIC, header(id=8, op="predict", session=5, clicks=[])], "bad_request", 8),
    "clicks wrong type": ([MAGIC, header(id=9, op="predict", session="s", clicks="fg")], "bad_request", 9),
    "click label": ([MAGIC, header(id=9, op="predict", session="s", clicks=[{"x": 1, "y": 1, "label": "up"}])],
                    "bad_request", 9),
    "preview wrong type": ([MAGIC, header(id=9, op="predict", session="s", clicks=[], preview="big")],
                           "bad_request", 9),
    "prev_alpha unknown word": ([MAGIC, header(id=9, op="predict", session="s", clicks=[], prev_alpha="yes")],
                                "bad_request", 9),
    "unknown session": ([MAGIC, header(id=10, op="predict", session="nope", clicks=[])], "unknown_session", 10),
    "open without anything": ([MAGIC, header(id=11, op="open")], "bad_request", 11),
    "open bad digest": ([MAGIC, header(id=11, op="open", digest="md5:1")], "bad_request", 11),
    "open resume not a bool": ([MAGIC, header(id=11, op="open", digest="sha256:" + "0" * 64, resume="yes")],
                               "bad_request", 11),
    "truncated buffer": ([MAGIC, header(id=12, op="open", buffers=[IMG]), b"\0" * (40 * 40 * 3 - 1)], "bad_request", 12),
    "missing buffer": ([MAGIC, header(id=12, op="open", buffers=[IMG])], "bad_request", 12),
    "extra frame": ([MAGIC, header(id=12, op="hello"), b"xyz"], "bad_request", 12),
    "huge declared size": ([MAGIC, header(id=13, op="open", buffers=[dict(IMG, width=60000, height=60000)]), b"x"],
                           "too_large", 13),
    "side over protocol bound": ([MAGIC, header(id=13, op="open", buffers=[dict(IMG, width=10 ** 9)]), b"x"],
                                 "too_large", 13),
    "negative width": ([MAGIC, header(id=14, op="open", buffers=[dict(IMG, width=-4)]), b""], "bad_request", 14),
    "width as string": ([MAGIC, header(id=14, op="open", buffers=[dict(IMG, width="40")]), b""], "bad_request", 14),
    "bad dtype": ([MAGIC, header(id=14, op="open", buffers=[dict(IMG, dtype="float64")]), b""], "bad_request", 14),
    "bad order": ([MAGIC, header(id=14, op="open", buffers=[dict(IMG, order="RGBA")]), b""], "bad_request", 14),
    "buffer not allowed": ([MAGIC, header(id=15, op="close", session="s", buffers=[IMG]), b"\0" * 4800],
                           "bad_request", 15),
    "regions malformed": ([MAGIC, header(id=16, op="refine", session="s", regions=[[1, 2, 3]])], "bad_request", 16),
    "top_n negative": ([MAGIC, header(id=16, op="refine", session="s", top_n=-1)], "bad_request", 16),
    "too many clicks": ([MAGIC, header(id=17, op="predict", session="s",
                                       clicks=[{"x": 1, "y": 1, "label": "fg"}] * 1001)], "too_large", 17),
    "prev_alpha buffer with 3 channels": ([MAGIC, header(id=19, op="predict", session="s", clicks=[], prev_alpha=True,
                                                         buffers=[dict(IMG, name="prev_alpha")]), b"\0" * 4800],
                                          "bad_request", 19),
    "prev_alpha buffer without prev_alpha true": ([MAGIC, header(id=19, op="predict", session="s", clicks=[],
                                                                 buffers=[dict(IMG, name="prev_alpha", channels=1,
                                                                               order="A")]), b"\0" * 1600],
                                                  "bad_request", 19),
    "REQ-style empty delimiter": ([b"", MAGIC, header(id=18, op="explode")], "bad_request", 18),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_message_gets_an_error_reply(raw, name):
    frames, code, rid = CASES[name]
    expect_error(raw, frames, code, rid)
    still_alive(raw)


def test_open_with_too_many_pixels_for_the_limit(raw):
    img = dict(IMG, width=300, height=200)
    expect_error(raw, [MAGIC, header(id=20, op="open", buffers=[img]), b"\0" * (300 * 200 * 3)], "too_large", 20)
    still_alive(raw)


frame = st.one_of(
    st.binary(max_size=64),
    st.just(MAGIC),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
        st.sampled_from(["id", "op", "session", "clicks", "buffers", "digest", "preview", "top_n", "regions",
                         "resume"]),
        st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False),
                  st.text(max_size=12), st.sampled_from(["hello", "open", "predict", "refine", "close"]),
                  st.lists(st.integers(-5, 70000), max_size=5),
                  st.lists(st.fixed_dictionaries({"name": st.sampled_from(["image", "mask", "x"]),
                                                  "width": st.integers(-1, 70000), "height": st.integers(-1, 70000),
                                                  "channels": st.integers(0, 5)}), max_size=2)),
        max_size=6)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(frame, min_size=1, max_size=5), st.booleans())
def test_random_traffic_never_breaks_the_daemon(raw, frames, with_magic):
    if with_magic:
        frames = [MAGIC] + frames
    h = exchange(raw, frames)
    assert h["op"] in ("error", "hello", "open", "need_pixels", "close", "predict", "refine")
    if h["op"] == "error":
        assert h["code"] in ("bad_request", "too_large", "unknown_session", "unsupported_version", "superseded")
    still_alive(raw)
