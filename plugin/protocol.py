"""clickmatte wire protocol v1: the single definition of what travels between plugin and daemon.

Standard library only (this file runs inside Krita's / GIMP's own Python; the daemon imports it
as ``clickmatte.plugin.protocol``).

Transport
---------
ZeroMQ multipart messages. The plugin uses a ``DEALER`` socket, the daemon a ``ROUTER``
(default endpoint :data:`DEFAULT_ENDPOINT`). Every message, request or reply, is::

    [MAGIC, header_json, *buffers]

- ``MAGIC`` = ``b"clickmatte/1"`` (the protocol major version is part of it);
- ``header_json``: a UTF-8 JSON object with ``"id"`` (request id: a string of 1..64 chars or a
  non-negative integer; echoed in the reply), ``"op"`` and the op's own fields; unknown fields are
  ignored (minor versions add fields, never remove or re-type them);
- ``buffers``: raw pixel frames (never base64, never pickle), one per entry of the header's
  ``"buffers"`` list, in the same order. Each entry is a :class:`BufferSpec` dict
  ``{"name", "width", "height", "channels", "dtype": "uint8"|"uint16", "order"}``; the frame must
  hold exactly ``width * height * channels * bytes_per_sample`` bytes, rows top to bottom, pixels
  interleaved, ``uint16`` little-endian. ``order`` names the channels in memory: ``"RGB"``,
  ``"BGR"``, ``"RGBA"``, ``"BGRA"`` (Krita's paint layers are ``BGRA``; send them as they are, the
  daemon converts) or ``"A"`` for single-channel alpha / uncertainty / mask buffers.

Ops (request -> reply ``op``)
-----------------------------
``hello``   ``{"protocol": "1.4", "client": str}`` (both optional)
            -> ``hello`` ``{"protocol": "1.4", "server": str, "device": str, "model": {...},
            "limits": {"max_message_bytes", "max_image_pixels", "min_side", "max_side",
            "max_sessions", "max_clicks", "max_regions", "max_queue_bytes", "max_top_n",
            "max_region_pixels"}}`` (the last three since daemons of issue 20; read a missing one as
            "no limit announced"). ``model`` holds the model's ``name``, ``weights`` (a file name) and
            ``digest`` (``"sha256:..."`` of the weights), never a path on the server.
            A ``protocol`` whose major is not 1 (or a different MAGIC) -> error
            ``unsupported_version``.
``open``    ``{"digest": "sha256:<64 hex>"?, "buffers": [image]?, "resume": bool?}`` where
            ``image`` is a buffer named ``"image"`` with 3 or 4 channels (uint8 or uint16). Send
            the digest alone first (cheap); if the daemon knows it the reply is ``open``, else
            ``need_pixels`` ``{"digest"}`` and the client sends the pixels (with or without the
            digest; when given it must match :func:`image_digest` of the pixels).
            ``resume`` (since 1.2, default false): instead of a new session, return the most
            recently used live session on the same image, with its state (last alpha, clicks), so
            that ``prev_alpha: "auto"`` keeps chaining for a client that keeps no session id of
            its own (each GIMP call is a new process); a new session only when there is none.
            -> ``open`` ``{"session": str, "width", "height", "digest", "cached": bool,
            "resumed": bool}`` (``resumed``, since 1.2: an existing session was returned; older
            daemons ignore ``resume`` and send no ``resumed``: read its absence as false).
``predict`` ``{"session", "clicks": [{"x", "y", "label": "fg"|"bg"}, ...], "preview": int|null,
            "alpha_dtype": "uint8"|"uint16", "uncertainty": bool, "prev_alpha": bool|"auto"}``.
            Clicks are full-image pixel coordinates (x right, y down). ``preview`` = N asks for
            outputs scaled so that their long side is at most N (live updates); null = full size.
            ``uncertainty`` (default true) adds the uncertainty buffer; ``prev_alpha`` (default
            false) feeds the session's last alpha back into the network; ``"auto"`` (since 1.1)
            does so when the clicks only add to those of the session's last prediction (the
            click-by-click use the network is trained for), gives the same clicks the same answer
            again, and starts afresh when clicks were moved or removed (the order of the clicks
            does not matter). ``buffers: [prev_alpha]`` (since 1.4, with ``"prev_alpha": true``):
            one uint8 buffer named ``"prev_alpha"`` of the image's size is the previous alpha fed
            back instead of the session's last one: an editor sends its own mask, so that the same
            document state gives the same matte even when the daemon has forgotten the session
            (a daemon older than 1.4 answers such a predict with ``bad_request``).
            -> ``predict`` :ref:`matte reply <matte>`.
``refine``  ``{"session", "top_n": int|null, "regions": [[x, y, w, h], ...]?, "buffers": [mask]?,
            "preview", "alpha_dtype", "uncertainty" (default false)}``: refine the session's last
            prediction at full resolution: the ``top_n`` (default :data:`DEFAULT_TOP_N`) most uncertain 64x64
            patches, or the patches covering ``regions`` / a selection ``mask`` (a buffer named
            ``"mask"``, 1 channel uint8, full image size, non-zero = selected; only selected
            pixels change). -> ``refine`` matte reply plus ``"patches": [[x, y, w, h], ...]``
            (may be fewer than ``top_n``, or none: on an image no larger than the daemon's
            working size only mostly-sure patches are picked, see ``--refine-max-soft``).
            ``top_n`` above ``limits.max_top_n``, or regions / a mask's bounding box covering more
            than ``limits.max_region_pixels``, is ``too_large``. A long refine runs in steps; any
            newer request for the same session makes the rest of it ``superseded`` (the session
            keeps the matte it had before the refine).
``close``   ``{"session"}`` -> ``close`` ``{"session", "closed": bool}`` (idempotent).
``status``  (since 1.3) ``{"request": <request id>?}``: how busy the daemon is, answered at once by its
            I/O thread (like ``hello``) while the model works, so that a client can tell a busy
            daemon from a gone one. -> ``status`` ``{"queued": int (requests waiting),
            "queued_bytes": int, "running": {"op": str, "elapsed_s": float} | null (the request the
            model is on), "uptime_s": float, "request": {"id", "state": "queued"|"running"|"unknown",
            "ahead": int, "elapsed_s": float}?}``. ``request`` (only when asked) describes the asking
            connection's request with that id: ``queued`` behind ``ahead`` others, ``running``, or
            ``unknown`` (already answered: its reply is on the way, or never received: the daemon
            restarted). ``elapsed_s``: seconds since the daemon received it. A daemon older than 1.3
            answers ``status`` with ``bad_request``; ``hello`` then serves as the sign of life.
``foreground`` ``{"session", "buffers": [alpha]}`` with one full-size uint8 ``alpha`` buffer (the mask
            as the editor holds it) -> ``foreground`` ``{"session", "width", "height", "buffers":
            [foreground]}``: the session image's foreground colours estimated under that alpha
            (pymatting's ``estimate_foreground_ml``: no spill of the old background at soft edges),
            RGB uint8, full size; the editor puts them on a new layer under the same mask
            ("decontaminate colours"). A daemon without it answers ``bad_request`` (unknown op).

Matte reply (``predict`` / ``refine``): ``{"session", "width", "height", "full_width",
"full_height", "uncertainty_scale": 0.25, "buffers": [alpha, uncertainty?]}``: ``alpha`` is one
channel (``order`` ``"A"``), ``uint8`` (0..255) or ``uint16`` (0..65535) as asked; ``uncertainty``
is one channel uint8 where 255 means a Laplace scale sigma >= ``uncertainty_scale`` (linear below).
``width``/``height`` are the buffers' size (smaller than ``full_*`` for previews). ``timing``
(optional, informative): ``{"model_ms", "encode_ms"}`` spent in the daemon.

Errors: any request may be answered ``{"op": "error", "id": <request id or null>, "code", "message"}``
with ``code`` one of :data:`ERROR_CODES`. ``superseded`` means a newer ``predict`` for the same
session arrived before this one was run ("latest click wins"): drop it silently. ``busy``: the
daemon's request queue (``limits.max_queue_bytes``) cannot take the message now; try again later.
A message larger than ``limits.max_message_bytes`` is ``too_large``; a single frame larger than
that makes the daemon drop the connection without a reply (ZeroMQ's ``MAXMSGSIZE``): check the
limits before sending very large images.

Python API: :func:`encode` / :func:`decode` turn a header dict + buffers into frames and back, and
validate everything (missing or mistyped fields, buffer sizes, message size, UTF-8/JSON); every
problem raises one exception type, :class:`ProtocolError`, whose ``code`` is the error code to reply
with. The ``*_request`` / ``*_reply`` helpers build valid headers.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

MAGIC = b"clickmatte/1"
MAGIC_PREFIX = b"clickmatte/"
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 4
PROTOCOL_VERSION = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"

DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024  # whole message; a 24 MP RGBA16 image is 192 MB
MAX_HEADER_BYTES = 1024 * 1024
MAX_ID_CHARS = 64
MAX_SESSION_CHARS = 128
MAX_CLICKS = 1000
MAX_REGIONS = 4096
MAX_TOP_N = 10000
DEFAULT_TOP_N = 8  # patches a refine without regions takes when top_n is absent or null
MAX_SIDE_LIMIT = 65535  # hard bound on any declared side; the daemon announces its own smaller limit
MAX_COORDINATE = 10 ** 9  # |x|, |y| of a click (anything beyond is outside every image anyway)
UNCERTAINTY_SCALE = 0.25

REQUEST_OPS = ("hello", "open", "predict", "refine", "close", "status", "foreground")
REQUEST_STATES = ("queued", "running", "unknown")  # status reply: what became of the asked request
REPLY_OPS = REQUEST_OPS + ("need_pixels", "error")

# error codes
BAD_REQUEST = "bad_request"
TOO_LARGE = "too_large"
UNKNOWN_SESSION = "unknown_session"
SUPERSEDED = "superseded"
INTERNAL = "internal"
UNSUPPORTED_VERSION = "unsupported_version"
BUSY = "busy"
ERROR_CODES = (BAD_REQUEST, TOO_LARGE, UNKNOWN_SESSION, SUPERSEDED, INTERNAL, UNSUPPORTED_VERSION, BUSY)

DTYPES = {"uint8": 1, "uint16": 2}
IMAGE_ORDERS = {3: ("RGB", "BGR"), 4: ("RGBA", "BGRA")}
ALPHA_ORDER = "A"

RequestId = Union[str, int]
Box = Tuple[int, int, int, int]


class ProtocolError(ValueError):
    """Anything wrong with a message. ``code`` is the error code to answer with (see ERROR_CODES);
    ``request_id`` is the offending message's id when it could be read, else None."""

    def __init__(self, message: str, code: str = BAD_REQUEST, request_id: Optional[RequestId] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class BufferSpec:
    """Describes one pixel frame: ``height`` rows of ``width`` pixels of ``channels`` samples of ``dtype``."""

    name: str
    width: int
    height: int
    channels: int
    dtype: str = "uint8"
    order: str = ALPHA_ORDER

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels * DTYPES[self.dtype]

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "width": self.width, "height": self.height,
                "channels": self.channels, "dtype": self.dtype, "order": self.order}

    @classmethod
    def from_dict(cls, d: Any, request_id: Optional[RequestId] = None) -> "BufferSpec":
        """Parse and validate a buffer description; raises :class:`ProtocolError`."""
        if not isinstance(d, dict):
            raise ProtocolError(f"buffer description must be an object, got {_tname(d)}", BAD_REQUEST, request_id)
        name = _get(d, "name", str, request_id)
        if not (1 <= len(name) <= 32):
            raise ProtocolError("buffer name must have 1..32 characters", BAD_REQUEST, request_id)
        w = _get_int(d, "width", request_id, lo=1, hi=MAX_SIDE_LIMIT)
        h = _get_int(d, "height", request_id, lo=1, hi=MAX_SIDE_LIMIT)
        c = _get_int(d, "channels", request_id, lo=1, hi=4)
        dtype = d.get("dtype", "uint8")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise ProtocolError(f"buffer {name!r}: dtype must be one of {sorted(DTYPES)}, got {_short(dtype)}",
                                BAD_REQUEST, request_id)
        order = d.get("order", ALPHA_ORDER if c == 1 else None)
        allowed = (ALPHA_ORDER,) if c == 1 else IMAGE_ORDERS.get(c, ())
        if not isinstance(order, str) or order not in allowed:
            raise ProtocolError(f"buffer {name!r}: order for {c} channel(s) must be one of {list(allowed)}, "
                                f"got {_short(order)}", BAD_REQUEST, request_id)
        return cls(name, w, h, c, dtype, order)


