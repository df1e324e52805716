"""Start, reuse and stop a local ``clickmatte-daemon`` for an editor (standard library only).

When no daemon listens at a *local* endpoint (``tcp://127.0.0.1:P``, ``tcp://localhost:P``,
``tcp://[::1]:P`` or ``ipc://PATH``), the plugin starts the daemon program that
``clickmatte-install`` recorded in ``daemon.json`` next to the installed plugin code (or the one
named by ``Settings.daemon_path``), as::

    PROGRAM --bind ENDPOINT --owner-pid EDITOR_PID

``--owner-pid`` makes the daemon exit by itself once the editor process is gone (a crash
included). A remote endpoint is never started. Nothing here blocks for long: ``Launcher.start``
only spawns the process (``subprocess.Popen``, its own session, stderr to a log file); the caller
waits for the model by polling (the controller sends one ``hello`` with
:data:`STARTUP_TIMEOUT_S` and checks :meth:`ManagedDaemon.exit_code` from its timer).

One :class:`Launcher` per editor process (:func:`default_launcher`) owns the daemons it started:
:meth:`Launcher.get` hands the same one to every document and window, :meth:`Launcher.shutdown`
(the editor is quitting) stops them. A daemon the user started is never stopped: the launcher
only ever stops processes it spawned itself.

``daemon.json`` (written by the installers with :func:`daemon_file_bytes`)::

    {"command": ["/home/me/venv/bin/clickmatte-daemon"], "written_by": "clickmatte-install"}
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

#: the file, next to this module in an installed plugin, that names the daemon program
DAEMON_FILE = "daemon.json"
#: how long a daemon that was started may take to load its model and answer ``hello``
STARTUP_TIMEOUT_S = 300.0
#: seconds between SIGTERM and SIGKILL when stopping a started daemon
STOP_GRACE_S = 5.0
#: how long the "is something listening" probe may wait (loopback answers at once)
PROBE_TIMEOUT_S = 0.25
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class LaunchError(Exception):
    """The daemon cannot be started (no program recorded, not found, not executable, exited at once)."""


def local_address(endpoint: str) -> Optional[Tuple[str, str, int]]:
    """``("tcp", host, port)`` or ``("ipc", path, 0)`` for a local endpoint; None for a remote one.

    ``ValueError`` for something that is not a ``tcp://HOST:PORT`` / ``ipc://PATH`` endpoint.
    """
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        if not path:
            raise ValueError(f"ipc endpoint without a path: {endpoint!r}")
        return ("ipc", path, 0)
    m = re.fullmatch(r"tcp://(\[[^\]]+\]|[^:/\[\]]+):(\d+)", endpoint)
    if m is None:
        raise ValueError(f"endpoint must look like tcp://HOST:PORT or ipc://PATH, got {endpoint!r}")
    host, port = m.group(1).strip("[]"), int(m.group(2))
    if not 0 < port < 65536:
        raise ValueError(f"port must be within 1..65535, got {port}")
    return ("tcp", host, port) if host.lower() in LOCAL_HOSTS else None


def is_local(endpoint: str) -> bool:
    """True for a loopback TCP or an ipc:// endpoint (one the plugin may start a daemon on)."""
    try:
        return local_address(endpoint) is not None
    except ValueError:
        return False


