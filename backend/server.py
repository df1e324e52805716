"""The daemon's serving loop: a ZeroMQ ROUTER socket, a request queue, and one model.

Before each request is run the socket is drained into a FIFO queue, so that a ``predict`` for a
session that is followed in the queue by a newer ``predict`` for the same session (with nothing
else for that session in between) is answered ``superseded`` instead of being computed ("latest
click wins"). Requests from different clients interleave in arrival order; each reply goes back
to its sender's identity. Every failure, of any kind, becomes an error reply carrying the request
id when it could be read; the loop itself never stops on bad input.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Optional, Sequence

import zmq

from clickmatte.plugin.protocol import (
    BAD_REQUEST,
    BUSY,
    INTERNAL,
    MAGIC,
    PROTOCOL_MAJOR,
    PROTOCOL_VERSION,
    SUPERSEDED,
    TOO_LARGE,
    UNCERTAINTY_SCALE,
    UNSUPPORTED_VERSION,
    MAX_CLICKS,
    MAX_REGIONS,
    BufferSpec,
    Message,
    ProtocolError,
    check_boxes,
    check_clicks,
    decode,
    encode,
    error_reply,
    image_digest,
    parse_version,
)

from .config import AUTHORIZED_DIR, SERVER_SECRET_FILE, DaemonConfig
from .engine import MattingEngine
from .images import encode_alpha, encode_uncertainty, image_to_rgb8, mask_to_bool
from .sessions import SessionCache

log = logging.getLogger("clickmatte.daemon")

MAX_QUEUE = 256


def server_version() -> str:
    try:
        from importlib.metadata import version

        return f"clickmatte {version('clickmatte')}"
    except Exception:  # not installed as a distribution
        return "clickmatte (unknown version)"


@dataclass
class Incoming:
    """One received message: the routing envelope, and either the decoded message or the decode error."""

    envelope: List[bytes]
    msg: Optional[Message]
    error: Optional[ProtocolError]
    nbytes: int
    received: float

    @property
    def session(self) -> Optional[str]:
        if self.msg is None:
            return None
        s = self.msg.header.get("session")
        return s if isinstance(s, str) else None


def _timing(t0: float, t1: float) -> Dict[str, float]:
    """Reply ``timing`` field: model time t0..t1 and reply-encoding time t1..now, in ms."""
    return {"model_ms": round((t1 - t0) * 1000, 3), "encode_ms": round((time.perf_counter() - t1) * 1000, 3)}


class BindError(RuntimeError):
    """The endpoint cannot be bound (port in use, bad address, ...)."""


class DaemonServer:
    """Bind with :meth:`bind`, then :meth:`serve` until ``stop`` is set; :meth:`close` at the end."""

    def __init__(self, config: DaemonConfig, engine: Optional[MattingEngine] = None) -> None:
        self.config = config
        self.engine = engine if engine is not None else MattingEngine(config.device, config.checkpoint,
                                                                       config.working_size, config.flip_tta,
                                                                       config.prior_pass, config.guided,
                                                                       config.context_size,
                                                                       config.refine_max_soft)
        self.cache = SessionCache(config.max_sessions, config.max_cache_bytes)
        self.queue: Deque[Incoming] = deque()
        self.queued_bytes = 0
        self.stop = threading.Event()
        self.ctx: Optional[zmq.Context] = None
        self.sock: Optional[zmq.Socket] = None
        self.auth: Any = None
        self.endpoint = config.bind
        self.stats: Dict[str, int] = {"requests": 0, "errors": 0, "superseded": 0}

    # -- setup / teardown --------------------------------------------------------------------
    def bind(self) -> str:
        """Create the ROUTER socket (with CURVE when configured) and bind it; returns the bound endpoint."""
        self.ctx = zmq.Context()
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
        sock.setsockopt(zmq.RCVHWM, 1000)
        if self.config.curve_keys is not None:
            from zmq.auth import load_certificate
            from zmq.auth.thread import ThreadAuthenticator

            public, secret = load_certificate(str(self.config.curve_keys / SERVER_SECRET_FILE))
            self.auth = ThreadAuthenticator(self.ctx, log=logging.getLogger("clickmatte.daemon.auth"))
            self.auth.start()
            self.auth.configure_curve(domain="*", location=str(self.config.curve_keys / AUTHORIZED_DIR))
            sock.curve_secretkey = secret
            sock.curve_publickey = public
            sock.curve_server = True
        try:
            sock.bind(self.config.bind)
        except zmq.ZMQError as exc:
            sock.close(0)
            self._close_ctx()
            hint = " (port in use? another clickmatte-daemon running?)" if exc.errno == zmq.EADDRINUSE else ""
            raise BindError(f"cannot bind {self.config.bind}: {exc.strerror}{hint}") from None
        self.sock = sock
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT) or self.config.bind
        return self.endpoint

    def _close_ctx(self) -> None:
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        if self.ctx is not None:
            self.ctx.term()
            self.ctx = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None
        self._close_ctx()

    # -- loop ----------------------------------------------------------------------------------
    def serve(self) -> None:
        """Serve until :attr:`stop` is set (checked at least every 200 ms while idle)."""
        assert self.sock is not None, "bind() first"
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not self.stop.is_set():
            if not self.queue:
                if not poller.poll(200):
                    continue
            self._drain()
            if not self.queue:
                continue
            item = self.queue.popleft()
            self.queued_bytes -= item.nbytes
            try:
                self._serve_one(item)
            except Exception:  # last resort: _serve_one answers every error itself; never stop serving
                log.error("internal error while answering a request: %s", traceback.format_exc())
                self._reply_internal(item.envelope, None)

    def _drain(self) -> None:
        assert self.sock is not None
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self._enqueue(frames)
            except Exception:  # last resort: answer `internal`, log, keep serving
                log.error("internal error on an incoming message: %s", traceback.format_exc())
                self._reply_internal([frames[0].bytes] if frames else [], None)

    def _reply_internal(self, envelope: List[bytes], rid: Any) -> None:
        if not envelope or self.sock is None:
            return
        try:
            frames = encode(error_reply(rid, INTERNAL, "internal error in the daemon (logged); it keeps serving"),
                            kind="reply")
            self.sock.send_multipart(envelope + frames, copy=False)
        except Exception as exc:
            log.warning("could not send an internal-error reply: %s", exc)

    def _enqueue(self, frames: Sequence[Any]) -> None:
        # ROUTER: [identity, (b"" if the peer is a REQ socket), magic, header, *buffers]
        envelope = [frames[0].bytes]
        body = list(frames[1:])
        if body and len(body[0]) == 0:
            envelope.append(b"")
            body = body[1:]
        nbytes = sum(len(f) for f in body)
        msg: Optional[Message] = None
        err: Optional[ProtocolError] = None
        try:
            msg = decode(body, kind="request", max_bytes=self.config.max_message_bytes)
        except ProtocolError as exc:
            err = exc
        item = Incoming(envelope, msg, err, nbytes, time.monotonic())
        if len(self.queue) >= MAX_QUEUE or self.queued_bytes + nbytes > 2 * self.config.max_message_bytes:
            rid = msg.id if msg is not None else (err.request_id if err is not None else None)
            self._send(item, error_reply(rid, BUSY, "the daemon's request queue is full; try again"))
            return
        self.queue.append(item)
        self.queued_bytes += nbytes

    def _superseded(self, item: Incoming) -> bool:
        if item.msg is None or item.msg.op != "predict" or item.session is None:
            return False
        for later in self.queue:
            if later.session == item.session:
                return later.msg is not None and later.msg.op == "predict"
        return False

    def _send(self, item: Incoming, header: Dict[str, Any], buffers: Sequence[Any] = ()) -> None:
        assert self.sock is not None
        try:
            frames = encode(header, list(buffers), kind="reply", max_bytes=2 ** 62)
        except ProtocolError as exc:  # a bug of ours: still answer
            log.error("could not encode reply %r: %s", header.get("op"), exc)
            frames = encode(error_reply(header.get("id"), INTERNAL, f"could not encode reply: {exc}"), kind="reply")
        try:
            self.sock.send_multipart(item.envelope + frames, copy=False)
        except zmq.ZMQError as exc:  # peer gone: nothing to do
            log.warning("could not send reply: %s", exc)

    def _serve_one(self, item: Incoming) -> None:
        self.stats["requests"] += 1
        rid = item.msg.id if item.msg is not None else (item.error.request_id if item.error else None)
        t0 = time.monotonic()
        try:
            if item.error is not None:
                raise item.error
            assert item.msg is not None
            if self._superseded(item):
                self.stats["superseded"] += 1
                raise ProtocolError("a newer predict for this session arrived; this one was skipped", SUPERSEDED, rid)
            header, buffers = self._dispatch(item.msg)
            self._send(item, header, buffers)
            log.debug("%s %s in %.1f ms", item.msg.op, rid, (time.monotonic() - t0) * 1000)
            return
        except ProtocolError as exc:
            code, message = exc.code, exc.message
        except MemoryError:
            code, message = TOO_LARGE, "out of memory while serving this request"
        except ValueError as exc:
            code, message = BAD_REQUEST, str(exc)
        except Exception as exc:  # never die on a request
            log.error("internal error on %s: %s", rid, traceback.format_exc())
            code, message = INTERNAL, f"{type(exc).__name__}: {exc}"
        finally:
            self._release_unused_image()
        self.stats["errors"] += 1
        if code != SUPERSEDED:
            log.info("request %r -> error %s: %s", rid, code, message[:200])
        self._send(item, error_reply(rid, code, message[:2000]))

    def _release_unused_image(self) -> None:
        cur = self.engine._current
        if cur is not None and self.cache.images.get(cur.digest) is not cur:
            self.engine.forget(cur)

    # -- ops -------------------------------------------------------------------------------------
    def _dispatch(self, msg: Message) -> tuple:
        op = msg.op
        if op == "hello":
            return self._hello(msg), []
        if op == "open":
            return self._open(msg), []
        if op == "predict":
            return self._predict(msg)
        if op == "refine":
            return self._refine(msg)
        if op == "close":
            closed = self.cache.close(msg.header["session"])
            return {"id": msg.id, "op": "close", "session": msg.header["session"], "closed": closed}, []
        raise ProtocolError(f"unknown op {op!r}", BAD_REQUEST, msg.id)

    def _hello(self, msg: Message) -> Dict[str, Any]:
        if "protocol" in msg.header:
            major, _minor = parse_version(msg.header["protocol"], msg.id)
            if major != PROTOCOL_MAJOR:
                raise ProtocolError(f"client speaks protocol {msg.header['protocol']}, this daemon speaks "
                                    f"{PROTOCOL_VERSION}: update the plugin or the daemon", UNSUPPORTED_VERSION, msg.id)
        return {
            "id": msg.id, "op": "hello", "protocol": PROTOCOL_VERSION, "server": server_version(),
            "device": self.engine.device, "model": dict(self.engine.model_info),
            "limits": {
                "max_message_bytes": self.config.max_message_bytes,
                "max_image_pixels": self.config.max_image_pixels,
                "min_side": self.engine.min_side, "max_side": self.engine.max_side,
                "max_sessions": self.config.max_sessions, "max_cache_bytes": self.config.max_cache_bytes,
                "max_clicks": MAX_CLICKS, "max_regions": MAX_REGIONS,
            },
        }

    def _open(self, msg: Message) -> Dict[str, Any]:
        h, rid = msg.header, msg.id
        digest = h.get("digest")
        image = msg.buffer("image")
        cached = False
        if image is None:
            entry = self.cache.find_image(digest)
            if entry is None:
                return {"id": rid, "op": "need_pixels", "digest": digest}
            cached = True
        else:
            spec, data = image
            if spec.width * spec.height > self.config.max_image_pixels:
                raise ProtocolError(f"image of {spec.width}x{spec.height} = {spec.width * spec.height / 1e6:.1f} MP "
                                    f"exceeds the daemon's limit of {self.config.max_image_mp:g} MP", TOO_LARGE, rid)
            self.engine.check_image(spec.height, spec.width)
            self.cache.check_fits(spec.height, spec.width)
            actual = image_digest(data, spec.width, spec.height, spec.channels, spec.dtype, spec.order)
            if digest is not None and digest != actual:
                raise ProtocolError("digest does not match the pixels sent (use protocol.image_digest)", BAD_REQUEST, rid)
            entry = self.cache.find_image(actual)
            if entry is None:
                entry = self.cache.add_image(actual, image_to_rgb8(spec, data))
            else:
                cached = True
        self.engine.load()
        session = self.cache.latest_session(entry.digest) if h.get("resume", False) else None
        resumed = session is not None
        if session is None:
            session = self.cache.create_session(entry)
        return {"id": rid, "op": "open", "session": session.id, "width": entry.width, "height": entry.height,
                "digest": entry.digest, "cached": cached, "resumed": resumed}

    def _matte_reply(self, msg: Message, alpha: Any, sigma: Any, full_h: int, full_w: int) -> tuple:
        h = msg.header
        preview = h.get("preview")
        adt = h.get("alpha_dtype", "uint8")
        a = encode_alpha(alpha, adt, preview)
        ph, pw = a.shape
        specs = [BufferSpec("alpha", pw, ph, 1, adt, "A")]
        bufs: List[Any] = [a]
        if sigma is not None:
            u = encode_uncertainty(sigma, preview)
            specs.append(BufferSpec("uncertainty", pw, ph, 1, "uint8", "A"))
            bufs.append(u)
        header = {"id": msg.id, "op": msg.op, "session": h["session"], "width": pw, "height": ph,
                  "full_width": full_w, "full_height": full_h, "uncertainty_scale": UNCERTAINTY_SCALE,
                  "buffers": [s.to_dict() for s in specs]}
        return header, bufs

    def _predict(self, msg: Message) -> tuple:
        h = msg.header
        session = self.cache.get(h["session"])
        clicks = check_clicks(h.get("clicks", []), msg.id)
        t0 = time.perf_counter()
        alpha, sigma = self.engine.predict(session, clicks, prev_alpha=h.get("prev_alpha", False))
        t1 = time.perf_counter()
        self.cache.evict(keep=session)
        want_sigma = h.get("uncertainty", True)
        header, bufs = self._matte_reply(msg, alpha, sigma if want_sigma else None, *alpha.shape)
        header["timing"] = _timing(t0, t1)
        return header, bufs

    def _refine(self, msg: Message) -> tuple:
        h = msg.header
        session = self.cache.get(h["session"])
        regions = check_boxes(h["regions"], "regions", msg.id) if h.get("regions") is not None else None
        mask = None
        mb = msg.buffer("mask")
        if mb is not None:
            spec, data = mb
            if (spec.height, spec.width) != (session.image.height, session.image.width):
                raise ProtocolError(f"mask is {spec.width}x{spec.height} but the image is "
                                    f"{session.image.width}x{session.image.height}", BAD_REQUEST, msg.id)
            mask = mask_to_bool(spec, data)
        top_n = h["top_n"] if "top_n" in h else 8
        t0 = time.perf_counter()
        alpha, boxes = self.engine.refine(session, top_n, regions, mask)
        t1 = time.perf_counter()
        self.cache.evict(keep=session)
        header, bufs = self._matte_reply(msg, alpha, session.sigma if h.get("uncertainty", False) else None,
                                         *alpha.shape)
        header["patches"] = [list(b) for b in boxes]
        header["timing"] = _timing(t0, t1)
        return header, bufs
