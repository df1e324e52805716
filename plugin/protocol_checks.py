"""Checking headers (standard library only): field validators (ids, sessions, clicks, boxes, versions,
digests) and :func:`validate_header`, the per-op check of a request or reply against the protocol; every
problem raises :class:`~.protocol_messages.ProtocolError`. Also :func:`image_digest`, the content digest
``open`` sends."""
from __future__ import annotations

import hashlib
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .protocol_constants import (
    BAD_REQUEST, Box, DEFAULT_TOP_N, DTYPES, MAX_CLICKS, MAX_COORDINATE, MAX_ID_CHARS, MAX_REGIONS,
    MAX_SESSION_CHARS, MAX_SIDE_LIMIT, MAX_TOP_N, REQUEST_OPS, REQUEST_STATES, RequestId, TOO_LARGE,
)
from .protocol_messages import (
    Buffer, BufferSpec, CloseRequest, ForegroundRequest, HelloRequest, OpenRequest, PredictRequest,
    ProtocolError, RefineRequest, Request, StatusRequest, _get, _get_int, _short, _tname,
)


def _check_id(v: Any) -> RequestId:
    if isinstance(v, str) and 1 <= len(v) <= MAX_ID_CHARS:
        return v
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 63:
        return v
    raise ProtocolError(f"'id' must be a string of 1..{MAX_ID_CHARS} characters or a non-negative integer, "
                        f"got {_short(v, 80)}", BAD_REQUEST, None)


def check_request_id(v: Any) -> RequestId:
    """A valid request id (string of 1..64 characters or non-negative integer); else :class:`ProtocolError`."""
    return _check_id(v)


def _check_session(h: Dict[str, Any], rid: Optional[RequestId]) -> str:
    s = _get(h, "session", str, rid)
    if not (1 <= len(s) <= MAX_SESSION_CHARS):
        raise ProtocolError(f"'session' must have 1..{MAX_SESSION_CHARS} characters", BAD_REQUEST, rid)
    return s


def _check_number(v: Any, what: str, rid: Optional[RequestId]) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(f"{what} must be a finite number, got {_short(v)}", BAD_REQUEST, rid)
    if isinstance(v, int) and abs(v) > MAX_COORDINATE:  # float(10**400) would raise OverflowError
        raise ProtocolError(f"{what} must be within -{MAX_COORDINATE}..{MAX_COORDINATE}, got {_short(v)}",
                            BAD_REQUEST, rid)
    f = float(v)
    if not math.isfinite(f) or abs(f) > MAX_COORDINATE:
        raise ProtocolError(f"{what} must be a finite number within -{MAX_COORDINATE}..{MAX_COORDINATE}, "
                            f"got {_short(v)}", BAD_REQUEST, rid)
    return f


def check_clicks(clicks: Any, rid: Optional[RequestId] = None) -> List[Dict[str, Any]]:
    """Validate ``[{"x": num, "y": num, "label": "fg"|"bg"}, ...]`` (at most MAX_CLICKS); returns it normalised."""
    if not isinstance(clicks, list):
        raise ProtocolError(f"'clicks' must be a list, got {_tname(clicks)}", BAD_REQUEST, rid)
    if len(clicks) > MAX_CLICKS:
        raise ProtocolError(f"at most {MAX_CLICKS} clicks, got {len(clicks)}", TOO_LARGE, rid)
    out = []
    for i, c in enumerate(clicks):
        if not isinstance(c, dict):
            raise ProtocolError(f"click {i} must be an object {{x, y, label}}, got {_tname(c)}", BAD_REQUEST, rid)
        x = _check_number(c.get("x"), f"click {i} x", rid)
        y = _check_number(c.get("y"), f"click {i} y", rid)
        if c.get("label") not in ("fg", "bg"):
            raise ProtocolError(f"click {i} label must be 'fg' or 'bg', got {_short(c.get('label'))}", BAD_REQUEST, rid)
        out.append({"x": x, "y": y, "label": c["label"]})
    return out


