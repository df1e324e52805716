"""Starting the local daemon for the controller (:class:`DaemonStart`, a part of ``controller.Controller``):
probe the endpoint, start the program the installer recorded (``launcher.py``), count the seconds while
the model loads, and report a daemon that exits or never answers."""
from __future__ import annotations

from typing import Any

from . import launcher as launcher_mod
from .host import FG, HostError
from .jobs import Step


class DaemonStart:
    """The managed-daemon half of ``Controller`` (``settings.auto_start`` with a local endpoint)."""

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
