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

This module: :class:`DaemonServer`, its setup and the I/O thread. Its other parts: ``worker.py`` (the worker
thread and the queue order), ``ops.py`` (what each request does), ``allow_list.py`` (the CURVE allow-list);
``queue_entries.py`` says what the queue holds.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import zmq

from clickmatte.plugin.protocol import (
    BUSY, INTERNAL, MAX_HEADER_BYTES, TOO_LARGE, HelloRequest, ProtocolError, decode, encode, error_reply,
    peek_request_id,
)

from .allow_list import AllowList, KEY_CHECK_S
from .config import SERVER_SECRET_FILE, DaemonConfig
from .engine import MattingEngine
from .ops import RequestOps, server_version
from .queue_entries import Entry, Incoming, RefineJob
from .sessions import SessionCache
from .worker import REFINE_STEP_S, WorkerLoop

__all__ = ["DaemonServer", "BindError", "server_version", "Incoming", "RefineJob", "Entry", "MAX_QUEUE",
           "REFINE_STEP_S", "KEY_CHECK_S", "OWNER_CHECK_S", "SEND_HWM"]


log = logging.getLogger("clickmatte.daemon")

MAX_QUEUE = 256  # requests queued at once (whatever their size)
OWNER_CHECK_S = 1.0  # how often the owner process (--owner-pid) is checked
SEND_HWM = 64  # replies queued per peer that does not read them (more are dropped by ZeroMQ)


def _is_zombie(pid: int) -> bool:
    """True if ``pid`` has exited but was not reaped yet (Linux ``/proc``; False where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class BindError(RuntimeError):
    """The endpoint cannot be bound (port in use, bad address, ...)."""


class DaemonServer(AllowList, WorkerLoop, RequestOps):
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
