"""What the daemon's answers become on the client side (standard library only, no pyzmq): the errors
(:class:`ClientError`, :class:`DaemonError` with the protocol's error code, :class:`DaemonTimeout`), the
results (:class:`ServerInfo`, :class:`OpenResult`, :class:`MatteResult`, :class:`ForegroundResult`,
:class:`StatusInfo`) and :class:`Reply`, one answer as ``DaemonClient.poll`` returns it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .protocol import BufferSpec, SUPERSEDED, UNCERTAINTY_SCALE


class ClientError(Exception):
    """Base class of what DaemonClient raises."""

    code = "client"

    def __init__(self, message: str, request_id: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class DaemonError(ClientError):
    """The daemon answered with an error reply (``code``: bad_request, too_large, unknown_session,
    superseded, internal, unsupported_version, busy, ...), or sent a reply this client cannot read
    (code ``bad_reply``)."""

    def __init__(self, code: str, message: str, request_id: Optional[str] = None) -> None:
        super().__init__(f"{code}: {message}", request_id)
        self.code = code
        self.message = message


class DaemonTimeout(ClientError, TimeoutError):
    """No reply within the timeout (daemon down, busy, unreachable, or our CURVE key not allowed)."""

    code = "timeout"


@dataclass
class ServerInfo:
    """``hello`` result: protocol version, server version, device ("cpu"/"cuda:0"), model info, limits."""

    protocol: str
    server: str
    device: str
    model: Dict[str, Any]
    limits: Dict[str, Any]
    header: Dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class OpenResult:
    """``open`` result: the session id and the image size the daemon holds; ``cached`` = pixels were not needed;
    ``resumed`` = an existing session of this image was returned (``open(..., resume=True)``)."""

    session: str
    width: int
    height: int
    digest: str
    cached: bool
    resumed: bool = False


@dataclass
class MatteResult:
    """``predict``/``refine`` result. ``alpha``: ``height`` rows x ``width`` samples of ``dtype``
    (``"uint8"`` 0..255 or ``"uint16"`` little-endian 0..65535). ``uncertainty``: uint8, same size,
    linear in the Laplace scale sigma with 255 at ``uncertainty_scale`` and above, or None.
    ``width``/``height`` are smaller than ``full_width``/``full_height`` for previews.
    ``patches``: the full-resolution boxes ``(x, y, w, h)`` a refine changed (empty for predict).
    ``timing``: the daemon's own times in ms (``model_ms``: the network, ``encode_ms``: making the reply)."""

    session: str
    width: int
    height: int
    dtype: str
    alpha: bytes
    uncertainty: Optional[bytes]
    full_width: int
    full_height: int
    uncertainty_scale: float = UNCERTAINTY_SCALE
    patches: List[Tuple[int, int, int, int]] = field(default_factory=list)
    timing: Dict[str, float] = field(default_factory=dict)


@dataclass
class ForegroundResult:
    """``foreground`` result: ``rgb`` holds ``height`` rows x ``width`` RGB uint8 pixels, the image's
    foreground colours estimated under the alpha that was sent (no background spill)."""

    session: str
    width: int
    height: int
    rgb: bytes


@dataclass
class StatusInfo:
    """``status`` result (protocol 1.3): requests ``queued`` (and their bytes), the request the model is
    on (``running_op`` / ``running_s``, None when idle), the daemon's ``uptime_s``, and, when asked
    about a request, its ``state`` (``"queued"`` behind ``ahead`` others, ``"running"``, ``"unknown"``:
    answered already or never received) and ``elapsed_s`` since the daemon received it."""

    queued: int
    queued_bytes: int
    running_op: Optional[str]
    running_s: Optional[float]
    uptime_s: float
    request: Optional[str] = None
    state: Optional[str] = None
    ahead: int = 0
    elapsed_s: float = 0.0


