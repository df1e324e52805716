"""Wire protocol v1: builders round-trip, and every malformed message raises ProtocolError."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickmatte.plugin import protocol as P
from clickmatte.plugin.protocol import MAGIC, BufferSpec, ProtocolError, decode, encode

PLUGIN_DIR = Path(P.__file__).resolve().parent


def roundtrip(header, buffers=(), kind="request"):
    frames = encode(header, list(buffers), kind=kind)
    assert frames[0] == MAGIC
    msg = decode(frames, kind=kind)
    assert msg.header == json.loads(frames[1])
    return msg


def test_request_builders_round_trip():
    assert roundtrip(P.hello_request("a", "krita")).op == "hello"
    img = BufferSpec("image", 4, 3, 4, "uint8", "BGRA")
    msg = roundtrip(P.open_request(1, digest="sha256:" + "0" * 64, image=img), [bytes(48)])
    spec, data = msg.buffer("image")
    assert spec == img and bytes(data) == bytes(48)
    assert roundtrip(P.open_request(2, digest="sha256:" + "a" * 64)).buffers == []
    assert "resume" not in P.open_request(2, digest="sha256:" + "a" * 64)  # a 1.1 request unless asked
    assert roundtrip(P.open_request(2, digest="sha256:" + "a" * 64, resume=True)).header["resume"] is True
    msg = roundtrip(P.predict_request("x", "sess", [{"x": 1, "y": 2.5, "label": "fg"}], preview=256,
                                      alpha_dtype="uint16", uncertainty=False, prev_alpha=True))
    assert msg.header["clicks"] == [{"x": 1, "y": 2.5, "label": "fg"}] and msg.header["preview"] == 256
    mask = BufferSpec("mask", 4, 3, 1)
    msg = roundtrip(P.refine_request(3, "sess", None, [(0, 0, 2, 2)], mask), [bytes(12)])
    assert msg.buffer("mask")[0].order == "A" and msg.header["regions"] == [[0, 0, 2, 2]]
    assert roundtrip(P.close_request(4, "sess")).header["session"] == "sess"


def test_reply_round_trip_and_error_reply_without_id():
    alpha = BufferSpec("alpha", 5, 2, 1, "uint16")
    h = {"id": "r", "op": "refine", "session": "s", "width": 5, "height": 2, "full_width": 10, "full_height": 4,
         "buffers": [alpha.to_dict()], "patches": [[0, 0, 64, 64]]}
    assert len(roundtrip(h, [bytes(20)], kind="reply").buffers) == 1
    assert roundtrip(P.error_reply(None, "bad_request", "no"), kind="reply").id is None
    with pytest.raises(ProtocolError):  # a matte reply must start with alpha
        encode(dict(h, buffers=[BufferSpec("uncertainty", 5, 2, 1).to_dict()]), [bytes(10)], kind="reply")
    with pytest.raises(ProtocolError):  # buffers must match the reply's size
        encode(dict(h, width=4), [bytes(20)], kind="reply")


def test_open_resume_must_be_a_bool_both_ways():
    with pytest.raises(ProtocolError) as ei:  # refused before sending
        encode(P.open_request(1, digest="sha256:" + "0" * 64, resume="yes"))
    assert ei.value.code == "bad_request" and "resume" in str(ei.value)
    reply = {"id": 1, "op": "open", "session": "s", "width": 4, "height": 3, "digest": "sha256:" + "0" * 64,
             "cached": True}
    assert roundtrip(reply, kind="reply").header.get("resumed") is None  # a 1.1 daemon's reply is fine
    assert roundtrip(dict(reply, resumed=True), kind="reply").header["resumed"] is True
    with pytest.raises(ProtocolError, match="resumed"):
        encode(dict(reply, resumed="yes"), kind="reply")


def err(frames, kind="request", **kw) -> ProtocolError:
    with pytest.raises(ProtocolError) as ei:
        decode(frames, kind=kind, **kw)
    return ei.value


def hdr(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_envelope_errors():
    assert err([MAGIC]).code == "bad_request"
    assert err("not a list").code == "bad_request"
    assert err([b"nope", hdr(id=1, op="hello")]).code == "bad_request"
    e = err([b"clickmatte/2", hdr(id=1, op="hello")])
    assert e.code == "unsupported_version" and "clickmatte/1" in str(e)
    assert err([MAGIC, b"\xc3\x28"]).code == "bad_request"  # invalid UTF-8
    assert "JSON" in str(err([MAGIC, b'{"id": 1,']))
    assert err([MAGIC, b'{"id": 1, "op": "hello", "x": Infinity}']).code == "bad_request"
    assert err([MAGIC, b"[" * 100000 + b"]" * 100000]).code == "bad_request"  # deep nesting
    assert err([MAGIC, b" " * (P.MAX_HEADER_BYTES + 1)]).code == "too_large"
    assert err([MAGIC, b"[]"]).code == "bad_request"
    assert err([MAGIC, object()]).code == "bad_request"


def test_id_and_op_checks_keep_the_id_when_readable():
    assert "id" in str(err([MAGIC, hdr(op="hello")]))
    assert err([MAGIC, hdr(id=-1, op="hello")]).request_id is None
    assert err([MAGIC, hdr(id=True, op="hello")]).request_id is None
    assert err([MAGIC, hdr(id="x" * 65, op="hello")]).request_id is None
    e = err([MAGIC, hdr(id="q", op="fly")])
    assert e.request_id == "q" and "unknown op" in str(e)
    assert err([MAGIC, hdr(id=5, op=None)]).request_id == 5


def test_size_checks():
    img = {"name": "image", "width": 10, "height": 10, "channels": 3, "order": "RGB"}
    assert err([MAGIC, hdr(id=1, op="open", buffers=[img]), bytes(299)]).code == "bad_request"
    assert err([MAGIC, hdr(id=1, op="open", buffers=[img])]).code == "bad_request"
    assert err([MAGIC, hdr(id=1, op="open", buffers=[img]), bytes(300)], max_bytes=200).code == "too_large"
    big = dict(img, width=50000, height=50000, dtype="uint16")
    assert err([MAGIC, hdr(id=1, op="open", buffers=[big]), b""]).code == "too_large"
    assert err([MAGIC, hdr(id=1, op="open", buffers=[dict(img, width=70000)]), b""]).code == "too_large"
    assert err([MAGIC, hdr(id=1, op="open", buffers=[img, img]), bytes(300), bytes(300)]).code == "bad_request"
    assert err([MAGIC, hdr(id=1, op="open", buffers=[img] * 9)] + [bytes(300)] * 9).code == "bad_request"
    ok = decode([MAGIC, hdr(id=1, op="open", buffers=[img]), memoryview(bytes(300))])
    assert ok.buffer("image")[0].nbytes == 300


@pytest.mark.parametrize("fields", [
    {"op": "open", "buffers": [{"name": "image", "width": 2, "height": 2, "channels": 2, "order": "RGB"}]},
    {"op": "open", "buffers": [{"name": "image", "width": 2, "height": 2, "channels": 3, "dtype": "f4",
                                "order": "RGB"}]},
    {"op": "open", "buffers": [{"name": "image", "width": "2", "height": 2, "channels": 3, "order": "RGB"}]},
    {"op": "open", "buffers": [{"name": "image", "width": 2.0, "height": 2, "channels": 3, "order": "RGB"}]},
    {"op": "open", "buffers": [{"name": "mask", "width": 2, "height": 2, "channels": 1}]},
    {"op": "open", "buffers": "image"},
    {"op": "open", "buffers": [5]},
    {"op": "open", "digest": "sha256:XYZ"},
    {"op": "open", "digest": "sha256:" + "0" * 64, "resume": "yes"},
    {"op": "open", "digest": "sha256:" + "0" * 64, "resume": 1},
    {"op": "open", "digest": "sha256:" + "0" * 64, "resume": None},
    {"op": "predict", "clicks": []},
    {"op": "predict", "session": "", "clicks": []},
    {"op": "predict", "session": "s", "clicks": [{"x": "1", "y": 2, "label": "fg"}]},
    {"op": "predict", "session": "s", "clicks": [{"x": True, "y": 2, "label": "fg"}]},
    {"op": "predict", "session": "s", "clicks": [[1, 2, "fg"]]},
    {"op": "predict", "session": "s", "clicks": [], "preview": 0},
    {"op": "predict", "session": "s", "clicks": [], "alpha_dtype": "float32"},
    {"op": "predict", "session": "s", "clicks": [], "uncertainty": "yes"},
    {"op": "refine", "session": "s", "top_n": 1.5},
    {"op": "refine", "session": "s", "regions": [[0, 0, 0, 5]]},
    {"op": "refine", "session": "s", "regions": {"x": 1}},
    {"op": "close"},
    {"op": "hello", "protocol": "one"},
    {"op": "hello", "client": 5},
])
def test_mistyped_fields_are_bad_requests(fields):
    n = len(fields.get("buffers", [])) if isinstance(fields.get("buffers"), list) else 0
    frames = [MAGIC, hdr(id=9, **fields)] + [bytes(4 * 3)] * n
    e = err(frames)
    assert e.code == "bad_request" and e.request_id == 9


def test_digest_and_version_helpers():
    d1 = P.image_digest(bytes(12), 2, 2, 3, "uint8", "RGB")
    assert d1.startswith("sha256:") and len(d1) == 71
    assert d1 != P.image_digest(bytes(12), 2, 2, 3, "uint8", "BGR")
    assert d1 != P.image_digest(bytes(12), 4, 1, 3, "uint8", "RGB")
    assert P.parse_version("1.3") == (1, 3) and P.parse_version(2) == (2, 0)


def test_encode_refuses_what_json_cannot_carry():
    with pytest.raises(ProtocolError):
        encode({"id": 1, "op": "predict", "session": "s", "clicks": [{"x": float("nan"), "y": 1, "label": "fg"}]})
    with pytest.raises(ProtocolError):
        encode({"id": 1, "op": "hello", "client": object()})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80), st.just(MAGIC), st.just(b'{"id":1,"op":"open"}'),
                          st.builds(lambda d: json.dumps(d).encode(),
                                    st.dictionaries(st.text(max_size=8),
                                                    st.one_of(st.integers(), st.text(max_size=8), st.none(),
                                                              st.lists(st.integers(), max_size=3)),
                                                    max_size=5))),
                max_size=5),
       st.sampled_from(["request", "reply"]))
def test_decode_raises_only_protocol_error(frames, kind):
    try:
        decode(frames, kind=kind)
    except ProtocolError as e:
        assert e.code in P.ERROR_CODES


def test_plugin_modules_import_only_stdlib_zmq_and_relative():
    """plugin/protocol*.py and plugin/client*.py run inside the editors' Python: no numpy, no clickmatte."""
    names = sorted(p.name for pat in ("protocol*.py", "client*.py") for p in PLUGIN_DIR.glob(pat))
    assert {"protocol.py", "protocol_codec.py", "client.py", "client_replies.py"} <= set(names)
    for name in names:
        tree = ast.parse((PLUGIN_DIR / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    continue
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & {"numpy", "torch", "clickmatte", "cv2", "PIL"}, (name, roots)


def test_status_request_and_reply_are_validated() -> None:
    from clickmatte.plugin.protocol import status_request

    assert decode(encode(status_request("s1", "r-7"))).header["request"] == "r-7"
    assert "request" not in decode(encode(status_request("s2"))).header
    for bad in ("", "x" * 65, -1, 1.5, [], {}):
        with pytest.raises(ProtocolError) as ei:
            decode(encode_raw({"id": "s3", "op": "status", "request": bad}))
        assert ei.value.code == "bad_request" and ei.value.request_id == "s3"
    ok = {"id": "s4", "op": "status", "queued": 1, "queued_bytes": 10, "running": {"op": "predict", "elapsed_s": 2.5},
          "uptime_s": 3.0, "request": {"id": "r-7", "state": "running", "ahead": 0, "elapsed_s": 2.5}}
    assert decode(encode(ok, kind="reply"), kind="reply").header["request"]["state"] == "running"
    for change in ({"queued": -1}, {"uptime_s": -1}, {"running": {"op": 1, "elapsed_s": 0}}, {"running": []},
                   {"request": {"id": "r", "state": "done", "ahead": 0, "elapsed_s": 0}}, {"request": {}},
                   {"request": {"id": "r", "state": "queued", "ahead": 0, "elapsed_s": "1"}}):
        with pytest.raises(ProtocolError) as ei:
            decode(encode_raw(dict(ok, **change)), kind="reply")
        assert ei.value.request_id == "s4", change


def encode_raw(header: dict) -> list:
    """Frames of ``header`` without the sender-side checks (what a broken peer could send)."""
    return [MAGIC, json.dumps(header).encode("utf-8")]


def test_a_header_with_nan_or_infinity_is_refused_with_its_id() -> None:
    for text in (b'{"op": Infinity, "id": "c-7"}', b'{"op": "hello", "id": "c-7", "x": NaN}'):
        with pytest.raises(ProtocolError) as info:
            decode([MAGIC, text], kind="reply")
        assert info.value.request_id == "c-7" and "not valid JSON" in info.value.message
    with pytest.raises(ProtocolError) as info:
        decode([MAGIC, b'{"op": NaN, "id": NaN}'], kind="reply")
    assert info.value.request_id is None
