"""The host-agnostic matting session: points in, mask and guide out, never blocking the editor.

``Controller`` turns the host's points into daemon requests and the daemon's replies into host
actions (``HostAdapter`` in ``host.py``). It only ever *sends* requests and *polls* for replies:
the editor calls ``tick()`` from a UI timer (Krita: a ``QTimer`` every ~50 ms); batch hosts call
``run_until_idle()``. Standard library only at import time; pyzmq is imported when the first
request is sent (a missing pyzmq becomes a status line, not an import error).

Usage (what an adapter does)::

    ctl = Controller(host, settings)          # settings.Settings (endpoint, top_n, preview size, ...)
    ctl.connect()                             # hello -> status "connected to ... (cpu, model ...)"
    ctl.click(x, y, "fg", radius=6)           # add a point, or remove the one within radius
    ctl.matte()                               # full-size predict + auto-refine top-N -> write_mask/guide
    ctl.refine_top(8); ctl.refine_selection() # refine the last full-size matte
    ctl.undo(); ctl.redo(); ctl.reset()
    timer -> ctl.tick()                       # polls replies, adopts point edits made in the document

Jobs
----
Each user action becomes a *job*: ``preview`` (live mode, after a point change: predict at
``settings.preview_size``), ``matte`` (predict at full size, then refine the ``top_n`` most
uncertain patches), ``refine`` (top-N or inside the selection). A job's first step opens the
image on the daemon if the document's content digest changed since the last open (the digest
alone is sent first; the pixels only when the daemon asks for them). One job is in flight at a
time; further jobs queue (a newer preview replaces a queued one). A job remembers the point-list
*generation* it started with: replies for an outdated point list are dropped, never written.

Busy or gone: a job's requests are sent with a long timeout (:data:`JOB_TIMEOUT_S`) and, while one
is in flight, a ``status`` request (protocol 1.3; ``hello`` for older daemons) goes out every
:data:`HEARTBEAT_S` with the settings' timeout. An answer means the daemon is working: the status
line shows "working… N s" (or the requests ahead of ours) and the late result is applied when it
comes, unless newer points superseded it. Only a heartbeat without answer within ``timeout_s`` ends
the job with "no answer ... is clickmatte-daemon running?". ``connection`` is the connection label
for the last exchange: ``"connected to ..."``, ``"working ..."`` or ``"not answering ..."``.

Managed local daemon: with ``settings.auto_start`` (the default) and a local endpoint (loopback TCP
or ipc://) where nothing listens, the first ``connect()`` or job starts the daemon program the
installer recorded (``launcher.py``), with ``--owner-pid`` of the editor. Jobs wait while it loads;
the status line counts "starting the model ... N s" and ``connection`` says "starting
clickmatte-daemon ...". A daemon that exits meanwhile, or a program that cannot be run, becomes an
error line at once; the next action tries again. One that dies later (a crash) is started again by
the next job. The launcher (one per editor process) hands the
same daemon to every controller and stops it when the editor quits; a daemon that was already
listening (the user's) is used and never stopped; a remote endpoint is never started.

Reproducible from the document: a full matte remembers the points it was computed from. When a later
matte's points only add to those (the daemon's rule for feeding the previous alpha back), the host's
current mask (``read_mask``) goes with the predict as the previous alpha (protocol 1.4), so the same
document gives the same matte even after the daemon restarted; without that record of its own the
controller asks the host (``read_mask_points``, e.g. GIMP's mask parasite). A daemon older than 1.4
refuses the buffer once and is then left to its own chain.

Undo: the writes of one Matte or Refine (not previews) sit between ``host.begin_undo_step()`` and
``host.end_undo_step()``; ``host.sync_outputs()``, polled while idle, says when the editor's own undo put
another mask back (the matte is set aside: the next Refine predicts afresh) or its redo brought the last
one back (taken up again).

Errors never raise into the editor: timeouts, daemon errors and ``HostError`` become the status
line (``host.notify(text, level)``) and end the job.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from . import launcher as launcher_mod
from .daemon_start import DaemonStart
from .host import HostAdapter, HostError, Point
from .job_steps import JobSteps
from .jobs import HEARTBEAT_S, JOB_TIMEOUT_S, LOST_AFTER, Job, Step
from .point_editing import POINT_TOLERANCE, PointEditing, same_points
from .settings import Settings

__all__ = ["Controller", "ClientFactory", "default_client_factory", "same_points", "POINT_TOLERANCE",
           "JOB_TIMEOUT_S", "HEARTBEAT_S", "LOST_AFTER", "Job", "Step"]

ClientFactory = Callable[[Settings], Any]


def default_client_factory(settings: Settings) -> Any:
    """A ``DaemonClient`` for ``settings`` (imports pyzmq here, so a missing pyzmq is catchable)."""
    from .client import DaemonClient

    kwargs: Dict[str, Any] = {}
    if settings.server_public_key:
        kwargs["server_key"] = settings.server_public_key
        kwargs["client_keys"] = (settings.client_public_key, settings.client_secret_key)
    return DaemonClient(settings.endpoint, timeout_ms=int(settings.timeout_s * 1000), retries=0,
                        client_name="clickmatte-plugin", **kwargs)


class Controller(PointEditing, DaemonStart, JobSteps):
    """One matting session over a ``HostAdapter``. All public methods return quickly.

    Attributes for adapters/tests: ``points`` (list of ``Point``), ``status`` / ``status_level``
    (the last status line), ``busy`` (a job is in flight or queued), ``alpha`` (``bytes``, the
    last full-image u8 mask written, or None), ``uncertainty`` (same for the guide),
    ``server_info`` (the ``hello`` reply, or None), ``session`` (the daemon session id).

    Its parts: the point list (``point_editing.PointEditing``), starting the local daemon
    (``daemon_start.DaemonStart``), the requests and replies of a job (``job_steps.JobSteps``); this class
    holds the state, the actions and the pump (``tick``).
    """

    def __init__(self, host: HostAdapter, settings: Optional[Settings] = None,
                 client_factory: ClientFactory = default_client_factory,
                 clock: Callable[[], float] = time.monotonic,
                 launcher: Optional[launcher_mod.Launcher] = None) -> None:
        self.host = host
        self.settings = (settings or Settings()).validate()
        self._client_factory = client_factory
        self._clock = clock
        self._client: Any = None
        self._launcher = launcher
        self._starting: Optional[launcher_mod.ManagedDaemon] = None  # a daemon we started, not ready yet
        self._daemon_checked = False  # the endpoint was probed (and a daemon started if needed)
        self._next_start_note = 0.0
        self.started_daemon: Optional[launcher_mod.ManagedDaemon] = None  # the daemon this controller started
        self._managed: Optional[launcher_mod.ManagedDaemon] = None  # the editor-started daemon in use, if any
        self.points: List[Point] = []
        self._undo: List[List[Point]] = []
        self._redo: List[List[Point]] = []
        self.generation = 0
        self.session: Optional[str] = None
        self._session_digest = ""
        self._session_doc = ""
        self._points_doc: Optional[str] = None
        self._writing_points = False
        self._in_tick = False
        self._predicted_generation = -1  # generation of the daemon's last prediction in this session
        self._full_generation = -1  # generation of the last full-size alpha written to the host
        self.alpha: Optional[bytes] = None
        self.uncertainty: Optional[bytes] = None
        self.size: Tuple[int, int] = (0, 0)
        self.server_info: Any = None
        self._job: Optional[Job] = None
        self._queue: Deque[Job] = deque()
        self._inflight: Dict[str, Tuple[Optional[Job], Step]] = {}
        self._last_wait_note = 0.0
        self._heartbeat: Optional[str] = None  # id of the status / hello request in flight
        self._last_sent = ""
        self._next_heartbeat = 0.0
        self._status_supported = True  # False once a daemon answered status with bad_request (< 1.3)
        self._prev_buffer_supported = True  # False once a daemon refused a prev_alpha buffer (< 1.4)
        self._mask_points: Optional[List[Point]] = None  # the points of the full matte the host's mask holds
        self._undo_step_open = False  # host.begin_undo_step() was called for the job in flight
        self._set_aside: Optional[tuple] = None  # the matte while the editor's undo shows an earlier mask
        self.connection = f"not connected ({self.settings.endpoint})"
        self.status = ""
        self.status_level = "info"

    # ------------------------------------------------------------------------------------------
    # status and client
    # ------------------------------------------------------------------------------------------
    def _notify(self, text: str, level: str = "info") -> None:
        self.status, self.status_level = text, level
        try:
            self.host.notify(text, level)
        except Exception:  # noqa: BLE001 - a broken status widget must not break the session
            pass

    def _get_client(self) -> Any:
        if self._client is None:
            try:
                self._client = self._client_factory(self.settings)
            except ImportError as exc:
                raise HostError(f"pyzmq is not available in this editor's Python ({exc}); "
                                "run clickmatte-install again or install python3-zmq") from exc
            except (ValueError, OSError) as exc:
                raise HostError(f"cannot connect to {self.settings.endpoint}: {exc}") from exc
        return self._client

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings; a changed endpoint or key drops the connection and the session."""
        settings.validate()
        old = self.settings
        self.settings = settings
        if (old.endpoint, old.server_public_key, old.client_secret_key) != (
                settings.endpoint, settings.server_public_key, settings.client_secret_key):
            self.disconnect()
            self.connect()

    def connect(self) -> None:
        """Send ``hello``; the reply sets ``server_info`` and the status line.

        With ``settings.auto_start`` and a local endpoint where nothing listens, the daemon is started
        first (``launcher.py``): the status line counts "starting the model ... N s" until it answers.
        """
        state = self._ensure_daemon()
        if state != "ready":
            return  # "starting": the START_HELLO reply connects; "failed": the status line says why
        try:
            rid = self._get_client().send_hello()
        except HostError as exc:
            self._notify(str(exc), "error")
            return
        self._inflight[rid] = (None, Step.HELLO)
        self._notify(f"connecting to {self.settings.endpoint} ...", "busy")

    def disconnect(self) -> None:
        """Drop the connection and forget the session (the daemon expires it by itself)."""
        if self._client is not None:
            try:
                if self.session:
                    self._client.send_close(self.session)
            except Exception:  # noqa: BLE001
                pass
            self._client.disconnect()
        self._client = None
        self._inflight.clear()
        self._heartbeat = None
        self._end_undo_step()
        self._job = None
        self._queue.clear()
        self._starting = None
        self._daemon_checked = False
        self.session = None
        self._session_digest = ""
        self.server_info = None
        self._predicted_generation = -1
        self.connection = f"not connected ({self.settings.endpoint})"

    close = disconnect

    @property
    def busy(self) -> bool:
        return self._job is not None or bool(self._queue)

    # ------------------------------------------------------------------------------------------
    # actions
    # ------------------------------------------------------------------------------------------
    def matte(self, top_n: Optional[int] = None) -> None:
        """Full-size matte for the current points, then auto-refine ``top_n`` (default: settings.top_n) patches."""
        if not self.points:
            self._notify("add at least one point first", "warning")
            return
        self._enqueue(Job("matte", top_n=self.settings.top_n if top_n is None else int(top_n)))

    def refine_top(self, top_n: Optional[int] = None) -> None:
        """Refine the ``top_n`` most uncertain patches of the current full-size matte."""
        n = self.settings.top_n if top_n is None else int(top_n)
        if n <= 0:
            self._notify("top-N is 0: nothing to refine", "warning")
            return
        if not self.points:
            self._notify("add at least one point first", "warning")
            return
        self._enqueue(Job("refine_top", top_n=n))

    def decontaminate(self) -> None:
        """Add a layer with the foreground colours estimated under the layer's current mask (no spill of
        the old background), the mask copied onto it; the layer itself is not changed."""
        self._enqueue(Job("foreground"))

    def refine_selection(self) -> None:
        """Refine the patches covering the host's selection; only selected pixels change."""
        if not self.points:
            self._notify("add at least one point first", "warning")
            return
        try:
            sel = self.host.read_selection()
        except HostError as exc:
            self._notify(str(exc), "error")
            return
        if sel is None or not any(sel):
            self._notify("select the area to refine first", "warning")
            return
        self._enqueue(Job("refine_selection", selection=sel))

    def _enqueue(self, job: Job) -> None:
        if job.kind == "preview":
            if any(j.kind != "preview" for j in self._queue):
                return  # a queued full matte will use the newest points anyway
            self._queue = deque(j for j in self._queue if j.kind != "preview")
        self._queue.append(job)
        if self._job is None:
            self._start_next()

    # ------------------------------------------------------------------------------------------
    # the pump
    # ------------------------------------------------------------------------------------------
    def tick(self, wait_ms: int = 0) -> bool:
        """Poll replies (waiting at most ``wait_ms`` for the first), adopt point edits, start queued
        jobs. Call it from a UI timer. Returns ``busy``.

        Re-entrant calls (a host that runs its event loop while writing a mask) return at once.
        """
        if self._in_tick:
            return self.busy
        self._in_tick = True
        try:
            return self._tick(wait_ms)
        finally:
            self._in_tick = False

    def _tick(self, wait_ms: int) -> bool:
        if self._job is None:
            try:
                self._sync_outputs(self.host.sync_outputs())
            except HostError:
                pass
            self.sync_points()
        if self._client is not None:
            first = True
            while self._client is not None:
                try:
                    reply = self._client.poll(wait_ms if first else 0)
                except Exception as exc:  # noqa: BLE001 - e.g. a socket error: report, reconnect later
                    self._fail(f"connection problem: {exc}")
                    self._drop_client()
                    break
                first = False
                if reply is None:
                    break
                self._on_reply(reply)
        if self._starting is not None:
            self._watch_start()
        if self._job is not None and self._job.step is not Step.NEW and self._job.rid in self._inflight:
            self._maybe_heartbeat(self._job)
        if self._job is None and self._queue:
            self._start_next()
        return self.busy

    def run_until_idle(self, timeout_s: float = 60.0) -> bool:
        """For batch hosts and tests: tick until no job is left (True) or ``timeout_s`` passed (False)."""
        deadline = self._clock() + timeout_s
        while self.busy or self._inflight:
            if self._clock() >= deadline:
                return False
            self.tick(wait_ms=50)
        return True

    def _drop_client(self) -> None:
        try:
            if self._client is not None:
                self._client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        self._client = None
        self._inflight.clear()
        self._heartbeat = None

    def _start_next(self) -> None:
        if self._job is None and self._queue:
            state = self._ensure_daemon()
            if state == "starting":
                self._progress(True)
                return  # the queued jobs go once the daemon answers (_on_started)
            if state == "failed":
                return
        while self._job is None and self._queue:
            job = self._queue.popleft()
            job.generation = self.generation
            job.points = list(self.points)
            job.started = self._clock()
            self._job = job
            self._progress(True)
            self._step_open(job)

    def _progress(self, busy: bool) -> None:
        try:
            self.host.progress(busy)
        except Exception:  # noqa: BLE001
            pass

    def _begin_undo_step(self, job: Job) -> None:
        self._set_aside = None  # a new matte replaces whatever the editor's undo had set aside
        if not self._undo_step_open:
            self._undo_step_open = True
            self.host.begin_undo_step("ClickMatte Refine" if job.kind.startswith("refine") else "ClickMatte Matte")

    def _end_undo_step(self) -> None:
        if self._undo_step_open:
            self._undo_step_open = False
            try:
                self.host.end_undo_step()
            except HostError as exc:
                self._notify(str(exc), "error")

    def forget_matte(self) -> None:
        """The host's mask is no longer the controller's last matte (reset, another document): the next
        Refine predicts afresh, and the mask is fed back as a previous alpha only when the host knows its
        points (``read_mask_points``)."""
        self.alpha = self.uncertainty = None
        self._full_generation = -1
        self._mask_points = None
        self._set_aside = None

    def _sync_outputs(self, state: str) -> None:
        """React to ``host.sync_outputs()``: the editor's undo put another mask back (set the matte aside)
        or its redo brought the last one back (take it up again)."""
        if state == "other":
            if self._set_aside is None:
                self._set_aside = (self.alpha, self.uncertainty, self._full_generation, self._mask_points)
            self.alpha = self.uncertainty = None
            self._full_generation = -1
            self._mask_points = None
        elif state == "latest" and self._set_aside is not None:
            self.alpha, self.uncertainty, self._full_generation, self._mask_points = self._set_aside
            self._set_aside = None

    def _finish(self, text: Optional[str] = None, level: str = "info") -> None:
        self._end_undo_step()
        self._job = None
        if text is not None:
            self._notify(text, level)
        if not self._queue:
            self._progress(False)
        self._start_next()

    def _fail(self, text: str, level: str = "error") -> None:
        self._finish(text, level)