@dataclass
class Message:
    """A decoded message: the header dict and its buffers (bytes-like, same order as ``header["buffers"]``).

    ``request``: for a message decoded as a request, the typed request (:data:`Request`) with every
    field checked and its default applied; None for replies.
    """

    header: Dict[str, Any]
    buffers: List[Any] = field(default_factory=list)
    request: Optional["Request"] = None

    @property
    def op(self) -> str:
        return self.header["op"]

    @property
    def id(self) -> Optional[RequestId]:
        return self.header.get("id")

    @property
    def specs(self) -> List[BufferSpec]:
        return [BufferSpec.from_dict(d) for d in self.header.get("buffers", [])]

    def buffer(self, name: str) -> Optional[Tuple[BufferSpec, Any]]:
        """``(spec, data)`` of the buffer called ``name``, or None."""
        for spec, data in zip(self.specs, self.buffers):
            if spec.name == name:
                return spec, data
        return None


# -- typed requests (what decode guarantees) -------------------------------------------------------
Buffer = Tuple[BufferSpec, Any]  # a checked buffer description and its bytes (memoryview)


@dataclass(frozen=True)
class HelloRequest:
    """``hello``: ``version`` is the ``(major, minor)`` the client speaks (None when it did not say),
    ``protocol`` the text it sent."""

    id: RequestId
    version: Optional[Tuple[int, int]] = None
    protocol: Optional[str] = None
    client: str = ""


