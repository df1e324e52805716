"""Blocking ClickMatte actions over a ``HostAdapter`` (standard library; pyzmq only when connecting).

A GIMP procedure is synchronous: it may block, with a timeout, until the daemon answers. The
session controller (``plugin/controller.py``) is built for editors that must never block (it polls
from a UI timer); GIMP instead runs one of these actions per menu call, each a straight line:

``matte``             read pixels + points -> ``open`` (digest first; resumes the image's last
                      session) -> ``predict`` (full size) -> optional ``refine`` of the ``top_n``
                      most uncertain patches -> write the mask (replacing an earlier ClickMatte
                      mask) and the uncertainty guide.
``refine-uncertain``  the same prediction, then ``refine(top_n)``; only the refined patches of
                      the mask are rewritten.
``refine-selection``  the same prediction, then ``refine(mask=selection)``; only the selection's
                      bounding box is rewritten (and the host confines it to the selection).
``decontaminate``     the layer's pixels and its current ClickMatte mask -> ``open`` ->
                      ``foreground`` -> a new layer with the estimated foreground colours under a
                      copy of the mask (the layer itself unchanged). No points needed.

Each GIMP call is a fresh process that keeps nothing, so the daemon keeps the state: ``open`` asks
it (``resume``) for the session an earlier call left on the same pixels (the content digest also
spares re-sending them), and ``predict`` leaves ``prev_alpha`` at "auto". So the same points give
the same answer again; points added to the previous run's points refine the previous matte, as
clicks do in Krita (in whichever path the new points are: the daemon ignores their order); moved
or removed points start afresh. The document keeps that chain too: the mask's parasite holds the
points of its matte, and when the points only add to those, the mask itself goes to the daemon as
the previous alpha (protocol 1.4), so the same document gives the same matte after a daemon
restart. Refine actions re-run that (cheap, cached-features) prediction from the current points
before refining.

The daemon: when nothing listens at a local endpoint (and ``Settings.auto_start``),
:func:`ensure_daemon` starts the program ``clickmatte-install`` recorded (``plugin/launcher.py``)
with ``--owner-pid`` of GIMP (the plug-in's parent process), so it serves every later call and
exits when GIMP quits, and waits for its model with "starting the model ... N s" on the progress
bar. A daemon that already listens (the user's) is used as it is; a remote one is never started.

Every problem the user can fix raises ``ActionError`` (or the host's ``HostError``) with a message
meant for GIMP's error console: a missing daemon, a daemon error (its own text), no points, no
selection, a missing pyzmq.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from .. import launcher as launcher_mod
from ..host import HostAdapter, HostError, points_extend
from ..settings import Settings

Box = Tuple[int, int, int, int]
Progress = Callable[[float, str], None]

ACTIONS = ("matte", "refine-uncertain", "refine-selection", "decontaminate")
HELLO_TIMEOUT_S = 5.0


class ActionError(Exception):
    """A failed action, with a message for the user."""


@dataclass
class ActionResult:
    """What an action did: the layer size, the points used, the boxes rewritten (None = whole mask)."""

    action: str
    width: int
    height: int
    points: int
    boxes: Optional[List[Box]]
    guide: bool
    warnings: List[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        where = "whole mask" if self.boxes is None else f"{len(self.boxes)} region(s)"
        return f"{self.action}: {self.points} point(s), {self.width}x{self.height}, rewrote {where}"


def _no_progress(fraction: float, text: str) -> None:
    return None


def make_client(settings: Settings, endpoint: str = "", timeout_s: float = 0.0) -> Any:
    """A ``DaemonClient`` for ``endpoint`` (default: the settings'), with the settings' CURVE keys.

    pyzmq is imported here, not at module import, so the plug-in registers even without it; a
    missing pyzmq raises ``ActionError`` telling the user how to get it.
    """
    try:
        from ..client import DaemonClient
    except ImportError as exc:
        raise ActionError(
            f"ClickMatte cannot talk to its daemon: pyzmq is not importable in this Python ({exc}). "
            "Re-run `clickmatte-install gimp` (it vendors pyzmq for GIMP's Python) or install your "
            "system's pyzmq package (Debian/Ubuntu: python3-zmq)."
        ) from exc
    ep = endpoint or settings.endpoint
    timeout = float(timeout_s) if timeout_s and timeout_s > 0 else float(settings.timeout_s)
    kwargs: dict = {}
    if settings.server_public_key:
        if not (settings.client_public_key and settings.client_secret_key):
            raise ActionError("Settings name a server key but no client key pair: fill in both client keys "
                              "(from `clickmatte-keys`) or clear the server key.")
        kwargs["server_key"] = settings.server_public_key.strip()
        kwargs["client_keys"] = (settings.client_public_key.strip(), settings.client_secret_key.strip())
    try:
        return DaemonClient(ep, timeout_ms=max(1, int(timeout * 1000)), retries=0,
                            client_name="clickmatte-gimp", **kwargs)
    except (ValueError, OSError) as exc:
        raise ActionError(f"Cannot use the daemon endpoint {ep!r}: {exc}") from exc
    except Exception as exc:  # zmq.ZMQError (bad endpoint syntax) without importing zmq here
        raise ActionError(f"Cannot use the daemon endpoint {ep!r}: {exc}") from exc


def _daemon_call(what: str, endpoint: str, fn: Callable[[], Any]) -> Any:
    from ..client import DaemonError, DaemonTimeout

    try:
        return fn()
    except DaemonTimeout as exc:
        raise ActionError(f"The ClickMatte daemon at {endpoint} did not answer {what} in time ({exc.message}). "
                          "It may be overloaded; raise the timeout in Settings, or restart it.") from exc
    except DaemonError as exc:
        raise ActionError(f"The ClickMatte daemon failed to {what}: [{exc.code}] {exc.message}") from exc


def _takes_prev_buffer(info: Any) -> bool:
    """Whether the daemon (its ``hello`` answer) takes a ``prev_alpha`` buffer (protocol 1.4)."""
    from ..protocol import ProtocolError, parse_version

    try:
        return parse_version(getattr(info, "protocol", "0")) >= (1, 4)
    except ProtocolError:
        return False


def check_daemon(client: Any, endpoint: str, timeout_s: float = HELLO_TIMEOUT_S) -> Any:
    """``hello`` with a short timeout; a missing daemon raises ``ActionError`` saying how to start one."""
    from ..client import DaemonError, DaemonTimeout

    try:
        return client.hello(timeout_ms=max(1, int(timeout_s * 1000)))
    except DaemonTimeout as exc:
        raise ActionError(
            f"No ClickMatte daemon answers at {endpoint} (waited {timeout_s:g} s). Start one with "
            f"`clickmatte-daemon --bind {endpoint}`, or set the right endpoint (and keys, for a remote "
            "box) in Layer > ClickMatte > Settings."
        ) from exc
    except DaemonError as exc:
        raise ActionError(f"The ClickMatte daemon at {endpoint} refused to talk: [{exc.code}] {exc.message}") from exc


def ensure_daemon(settings: Settings, endpoint: str = "", progress: Progress = _no_progress,
                  launcher: Optional[launcher_mod.Launcher] = None,
                  clock: Callable[[], float] = time.monotonic) -> Optional[launcher_mod.ManagedDaemon]:
    """Start the daemon and wait until it answers, when ``endpoint`` (default: the settings') is local,
    ``settings.auto_start`` is on and nothing listens there; returns the started daemon, or None when
    none had to be started (a remote endpoint, auto-start off, or a daemon already there).

    ``launcher`` defaults to one that passes ``--owner-pid`` of GIMP (this plug-in's parent process).
    ``progress(fraction, text)`` gets "starting the model ... N s" about twice a second. Raises
    ``ActionError``: a program that cannot be run, one that exits, or no answer within
    ``launcher.STARTUP_TIMEOUT_S`` (then it is stopped).
    """
    ep = endpoint or settings.endpoint
    if not settings.auto_start or not launcher_mod.is_local(ep) or launcher_mod.something_listens(ep):
        return None
    launcher = launcher or launcher_mod.Launcher(owner_pid=os.getppid())
    try:
        daemon = launcher.start(ep, launcher_mod.resolve_command(settings.daemon_path))
    except launcher_mod.LaunchError as exc:
        raise ActionError(f"No ClickMatte daemon answers at {ep}, and it cannot be started: {exc}") from exc
    client = make_client(settings, ep, launcher_mod.STARTUP_TIMEOUT_S)
    try:
        client.send_hello()
        while True:
            progress(0.08, f"starting the model ... {daemon.elapsed():.0f} s")
            reply = client.poll(500)
            if reply is not None:
                if reply.ok:
                    daemon.mark_ready()
                    return daemon
                daemon.stop()
                raise ActionError(f"The ClickMatte daemon started at {ep} did not answer within "
                                  f"{launcher_mod.STARTUP_TIMEOUT_S:g} s and was stopped (log: {daemon.log_path})")
            if daemon.exit_code() is not None:
                raise ActionError(daemon.failure_text())
    finally:
        client.disconnect()


def selection_bbox(plane: bytes, width: int, height: int) -> Optional[Box]:
    """Bounding box ``(x, y, w, h)`` of the non-zero bytes of a ``width * height`` plane, or None if all zero."""
    if len(plane) != width * height:
        raise ValueError(f"plane must have {width * height} bytes, got {len(plane)}")
    x0, y0, x1, y1 = width, height, -1, -1
    for y in range(height):
        row = plane[y * width : (y + 1) * width]
        if row.count(0) == width:
            continue
        left = width - len(row.lstrip(b"\x00"))
        right = len(row.rstrip(b"\x00")) - 1
        x0, x1 = min(x0, left), max(x1, right)
        y0 = min(y0, y)
        y1 = y
    if x1 < 0:
        return None
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def _decontaminate(host: HostAdapter, client: Any, endpoint: str, progress: Progress) -> ActionResult:
    """The ``decontaminate`` action (see the module docstring)."""
    progress(0.05, "reading the mask and pixels")
    mask = host.read_mask()
    if mask is None:
        raise HostError("Decontaminate colours needs the ClickMatte layer mask: run Matte from points first.")
    image = host.read_image()
    progress(0.10, "connecting to the daemon")
    info = check_daemon(client, endpoint)
    progress(0.20, "sending the image")
    opened = _daemon_call("open the image", endpoint, lambda: client.open(
        image.data, image.width, image.height, channels=image.channels, dtype=image.dtype,
        order=image.order, resume=True))
    progress(0.45, "estimating the foreground colours")
    fg = _daemon_call("estimate the foreground colours", endpoint, lambda: client.foreground(
        opened.session, mask, image.width, image.height))
    if (fg.width, fg.height) != (image.width, image.height):
        raise ActionError(f"The daemon answered with {fg.width}x{fg.height} colours for a "
                          f"{image.width}x{image.height} layer.")
    progress(0.90, "adding the decontaminated layer")
    host.write_foreground(bytes(fg.rgb), mask, image.width, image.height)
    progress(1.0, "done")
    return ActionResult("decontaminate", image.width, image.height, 0, None, False, [])


def run_action(action: str, host: HostAdapter, client: Any, endpoint: str = "", top_n: int = 0,
               guide: bool = True, progress: Progress = _no_progress) -> ActionResult:
    """Run one action (see the module docstring) and write its result through ``host``.

    ``top_n``: patches to refine (``matte``: 0 = none; ``refine-uncertain``: must be >= 1).
    ``progress(fraction, text)`` is called as the work advances. Raises ``ActionError`` /
    ``HostError`` with a user-facing message; on error nothing has been written.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0:
        raise ValueError(f"top_n must be a non-negative integer, got {top_n!r}")
    if action == "refine-uncertain" and top_n < 1:
        raise ValueError("refine-uncertain needs top_n >= 1")
    endpoint = endpoint or getattr(client, "endpoint", "")
    if action == "decontaminate":
        return _decontaminate(host, client, endpoint, progress)

    progress(0.02, "reading points")
    points = host.read_points()
    warnings = list(getattr(host, "warnings", []))
    check = getattr(host, "check_outputs", None)
    if check is not None:
        check()  # e.g. a foreign layer mask: fail before any daemon work
    selection = None
    bbox = None
    if action == "refine-selection":
        selection = host.read_selection()
        if selection is None:
            raise HostError("Refine selection needs a selection: select the edge area to refine "
                            "(e.g. with the Free Select tool), then run it again.")

    progress(0.05, "reading pixels")
    image = host.read_image()
    if selection is not None:
        bbox = selection_bbox(selection, image.width, image.height)
        if bbox is None:
            raise HostError("The selection does not overlap the active layer: nothing to refine.")

    progress(0.10, "connecting to the daemon")
    info = check_daemon(client, endpoint)
    progress(0.20, "sending the image")
    opened = _daemon_call("open the image", endpoint, lambda: client.open(
        image.data, image.width, image.height, channels=image.channels, dtype=image.dtype,
        order=image.order, resume=True))
    clicks = [p.as_click() for p in points]
    progress(0.45, "computing the matte")
    prev = None
    base = host.read_mask_points()
    if base is not None and points_extend(base, points) and _takes_prev_buffer(info):
        prev = host.read_mask()  # points only added: the document's own mask is the previous alpha
    if prev is not None and len(prev) != image.width * image.height:
        prev = None
    matte = _daemon_call("compute the matte", endpoint, lambda: client.predict(
        opened.session, clicks, preview=None, alpha_dtype="uint8", uncertainty=(action == "matte" and guide),
        prev_mask=prev, mask_width=image.width, mask_height=image.height))
    alpha, boxes = matte.alpha, None
    if action == "matte" and top_n > 0 or action == "refine-uncertain":
        progress(0.70, f"refining the {top_n} most uncertain patches")
        refined = _daemon_call("refine the matte", endpoint, lambda: client.refine(opened.session, top_n=top_n))
        alpha = refined.alpha
        if action == "refine-uncertain":
            boxes = [tuple(b) for b in refined.patches]
            if not boxes:
                warnings.append("the daemon found no patch to refine")
    elif action == "refine-selection":
        progress(0.70, "refining the selection")
        refined = _daemon_call("refine the selection", endpoint, lambda: client.refine(
            opened.session, top_n=None, mask=selection, mask_width=image.width, mask_height=image.height))
        alpha, boxes = refined.alpha, [bbox]
    if (matte.width, matte.height) != (image.width, image.height):
        raise ActionError(f"The daemon answered with a {matte.width}x{matte.height} matte for a "
                          f"{image.width}x{image.height} layer.")

    progress(0.90, "writing the layer mask")
    if boxes is None or boxes:
        host.write_mask(bytes(alpha), image.width, image.height, boxes, points=points)
    wrote_guide = False
    if action == "matte" and guide and matte.uncertainty is not None:
        host.write_guide(bytes(matte.uncertainty), image.width, image.height)
        wrote_guide = True
    progress(1.0, "done")
    return ActionResult(action, image.width, image.height, len(points), boxes, wrote_guide, warnings)

