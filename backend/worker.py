"""The daemon's worker thread (:class:`WorkerLoop`, a part of ``server.DaemonServer``): takes the queued
requests in arrival order, answers superseded ones ("latest click wins"), runs the rest through ``ops.py``
and hands the replies to the I/O thread; a long refine runs in steps of :data:`REFINE_STEP_S`."""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Dict, Optional, Sequence

import zmq

from clickmatte.plugin.protocol import (
    BAD_REQUEST, INTERNAL, SUPERSEDED, TOO_LARGE, ProtocolError, error_reply,
)

from .queue_entries import Entry, Incoming, RefineJob, entry_session

log = logging.getLogger("clickmatte.daemon")

REFINE_STEP_S = 0.25  # a long refine gives way to other requests about this often


class WorkerLoop:
    """The worker half of ``DaemonServer``: owns the model (``engine``) and the session cache while it runs."""

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
        s = entry_session(entry)
        if s is None:
            return False
        if isinstance(entry, RefineJob):
            return any(entry_session(e) == s for e in self.queue)
        if entry.msg.op != "predict":
            return False
        for later in self.queue:
            if entry_session(later) == s:
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
