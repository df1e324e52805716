"""What a decoded message is (standard library only): :class:`ProtocolError` (every problem, with the
error code to answer), :class:`BufferSpec` (one pixel frame), :class:`Message` (header + buffers) and the
typed requests :func:`~.protocol_codec.decode` guarantees (``HelloRequest`` ... ``StatusRequest``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from .protocol_constants import (
    ALPHA_ORDER, BAD_REQUEST, Box, DEFAULT_TOP_N, DTYPES, IMAGE_ORDERS, MAX_SIDE_LIMIT, RequestId, TOO_LARGE,
)


class ProtocolError(ValueError):
    """Anything wrong with a message. ``code`` is the error code to answer with (see ERROR_CODES);
    ``request_id`` is the offending message's id when it could be read, else None."""

    def __init__(self, message: str, code: str = BAD_REQUEST, request_id: Optional[RequestId] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


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
