"""DaemonClient: talk to a clickmatte daemon from an editor plugin (standard library + pyzmq only).

Two styles, usable on the same client (from ONE thread; ZeroMQ sockets are not thread-safe):

Blocking (scripts, tests, batch jobs)::

    c = DaemonClient("tcp://127.0.0.1:5557", timeout_ms=10000)
    info = c.hello()                                   # ServerInfo: device, model, limits
    s = c.open(pixels, width, height, channels=4, order="BGRA")   # OpenResult (.session)
    m = c.predict(s.session, [{"x": 10, "y": 20, "label": "fg"}], preview=512)
    m.alpha        # bytes, m.height rows of m.width samples of m.dtype ("uint8"/"uint16")
    m.uncertainty  # bytes, uint8, same size (255 = very unsure), or None
    r = c.refine(s.session, top_n=8)                   # MatteResult with .patches [(x, y, w, h)]
    st = c.status()                                    # StatusInfo: queue, what the model is on
    c.close(s.session); c.disconnect()

Errors raise :class:`DaemonError` (``.code``, ``.message``; codes in ``protocol.ERROR_CODES``); no
answer within ``timeout_ms`` raises :class:`DaemonTimeout` after ``retries`` extra tries of the
requests that are safe to repeat (Lazy Pirate: the socket is closed and re-created before each
retry, so a dead daemon never makes a call hang).

Non-blocking (editor UI timers)::

    rid = c.send_predict(session, clicks, preview=512)   # returns at once
    ...
    reply = c.poll(0)          # a finished Reply or None; never blocks longer than timeout_ms given
    if reply is not None and reply.ok:
        m = reply.result()     # MatteResult (or OpenResult / ServerInfo / bool for close)
    elif reply is not None and reply.superseded:
        pass                   # a newer predict for the session replaced it: ignore

Busy or gone? ``send_status(request=rid)`` asks the daemon (answered at once, even while the model
works) what became of request ``rid``: its reply says ``queued`` / ``running`` / ``unknown`` and for
how long (:class:`StatusInfo`). A long request is best sent with a long ``timeout_ms`` and watched
with short ``status`` requests: a daemon that answers them is working; one that does not is gone.

A pending request with no reply after ``timeout_ms`` comes back from ``poll`` as a Reply whose
``error`` is a :class:`DaemonTimeout` (and the socket is re-created). Non-blocking sends are not
retried.

CURVE (daemon on another machine): pass ``server_key`` (the server's public key, Z85 text or the
path of its ``.key`` file) and ``client_keys`` (``(public, secret)`` Z85, or the path of this
client's ``.key_secret`` file), as made by ``clickmatte-keys``. A client whose key the daemon does
not allow gets no answer at all, i.e. :class:`DaemonTimeout`.

The errors, the result types and :class:`Reply` are in ``client_replies.py`` (importable from here).

Imports are relative on purpose: the installer copies ``plugin/`` into the editors' plugin folders,
where ``clickmatte`` is not importable.
"""
from __future__ import annotations

import itertools
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import zmq

from .client_replies import (  # noqa: F401 - importable from here as before
    ClientError, DaemonError, DaemonTimeout, ForegroundResult, MatteResult, OpenResult, Reply, ServerInfo,
    StatusInfo,
)
from .protocol import (
    DEFAULT_ENDPOINT, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_TOP_N, BufferSpec, Message, ProtocolError,
    close_request, decode, encode, foreground_request, hello_request, image_digest, open_request,
    predict_request, refine_request, status_request,
)

KeyLike = Union[str, bytes, os.PathLike]

# ops that may be sent again after a timeout without changing the result
RETRYABLE_OPS = frozenset({"hello", "open", "predict", "close", "status"})


@dataclass
class _Pending:
    op: str
    sent_at: float
    timeout_s: float


def _load_public_key(key: KeyLike) -> bytes:
    if isinstance(key, (bytes, str)) and len(key) == 40 and not os.path.exists(os.fsdecode(key)):
        return key.encode("ascii") if isinstance(key, str) else key
    import zmq.auth  # part of pyzmq

    public, _ = zmq.auth.load_certificate(os.fspath(key))
    return public


