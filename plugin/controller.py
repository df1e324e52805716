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
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from . import launcher as launcher_mod
from .host import BG, FG, HostAdapter, HostError, ImageData, Point, points_extend
from .protocol import image_digest
from .settings import Settings

#: how close (image pixels) a host point must be to ours to count as the same point
POINT_TOLERANCE = 0.75
#: a job request's own timeout: long, since the heartbeat tells a busy daemon from a gone one
JOB_TIMEOUT_S = 3600.0
#: seconds between heartbeats (``status`` requests) while a job's request is in flight
HEARTBEAT_S = 1.0
#: heartbeats in a row that say "unknown" before a request counts as lost (the daemon restarted)
LOST_AFTER = 3

ClientFactory = Callable[[Settings], Any]


class Step(Enum):
    """What a request in flight is for; a reply is handled by the step it was sent as."""

    NEW = "new"  # a job whose first request is not sent yet
    HELLO = "hello"  # connect(): the reply sets server_info
    START_HELLO = "start_hello"  # hello to a daemon we just started: ready when it answers
    STATUS = "status"  # heartbeat while a job's request is in flight (protocol 1.3)
    HEARTBEAT_HELLO = "heartbeat_hello"  # heartbeat for daemons older than 1.3
    CLOSE = "close"  # fire-and-forget
    OPEN_DIGEST = "open_digest"
    OPEN_PIXELS = "open_pixels"
    PREDICT_PREVIEW = "predict_preview"
    PREDICT_FULL = "predict_full"
    REFINE = "refine"
    FOREGROUND = "foreground"


def default_client_factory(settings: Settings) -> Any:
    """A ``DaemonClient`` for ``settings`` (imports pyzmq here, so a missing pyzmq is catchable)."""
    from .client import DaemonClient

    kwargs: Dict[str, Any] = {}
    if settings.server_public_key:
        kwargs["server_key"] = settings.server_public_key
        kwargs["client_keys"] = (settings.client_public_key, settings.client_secret_key)
    return DaemonClient(settings.endpoint, timeout_ms=int(settings.timeout_s * 1000), retries=0,
                        client_name="clickmatte-plugin", **kwargs)


def same_points(a: Sequence[Point], b: Sequence[Point], tol: float = POINT_TOLERANCE) -> bool:
    """Same labels in the same order and coordinates within ``tol`` pixels."""
    return len(a) == len(b) and all(
        p.label == q.label and abs(p.x - q.x) <= tol and abs(p.y - q.y) <= tol for p, q in zip(a, b)
    )


@dataclass
class Job:
    """One user action in progress. ``kind``: preview | matte | refine_top | refine_selection."""

    kind: str
    top_n: int = 0
    generation: int = -1
    points: List[Point] = field(default_factory=list)
    step: Step = Step.NEW
    image: Optional[ImageData] = None
    digest: str = ""
    selection: Optional[bytes] = None
    retried: bool = False
    sent_prev: bool = False  # the predict in flight carries the host's mask as the previous alpha
    started: float = 0.0
    sent_at: float = 0.0
    rid: str = ""
    unknown: int = 0  # heartbeats in a row that found the daemon without our request