@dataclass(frozen=True)
class OpenRequest:
    """``open``: the ``image`` buffer and/or the ``digest`` of an image the daemon may hold."""

    id: RequestId
    digest: Optional[str] = None
    image: Optional[Buffer] = None
    resume: bool = False


@dataclass(frozen=True)
class PredictRequest:
    """``predict``: ``clicks`` as ``[{"x": float, "y": float, "label": "fg"|"bg"}]``."""

    id: RequestId
    session: str
    clicks: List[Dict[str, Any]] = field(default_factory=list)
    preview: Optional[int] = None
    alpha_dtype: str = "uint8"
    uncertainty: bool = True
    prev_alpha: Union[bool, str] = False
    #: protocol 1.4: the editor's own previous alpha (a 1-channel uint8 buffer of any size here; the daemon
    #: checks it against the image), fed back instead of the session's last alpha
    prev_buffer: Optional[Buffer] = None


@dataclass(frozen=True)
class RefineRequest:
    """``refine``: ``top_n`` is :data:`DEFAULT_TOP_N` when absent, None (no cap on regions / a mask) when null."""

    id: RequestId
    session: str
    top_n: Optional[int] = DEFAULT_TOP_N
    regions: Optional[List[Box]] = None
    mask: Optional[Buffer] = None
    preview: Optional[int] = None
    alpha_dtype: str = "uint8"
    uncertainty: bool = False