def check_boxes(boxes: Any, key: str, rid: Optional[RequestId] = None) -> List[Box]:
    """Validate ``[[x, y, w, h], ...]`` (integers, x, y >= 0, w, h >= 1, at most MAX_REGIONS)."""
    if not isinstance(boxes, list):
        raise ProtocolError(f"{key!r} must be a list of [x, y, w, h], got {_tname(boxes)}", BAD_REQUEST, rid)
    if len(boxes) > MAX_REGIONS:
        raise ProtocolError(f"at most {MAX_REGIONS} {key}, got {len(boxes)}", TOO_LARGE, rid)
    out: List[Box] = []
    for i, b in enumerate(boxes):
        if (not isinstance(b, (list, tuple)) or len(b) != 4
                or any(isinstance(v, bool) or not isinstance(v, int) for v in b)):
            raise ProtocolError(f"{key}[{i}] must be [x, y, w, h] integers, got {_short(b, 60)}", BAD_REQUEST, rid)
        x, y, w, h = b
        if x < 0 or y < 0 or w < 1 or h < 1 or max(x, y, w, h) > MAX_SIDE_LIMIT:
            raise ProtocolError(f"{key}[{i}] = {_short(list(b), 60)} is not a valid box (x, y >= 0; w, h >= 1, "
                                f"at most {MAX_SIDE_LIMIT})", BAD_REQUEST, rid)
        out.append((x, y, w, h))
    return out


def parse_version(v: Any, rid: Optional[RequestId] = None) -> Tuple[int, int]:
    """``"1.0"`` / ``"1"`` / ``1`` -> ``(major, minor)``; raises ProtocolError(bad_request) if unreadable."""
    if isinstance(v, int) and not isinstance(v, bool):
        if not 0 <= v < 10 ** 6:
            raise ProtocolError(f"'protocol' must look like '1.0', got {_short(v)}", BAD_REQUEST, rid)
        return v, 0
    if isinstance(v, str):
        parts = v.split(".")
        if 1 <= len(parts) <= 3 and all(p.isascii() and p.isdigit() and len(p) <= 6 for p in parts):
            return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    raise ProtocolError(f"'protocol' must look like '1.0', got {_short(v)}", BAD_REQUEST, rid)


def image_digest(data: Any, width: int, height: int, channels: int, dtype: str = "uint8", order: str = "RGBA") -> str:
    """Content digest of an image buffer: ``"sha256:" + hex`` over its format line and its bytes.

    Two buffers with the same pixels but another size/format get different digests.
    """
    h = hashlib.sha256(f"clickmatte-image {width}x{height}x{channels} {dtype} {order}\n".encode("ascii"))
    h.update(data)
    return "sha256:" + h.hexdigest()


def _check_digest(v: Any, rid: Optional[RequestId]) -> str:
    if (not isinstance(v, str) or not v.startswith("sha256:") or len(v) != 71
            or any(ch not in "0123456789abcdef" for ch in v[7:])):
        raise ProtocolError(f"'digest' must be 'sha256:' + 64 lowercase hex digits, got {_short(v, 80)}",
                            BAD_REQUEST, rid)
    return v


def _check_output_opts(h: Dict[str, Any], rid: Optional[RequestId], uncertainty: bool) -> Dict[str, Any]:
    """``preview``, ``alpha_dtype`` and ``uncertainty`` (default ``uncertainty``) of a predict / refine."""
    preview = _get_int(h, "preview", rid, lo=1, hi=MAX_SIDE_LIMIT, optional=True)
    adt = h.get("alpha_dtype", "uint8")
    if not isinstance(adt, str) or adt not in DTYPES:
        raise ProtocolError(f"'alpha_dtype' must be one of {sorted(DTYPES)}, got {_short(adt)}", BAD_REQUEST, rid)
    if "uncertainty" in h and not isinstance(h["uncertainty"], bool):
        raise ProtocolError(f"field 'uncertainty' must be true or false, got {_tname(h['uncertainty'])}",
                            BAD_REQUEST, rid)
    if "prev_alpha" in h and not (isinstance(h["prev_alpha"], bool) or h["prev_alpha"] == "auto"):
        raise ProtocolError(f"field 'prev_alpha' must be true, false or \"auto\", got {_short(h['prev_alpha'])}",
                            BAD_REQUEST, rid)
    return {"preview": preview, "alpha_dtype": adt, "uncertainty": h.get("uncertainty", uncertainty)}


def _only_buffers(specs: List[BufferSpec], allowed: Dict[str, Any], op: str, rid: Optional[RequestId]) -> None:
    for s in specs:
        if s.name not in allowed:
            raise ProtocolError(f"{op!r} does not take a buffer named {s.name!r}", BAD_REQUEST, rid)
        check = allowed[s.name]
        if check is not None:
            check(s)