def _load_key_pair(keys: Union[KeyLike, Tuple[KeyLike, KeyLike]]) -> Tuple[bytes, bytes]:
    if isinstance(keys, tuple):
        if len(keys) != 2:
            raise ValueError("client_keys must be (public, secret) or the path of a .key_secret file")
        pub, sec = (k.encode("ascii") if isinstance(k, str) else bytes(k) for k in keys)  # type: ignore[arg-type]
        return pub, sec
    import zmq.auth

    public, secret = zmq.auth.load_certificate(os.fspath(keys))
    if secret is None:
        raise ValueError(f"{os.fspath(keys)} holds no secret key (use the .key_secret file)")
    return public, secret


class DaemonClient:
    """A DEALER connection to one daemon ``endpoint`` (e.g. ``tcp://127.0.0.1:5557`` or ``ipc:///path``).

    ``timeout_ms``: how long one try waits for its reply; ``retries``: extra tries of retryable ops
    (hello, open, predict, close) in the blocking API; ``max_message_bytes``: larger replies are refused.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout_ms: int = 10000,
        server_key: Optional[KeyLike] = None,
        client_keys: Optional[Union[KeyLike, Tuple[KeyLike, KeyLike]]] = None,
        retries: int = 1,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        client_name: str = "clickmatte-client",
    ) -> None:
        if timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be > 0, got {timeout_ms}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if (server_key is None) != (client_keys is None):
            raise ValueError("CURVE needs both server_key and client_keys (or neither)")
        self.endpoint = endpoint
        self.timeout_ms = int(timeout_ms)
        self.retries = int(retries)
        self.max_message_bytes = int(max_message_bytes)
        self.client_name = client_name
        self._server_key = _load_public_key(server_key) if server_key is not None else None
        self._client_keys = _load_key_pair(client_keys) if client_keys is not None else None
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._pending: "OrderedDict[str, _Pending]" = OrderedDict()
        self._done: "OrderedDict[str, Reply]" = OrderedDict()
        self._ctx: Optional[zmq.Context] = zmq.Context()
        self._sock: Optional[zmq.Socket] = None
        self._connect()

    # -- socket lifecycle ----------------------------------------------------------------------
    def _connect(self) -> None:
        assert self._ctx is not None
        s = self._ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        if self._server_key is not None and self._client_keys is not None:
            s.curve_serverkey = self._server_key
            s.curve_publickey, s.curve_secretkey = self._client_keys
        s.connect(self.endpoint)
        self._sock = s

    def _reset(self, reason: str) -> None:
        """Lazy Pirate: drop the socket (and any late replies), fail every pending request, reconnect."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        for rid, p in list(self._pending.items()):
            err = DaemonTimeout(f"no reply to {p.op!r} from {self.endpoint} within {p.timeout_s * 1000:.0f} ms "
                                f"({reason})", rid)
            self._done[rid] = Reply(rid, p.op, "timeout", {}, [], err)
        self._pending.clear()
        self._connect()

    def disconnect(self) -> None:
        """Close the socket and its context; the client cannot be used afterwards."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self._pending.clear()

    def __enter__(self) -> "DaemonClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.disconnect()

    @property
    def pending(self) -> List[str]:
        """Ids of requests sent and not yet answered."""
        return list(self._pending)

    # -- low level -----------------------------------------------------------------------------
    def send_request(self, header: Dict[str, Any], buffers: Sequence[Any] = (), timeout_ms: Optional[int] = None) -> str:
        """Send a request built by a ``protocol.*_request`` helper (its ``id`` is replaced); returns the id.

        Raises :class:`ProtocolError` (a ValueError) if the request is malformed, before sending anything.
        """
        if self._sock is None:
            raise ClientError("client is disconnected")
        rid = f"{self._prefix}-{next(self._counter)}"
        header = dict(header, id=rid)
        frames = encode(header, list(buffers), kind="request", max_bytes=self.max_message_bytes)
        t = (timeout_ms if timeout_ms is not None else self.timeout_ms) / 1000.0
        self._send_frames(rid, frames)
        self._pending[rid] = _Pending(header["op"], time.monotonic(), t)
        return rid

    def _send_frames(self, rid: str, frames: List[Any]) -> None:
        assert self._sock is not None
        try:
            self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            raise DaemonTimeout(f"cannot queue a request to {self.endpoint}: send queue full", rid) from None

    def _receive(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for one message and file it under its request id; False if none came."""
        assert self._sock is not None
        if not self._sock.poll(max(0, int(timeout_s * 1000))):
            return False
        frames = self._sock.recv_multipart(copy=False)
        try:
            msg: Optional[Message] = decode(frames, kind="reply", max_bytes=self.max_message_bytes)
            rid = msg.id  # type: ignore[union-attr]
        except Exception as exc:  # decode raises only ProtocolError; anything else is still an unreadable reply
            perr = exc if isinstance(exc, ProtocolError) else ProtocolError(f"{type(exc).__name__}: {exc}"[:200])
            msg, rid = None, perr.request_id
            if rid is None and perr.code == "unsupported_version" and self._pending:
                rid = next(iter(self._pending))  # a daemon of another major version: fail the oldest request
            err: Optional[ClientError] = DaemonError(perr.code if perr.code == "unsupported_version" else "bad_reply",
                                                     f"unreadable reply: {perr}", str(rid))
        if rid is None or str(rid) not in self._pending:
            return True  # a stale reply (to a request that already timed out), or an error without an id
        rid = str(rid)
        p = self._pending.pop(rid)
        if msg is None:
            self._done[rid] = Reply(rid, p.op, "error", {}, [], err)
            return True
        h = msg.header
        if h["op"] == "error":
            err = DaemonError(h["code"], h["message"], rid)
        elif h["op"] != p.op and not (p.op == "open" and h["op"] == "need_pixels"):
            err = DaemonError("bad_reply", f"reply op {h['op']!r} to a {p.op!r} request", rid)
        else:
            err = None
        self._done[rid] = Reply(rid, p.op, h["op"], h, [bytes(b) for b in msg.buffers], err)
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        for p in self._pending.values():
            if now - p.sent_at >= p.timeout_s:
                self._reset("timed out")
                return

    def poll(self, timeout_ms: int = 0) -> Optional[Reply]:
        """Return one finished non-blocking request (oldest first), or None if none finished within
        ``timeout_ms``. Requests past their timeout come back with ``error`` = :class:`DaemonTimeout`."""
        deadline = time.monotonic() + max(0, timeout_ms) / 1000.0
        while True:
            self._expire()
            if self._done:
                return self._done.popitem(last=False)[1]
            now = time.monotonic()
            wait = max(0.0, deadline - now)
            if self._pending:
                first_expiry = min(p.sent_at + p.timeout_s for p in self._pending.values())
                wait = min(wait, max(0.0, first_expiry - now))
            if not self._receive(wait) and time.monotonic() >= deadline:
                self._expire()
                return self._done.popitem(last=False)[1] if self._done else None

    def _wait(self, rid: str) -> Reply:
        while rid not in self._done:
            p = self._pending.get(rid)
            if p is None:  # cannot happen: every request ends in _done
                raise ClientError(f"request {rid} was lost")
            remaining = p.sent_at + p.timeout_s - time.monotonic()
            if remaining <= 0:
                self._reset("timed out")
                break
            self._receive(remaining)
        return self._done.pop(rid)

    def call(self, header: Dict[str, Any], buffers: Sequence[Any] = (), timeout_ms: Optional[int] = None) -> Reply:
        """Blocking request: send, wait, retry retryable ops on timeout; returns a successful Reply.

        Raises :class:`DaemonError` for an error reply and :class:`DaemonTimeout` when every try timed out.
        """
        tries = 1 + (self.retries if header.get("op") in RETRYABLE_OPS else 0)
        reply: Optional[Reply] = None
        for _ in range(tries):
            rid = self.send_request(header, buffers, timeout_ms)
            reply = self._wait(rid)
            if not isinstance(reply.error, DaemonTimeout):
                break
        assert reply is not None
        if reply.error is not None:
            raise reply.error
        return reply

    # -- non-blocking senders ------------------------------------------------------------------
    def send_hello(self, timeout_ms: Optional[int] = None) -> str:
        return self.send_request(hello_request("", self.client_name), timeout_ms=timeout_ms)

    def send_open(self, data: Optional[Any] = None, width: int = 0, height: int = 0, channels: int = 4,
                  dtype: str = "uint8", order: str = "BGRA", digest: Optional[str] = None,
                  timeout_ms: Optional[int] = None) -> str:
        """Open by ``digest`` alone (``data=None``; the reply may be ``need_pixels``) or with pixels
        (``data``: bytes-like, ``height`` rows x ``width`` pixels x ``channels`` samples of ``dtype``,
        channels in ``order``)."""
        if data is None:
            if digest is None:
                raise ValueError("send_open needs data or a digest")
            return self.send_request(open_request("", digest=digest), timeout_ms=timeout_ms)
        spec = BufferSpec("image", width, height, channels, dtype, order)
        return self.send_request(open_request("", digest=digest, image=spec), [data], timeout_ms)

    def send_predict(self, session: str, clicks: Iterable[Dict[str, Any]], preview: Optional[int] = None,
                     alpha_dtype: str = "uint8", uncertainty: bool = True, prev_alpha: Union[bool, str] = "auto",
                     timeout_ms: Optional[int] = None, prev_mask: Optional[Any] = None,
                     mask_width: int = 0, mask_height: int = 0) -> str:
        """Clicks ``[{"x", "y", "label": "fg"|"bg"}]`` in full-image pixels; ``preview`` = long side N or None.
        ``prev_mask`` (bytes, ``mask_height`` x ``mask_width`` uint8, the image's size; protocol 1.4): the
        previous alpha to feed back instead of the session's (``prev_alpha`` is then true)."""
        header, bufs = self._predict_header(session, clicks, preview, alpha_dtype, uncertainty, prev_alpha,
                                            prev_mask, mask_width, mask_height)
        return self.send_request(header, bufs, timeout_ms=timeout_ms)

    @staticmethod
    def _predict_header(session: str, clicks: Iterable[Dict[str, Any]], preview: Optional[int], alpha_dtype: str,
                        uncertainty: bool, prev_alpha: Union[bool, str], prev_mask: Optional[Any],
                        mask_width: int, mask_height: int) -> Tuple[Dict[str, Any], List[Any]]:
        spec = BufferSpec("prev_alpha", mask_width, mask_height, 1, "uint8", "A") if prev_mask is not None else None
        header = predict_request("", session, clicks, preview, alpha_dtype, uncertainty, prev_alpha, spec)
        return header, ([prev_mask] if prev_mask is not None else [])

    def send_refine(self, session: str, top_n: Optional[int] = DEFAULT_TOP_N,
                    regions: Optional[Iterable[Sequence[int]]] = None, mask: Optional[Any] = None,
                    mask_width: int = 0, mask_height: int = 0, preview: Optional[int] = None,
                    alpha_dtype: str = "uint8", uncertainty: bool = False,
                    timeout_ms: Optional[int] = None) -> str:
        """Refine the last prediction: ``top_n`` most uncertain patches, or those covering ``regions``
        ``[(x, y, w, h)]``, or a selection ``mask`` (bytes, ``mask_height`` x ``mask_width`` uint8, the
        full image size; non-zero = selected)."""
        spec = BufferSpec("mask", mask_width, mask_height, 1, "uint8", "A") if mask is not None else None
        header = refine_request("", session, top_n, regions, spec, preview, alpha_dtype, uncertainty)
        return self.send_request(header, [mask] if mask is not None else [], timeout_ms)

    def send_foreground(self, session: str, alpha: Any, width: int, height: int,
                        timeout_ms: Optional[int] = None) -> str:
        """Ask for the session image's foreground colours under ``alpha`` (bytes, ``height`` x ``width``
        uint8, the full image size): "decontaminate colours"."""
        header = foreground_request("", session, BufferSpec("alpha", width, height, 1, "uint8", "A"))
        return self.send_request(header, [alpha], timeout_ms)

    def foreground(self, session: str, alpha: Any, width: int, height: int,
                   timeout_ms: Optional[int] = None) -> ForegroundResult:
        """Blocking :meth:`send_foreground`."""
        header = foreground_request("", session, BufferSpec("alpha", width, height, 1, "uint8", "A"))
        return self.call(header, [alpha], timeout_ms).result()

    def send_close(self, session: str, timeout_ms: Optional[int] = None) -> str:
        return self.send_request(close_request("", session), timeout_ms=timeout_ms)

    def send_status(self, request: Optional[str] = None, timeout_ms: Optional[int] = None) -> str:
        """Ask how busy the daemon is and, with ``request`` (an id this client sent), what became of it."""
        return self.send_request(status_request("", request), timeout_ms=timeout_ms)

    # -- blocking API --------------------------------------------------------------------------
    def hello(self, timeout_ms: Optional[int] = None) -> ServerInfo:
        """Protocol/server versions, device, model and limits of the daemon."""
        return self.call(hello_request("", self.client_name), timeout_ms=timeout_ms).result()

    def open(self, data: Any, width: int, height: int, channels: int = 4, dtype: str = "uint8",
             order: str = "BGRA", use_cache: bool = True, timeout_ms: Optional[int] = None,
             resume: bool = False) -> OpenResult:
        """Open a session on an image (bytes-like, ``height`` x ``width`` x ``channels`` of ``dtype``, in
        ``order``). With ``use_cache`` the digest (sha256) is sent first and the pixels only if the daemon
        asks; without it the pixels go at once and the daemon computes the digest. With ``resume`` the
        daemon returns the image's most recently used session if it still has one (``.resumed``), so
        that a client without state of its own (a GIMP call) continues where the last one stopped."""
        digest = image_digest(data, width, height, channels, dtype, order) if use_cache else None
        if digest is not None:
            reply = self.call(open_request("", digest=digest, resume=resume), timeout_ms=timeout_ms)
            if reply.op == "open":
                return reply.result()
        spec = BufferSpec("image", width, height, channels, dtype, order)
        return self.call(open_request("", digest=digest, image=spec, resume=resume), [data], timeout_ms).result()

    def predict(self, session: str, clicks: Iterable[Dict[str, Any]], preview: Optional[int] = None,
                alpha_dtype: str = "uint8", uncertainty: bool = True, prev_alpha: Union[bool, str] = "auto",
                timeout_ms: Optional[int] = None, prev_mask: Optional[Any] = None,
                mask_width: int = 0, mask_height: int = 0) -> MatteResult:
        """Clicks -> alpha (+ uncertainty), at full size or with long side ``preview``; ``prev_mask``: see
        :meth:`send_predict`."""
        header, bufs = self._predict_header(session, clicks, preview, alpha_dtype, uncertainty, prev_alpha,
                                            prev_mask, mask_width, mask_height)
        return self.call(header, bufs, timeout_ms=timeout_ms).result()

    def refine(self, session: str, top_n: Optional[int] = DEFAULT_TOP_N, regions: Optional[Iterable[Sequence[int]]] = None,
               mask: Optional[Any] = None, mask_width: int = 0, mask_height: int = 0, preview: Optional[int] = None,
               alpha_dtype: str = "uint8", uncertainty: bool = False,
               timeout_ms: Optional[int] = None) -> MatteResult:
        """Refine the session's last prediction (see :meth:`send_refine`); ``.patches`` lists the boxes changed."""
        spec = BufferSpec("mask", mask_width, mask_height, 1, "uint8", "A") if mask is not None else None
        header = refine_request("", session, top_n, regions, spec, preview, alpha_dtype, uncertainty)
        return self.call(header, [mask] if mask is not None else [], timeout_ms).result()

    def status(self, request: Optional[str] = None, timeout_ms: Optional[int] = None) -> StatusInfo:
        """The daemon's queue and the state of ``request`` (see :meth:`send_status`); protocol 1.3 daemons."""
        return self.call(status_request("", request), timeout_ms=timeout_ms).result()

    def close(self, session: str, timeout_ms: Optional[int] = None) -> bool:
        """Forget a session on the daemon; True if it existed."""
        return self.call(close_request("", session), timeout_ms=timeout_ms).result()
