"""Frames and back (standard library only): :func:`encode` checks a header + buffers and returns the
multipart frames; :func:`decode` reads frames into a checked :class:`~.protocol_messages.Message` (size,
UTF-8, strict JSON, buffer sizes); :func:`peek_request_id` reads only the id."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from .protocol_constants import (
    BAD_REQUEST, DEFAULT_MAX_MESSAGE_BYTES, MAGIC, MAGIC_PREFIX, MAX_HEADER_BYTES, RequestId, TOO_LARGE,
    UNSUPPORTED_VERSION,
)
from .protocol_messages import BufferSpec, Message, ProtocolError, _tname
from .protocol_checks import _check_id, validate_header


def _as_view(frame: Any) -> memoryview:
    buf = getattr(frame, "buffer", frame)  # zmq.Frame -> its buffer
    try:
        return memoryview(buf)
    except TypeError as exc:
        raise ProtocolError(f"frame is not bytes-like: {_tname(frame)}") from exc


def encode(header: Dict[str, Any], buffers: Sequence[Any] = (), kind: str = "request",
           max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> List[Any]:
    """Validate ``header`` (+ ``buffers``, bytes-like, described by ``header["buffers"]``) and return the
    frames ``[MAGIC, header_json, *buffers]`` ready for ``send_multipart``. Raises :class:`ProtocolError`."""
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a dict, got {_tname(header)}")
    try:
        text = json.dumps(header, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"header cannot be encoded as JSON: {exc}", BAD_REQUEST, header.get("id")) from None
    frames = [MAGIC, text.encode("utf-8"), *buffers]
    decode(frames, kind=kind, max_bytes=max_bytes)  # one set of rules for both directions
    return frames


def decode(frames: Sequence[Any], kind: str = "request", max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Message:
    """Parse and validate ``[MAGIC, header_json, *buffers]`` (bytes-like or ``zmq.Frame`` items).

    ``kind`` is ``"request"`` (daemon side) or ``"reply"`` (client side). Returns a :class:`Message`
    whose buffers are memoryviews of the frames. Raises :class:`ProtocolError` for anything wrong
    (``code`` ``too_large`` for oversized messages or declared sizes, ``unsupported_version`` for
    another protocol major, else ``bad_request``), with ``request_id`` set once the header's id is read.

    Total: whatever the frames hold (any JSON type or size in any field), the only exception it
    raises is :class:`ProtocolError` (a check this module forgot still ends as ``bad_request``).
    """
    if kind not in ("request", "reply"):
        raise ValueError(f"kind must be 'request' or 'reply', got {kind!r}")
    seen: List[Optional[RequestId]] = [None]
    try:
        return _decode(frames, kind, max_bytes, seen)
    except ProtocolError:
        raise
    except MemoryError:
        raise ProtocolError("message too large to parse", TOO_LARGE, seen[0]) from None
    except Exception as exc:  # RecursionError, TypeError, OverflowError, ...: still the caller's bad message
        raise ProtocolError(f"malformed message ({type(exc).__name__})", BAD_REQUEST, seen[0]) from None


def peek_request_id(header_frame: Any) -> Optional[RequestId]:
    """The valid ``id`` of a header frame (bytes-like), or None; never raises. For replies to messages
    refused before they are decoded (too large, queue full)."""
    try:
        view = memoryview(getattr(header_frame, "buffer", header_frame))
        if view.nbytes > MAX_HEADER_BYTES:
            return None
        h = json.loads(view.tobytes().decode("utf-8"), parse_constant=_reject_constant)
        return _check_id(h["id"]) if isinstance(h, dict) and h.get("id") is not None else None
    except Exception:
        return None


def _decode(frames: Sequence[Any], kind: str, max_bytes: int, seen: List[Optional[RequestId]]) -> Message:
    if not isinstance(frames, (list, tuple)) or len(frames) < 2:
        raise ProtocolError(f"a message needs at least 2 frames [magic, header], got "
                            f"{len(frames) if isinstance(frames, (list, tuple)) else _tname(frames)}")
    views = [_as_view(f) for f in frames]
    total = sum(v.nbytes for v in views)
    magic = views[0].tobytes() if views[0].nbytes <= 64 else b""
    if magic != MAGIC:
        if magic.startswith(MAGIC_PREFIX):
            raise ProtocolError(f"unsupported protocol {magic.decode('ascii', 'replace')!r}; this side speaks "
                                f"{MAGIC.decode()}", UNSUPPORTED_VERSION)
        raise ProtocolError(f"first frame must be {MAGIC!r}, got {magic[:32]!r}")
    if views[1].nbytes > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {views[1].nbytes} bytes exceeds {MAX_HEADER_BYTES}", TOO_LARGE)
    try:
        text = views[1].tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"header is not valid UTF-8: {exc}") from None
    try:
        header = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"header is not valid JSON: {str(exc)[:200]}", BAD_REQUEST,
                            _salvage_id(text)) from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a JSON object, got {_tname(header)}")
    rid = _check_id(header["id"]) if "id" in header and header["id"] is not None else None
    seen[0] = rid
    if rid is None and not (kind == "reply" and header.get("op") == "error"):
        raise ProtocolError("missing field 'id'")
    op = header.get("op")
    if not isinstance(op, str):
        raise ProtocolError(f"field 'op' must be a string, got {_tname(op)}", BAD_REQUEST, rid)
    if total > max_bytes:
        raise ProtocolError(f"message of {total} bytes exceeds the limit of {max_bytes}", TOO_LARGE, rid)
    raw_specs = header.get("buffers", [])
    if not isinstance(raw_specs, list):
        raise ProtocolError(f"field 'buffers' must be a list, got {_tname(raw_specs)}", BAD_REQUEST, rid)
    if len(raw_specs) > 8:
        raise ProtocolError(f"at most 8 buffers, got {len(raw_specs)}", BAD_REQUEST, rid)
    specs = [BufferSpec.from_dict(d, rid) for d in raw_specs]
    if len({s.name for s in specs}) != len(specs):
        raise ProtocolError("buffer names must be unique", BAD_REQUEST, rid)
    declared = sum(s.nbytes for s in specs)
    if declared > max_bytes:
        raise ProtocolError(f"declared buffers of {declared} bytes exceed the limit of {max_bytes}", TOO_LARGE, rid)
    if len(views) - 2 != len(specs):
        raise ProtocolError(f"header describes {len(specs)} buffer(s) but {len(views) - 2} frame(s) follow it",
                            BAD_REQUEST, rid)
    for s, v in zip(specs, views[2:]):
        if v.nbytes != s.nbytes:
            raise ProtocolError(f"buffer {s.name!r}: {s.width}x{s.height}x{s.channels} {s.dtype} needs {s.nbytes} "
                                f"bytes, got {v.nbytes}", BAD_REQUEST, rid)
    request = validate_header(header, specs, kind, views[2:])
    return Message(header, views[2:], request)


def _salvage_id(text: str) -> Optional[RequestId]:
    """The request id of a header that is not strict JSON only because of NaN / Infinity (so the error
    can still be matched to its request); None when there is no valid id to read."""
    try:
        h = json.loads(text)
        return _check_id(h["id"]) if isinstance(h, dict) and h.get("id") is not None else None
    except Exception:  # noqa: BLE001 - anything unreadable simply has no id
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
