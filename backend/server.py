"""The daemon's serving loop: a ZeroMQ ROUTER socket, a request queue, and one model.

Two threads. The **I/O thread** (the one that calls :meth:`DaemonServer.serve`) owns the ROUTER
socket and never waits for the model: it reads every message as it arrives, admits it or refuses it
(see below), answers ``hello``, ``status`` (queue length, the request the model is on, what became of
the asker's request) and every malformed message itself, and sends the replies the worker
hands it (over an ``inproc://`` PUSH/PULL pair: ZeroMQ sockets stay in one thread each). The
**worker thread** owns the model and the session cache and runs the queued ``open`` / ``predict`` /
``refine`` / ``close`` requests in arrival order.

Admission before allocation: a message is read frame by frame; its frames are kept only while the
message stays within ``max_message_bytes`` and the bytes held by all requests not yet answered stay
within ``max_queue_bytes``. Otherwise its frames are dropped as they are read and it is answered
``too_large`` (larger than one message may be, or than the whole queue) or ``busy`` (it would fit,
but the queue is full now). ZeroMQ's ``MAXMSGSIZE`` (a frame larger than one message may be drops
the connection) and receive high-water mark (per peer) are set from the same limits.

"Latest click wins": a ``predict`` followed in the queue by a newer ``predict`` for the same session
(with nothing else for that session in between) is answered ``superseded`` instead of being
computed. Bounded work: a refine asks for at most ``max_top_n`` patches over at most
``max_region_pixels``, and runs in steps of about :data:`REFINE_STEP_S`; between steps the other
queued requests run, and any newer request for the same session supersedes the rest of it (the
session keeps the alpha it had before the refine).

Key revocation: with CURVE, the allow-list ``authorized_clients/`` is read again when it changes
(checked every :data:`KEY_CHECK_S`) or on :meth:`request_key_reload` (``SIGHUP``); a removed key gets
no connection, and messages on a connection it already had are dropped unanswered.

Every failure, of any kind, becomes an error reply carrying the request id when it could be read; a
bug of ours becomes ``internal`` plus a log line with the traceback, and the loop keeps serving.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple, Union

import zmq

from clickmatte.plugin.protocol import (
    BAD_REQUEST,
    BUSY,
    INTERNAL,
    MAX_CLICKS,
    MAX_HEADER_BYTES,
    MAX_REGIONS,
    PROTOCOL_MAJOR,
    PROTOCOL_VERSION,
    SUPERSEDED,
    TOO_LARGE,
    UNSUPPORTED_VERSION,
    BufferSpec,
    CloseRequest,
    ForegroundRequest,
    HelloRequest,
    Message,
    OpenRequest,
    PredictRequest,
    ProtocolError,
    RefineRequest,
    StatusRequest,
    close_reply,
    decode,
    encode,
    error_reply,
    foreground_reply,
    hello_reply,
    image_digest,
    matte_reply,
    need_pixels_reply,
    open_reply,
    peek_request_id,
    status_reply,
)

from .config import AUTHORIZED_DIR, SERVER_SECRET_FILE, DaemonConfig
from .engine import MattingEngine, RefinePlan
from .images import encode_alpha, encode_uncertainty, image_to_rgb8, mask_to_bool
from .sessions import Session, SessionCache

log = logging.getLogger("clickmatte.daemon")

MAX_QUEUE = 256  # requests queued at once (whatever their size)
REFINE_STEP_S = 0.25  # a long refine gives way to other requests about this often
KEY_CHECK_S = 1.0  # how often the CURVE allow-list folder is checked for changes
OWNER_CHECK_S = 1.0  # how often the owner process (--owner-pid) is checked
SEND_HWM = 64  # replies queued per peer that does not read them (more are dropped by ZeroMQ)


def _is_zombie(pid: int) -> bool:
    """True if ``pid`` has exited but was not reaped yet (Linux ``/proc``; False where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def server_version() -> str:
    try:
        from importlib.metadata import version

        return f"clickmatte {version('clickmatte')}"
    except Exception:  # not installed as a distribution
        return "clickmatte (unknown version)"


@dataclass(eq=False)
class Incoming:
    """One admitted request: the routing envelope, the decoded message and the bytes it holds."""

    envelope: List[bytes]
    msg: Message
    nbytes: int
    received: float

    @property
    def session(self) -> Optional[str]:
        return getattr(self.msg.request, "session", None)

    @property
    def id(self) -> Any:
        return self.msg.id


@dataclass(eq=False)
class RefineJob:
    """The rest of a refine that did not finish in one step; queued again behind the other requests."""

    item: Incoming
    session: Session
    plan: RefinePlan
    started: float = field(default_factory=time.perf_counter)

    @property
    def envelope(self) -> List[bytes]:
        return self.item.envelope

    @property
    def nbytes(self) -> int:
        return self.item.nbytes

    @property
    def id(self) -> Any:
        return self.item.id

    @property
    def msg(self) -> Message:
        return self.item.msg


Entry = Union[Incoming, RefineJob]


def _entry_session(e: Entry) -> Optional[str]:
    return e.item.session if isinstance(e, RefineJob) else e.session


def _timing(model_s: float, t1: float) -> Dict[str, float]:
    """Reply ``timing`` field: model time and reply-encoding time since ``t1``, in ms."""
    return {"model_ms": round(model_s * 1000, 3), "encode_ms": round((time.perf_counter() - t1) * 1000, 3)}


class BindError(RuntimeError):
    """The endpoint cannot be bound (port in use, bad address, ...)."""


def _key_fingerprint(folder: str) -> Tuple[Tuple[str, int, int], ...]:
    try:
        with os.scandir(folder) as it:
            return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in it
                                if e.name.endswith(".key")))
    except OSError:
        return ()