@dataclass
class Reply:
    """A finished request, as returned by :meth:`DaemonClient.poll`.

    ``op`` is the reply op (``"predict"``, ``"need_pixels"``, ``"error"``, ...) or ``"timeout"``;
    ``request_op`` the op that was sent; ``error`` is None on success.
    """

    id: str
    request_op: str
    op: str
    header: Dict[str, Any]
    buffers: List[bytes]
    error: Optional[ClientError] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def superseded(self) -> bool:
        return isinstance(self.error, DaemonError) and self.error.code == SUPERSEDED

    @property
    def need_pixels(self) -> bool:
        return self.op == "need_pixels"

    def result(self) -> Any:
        """The parsed result (ServerInfo, OpenResult, MatteResult, or bool for close); raises ``error``.

        A ``need_pixels`` reply has no result: :class:`DaemonError` with code ``need_pixels``. A reply
        whose fields this client cannot read raises :class:`DaemonError` with code ``bad_reply``.
        """
        if self.error is not None:
            raise self.error
        try:
            return self._parse()
        except ClientError:
            raise
        except Exception as exc:  # KeyError, TypeError, ValueError, ...: a reply we cannot read
            raise DaemonError("bad_reply", f"unreadable {self.op!r} reply ({type(exc).__name__}: {exc})"[:300],
                              self.id) from None

    def _parse(self) -> Any:
        h = self.header
        if self.op == "hello":
            return ServerInfo(h["protocol"], h["server"], h["device"], dict(h["model"]), dict(h["limits"]), h)
        if self.op == "open":
            digest = h.get("digest", "")
            return OpenResult(h["session"], h["width"], h["height"], digest if isinstance(digest, str) else "",
                              h["cached"], h.get("resumed") is True)
        if self.op == "need_pixels":
            raise DaemonError("need_pixels", "the daemon does not have this image; send its pixels", self.id)
        if self.op in ("predict", "refine"):
            specs = [BufferSpec.from_dict(d) for d in h.get("buffers", [])]
            bufs = {s.name: (s, b) for s, b in zip(specs, self.buffers)}
            if "alpha" not in bufs:
                raise DaemonError("bad_reply", f"{self.op!r} reply without an alpha buffer", self.id)
            a_spec, alpha = bufs["alpha"]
            unc = bufs.get("uncertainty")
            return MatteResult(
                session=h["session"], width=h["width"], height=h["height"], dtype=a_spec.dtype, alpha=alpha,
                uncertainty=unc[1] if unc else None, full_width=h["full_width"], full_height=h["full_height"],
                uncertainty_scale=float(h.get("uncertainty_scale", UNCERTAINTY_SCALE)),
                patches=[tuple(int(v) for v in p) for p in h.get("patches", [])],  # type: ignore[misc]
                timing=dict(h["timing"]) if isinstance(h.get("timing"), dict) else {},
            )
        if self.op == "foreground":
            specs = [BufferSpec.from_dict(d) for d in h.get("buffers", [])]
            if len(specs) != 1 or specs[0].name != "foreground" or len(self.buffers) != 1:
                raise DaemonError("bad_reply", "'foreground' reply without its foreground buffer", self.id)
            return ForegroundResult(session=h["session"], width=int(h["width"]), height=int(h["height"]),
                                    rgb=self.buffers[0])
        if self.op == "close":
            return bool(h["closed"])
        if self.op == "status":
            run, req = h.get("running"), h.get("request")
            return StatusInfo(
                queued=int(h["queued"]), queued_bytes=int(h["queued_bytes"]),
                running_op=str(run["op"]) if run else None,
                running_s=float(run["elapsed_s"]) if run else None, uptime_s=float(h["uptime_s"]),
                request=str(req["id"]) if req else None, state=str(req["state"]) if req else None,
                ahead=int(req["ahead"]) if req else 0, elapsed_s=float(req["elapsed_s"]) if req else 0.0)
        raise DaemonError("bad_reply", f"unexpected reply op {self.op!r}", self.id)