class Controller:
    """One matting session over a ``HostAdapter``. All public methods return quickly.

    Attributes for adapters/tests: ``points`` (list of ``Point``), ``status`` / ``status_level``
    (the last status line), ``busy`` (a job is in flight or queued), ``alpha`` (``bytes``, the
    last full-image u8 mask written, or None), ``uncertainty`` (same for the guide),
    ``server_info`` (the ``hello`` reply, or None), ``session`` (the daemon session id).
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

    # -- the managed local daemon ------------------------------------------------------------------
    def _get_launcher(self) -> launcher_mod.Launcher:
        if self._launcher is None:
            self._launcher = launcher_mod.default_launcher()
        return self._launcher

    def _ensure_daemon(self) -> str:
        """Make sure a daemon will answer at the endpoint: ``"ready"`` (send requests), ``"starting"``
        (a daemon started by this editor loads its model; jobs wait) or ``"failed"`` (the status line
        says why; queued jobs are dropped). Probes the endpoint once per connection."""
        if self._starting is not None:
            return "starting"
        if self._daemon_checked and self._managed is not None and self._managed.exit_code() is not None:
            self._daemon_checked = False  # the daemon this editor started has gone: start it again
            self._managed = None
            self.session = None
            self._session_digest = ""
        if self._daemon_checked:
            return "ready"
        s = self.settings
        if not s.auto_start or not launcher_mod.is_local(s.endpoint):
            self._daemon_checked = True  # a remote daemon is never started
            return "ready"
        launcher = self._get_launcher()
        daemon = launcher.get(s.endpoint)
        if daemon is None:
            if launcher_mod.something_listens(s.endpoint):
                self._daemon_checked = True  # the user's daemon (or another editor's): use it, never stop it
                return "ready"
            try:
                daemon = launcher.start(s.endpoint, launcher_mod.resolve_command(s.daemon_path))
            except (launcher_mod.LaunchError, ValueError) as exc:
                self._launch_failed(str(exc))
                return "failed"
            self.started_daemon = daemon
        self._managed = daemon
        if daemon.ready:
            self._daemon_checked = True
            return "ready"
        try:  # loading (started now, or by another document's controller): one hello that may wait long
            rid = self._get_client().send_hello(timeout_ms=int(launcher_mod.STARTUP_TIMEOUT_S * 1000))
        except HostError as exc:
            self._launch_failed(str(exc))
            return "failed"
        self._inflight[rid] = (None, Step.START_HELLO)
        self._starting = daemon
        self._next_start_note = 0.0
        self.connection = f"starting clickmatte-daemon ({s.endpoint})"
        self._progress(True)
        self._watch_start()  # it may have exited already (a program that fails at once)
        return "starting" if self._starting is not None else "failed"

    def _watch_start(self) -> None:
        """From tick() while the started daemon loads: elapsed time on the status line, or its failure."""
        daemon = self._starting
        if daemon is None:
            return
        if daemon.exit_code() is not None:
            self._starting = None
            self._drop_client()  # forget the hello it will never answer
            self._launch_failed(daemon.failure_text())
            return
        now = self._clock()
        if now >= self._next_start_note:
            self._next_start_note = now + 1.0
            self._notify(self._starting_text(), "busy")

    def _starting_text(self) -> str:
        """``starting the model ... N s`` while the daemon this editor started loads, with the points
        clicked meanwhile (so a click does not hide that the model is still loading)."""
        daemon = self._starting
        text = f"starting the model ... {daemon.elapsed() if daemon is not None else 0.0:.0f} s"
        if self.points:
            n_fg = sum(p.label == FG for p in self.points)
            text += f" ({n_fg} foreground, {len(self.points) - n_fg} background point(s))"
        return text

    def _launch_failed(self, text: str) -> None:
        self._starting = None
        self._daemon_checked = False  # the next action tries again (e.g. after the path was fixed)
        self._queue.clear()
        self._job = None
        self.connection = f"not connected ({self.settings.endpoint})"
        self._progress(False)
        self._notify(text, "error")

    def _on_started(self, reply: Any) -> None:
        """The answer to the first hello of a daemon we started: ready (queued jobs go), or it never answered."""
        daemon, self._starting = self._starting, None
        if daemon is None:
            return
        if not reply.ok:
            if getattr(reply.error, "code", "") == "timeout":
                daemon.stop()
                self._launch_failed(f"the clickmatte-daemon started for {self.settings.endpoint} did not answer "
                                    f"within {launcher_mod.STARTUP_TIMEOUT_S:g} s and was stopped "
                                    f"(log: {daemon.log_path})")
            else:
                self._launch_failed(self._error_text(reply))
            return
        daemon.mark_ready()
        self._daemon_checked = True
        self.server_info = reply.result()
        self.connection = self._connected_text()
        self._notify(f"{self.connection} (started clickmatte-daemon; the model was ready after "
                     f"{daemon.ready_s:.0f} s)", "info")
        if not self._queue:
            self._progress(False)
        self._start_next()

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
    # points
    # ------------------------------------------------------------------------------------------
    def set_points(self, points: Sequence[Point], write_host: bool = True) -> None:
        """Replace the point list (one undo step) and react (live preview, status)."""
        pts = [Point.make(p[0], p[1], p[2]) for p in points]
        if same_points(pts, self.points, tol=0.0):
            return
        self._undo.append(list(self.points))
        self._redo.clear()
        self._change_points(pts, write_host)

    def _change_points(self, pts: List[Point], write_host: bool) -> None:
        if self._points_doc is None:
            try:
                self._points_doc = self.host.document_key()
            except HostError:
                pass
        self.points = pts
        self.generation += 1
        if write_host:
            self._writing_points = True  # hosts may run their event loop (and tick()) inside
            try:
                self.host.write_points(self.points)
            except HostError as exc:
                self._notify(str(exc), "error")
            finally:
                self._writing_points = False
        self._points_changed()

    def _points_changed(self) -> None:
        if self.settings.live and self.points:
            self._enqueue(Job("preview"))
        elif self._starting is not None:
            if not self.points:
                self._queue.clear()
            self._notify(self._starting_text(), "busy")  # the model still loads: keep saying so
        elif not self.points:
            self._queue.clear()
            self._notify("no points: click on the image to add some", "info")
        else:
            n_fg = sum(p.label == FG for p in self.points)
            self._notify(f"{n_fg} foreground, {len(self.points) - n_fg} background point(s): press Matte", "info")

    def add_point(self, x: float, y: float, label: str = FG) -> None:
        self.set_points(self.points + [Point.make(x, y, label)])

    def remove_point(self, index: int) -> None:
        if not 0 <= index < len(self.points):
            raise ValueError(f"no point {index} (have {len(self.points)})")
        self.set_points(self.points[:index] + self.points[index + 1:])

    def point_near(self, x: float, y: float, radius: float) -> Optional[int]:
        """Index of the nearest point within ``radius`` image pixels of (x, y), or None."""
        best, best_d = None, radius * radius
        for i, p in enumerate(self.points):
            d = (p.x - x) ** 2 + (p.y - y) ** 2
            if d <= best_d:
                best, best_d = i, d
        return best

    def click(self, x: float, y: float, label: str = FG, radius: float = 6.0) -> None:
        """A click of the point tool: remove the point within ``radius`` pixels, else add one with ``label``."""
        if label not in (FG, BG):
            raise ValueError(f"label must be 'fg' or 'bg', got {label!r}")
        i = self.point_near(x, y, radius)
        if i is not None:
            self.remove_point(i)
        else:
            self.add_point(x, y, label)

    def undo(self) -> bool:
        """Go back to the previous point list; False if there is none."""
        if not self._undo:
            return False
        self._redo.append(list(self.points))
        self._change_points(self._undo.pop(), True)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(list(self.points))
        self._change_points(self._redo.pop(), True)
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def reset(self) -> None:
        """Clear the points (undoable), drop queued work and remove the mask and the guide."""
        self._queue.clear()
        self._end_undo_step()
        if self._job is not None:
            self._job = None
            self._progress(False)
        if self.points:
            self._undo.append(list(self.points))
            self._redo.clear()
        self.points = []
        self.generation += 1
        self.forget_matte()
        self._writing_points = True
        try:
            self.host.write_points([])
            self.host.clear_outputs()
        except HostError as exc:
            self._notify(str(exc), "error")
            return
        finally:
            self._writing_points = False
        self._notify("reset: no points", "info")

    def sync_points(self) -> bool:
        """Adopt the host's points if the user edited them in the document; True if they changed.

        When the host's ``document_key()`` changed (another document or layer), its points are
        taken over without an undo step and the undo history starts afresh.
        """
        if self._writing_points:
            return False
        try:
            doc = self.host.document_key()
            pts = self.host.read_points()
        except HostError:
            return False
        if doc != self._points_doc:
            self._points_doc = doc
            self._undo.clear()
            self._redo.clear()
            self.points = [Point.make(*p) for p in pts]
            self.generation += 1
            self.forget_matte()
            return True
        if same_points(pts, self.points):
            return False
        self._undo.append(list(self.points))
        self._redo.clear()
        self._change_points([Point.make(*p) for p in pts], write_host=False)
        return True

    def set_live(self, live: bool) -> None:
        self.settings.live = bool(live)
        if live and self.points and self._full_generation != self.generation:
            self._enqueue(Job("preview"))

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