# -- per-op header validation ----------------------------------------------------------------------
def validate_header(h: Dict[str, Any], specs: List[BufferSpec], kind: str,
                    buffers: Optional[Sequence[Any]] = None) -> Optional[Request]:
    """Check the op-specific fields of a request (``kind="request"``) or a reply (``kind="reply"``).

    For a request, returns the typed request (:data:`Request`) with defaults applied; its buffers are
    paired with ``buffers`` (the frames after the header, in ``specs`` order; None: no data attached)."""
    rid = h.get("id")
    op = h["op"]

    def image_check(s: BufferSpec) -> None:
        if s.channels not in (3, 4):
            raise ProtocolError(f"image must have 3 or 4 channels, got {s.channels}", BAD_REQUEST, rid)

    def mono_check(s: BufferSpec) -> None:
        if s.channels != 1:
            raise ProtocolError(f"buffer {s.name!r} must have 1 channel, got {s.channels}", BAD_REQUEST, rid)

    def buffer(name: str) -> Optional[Buffer]:
        for i, s in enumerate(specs):
            if s.name == name:
                return s, (buffers[i] if buffers is not None else None)
        return None

    if kind == "request":
        if op == "hello":
            version = parse_version(h["protocol"], rid) if "protocol" in h else None
            client = _get(h, "client", str, rid, default="")
            _only_buffers(specs, {}, op, rid)
            return HelloRequest(rid, version, str(h["protocol"]) if version is not None else None, client)
        if op == "open":
            digest = _check_digest(h["digest"], rid) if h.get("digest") is not None else None
            _only_buffers(specs, {"image": image_check}, op, rid)
            if not specs and digest is None:
                raise ProtocolError("'open' needs an image buffer or a digest", BAD_REQUEST, rid)
            if "resume" in h and not isinstance(h["resume"], bool):
                raise ProtocolError(f"field 'resume' must be true or false, got {_tname(h['resume'])}",
                                    BAD_REQUEST, rid)
            return OpenRequest(rid, digest, buffer("image"), h.get("resume", False))
        if op == "predict":
            session = _check_session(h, rid)
            clicks = check_clicks(h.get("clicks", []), rid)
            opts = _check_output_opts(h, rid, uncertainty=True)
            _only_buffers(specs, {"prev_alpha": mono_check}, op, rid)
            if specs and (specs[0].dtype != "uint8" or h.get("prev_alpha") is not True or len(specs) != 1):
                raise ProtocolError("a 'prev_alpha' buffer must be one uint8 buffer, sent with \"prev_alpha\": true",
                                    BAD_REQUEST, rid)
            return PredictRequest(rid, session, clicks, prev_alpha=h.get("prev_alpha", False),
                                  prev_buffer=buffer("prev_alpha"), **opts)
        if op == "refine":
            session = _check_session(h, rid)
            top_n = _get_int(h, "top_n", rid, lo=0, hi=MAX_TOP_N, optional=True) if "top_n" in h else DEFAULT_TOP_N
            regions = check_boxes(h["regions"], "regions", rid) if h.get("regions") is not None else None
            opts = _check_output_opts(h, rid, uncertainty=False)
            _only_buffers(specs, {"mask": mono_check}, op, rid)
            for s in specs:
                if s.dtype != "uint8":
                    raise ProtocolError("mask must be uint8", BAD_REQUEST, rid)
            return RefineRequest(rid, session, top_n, regions, buffer("mask"), **opts)
        if op == "close":
            session = _check_session(h, rid)
            _only_buffers(specs, {}, op, rid)
            return CloseRequest(rid, session)
        if op == "foreground":
            session = _check_session(h, rid)
            _only_buffers(specs, {"alpha": mono_check}, op, rid)
            if len(specs) != 1 or specs[0].dtype != "uint8":
                raise ProtocolError("'foreground' needs one uint8 'alpha' buffer (the mask to decontaminate under)",
                                    BAD_REQUEST, rid)
            alpha = buffer("alpha")
            assert alpha is not None
            return ForegroundRequest(rid, session, alpha)
        if op == "status":
            asked = None
            if h.get("request") is not None:
                try:
                    asked = _check_id(h["request"])
                except ProtocolError as exc:
                    raise ProtocolError(f"field 'request' must be a request id: {exc.message}", BAD_REQUEST,
                                        rid) from None
            _only_buffers(specs, {}, op, rid)
            return StatusRequest(rid, asked)
        raise ProtocolError(f"unknown op {op!r} (expected one of {list(REQUEST_OPS)})", BAD_REQUEST, rid)
    # replies
    if op == "error":
        _get(h, "code", str, rid)  # any string: newer servers may add codes, clients treat them as errors
        _get(h, "message", str, rid)
    elif op == "hello":
        _get(h, "protocol", str, rid)
        _get(h, "server", str, rid)
        _get(h, "device", str, rid)
        _get(h, "model", dict, rid)
        _get(h, "limits", dict, rid)
        _only_buffers(specs, {}, op, rid)
    elif op == "open":
        _check_session(h, rid)
        _get_int(h, "width", rid, lo=1, hi=MAX_SIDE_LIMIT)
        _get_int(h, "height", rid, lo=1, hi=MAX_SIDE_LIMIT)
        _get(h, "cached", bool, rid)
        _get(h, "resumed", bool, rid, default=False)
        _get(h, "digest", str, rid, default="")
        _only_buffers(specs, {}, op, rid)
    elif op == "need_pixels":
        _check_digest(h.get("digest"), rid)
        _only_buffers(specs, {}, op, rid)
    elif op in ("predict", "refine"):
        _check_session(h, rid)
        for k in ("width", "height", "full_width", "full_height"):
            _get_int(h, k, rid, lo=1, hi=MAX_SIDE_LIMIT)
        if h.get("uncertainty_scale") is not None:
            scale = _check_number(h["uncertainty_scale"], "'uncertainty_scale'", rid)
            if scale <= 0:
                raise ProtocolError(f"'uncertainty_scale' must be > 0, got {scale}", BAD_REQUEST, rid)
        if h.get("timing") is not None and not isinstance(h["timing"], dict):
            raise ProtocolError(f"field 'timing' must be an object, got {_tname(h['timing'])}", BAD_REQUEST, rid)
        _only_buffers(specs, {"alpha": mono_check, "uncertainty": mono_check}, op, rid)
        if not specs or specs[0].name != "alpha":
            raise ProtocolError(f"{op!r} reply must start with an 'alpha' buffer", BAD_REQUEST, rid)
        for s in specs:
            if (s.width, s.height) != (h["width"], h["height"]):
                raise ProtocolError(f"buffer {s.name!r} size differs from the reply's width/height", BAD_REQUEST, rid)
        for s in specs:
            if s.name == "uncertainty" and s.dtype != "uint8":
                raise ProtocolError("the uncertainty buffer must be uint8", BAD_REQUEST, rid)
        if op == "refine":
            check_boxes(h.get("patches", []), "patches", rid)
    elif op == "close":
        _check_session(h, rid)
        _get(h, "closed", bool, rid)
        _only_buffers(specs, {}, op, rid)
    elif op == "foreground":
        _check_session(h, rid)
        _get_int(h, "width", rid, lo=1, hi=MAX_SIDE_LIMIT)
        _get_int(h, "height", rid, lo=1, hi=MAX_SIDE_LIMIT)

        def rgb_check(s: BufferSpec) -> None:
            if (s.channels, s.dtype, s.order) != (3, "uint8", "RGB"):
                raise ProtocolError("the foreground buffer must be 3-channel uint8 RGB", BAD_REQUEST, rid)
            if (s.width, s.height) != (h["width"], h["height"]):
                raise ProtocolError("the foreground buffer's size differs from the reply's width/height",
                                    BAD_REQUEST, rid)

        _only_buffers(specs, {"foreground": rgb_check}, op, rid)
        if len(specs) != 1:
            raise ProtocolError("'foreground' reply must hold one 'foreground' buffer", BAD_REQUEST, rid)
    elif op == "status":
        _check_status_reply(h, rid)
        _only_buffers(specs, {}, op, rid)
    else:
        raise ProtocolError(f"unknown reply op {op!r}", BAD_REQUEST, rid)
    return None


