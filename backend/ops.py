"""What each request does on the worker (:class:`RequestOps`, a part of ``server.DaemonServer``): ``hello``,
``status``, ``open``, ``predict``, ``foreground`` and ``refine`` (its steps and its reply) as
``protocol.decode`` typed and checked them; each returns the reply header and buffers."""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Tuple, Union

from clickmatte.plugin.protocol import (
    BAD_REQUEST, MAX_CLICKS, MAX_REGIONS, PROTOCOL_MAJOR, PROTOCOL_VERSION, TOO_LARGE, UNSUPPORTED_VERSION,
    BufferSpec, CloseRequest, ForegroundRequest, HelloRequest, Message, OpenRequest, PredictRequest,
    ProtocolError, RefineRequest, StatusRequest, close_reply, foreground_reply, hello_reply, image_digest,
    matte_reply, need_pixels_reply, open_reply, status_reply,
)

from .images import encode_alpha, encode_uncertainty, image_to_rgb8, mask_to_bool
from .queue_entries import RefineJob

log = logging.getLogger("clickmatte.daemon")


def server_version() -> str:
    try:
        from importlib.metadata import version

        return f"clickmatte {version('clickmatte')}"
    except Exception:  # not installed as a distribution
        return "clickmatte (unknown version)"


def _timing(model_s: float, t1: float) -> Dict[str, float]:
    """Reply ``timing`` field: model time and reply-encoding time since ``t1``, in ms."""
    return {"model_ms": round(model_s * 1000, 3), "encode_ms": round((time.perf_counter() - t1) * 1000, 3)}


class RequestOps:
    """The ops half of ``DaemonServer``; uses its ``engine``, ``cache``, ``config``, queue and stats."""

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