def something_listens(endpoint: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a process accepts connections at the local ``endpoint`` (a plain socket connect; no
    ZeroMQ message is sent). ``ValueError`` for a remote endpoint."""
    addr = local_address(endpoint)
    if addr is None:
        raise ValueError(f"{endpoint} is not a local endpoint")
    kind, host, port = addr
    if kind == "ipc":
        if not hasattr(socket, "AF_UNIX") or not os.path.exists(host):
            return False
        family, target = socket.AF_UNIX, host
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        target = (host, port)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(target)  # type: ignore[arg-type]
            return True
    except OSError:
        return False


def daemon_file_bytes(command: Sequence[str]) -> bytes:
    """The content of ``daemon.json`` naming ``command`` (program + fixed arguments)."""
    cmd = [str(c) for c in command]
    if not cmd or not cmd[0]:
        raise ValueError("the daemon command needs a program")
    return (json.dumps({"command": cmd, "written_by": "clickmatte-install"}, indent=1) + "\n").encode("utf-8")


def installed_command(folder: Optional[Path] = None) -> Optional[List[str]]:
    """The daemon command recorded in ``folder/daemon.json`` (default: this module's folder), or None
    when there is no such file. ``LaunchError`` for a file that cannot be read as one."""
    path = (Path(os.path.dirname(os.path.abspath(__file__))) if folder is None else Path(folder)) / DAEMON_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LaunchError(f"cannot read {path}: {exc}; run clickmatte-install again") from exc
    cmd = data.get("command") if isinstance(data, dict) else None
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) and c for c in cmd):
        raise LaunchError(f"{path} names no daemon command; run clickmatte-install again")
    return cmd


def resolve_command(daemon_path: str = "", folder: Optional[Path] = None) -> List[str]:
    """The daemon command to run: ``daemon_path`` (the user's setting) when given, else the one the
    installer recorded. ``LaunchError`` (a message for the status line) when there is none."""
    if daemon_path.strip():
        return [daemon_path.strip()]
    cmd = installed_command(folder)
    if cmd is None:
        raise LaunchError("no clickmatte-daemon program is recorded for this plugin: run clickmatte-install "
                          "again, set the daemon program in the ClickMatte settings, or start clickmatte-daemon "
                          "yourself")
    return cmd


def _tail(path: Path, n: int = 4) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in lines[-n:])


@dataclass
class ManagedDaemon:
    """A daemon process this launcher started for ``endpoint``.

    ``ready`` is set by the caller once the daemon answered ``hello``; ``ready_s`` is how long that
    took from the start (seconds).
    """

    endpoint: str
    command: List[str]
    proc: subprocess.Popen
    log_path: Path
    started: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    ready: bool = False
    ready_s: Optional[float] = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def elapsed(self) -> float:
        """Seconds since the process was started."""
        return self.clock() - self.started

    def exit_code(self) -> Optional[int]:
        """None while it runs; its exit status once it ended (reaps it, so no zombie is left)."""
        return self.proc.poll()

    def mark_ready(self) -> None:
        if not self.ready:
            self.ready, self.ready_s = True, self.elapsed()

    def failure_text(self) -> str:
        """Why it is gone, for the status line: exit status, seconds it ran, its last log lines."""
        code = self.proc.poll()
        tail = _tail(self.log_path)
        return (f"clickmatte-daemon ({self.command[0]}) exited with status {code} after {self.elapsed():.1f} s"
                + (f": {tail}" if tail else "") + f" (log: {self.log_path})")

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM (the daemon finishes its current step and exits), SIGKILL after ``grace_s``."""
        if self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        except OSError:
            pass


def _log_name(endpoint: str) -> str:
    return "daemon-" + re.sub(r"[^A-Za-z0-9]+", "_", endpoint.split("://", 1)[-1]).strip("_")[:80] + ".log"


class Launcher:
    """Owns the daemons one editor process started (at most one per endpoint).

    ``owner_pid``: the editor's process id passed as ``--owner-pid`` (default: this process; GIMP's
    plug-ins, which are child processes of GIMP, pass ``os.getppid()``). ``log_dir``: where each
    daemon's stderr goes (default: the settings folder). ``extra_args`` are appended to every
    command (tests use them, e.g. ``["--device", "cpu"]``).
    """

    def __init__(self, owner_pid: Optional[int] = None, log_dir: Optional[Path] = None,
                 extra_args: Sequence[str] = (), clock: Callable[[], float] = time.monotonic) -> None:
        self.owner_pid = os.getpid() if owner_pid is None else int(owner_pid)
        self._log_dir = None if log_dir is None else Path(log_dir)
        self.extra_args = [str(a) for a in extra_args]
        self.clock = clock
        self._daemons: Dict[str, ManagedDaemon] = {}

    @property
    def log_dir(self) -> Path:
        if self._log_dir is None:
            from .settings import config_dir

            self._log_dir = config_dir()
        return self._log_dir

    def get(self, endpoint: str) -> Optional[ManagedDaemon]:
        """The running daemon this launcher started for ``endpoint``, or None."""
        d = self._daemons.get(endpoint)
        return d if d is not None and d.exit_code() is None else None

    def exited(self, endpoint: str) -> Optional[ManagedDaemon]:
        """The daemon started for ``endpoint`` if it has exited (and is forgotten now), else None."""
        d = self._daemons.get(endpoint)
        if d is not None and d.exit_code() is not None:
            self._daemons.pop(endpoint, None)
            return d
        return None

    def start(self, endpoint: str, command: Sequence[str]) -> ManagedDaemon:
        """Spawn ``command --bind endpoint --owner-pid PID`` and return at once.

        ``ValueError`` for a remote endpoint; ``LaunchError`` when the program cannot be run (the
        message names the path and what to do). The caller waits for ``hello`` and watches
        :meth:`ManagedDaemon.exit_code`.
        """
        if not is_local(endpoint):
            raise ValueError(f"a daemon is only ever started for a local endpoint, not {endpoint}")
        running = self.get(endpoint)
        if running is not None:
            return running
        cmd = [str(c) for c in command]
        if not cmd or not cmd[0]:
            raise LaunchError("no daemon program given")
        program = cmd[0]
        if os.sep in program or (os.altsep and os.altsep in program):
            if not os.path.isfile(program):
                raise LaunchError(f"the daemon program {program} does not exist: run clickmatte-install again "
                                  "(from the environment where clickmatte is installed) or fix the daemon program "
                                  "in the ClickMatte settings")
            if os.name == "posix" and not os.access(program, os.X_OK):
                raise LaunchError(f"the daemon program {program} is not executable (chmod +x it, or run "
                                  "clickmatte-install again)")
        full = cmd + ["--bind", endpoint, "--owner-pid", str(self.owner_pid)] + self.extra_args
        log_path = self.log_dir / _log_name(endpoint)
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(log_path, "wb")
        except OSError as exc:
            raise LaunchError(f"cannot write the daemon log {log_path}: {exc}") from exc
        try:
            kwargs: dict = {"start_new_session": True} if os.name == "posix" else {
                "creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                                    **kwargs)
        except OSError as exc:
            raise LaunchError(f"cannot start the daemon program {program}: {exc.strerror or exc}; run "
                              "clickmatte-install again or fix the daemon program in the ClickMatte settings") from exc
        finally:
            log.close()
        d = ManagedDaemon(endpoint, cmd, proc, log_path, self.clock(), clock=self.clock)
        self._daemons[endpoint] = d
        return d

    def shutdown(self, grace_s: float = STOP_GRACE_S) -> List[str]:
        """Stop every daemon this launcher started (the editor quits); returns their endpoints."""
        stopped = []
        for ep, d in list(self._daemons.items()):
            d.stop(grace_s)
            stopped.append(ep)
        self._daemons.clear()
        return stopped


_default: Optional[Launcher] = None


def default_launcher() -> Launcher:
    """The launcher of this editor process (created on first use)."""
    global _default
    if _default is None:
        _default = Launcher()
    return _default
