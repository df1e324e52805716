"""The requests of a job and what their replies do (:class:`JobSteps`, a part of ``controller.Controller``):
open the image (digest first, pixels when asked), predict, refine, estimate the foreground; the heartbeat
while a request is in flight; errors, retries and lost requests. Replies reach the host as mask, guide and
status-line writes."""
from __future__ import annotations

from typing import Any, Callable, Optional

from .host import HostError, points_extend
from .jobs import HEARTBEAT_S, JOB_TIMEOUT_S, LOST_AFTER, Job, Step
from .protocol import image_digest


class JobSteps:
    """The request/reply half of ``Controller``: each request is sent as a :class:`~.jobs.Step` and its reply
    is handled by that step."""

    def _send(self, job: Optional[Job], step: Step, send: Callable[[Any, Optional[int]], str],
              timeout_ms: Optional[int] = None) -> bool:
        """Send one request for ``job`` (None: a heartbeat or fire-and-forget close) as ``step``:
        ``send(client, timeout_ms)`` calls one ``DaemonClient.send_*`` method and returns its id. A job's
        requests get :data:`JOB_TIMEOUT_S` unless ``timeout_ms`` says otherwise; a failure ends the job."""
        try:
            client = self._get_client()
            if job is not None and timeout_ms is None:
                timeout_ms = int(JOB_TIMEOUT_S * 1000)
            rid = send(client, timeout_ms)
        except HostError as exc:
            if job is not None:
                self._fail(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - ProtocolError (too large...), DaemonTimeout (queue full)
            if job is not None:
                self._fail(f"cannot send {step} to {self.settings.endpoint}: {exc}")
            return False
        if job is not None:
            job.step = step
            job.sent_at = self._clock()
            job.rid = rid
            job.unknown = 0
        self._inflight[rid] = (job, step)
        self._last_sent = rid
        return True

    # -- steps -----------------------------------------------------------------------------------
    def _step_open(self, job: Job) -> None:
        try:
            doc = self.host.document_key()
            img = self.host.read_image()
        except HostError as exc:
            self._fail(str(exc))
            return
        digest = image_digest(img.data, img.width, img.height, img.channels, img.dtype, img.order)
        job.image, job.digest = img, digest
        if self.session and digest == self._session_digest and doc == self._session_doc:
            self._after_open(job)
            return
        self._session_doc = doc
        self._notify(f"opening the image ({img.width}x{img.height}) ...", "busy")
        self._send(job, Step.OPEN_DIGEST, lambda c, t: c.send_open(digest=digest, timeout_ms=t))

    def _after_open(self, job: Job) -> None:
        assert job.image is not None
        self.size = (job.image.width, job.image.height)
        if job.kind == "preview":
            self._step_predict(job, preview=self.settings.preview_size or None)
        elif job.kind == "foreground":
            self._step_foreground(job)
        elif job.kind == "matte":
            self._step_predict(job, preview=None)
        elif self._full_generation == job.generation and self._predicted_generation == job.generation:
            self._step_refine(job)
        else:
            self._step_predict(job, preview=None)  # refine needs a full-size matte of these points first

    def _step_predict(self, job: Job, preview: Optional[int]) -> None:
        if preview is not None and job.image is not None and max(job.image.width, job.image.height) <= preview:
            preview = None
        self._notify(f"matting with {len(job.points)} point(s){' (preview)' if preview else ''} ...", "busy")
        clicks = [p.as_click() for p in job.points]
        session = self.session
        prev = self._previous_mask(job) if preview is None else None
        job.sent_prev = prev is not None
        w, h = self.size
        self._send(job, Step.PREDICT_PREVIEW if preview else Step.PREDICT_FULL,
                   lambda c, t: c.send_predict(session, clicks, preview=preview, uncertainty=True, timeout_ms=t,
                                               prev_mask=prev, mask_width=w, mask_height=h))

    def _previous_mask(self, job: Job) -> Optional[bytes]:
        """The host's current mask when ``job``'s points only add to those of the full matte that mask
        holds (``_mask_points``, else ``host.read_mask_points()``): it goes to the daemon as the previous
        alpha, so that the same document gives the same matte even if the daemon forgot the session."""
        if not self._prev_buffer_supported:
            return None
        try:
            base = self._mask_points if self._mask_points is not None else self.host.read_mask_points()
            if base is None or not points_extend(base, job.points):
                return None
            mask = self.host.read_mask()
        except HostError:
            return None
        w, h = self.size
        return mask if mask is not None and len(mask) == w * h else None

    def _step_foreground(self, job: Job) -> None:
        w, h = self.size
        try:
            mask = self.host.read_mask()
        except HostError as exc:
            self._fail(str(exc))
            return
        if mask is None:
            self._fail("no ClickMatte mask on this layer yet: press Matte first", "warning")
            return
        job.selection = mask  # the alpha the colours are estimated under; copied onto the new layer
        self._notify("estimating the foreground colours ...", "busy")
        session = self.session
        self._send(job, Step.FOREGROUND, lambda c, t: c.send_foreground(session, mask, w, h, timeout_ms=t))

    def _step_refine(self, job: Job) -> None:
        w, h = self.size
        if job.kind == "refine_selection":
            self._notify("refining inside the selection ...", "busy")
            session, selection = self.session, job.selection
            self._send(job, Step.REFINE, lambda c, t: c.send_refine(session, top_n=None, mask=selection,
                                                                     mask_width=w, mask_height=h, timeout_ms=t))
        else:
            self._notify(f"refining the {job.top_n} most uncertain patches ...", "busy")
            session, top_n = self.session, job.top_n
            self._send(job, Step.REFINE, lambda c, t: c.send_refine(session, top_n=top_n, timeout_ms=t))

    # -- replies ---------------------------------------------------------------------------------
    def _on_reply(self, reply: Any) -> None:
        entry = self._inflight.pop(reply.id, None)
        if entry is None:
            return  # fire-and-forget (close) or a request of a dropped job
        job, step = entry
        if reply.ok or getattr(reply.error, "code", "") != "timeout":
            self.connection = self._connected_text()  # it answered (the heartbeat may say "working")
        if step is Step.HELLO:
            self._on_hello(reply)
            return
        if step is Step.START_HELLO:
            self._on_started(reply)
            return
        if step in (Step.STATUS, Step.HEARTBEAT_HELLO):
            self._on_heartbeat(step, reply)
            return
        if job is None or job is not self._job:
            return  # the job was reset/cancelled meanwhile
        if not reply.ok:
            self._on_error(job, step, reply)
            return
        try:
            if step is Step.OPEN_DIGEST and reply.need_pixels:
                img = job.image
                assert img is not None
                self._notify(f"sending the image ({img.width}x{img.height}) ...", "busy")
                digest = job.digest
                self._send(job, Step.OPEN_PIXELS, lambda c, t: c.send_open(
                    img.data, img.width, img.height, img.channels, img.dtype, img.order, digest=digest, timeout_ms=t))
            elif step in (Step.OPEN_DIGEST, Step.OPEN_PIXELS):
                res = reply.result()
                old = self.session
                self.session, self._session_digest = res.session, job.digest
                self._predicted_generation = -1
                self._full_generation = -1
                if old and old != res.session:
                    self._send(None, Step.CLOSE, lambda c, t: c.send_close(old, timeout_ms=t))
                self._after_open(job)
            elif step in (Step.PREDICT_PREVIEW, Step.PREDICT_FULL):
                self._on_matte(job, step, reply.result())
            elif step is Step.REFINE:
                self._on_refined(job, reply.result())
            elif step is Step.FOREGROUND:
                res = reply.result()
                name = self.host.write_foreground(res.rgb, job.selection or b"", res.width, res.height)
                self._finish(f"decontaminated colours on the new layer \"{name}\"", "info")
        except HostError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - never raise into the editor's event loop
            self._fail(f"internal error in {step.value}: {type(exc).__name__}: {exc}")

    def _connected_text(self) -> str:
        info = self.server_info
        if info is None:
            return f"connected to {self.settings.endpoint}"
        model = info.model.get("name") or info.model.get("checkpoint") or "model"
        note = " (UNTRAINED weights)" if info.model.get("trained") is False else ""
        return f"connected to {self.settings.endpoint}: {info.device}, {model}{note}"

    def _on_hello(self, reply: Any) -> None:
        if not reply.ok:
            if getattr(reply.error, "code", "") == "timeout":
                self.connection = f"not answering ({self.settings.endpoint})"
            self._notify(self._error_text(reply), "error")
            return
        info = reply.result()
        self.server_info = info
        self.connection = self._connected_text()
        self._notify(self.connection, "info")

    def _error_text(self, reply: Any) -> str:
        err = reply.error
        code = getattr(err, "code", "")
        if code == "timeout":
            ours = self.started_daemon
            if ours is not None and ours.endpoint == self.settings.endpoint and ours.exit_code() is not None:
                return f"{ours.failure_text()}; the next action starts it again"
            return (f"no answer from the daemon at {self.settings.endpoint} within {self.settings.timeout_s:g} s: "
                    "is clickmatte-daemon running?")
        if code == "too_large":
            return f"the daemon refused the image as too large: {getattr(err, 'message', err)}"
        return f"daemon error: {err}"

    def _on_error(self, job: Job, step: Step, reply: Any) -> None:
        if reply.superseded:
            self._finish()
            return
        code = getattr(reply.error, "code", "")
        if code == "bad_request" and step is Step.PREDICT_FULL and job.sent_prev:
            self._prev_buffer_supported = False  # a daemon older than protocol 1.4: its own chain
            self._step_predict(job, preview=None)
            return
        if code == "unknown_session" and not job.retried:
            job.retried = True  # the daemon restarted or expired the session: open again, once
            self.session = None
            self._session_digest = ""
            self._step_open(job)
            return
        if code == "timeout":
            self.server_info = None
            self.connection = f"not answering ({self.settings.endpoint})"
            self._daemon_checked = False  # the next action probes again (and restarts a daemon we started)
        self._fail(self._error_text(reply))

    def _outdated(self, job: Job) -> bool:
        return job.generation != self.generation

    def _on_matte(self, job: Job, step: Step, m: Any) -> None:
        if m.dtype != "uint8":
            raise HostError(f"unexpected alpha dtype {m.dtype}")
        self._predicted_generation = job.generation
        if self._outdated(job):
            self._finish(None)  # points changed while it ran: drop it (the newer job follows)
            return
        full_w, full_h = m.full_width, m.full_height
        alpha, unc = bytes(m.alpha), bytes(m.uncertainty) if m.uncertainty is not None else None
        if (m.width, m.height) != (full_w, full_h):
            alpha = self.host.resize_plane(alpha, m.width, m.height, full_w, full_h)
            if unc is not None:
                unc = self.host.resize_plane(unc, m.width, m.height, full_w, full_h)
        if step is Step.PREDICT_FULL:
            self._begin_undo_step(job)
        self.host.write_mask(alpha, full_w, full_h, None, points=job.points if step is Step.PREDICT_FULL else None)
        if unc is not None:
            self.host.write_guide(unc, full_w, full_h)
        self.alpha, self.uncertainty = alpha, unc
        self._mask_points = list(job.points) if step is Step.PREDICT_FULL else None
        if step is Step.PREDICT_FULL:
            self._full_generation = job.generation
        else:
            self._full_generation = -1
        if job.kind in ("refine_top", "refine_selection") or (job.kind == "matte" and job.top_n > 0):
            self._step_refine(job)
            return
        what = "preview" if step is Step.PREDICT_PREVIEW else "matte"
        self._finish(f"{what} done ({len(job.points)} point(s), {full_w}x{full_h})", "info")

    def _on_refined(self, job: Job, m: Any) -> None:
        if self._outdated(job):
            self._finish(None)
            return
        if (m.width, m.height) != (m.full_width, m.full_height):
            raise HostError("refine reply is not full size")
        alpha = bytes(m.alpha)
        boxes = [tuple(p) for p in m.patches]
        if not boxes and job.kind != "refine_selection":  # nothing changed: no mask write (no empty undo step)
            self._finish("nothing refined: at this image size the matte already has full resolution, and its "
                         "unsure parts are soft (glass, veils, fine hair), which refining makes worse; "
                         "Refine selection refines an area anyway", "info")
            return
        self._begin_undo_step(job)
        self.host.write_mask(alpha, m.full_width, m.full_height, boxes)
        self.alpha = alpha
        where = "inside the selection" if job.kind == "refine_selection" else "most uncertain"
        self._finish(f"refined {len(boxes)} patch(es) {where}", "info")

    def _maybe_heartbeat(self, job: Job) -> None:
        """While ``job``'s request is in flight: a status request every HEARTBEAT_S (one at a time), and
        "waiting ..." on the status line until the daemon has answered one."""
        now = self._clock()
        waited = now - job.sent_at
        if self._heartbeat is None and now >= self._next_heartbeat and waited >= HEARTBEAT_S / 2:
            self._next_heartbeat = now + HEARTBEAT_S
            timeout_ms = int(self.settings.timeout_s * 1000)
            if self._status_supported:
                ok = self._send(None, Step.STATUS, lambda c, t: c.send_status(job.rid, timeout_ms=t), timeout_ms)
            else:
                ok = self._send(None, Step.HEARTBEAT_HELLO, lambda c, t: c.send_hello(timeout_ms=t), timeout_ms)
            if ok:
                self._heartbeat = self._last_sent
        if (not self.connection.startswith("working") and waited >= 3.0
                and now - self._last_wait_note >= 1.0):
            self._last_wait_note = now
            self._notify(f"waiting for the daemon at {self.settings.endpoint} ({waited:.0f} s) ...", "busy")

    def _on_heartbeat(self, step: Step, reply: Any) -> None:
        """A status (or hello) answer while a job runs: progress on the status line, or a lost request."""
        self._heartbeat = None
        job = self._job
        if not reply.ok:
            code = getattr(reply.error, "code", "")
            if code == "timeout":
                self.connection = f"not answering ({self.settings.endpoint})"
            elif step is Step.STATUS and code == "bad_request":
                self._status_supported = False  # a daemon older than protocol 1.3
                self._next_heartbeat = 0.0
            return
        if job is None or job.rid not in self._inflight:
            return
        elapsed = self._clock() - job.started
        if step is Step.STATUS:
            st = reply.result()
            if st.state == "queued":
                text = f"working ... {elapsed:.0f} s (the daemon has {st.ahead} request(s) before this one)"
            elif st.state == "running":
                text = f"working ... {elapsed:.0f} s"
            else:
                job.unknown += 1
                if job.unknown >= LOST_AFTER:  # its reply would have come by now: the daemon lost it
                    self._lost(job)
                return
            job.unknown = 0
        else:
            text = f"working ... {elapsed:.0f} s"
        self.connection = f"working ({self.settings.endpoint})"
        self._notify(text, "busy")

    def _lost(self, job: Job) -> None:
        """The daemon answers but no longer knows ``job``'s request (it restarted): start the job again
        once, from opening the image."""
        self._inflight.pop(job.rid, None)
        if job.retried:
            self._fail(f"the daemon at {self.settings.endpoint} lost the request twice (restarting?); try again")
            return
        job.retried = True
        job.unknown = 0
        self.session = None
        self._session_digest = ""
        self._step_open(job)