def _check_seconds(v: Any, what: str, rid: Optional[RequestId]) -> float:
    f = _check_number(v, what, rid)
    if f < 0:
        raise ProtocolError(f"{what} must be >= 0, got {_short(v)}", BAD_REQUEST, rid)
    return f


def _check_status_reply(h: Dict[str, Any], rid: Optional[RequestId]) -> None:
    _get_int(h, "queued", rid)
    _get_int(h, "queued_bytes", rid)
    _check_seconds(h.get("uptime_s"), "'uptime_s'", rid)
    running = h.get("running")
    if running is not None:
        if not isinstance(running, dict):
            raise ProtocolError(f"field 'running' must be an object or null, got {_tname(running)}", BAD_REQUEST, rid)
        _get(running, "op", str, rid)
        _check_seconds(running.get("elapsed_s"), "'running.elapsed_s'", rid)
    req = h.get("request")
    if req is not None:
        if not isinstance(req, dict):
            raise ProtocolError(f"field 'request' must be an object, got {_tname(req)}", BAD_REQUEST, rid)
        try:
            _check_id(req.get("id"))
        except ProtocolError as exc:
            raise ProtocolError(f"'request.id': {exc.message}", BAD_REQUEST, rid) from None
        state = req.get("state")
        if not isinstance(state, str) or state not in REQUEST_STATES:
            raise ProtocolError(f"'request.state' must be one of {list(REQUEST_STATES)}, got {_short(state)}",
                                BAD_REQUEST, rid)
        _get_int(req, "ahead", rid)
        _check_seconds(req.get("elapsed_s"), "'request.elapsed_s'", rid)