class DaemonServer:
    """Bind with :meth:`bind`, then :meth:`serve` until ``stop`` is set; :meth:`close` at the end."""

    def __init__(self, config: DaemonConfig, engine: Optional[MattingEngine] = None) -> None:
        self.config = config
        self.engine = engine if engine is not None else MattingEngine(config.device, config.checkpoint,
                                                                       config.predictor)
        self.cache = SessionCache(config.max_sessions, config.max_cache_bytes)
        self.queue: Deque[Entry] = deque()
        self.held_bytes = 0  # bytes of requests queued or being served (<= config.max_queue_bytes)
        self.running: Optional[Entry] = None  # the entry the worker is on (read under _cv)
        self.started = time.monotonic()
        self.peak_held_bytes = 0
        self._cv = threading.Condition()
        self.stop = threading.Event()
        self._reload = threading.Event()
        self.ctx: Optional[zmq.Context] = None
        self.sock: Optional[zmq.Socket] = None
        self._pull: Optional[zmq.Socket] = None
        self._push: Optional[zmq.Socket] = None
        self._worker: Optional[threading.Thread] = None
        self._reply_endpoint = f"inproc://clickmatte-replies-{id(self):x}"
        self.auth: Any = None
        self._allowed: Optional[set] = None  # z85 public keys allowed (CURVE), None without CURVE
        self._key_state: Tuple[Tuple[str, int, int], ...] = ()
        self._next_key_check = 0.0
        self._next_owner_check = 0.0
        self.endpoint = config.bind
        self.stats: Dict[str, int] = {"requests": 0, "errors": 0, "superseded": 0, "refused": 0, "revoked": 0}
        self._stats_lock = threading.Lock()

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    # -- setup / teardown --------------------------------------------------------------------
    def bind(self) -> str:
        """Create the ROUTER socket (with CURVE when configured) and bind it; returns the bound endpoint."""
        self.ctx = zmq.Context()
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)  # per frame, checked before allocation
        sock.setsockopt(zmq.RCVHWM, self.config.rcv_hwm)
        sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        if self.config.curve_keys is not None:
            from zmq.auth import load_certificate
            from zmq.auth.thread import ThreadAuthenticator

            public, secret = load_certificate(str(self.config.curve_keys / SERVER_SECRET_FILE))
            self.auth = ThreadAuthenticator(self.ctx, log=logging.getLogger("clickmatte.daemon.auth"))
            self.auth.start()
            self._load_keys(initial=True)
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
        self._pull = self.ctx.socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        self._pull.bind(self._reply_endpoint)
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
        self._stop_worker()
        for s in (self.sock, self._pull):
            if s is not None:
                s.close(0)
        self.sock = self._pull = None
        self._close_ctx()

    # -- CURVE allow-list ----------------------------------------------------------------------
    def request_key_reload(self) -> None:
        """Read ``authorized_clients/`` again at the next turn of the loop (what SIGHUP does)."""
        self._reload.set()

    def _load_keys(self, initial: bool = False) -> None:
        from zmq.auth import load_certificates

        assert self.config.curve_keys is not None and self.auth is not None
        folder = str(self.config.curve_keys / AUTHORIZED_DIR)
        self._key_state = _key_fingerprint(folder)
        try:
            keys = load_certificates(folder)
        except Exception as exc:  # folder gone or unreadable: allow nobody rather than keep revoked keys
            log.error("cannot read the client keys in %s: %s; no client is allowed until it is fixed", folder, exc)
            keys = {}
        allowed = {k.decode("ascii") if isinstance(k, bytes) else str(k) for k in keys}
        self._allowed = allowed
        # the authenticator thread reads its own copy; configure_curve replaces it in one assignment
        self.auth.certs["*"] = dict(keys)
        self.auth.allow_any = False
        if not initial:
            log.info("client keys reloaded from %s: %d allowed", folder, len(allowed))

    def _maybe_reload_keys(self) -> None:
        if self.auth is None:
            return
        now = time.monotonic()
        if not self._reload.is_set() and now < self._next_key_check:
            return
        self._next_key_check = now + KEY_CHECK_S
        folder = str(self.config.curve_keys / AUTHORIZED_DIR)  # type: ignore[operator]
        if self._reload.is_set() or _key_fingerprint(folder) != self._key_state:
            self._reload.clear()
            self._load_keys()

    # -- I/O thread ----------------------------------------------------------------------------
    def serve(self) -> None:
        """Serve until :attr:`stop` is set (checked at least every 200 ms); the request being run when it
        is set is finished (a long refine stops after its current step) before this returns."""
        if self.sock is None or self._pull is None:
            raise RuntimeError("bind() first")
        self._worker = threading.Thread(target=self._work, name="clickmatte-worker", daemon=True)
        self._worker.start()
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._pull, zmq.POLLIN)
        while not self.stop.is_set():
            try:
                events = dict(poller.poll(200))
                if self._pull in events:
                    self._forward_replies()
                if self.sock in events:
                    for _ in range(64):  # then forward replies again: neither direction starves
                        if not self._receive_one():
                            break
                self._maybe_reload_keys()
                self._check_owner()
            except Exception:  # last resort: log and keep serving
                log.error("internal error in the I/O loop: %s", traceback.format_exc())
                time.sleep(0.01)
        self._stop_worker()
        self._forward_replies()

    def _check_owner(self) -> None:
        """With ``owner_pid`` (``--owner-pid``): stop serving once that process is gone (checked every
        :data:`OWNER_CHECK_S`; POSIX only)."""
        pid = self.config.owner_pid
        if pid is None or os.name != "posix":
            return
        now = time.monotonic()
        if now < self._next_owner_check:
            return
        self._next_owner_check = now + OWNER_CHECK_S
        try:
            os.kill(pid, 0)
            gone = False
        except ProcessLookupError:
            gone = True
        except PermissionError:  # exists, owned by someone else
            gone = False
        if not gone and os.getppid() != pid and pid != os.getpid():
            gone = _is_zombie(pid)
        if gone:
            log.info("the process that started this daemon (pid %d) is gone: shutting down", pid)
            self.stop.set()

    def _stop_worker(self) -> None:
        self.stop.set()
        with self._cv:
            self._cv.notify_all()
        w = self._worker
        if w is not None and w.is_alive() and w is not threading.current_thread():
            w.join()
        self._worker = None

    def _forward_replies(self) -> None:
        assert self._pull is not None and self.sock is not None
        while True:
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self.sock.send_multipart(frames, copy=False)
            except zmq.ZMQError as exc:  # peer gone: nothing to do
                log.warning("could not send reply: %s", exc)

    def _receive_one(self) -> bool:
        """Read one message from the ROUTER (False if none is waiting) and admit, answer or refuse it."""
        assert self.sock is not None
        try:
            first = self.sock.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        envelope = [first.bytes]
        cfg = self.config
        with self._cv:
            held, queued = self.held_bytes, len(self.queue)
        kept: List[Any] = []
        total = dropped = 0
        user: Optional[str] = None
        more = first.more
        rid: Any = None
        try:
            while more:
                f = self.sock.recv(copy=False)  # a multipart message arrives whole: no waiting here
                more = f.more
                n = len(f)
                if not kept and not total and n == 0 and len(envelope) == 1:
                    envelope.append(b"")  # a REQ peer's empty delimiter
                    continue
                total += n
                if user is None and self._allowed is not None:
                    try:
                        user = f.get("User-Id")
                    except Exception:
                        user = ""
                # keep magic + header (small) for the reply's id; pixels only while they fit
                if len(kept) < 2 and n <= MAX_HEADER_BYTES + 64 or (total <= cfg.max_message_bytes
                                                                    and held + total <= cfg.max_queue_bytes):
                    kept.append(f)
                else:
                    dropped += 1
                del f
        except Exception:
            log.error("internal error while reading a message: %s", traceback.format_exc())
            while self.sock.getsockopt(zmq.RCVMORE):
                self.sock.recv(copy=False)
            self._reply_now(envelope, error_reply(None, INTERNAL, "internal error in the daemon (logged)"))
            return True
        try:
            if self._allowed is not None and user not in self._allowed:
                self._count("revoked")
                log.info("dropped a message from a client whose key is no longer allowed")
                return True  # a revoked key gets nothing, as an unknown one
            rid = peek_request_id(kept[1]) if len(kept) >= 2 else None
            if total > cfg.max_message_bytes:
                kept.clear()
                self._refuse(envelope, rid, TOO_LARGE, f"message of {total} bytes exceeds the daemon's limit of "
                                                      f"{cfg.max_message_bytes} (hello: limits.max_message_bytes)")
                return True
            if total > cfg.max_queue_bytes:
                kept.clear()
                self._refuse(envelope, rid, TOO_LARGE, f"message of {total} bytes is larger than the daemon's whole "
                                                      f"request queue of {cfg.max_queue_bytes} (--max-queue-mb)")
                return True
            if dropped:  # its pixels did not fit beside what is held: refused without keeping them
                kept.clear()
                self._refuse(envelope, rid, BUSY, f"the daemon's request queue is full ({queued} requests, {held} of "
                                                 f"{cfg.max_queue_bytes} bytes held); try again")
                return True
            try:
                msg = decode(kept, kind="request", max_bytes=cfg.max_message_bytes)
            except ProtocolError as exc:
                self._count("requests")
                self._count("errors")
                log.info("request %r -> error %s: %s", exc.request_id, exc.code, exc.message[:200])
                self._reply_now(envelope, error_reply(exc.request_id, exc.code, exc.message[:2000]))
                return True
            rid = msg.id
            if msg.op in ("hello", "status"):  # answered here: never waits for the model
                self._count("requests")
                try:
                    req = msg.request
                    self._reply_now(envelope, self._hello(req) if isinstance(req, HelloRequest)
                                    else self._status(req, envelope))  # type: ignore[arg-type]
                except ProtocolError as exc:
                    self._count("errors")
                    self._reply_now(envelope, error_reply(rid, exc.code, exc.message[:2000]))
                return True
            item = Incoming(envelope, msg, total, time.monotonic())
            with self._cv:
                if len(self.queue) >= MAX_QUEUE or self.held_bytes + total > cfg.max_queue_bytes:  # cannot grow
                    full = True
                else:
                    full = False
                    self.queue.append(item)
                    self.held_bytes += total
                    self.peak_held_bytes = max(self.peak_held_bytes, self.held_bytes)
                    self._cv.notify()
            if full:
                self._refuse(envelope, rid, BUSY, "the daemon's request queue is full; try again")
        except Exception:  # last resort: answer `internal`, log, keep serving
            log.error("internal error on an incoming message: %s", traceback.format_exc())
            self._reply_now(envelope, error_reply(rid, INTERNAL, "internal error in the daemon (logged); "
                                                                 "it keeps serving"))
        return True

    def _refuse(self, envelope: List[bytes], rid: Any, code: str, message: str) -> None:
        self._count("refused")
        log.info("request %r refused: %s: %s", rid, code, message)
        self._reply_now(envelope, error_reply(rid, code, message))

    def _reply_now(self, envelope: List[bytes], header: Dict[str, Any]) -> None:
        """Send a reply from the I/O thread."""
        assert self.sock is not None
        try:
            self.sock.send_multipart(envelope + self._frames(header, ()), copy=False)
        except zmq.ZMQError as exc:
            log.warning("could not send reply: %s", exc)

    @staticmethod
    def _frames(header: Dict[str, Any], buffers: Sequence[Any]) -> List[Any]:
        try:
            return encode(header, list(buffers), kind="reply", max_bytes=2 ** 62)
        except Exception as exc:  # a bug of ours: still answer
            log.error("could not encode reply %r: %s", header.get("op"), exc)
            return encode(error_reply(header.get("id") if isinstance(header.get("id"), (str, int)) else None,
                                      INTERNAL, f"could not encode reply: {exc}"[:500]), kind="reply")

    # -- worker thread -------------------------------------------------------------------------
    def _send(self, entry: Entry, header: Dict[str, Any], buffers: Sequence[Any] = ()) -> None:
        """Send a reply from the worker (through the I/O thread)."""
        assert self._push is not None
        try:
            self._push.send_multipart(entry.envelope + self._frames(header, buffers), copy=False)
        except zmq.ZMQError as exc:
            log.warning("could not hand a reply to the I/O thread: %s", exc)

    def _release(self, entry: Entry) -> None:
        with self._cv:
            self.held_bytes -= entry.nbytes

    def _work(self) -> None:
        assert self.ctx is not None
        self._push = self.ctx.socket(zmq.PUSH)
        self._push.setsockopt(zmq.LINGER, 1000)
        self._push.connect(self._reply_endpoint)
        try:
            while True:
                with self._cv:
                    while not self.queue and not self.stop.is_set():
                        self._cv.wait(0.5)
                    if self.stop.is_set():
                        return
                    entry = self.queue.popleft()
                    superseded = self._superseded_locked(entry)
                    self.running = entry
                keep = False
                try:
                    keep = self._run(entry, superseded)
                except Exception:  # last resort: _run answers its errors itself; never stop serving
                    log.error("internal error while answering a request: %s", traceback.format_exc())
                    self._send(entry, error_reply(entry.id, INTERNAL, "internal error in the daemon (logged)"))
                finally:
                    with self._cv:
                        self.running = None
                    if not keep:
                        self._release(entry)
        finally:
            self._push.close()
            self._push = None

    def _superseded_locked(self, entry: Entry) -> bool:
        """(Queue lock held.) A predict whose next request for its session is a predict; the rest of a
        refine with any newer request for its session."""
        s = _entry_session(entry)
        if s is None:
            return False
        if isinstance(entry, RefineJob):
            return any(_entry_session(e) == s for e in self.queue)
        if entry.msg.op != "predict":
            return False
        for later in self.queue:
            if _entry_session(later) == s:
                return isinstance(later, Incoming) and later.msg.op == "predict"
        return False

    def _run(self, entry: Entry, superseded: bool) -> bool:
        """Serve one queue entry; True when it was queued again (a refine with patches left)."""
        rid = entry.id
        t0 = time.monotonic()
        if isinstance(entry, Incoming):
            self._count("requests")
        job: Optional[RefineJob] = None
        try:
            if superseded:
                self._count("superseded")
                what = "refine" if isinstance(entry, RefineJob) else "predict"
                raise ProtocolError(f"a newer request for this session arrived; this {what} was skipped",
                                    SUPERSEDED, rid)
            if isinstance(entry, RefineJob):
                job = entry
                self.cache.get(job.item.session or "")  # closed or evicted meanwhile: unknown_session
            else:
                if self.config.test_delay_s > 0 and entry.msg.op in ("predict", "refine"):
                    time.sleep(self.config.test_delay_s)  # --test-delay-s: a slow model, for tests only
                result = self._dispatch(entry.msg)
                if isinstance(result, RefineJob):
                    job = result
                    job.item = entry
                else:
                    header, buffers = result
                    self._send(entry, header, buffers)
                    log.debug("%s %s in %.1f ms", entry.msg.op, rid, (time.monotonic() - t0) * 1000)
                    return False
            assert job is not None
            if not self.engine.refine_step(job.session, job.plan, REFINE_STEP_S):
                with self._cv:
                    if not self._superseded_locked(job) and not self.stop.is_set():
                        self.queue.append(job)  # the rest later, behind what arrived meanwhile
                        self._cv.notify()
                        return True
                self._count("superseded")
                raise ProtocolError("a newer request for this session arrived; the rest of this refine was skipped",
                                    SUPERSEDED, rid)
            header, buffers = self._refine_reply(job)
            self._send(job, header, buffers)
            return False
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
        self._count("errors")
        if code != SUPERSEDED:
            log.info("request %r -> error %s: %s", rid, code, message[:200])
        self._send(entry, error_reply(rid, code, message[:2000]))
        return False

    def _release_unused_image(self) -> None:
        cur = self.engine._current
        if cur is not None and self.cache.images.get(cur.digest) is not cur:
            self.engine.forget(cur)

    # -- ops (requests as decode typed and checked them) ------------------------------------------
    def _dispatch(self, msg: Message) -> Any:
        req = msg.request
        if isinstance(req, OpenRequest):
            return self._open(req), []
        if isinstance(req, PredictRequest):
            return self._predict(req)
        if isinstance(req, RefineRequest):
            return self._refine(req)
        if isinstance(req, ForegroundRequest):
            return self._foreground(req)
        if isinstance(req, CloseRequest):
            return close_reply(req.id, req.session, self.cache.close(req.session)), []
        raise ProtocolError(f"unknown op {msg.op!r}", BAD_REQUEST, msg.id)

    def _hello(self, req: HelloRequest) -> Dict[str, Any]:
        if req.version is not None and req.version[0] != PROTOCOL_MAJOR:
            raise ProtocolError(f"client speaks protocol {req.protocol}, this daemon speaks "
                                f"{PROTOCOL_VERSION}: update the plugin or the daemon", UNSUPPORTED_VERSION, req.id)
        cfg = self.config
        return hello_reply(req.id, server_version(), self.engine.device, dict(self.engine.model_info), {
            "max_message_bytes": cfg.max_message_bytes,
            "max_image_pixels": cfg.max_image_pixels,
            "min_side": self.engine.min_side, "max_side": self.engine.max_side,
            "max_sessions": cfg.max_sessions, "max_cache_bytes": cfg.max_cache_bytes,
            "max_queue_bytes": cfg.max_queue_bytes,
            "max_clicks": MAX_CLICKS, "max_regions": MAX_REGIONS,
            "max_top_n": cfg.max_top_n, "max_region_pixels": cfg.max_region_pixels,
        })

    def _status(self, req: StatusRequest, envelope: List[bytes]) -> Dict[str, Any]:
        """(I/O thread.) The queue, the request being run, and the asker's request ``req.request`` if given:
        looked up by id among the entries received on the same connection (routing envelope)."""
        now = time.monotonic()
        asked = req.request
        with self._cv:
            queue = list(self.queue)
            running = self.running
            held = self.held_bytes
        item = running.item if isinstance(running, RefineJob) else running
        found = None
        if asked is not None:
            state, ahead, since = "unknown", 0, now
            if item is not None and item.id == asked and item.envelope == envelope:
                state, since = "running", item.received
            else:
                for i, e in enumerate(queue):
                    ei = e.item if isinstance(e, RefineJob) else e
                    if ei.id == asked and ei.envelope == envelope:
                        state, ahead, since = "queued", i + (1 if item is not None else 0), ei.received
                        break
            found = {"id": asked, "state": state, "ahead": ahead, "elapsed_s": round(now - since, 3)}
        return status_reply(
            req.id, len(queue), max(0, held - (running.nbytes if running is not None else 0)),
            {"op": item.msg.op, "elapsed_s": round(now - item.received, 3)} if item is not None else None,
            round(now - self.started, 3), found)

    def _open(self, req: OpenRequest) -> Dict[str, Any]:
        rid, digest = req.id, req.digest
        cached = False
        if req.image is None:
            entry = self.cache.find_image(digest)
            if entry is None:
                return need_pixels_reply(rid, digest)  # type: ignore[arg-type]  # decode: a digest without an image
            cached = True
        else:
            spec, data = req.image
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
        session = self.cache.latest_session(entry.digest) if req.resume else None
        resumed = session is not None
        if session is None:
            session = self.cache.create_session(entry)
        return open_reply(rid, session.id, entry.width, entry.height, entry.digest, cached, resumed)

    @staticmethod
    def _matte_buffers(req: Union[PredictRequest, RefineRequest], alpha: Any,
                       sigma: Any) -> Tuple[List[BufferSpec], List[Any]]:
        """The reply's ``alpha`` (and ``uncertainty`` when ``sigma`` is given) buffers, at the request's preview size."""
        a = encode_alpha(alpha, req.alpha_dtype, req.preview)
        ph, pw = a.shape
        specs, bufs = [BufferSpec("alpha", pw, ph, 1, req.alpha_dtype, "A")], [a]
        if sigma is not None:
            specs.append(BufferSpec("uncertainty", pw, ph, 1, "uint8", "A"))
            bufs.append(encode_uncertainty(sigma, req.preview))
        return specs, bufs

    def _predict(self, req: PredictRequest) -> tuple:
        session = self.cache.get(req.session)
        given = None
        if req.prev_buffer is not None:  # protocol 1.4: the editor's own mask as the previous alpha
            import numpy as np

            spec, data = req.prev_buffer
            iw, ih = session.image.width, session.image.height
            if (spec.width, spec.height) != (iw, ih):
                raise ProtocolError(f"prev_alpha is {spec.width}x{spec.height} but the image is {iw}x{ih}",
                                    BAD_REQUEST, req.id)
            given = np.frombuffer(data, np.uint8).reshape(ih, iw)
        t0 = time.perf_counter()
        alpha, sigma = self.engine.predict(session, req.clicks, prev_alpha=req.prev_alpha, preview=req.preview,
                                           given_prev=given)
        t1 = time.perf_counter()
        self.cache.evict(keep=session)
        specs, bufs = self._matte_buffers(req, alpha, sigma if req.uncertainty else None)
        return matte_reply(req.id, "predict", req.session, specs, session.image.width, session.image.height,
                           timing=_timing(t1 - t0, t1)), bufs

    def _foreground(self, req: ForegroundRequest) -> tuple:
        """Decontaminate: the session image's foreground colours under the alpha buffer sent."""
        import numpy as np

        session = self.cache.get(req.session)
        iw, ih = session.image.width, session.image.height
        spec, data = req.alpha
        if (spec.width, spec.height) != (iw, ih):
            raise ProtocolError(f"alpha is {spec.width}x{spec.height} but the image is {iw}x{ih}", BAD_REQUEST, req.id)
        alpha = np.frombuffer(data, np.uint8).reshape(ih, iw)
        t0 = time.perf_counter()
        fg = self.engine.foreground(session, alpha)
        t1 = time.perf_counter()
        return foreground_reply(req.id, req.session, iw, ih, _timing(t1 - t0, t1)), [np.ascontiguousarray(fg)]

    def _refine(self, req: RefineRequest) -> RefineJob:
        """Check a refine against the daemon's limits and plan it; the worker runs it step by step."""
        rid, cfg = req.id, self.config
        session = self.cache.get(req.session)
        if req.top_n is not None and req.top_n > cfg.max_top_n:
            raise ProtocolError(f"top_n {req.top_n} is more than the daemon's limit of {cfg.max_top_n} patches per "
                                "refine (hello: limits.max_top_n)", TOO_LARGE, rid)
        iw, ih = session.image.width, session.image.height
        area = 0
        for x, y, w, hh in req.regions or []:
            area += max(0, min(iw, x + w) - min(iw, x)) * max(0, min(ih, y + hh) - min(ih, y))
        mask = None
        if req.mask is not None:
            spec, data = req.mask
            if (spec.height, spec.width) != (ih, iw):
                raise ProtocolError(f"mask is {spec.width}x{spec.height} but the image is {iw}x{ih}", BAD_REQUEST, rid)
            mask = mask_to_bool(spec, data)
            import numpy as np

            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if rows.size:
                area += int(rows[-1] - rows[0] + 1) * int(cols[-1] - cols[0] + 1)
        if area > cfg.max_region_pixels:
            raise ProtocolError(f"the regions / selection cover {area / 1e6:.1f} MP, more than the daemon's limit of "
                                f"{cfg.max_region_pixels / 1e6:g} MP per refine (hello: limits.max_region_pixels): "
                                "refine a smaller area", TOO_LARGE, rid)
        plan = self.engine.plan_refine(session, req.top_n, req.regions, mask)
        return RefineJob(item=None, session=session, plan=plan)  # type: ignore[arg-type]

    def _refine_reply(self, job: RefineJob) -> tuple:
        req, session = job.msg.request, job.session
        assert isinstance(req, RefineRequest)  # only refines become RefineJobs
        alpha = self.engine.finish_refine(session, job.plan)
        t1 = time.perf_counter()
        self.cache.evict(keep=session)
        specs, bufs = self._matte_buffers(req, alpha, session.sigma if req.uncertainty else None)
        header = matte_reply(req.id, "refine", req.session, specs, alpha.shape[1], alpha.shape[0],
                             patches=job.plan.boxes, timing=_timing(job.plan.model_s, t1))
        if job.plan.chunks > 1:
            log.info("refine %r: %d patches in %d steps, %.1f s", req.id, len(job.plan.boxes), job.plan.chunks,
                     time.perf_counter() - job.started)
        return header, bufs