@dataclass(frozen=True)
class CloseRequest:
    id: RequestId
    session: str


@dataclass(frozen=True)
class ForegroundRequest:
    """``foreground``: ``alpha`` is a 1-channel uint8 buffer."""

    id: RequestId
    session: str
    alpha: Buffer


@dataclass(frozen=True)
class StatusRequest:
    """``status``: ``request`` is the id of the asker's request to report on, if any."""

    id: RequestId
    request: Optional[RequestId] = None


Request = Union[HelloRequest, OpenRequest, PredictRequest, RefineRequest, CloseRequest, ForegroundRequest,
                StatusRequest]


# -- small validators -----------------------------------------------------------------------------
def _tname(v: Any) -> str:
    return type(v).__name__


def _short(v: Any, n: int = 40) -> str:
    """``repr(v)`` cut to ``n`` characters, for error messages; never raises (huge ints, deep nesting)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10 ** 30:
        return f"an integer of {len(str(abs(v)))} digits" if abs(v) < 10 ** 4000 else "a huge integer"
    try:
        text = repr(v)
    except Exception:  # RecursionError, ValueError (int digits limit), ...
        return f"a {_tname(v)}"
    return text if len(text) <= n else text[: n - 3] + "..."


def _get(d: Dict[str, Any], key: str, typ: type, rid: Optional[RequestId], default: Any = ..., ) -> Any:
    if key not in d or (d[key] is None and default is not ...):
        if default is ...:
            raise ProtocolError(f"missing field {key!r}", BAD_REQUEST, rid)
        return default
    v = d[key]
    if typ is int:
        return _get_int(d, key, rid)
    if not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
        raise ProtocolError(f"field {key!r} must be {typ.__name__}, got {_tname(v)}", BAD_REQUEST, rid)
    return v


def _get_int(d: Dict[str, Any], key: str, rid: Optional[RequestId], lo: int = 0, hi: int = 2 ** 62,
             optional: bool = False) -> Any:
    if key not in d or d[key] is None:
        if optional:
            return None
        raise ProtocolError(f"missing field {key!r}", BAD_REQUEST, rid)
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"field {key!r} must be an integer, got {_tname(v)}", BAD_REQUEST, rid)
    if not lo <= v <= hi:
        code = TOO_LARGE if v > hi and key in ("width", "height") else BAD_REQUEST
        raise ProtocolError(f"field {key!r} must be within {lo}..{hi}, got {_short(v)}", code, rid)
    return v


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


# -- encode / decode -------------------------------------------------------------------------------
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


# -- header builders (clients and daemon) ----------------------------------------------------------
def hello_request(rid: RequestId, client: str = "") -> Dict[str, Any]:
    return {"id": rid, "op": "hello", "protocol": PROTOCOL_VERSION, "client": client}


def open_request(rid: RequestId, digest: Optional[str] = None, image: Optional[BufferSpec] = None,
                 resume: bool = False) -> Dict[str, Any]:
    h: Dict[str, Any] = {"id": rid, "op": "open"}
    if resume is not False:  # absent unless asked: the request stays what a 1.1 daemon expects
        h["resume"] = resume
    if digest is not None:
        h["digest"] = digest
    if image is not None:
        h["buffers"] = [image.to_dict()]
    return h


def predict_request(rid: RequestId, session: str, clicks: Iterable[Dict[str, Any]], preview: Optional[int] = None,
                    alpha_dtype: str = "uint8", uncertainty: bool = True,
                    prev_alpha: Union[bool, str] = "auto", prev_buffer: Optional[BufferSpec] = None) -> Dict[str, Any]:
    """A predict header; ``prev_buffer`` (protocol 1.4): the spec of a ``prev_alpha`` buffer sent with it
    (``prev_alpha`` is then true)."""
    h: Dict[str, Any] = {"id": rid, "op": "predict", "session": session, "clicks": [dict(c) for c in clicks],
                         "preview": preview, "alpha_dtype": alpha_dtype, "uncertainty": uncertainty,
                         "prev_alpha": True if prev_buffer is not None else prev_alpha}
    if prev_buffer is not None:
        h["buffers"] = [prev_buffer.to_dict()]
    return h


def refine_request(rid: RequestId, session: str, top_n: Optional[int] = DEFAULT_TOP_N, regions: Optional[Iterable[Sequence[int]]] = None,
                   mask: Optional[BufferSpec] = None, preview: Optional[int] = None, alpha_dtype: str = "uint8",
                   uncertainty: bool = False) -> Dict[str, Any]:
    h: Dict[str, Any] = {"id": rid, "op": "refine", "session": session, "top_n": top_n, "preview": preview,
                         "alpha_dtype": alpha_dtype, "uncertainty": uncertainty}
    if regions is not None:
        h["regions"] = [list(r) for r in regions]
    if mask is not None:
        h["buffers"] = [mask.to_dict()]
    return h


def close_request(rid: RequestId, session: str) -> Dict[str, Any]:
    return {"id": rid, "op": "close", "session": session}


def foreground_request(rid: RequestId, session: str, alpha: BufferSpec) -> Dict[str, Any]:
    """Decontaminate: the session image's foreground colours estimated under ``alpha`` (a full-size
    uint8 mask); the reply's buffer ``foreground`` is RGB uint8 of the image's size."""
    return {"id": rid, "op": "foreground", "session": session, "buffers": [alpha.to_dict()]}


def status_request(rid: RequestId, request: Optional[RequestId] = None) -> Dict[str, Any]:
    h: Dict[str, Any] = {"id": rid, "op": "status"}
    if request is not None:
        h["request"] = request
    return h


def error_reply(rid: Optional[RequestId], code: str, message: str) -> Dict[str, Any]:
    return {"id": rid, "op": "error", "code": code, "message": message}


def hello_reply(rid: RequestId, server: str, device: str, model: Dict[str, Any],
                limits: Dict[str, Any]) -> Dict[str, Any]:
    """``hello`` reply: this protocol's version, the server's name and version, its device, what model
    runs (name, weights, settings) and its limits (see ``hello`` above)."""
    return {"id": rid, "op": "hello", "protocol": PROTOCOL_VERSION, "server": server, "device": device,
            "model": model, "limits": limits}


def open_reply(rid: RequestId, session: str, width: int, height: int, digest: str, cached: bool,
               resumed: bool) -> Dict[str, Any]:
    return {"id": rid, "op": "open", "session": session, "width": width, "height": height, "digest": digest,
            "cached": cached, "resumed": resumed}


def need_pixels_reply(rid: RequestId, digest: str) -> Dict[str, Any]:
    """The answer to an ``open`` by digest alone for an image the daemon does not hold."""
    return {"id": rid, "op": "need_pixels", "digest": digest}


def matte_reply(rid: RequestId, op: str, session: str, specs: Sequence[BufferSpec], full_width: int,
                full_height: int, patches: Optional[Iterable[Sequence[int]]] = None,
                timing: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``predict`` / ``refine`` reply (``op``) for the buffers ``specs`` (``alpha`` first, then optionally
    ``uncertainty``, all of one size); ``patches``: the boxes a refine changed."""
    if op not in ("predict", "refine") or not specs:
        raise ValueError(f"a matte reply is for predict or refine with an alpha buffer, got {op!r}, {len(specs)}")
    h: Dict[str, Any] = {"id": rid, "op": op, "session": session, "width": specs[0].width,
                         "height": specs[0].height, "full_width": full_width, "full_height": full_height,
                         "uncertainty_scale": UNCERTAINTY_SCALE, "buffers": [s.to_dict() for s in specs]}
    if patches is not None:
        h["patches"] = [list(b) for b in patches]
    if timing is not None:
        h["timing"] = timing
    return h


def close_reply(rid: RequestId, session: str, closed: bool) -> Dict[str, Any]:
    return {"id": rid, "op": "close", "session": session, "closed": closed}


def foreground_reply(rid: RequestId, session: str, width: int, height: int,
                     timing: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``foreground`` reply: one RGB uint8 buffer ``foreground`` of ``width`` x ``height``."""
    h: Dict[str, Any] = {"id": rid, "op": "foreground", "session": session, "width": width, "height": height,
                         "buffers": [BufferSpec("foreground", width, height, 3, "uint8", "RGB").to_dict()]}
    if timing is not None:
        h["timing"] = timing
    return h


def status_reply(rid: RequestId, queued: int, queued_bytes: int, running: Optional[Dict[str, Any]],
                 uptime_s: float, request: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``status`` reply; ``running`` is ``{"op", "elapsed_s"}`` or None, ``request`` (when asked)
    ``{"id", "state", "ahead", "elapsed_s"}``."""
    h: Dict[str, Any] = {"id": rid, "op": "status", "queued": queued, "queued_bytes": queued_bytes,
                         "running": running, "uptime_s": uptime_s}
    if request is not None:
        h["request"] = request
    return h
