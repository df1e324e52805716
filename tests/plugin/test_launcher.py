"""The managed local daemon: the plugin starts the installed ``clickmatte-daemon`` (a real process with
the shipped weights) when nothing listens at a local endpoint, reuses it, and stops only its own.

Daemon starts are slow on a loaded machine, so one started daemon serves the auto-start, progress
text, reuse and shutdown checks; a second shows that ``--owner-pid`` takes it down with the editor.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon
from clickmatte.installers.plugin_files import daemon_command
from clickmatte.plugin import launcher as L
from clickmatte.plugin.client import DaemonClient
from clickmatte.plugin.controller import Controller
from clickmatte.plugin.settings import Settings

from fake_host import FakeHost
from test_controller import BG1, FG1, FG2, disc_image, reference

DEVICE_ARGS = ["--device", "cpu"]


def daemon_program() -> str:
    """What clickmatte-install records for this environment (the venv's clickmatte-daemon)."""
    cmd = daemon_command()
    assert cmd[0] == str(Path(sys.executable).with_name("clickmatte-daemon").absolute()), cmd
    return cmd[0]


def run_until(ctl: Controller, host: FakeHost, timeout_s: float) -> List[Tuple[float, str, str]]:
    """Tick until idle; returns (time, level, text) of every new status line."""
    seen: List[Tuple[float, str, str]] = []
    n = len(host.messages)
    deadline = time.monotonic() + timeout_s
    while (ctl.busy or ctl._inflight) and time.monotonic() < deadline:
        ctl.tick(wait_ms=50)
        for level, text in host.messages[n:]:
            seen.append((time.monotonic(), level, text))
        n = len(host.messages)
    return seen


@pytest.fixture
def logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cm-launch-") as tmp:
        yield Path(tmp)


def test_local_and_remote_endpoints() -> None:
    assert L.is_local("tcp://127.0.0.1:5557") and L.is_local("tcp://localhost:1") and L.is_local("tcp://[::1]:9")
    assert L.is_local("ipc:///tmp/x.sock")
    assert not L.is_local("tcp://192.0.2.7:5557") and not L.is_local("tcp://gpu-box:5557")
    assert not L.is_local("nonsense") and not L.is_local("tcp://127.0.0.1:0")
    with pytest.raises(ValueError):
        L.local_address("tcp://127.0.0.1")
    with pytest.raises(ValueError):
        L.Launcher().start("tcp://192.0.2.7:5557", [sys.executable])


def test_auto_start_progress_reuse_and_shutdown(logs: Path) -> None:
    ep = free_tcp_endpoint()
    assert not L.something_listens(ep)
    launcher = L.Launcher(log_dir=logs, extra_args=DEVICE_ARGS)
    settings = Settings(endpoint=ep, daemon_path=daemon_program(), timeout_s=5.0, top_n=0)
    host = FakeHost(disc_image())
    ctl = Controller(host, settings, launcher=launcher)
    try:
        t0 = time.monotonic()
        ctl.connect()
        daemon = launcher.get(ep)
        assert daemon is not None and ctl.started_daemon is daemon and not daemon.ready
        args = list(daemon.proc.args)  # what was run (/proc/PID/cmdline may still be the fork's before exec)
        assert args[args.index("--bind") + 1] == ep and args[args.index("--owner-pid") + 1] == str(os.getpid())
        assert ctl.connection == f"starting clickmatte-daemon ({ep})" and host.busy_changes[-1] is True
        ctl.add_point(*FG1)
        ctl.add_point(*BG1)
        # a click while the model loads does not hide that it is loading
        assert host.messages[-1][0] == "busy" and re.fullmatch(
            r"starting the model \.\.\. \d+ s \(1 foreground, 1 background point\(s\)\)", host.messages[-1][1]
        ), host.messages[-3:]
        ctl.matte()  # queued until the model is loaded
        assert ctl.busy
        seen = run_until(ctl, host, 300)
        total = time.monotonic() - t0
        assert not ctl.busy, ctl.status
        starting = [(t, text) for t, lvl, text in seen if text.startswith("starting the model")]
        assert starting and all(lvl == "busy" for _, lvl, text in seen if text.startswith("starting"))
        counts = [int(re.fullmatch(r"starting the model \.\.\. (\d+) s( \(.*\))?", text).group(1))
                  for _, text in starting]
        assert counts == sorted(counts)
        assert not any("no answer" in text or "running?" in text for _, _, text in seen), seen
        ready = [text for _, _, text in seen if "started clickmatte-daemon" in text]
        assert ready and ready[0].startswith(f"connected to {ep}")
        assert daemon.ready and daemon.ready_s is not None
        assert ctl.status.startswith("matte done (2 point(s)"), ctl.status
        assert host.mask == reference(ep, host.image, [FG1, BG1])
        assert ctl.connection.startswith(f"connected to {ep}")
        print(f"auto-start: model ready after {daemon.ready_s:.1f} s, first matte after {total:.1f} s; "
              f"status lines {counts[0]}..{counts[-1]} s")

        # another document (another controller of the same editor) uses the same daemon
        host2 = FakeHost(disc_image(wide=True))
        ctl2 = Controller(host2, Settings(endpoint=ep, daemon_path=daemon_program(), timeout_s=5.0, top_n=0),
                          launcher=launcher)
        ctl2.add_point(*FG2)
        ctl2.matte()
        run_until(ctl2, host2, 120)
        assert ctl2.status.startswith("matte done"), ctl2.status
        assert ctl2.started_daemon is None and launcher.get(ep) is daemon
        assert not any(text.startswith("starting") for _, text in host2.messages)
        ctl2.close()

        # the started daemon dies (a crash): the next Matte starts a new one and still gives the matte
        daemon.proc.kill()
        daemon.proc.wait()
        ctl.add_point(*FG2)
        ctl.matte()
        seen = run_until(ctl, host, 300)
        assert ctl.status.startswith("matte done (3 point(s)"), (ctl.status, seen)
        again = launcher.get(ep)
        assert again is not None and again is not daemon and again.ready
        assert any(text.startswith("starting the model") for _, _, text in seen)
        # points only added: the host's mask went back as the previous alpha, as if the daemon never died
        assert host.mask == reference(ep, host.image, [FG1, BG1, FG2], history=[[FG1, BG1]])
        print(f"restart after a crash: model ready after {again.ready_s:.1f} s")
        daemon = again
    finally:
        ctl.close()
        stopped = launcher.shutdown()
    assert stopped == [ep]
    assert daemon.exit_code() == 0  # SIGTERM: a clean exit
    assert not L.something_listens(ep) and launcher.get(ep) is None


def test_a_daemon_the_user_started_is_used_and_never_stopped(logs: Path) -> None:
    ep = free_tcp_endpoint()
    proc, probe = start_daemon(ep, DEVICE_ARGS, str(logs / "user.log"), startup_timeout_s=300)
    probe.disconnect()
    launcher = L.Launcher(log_dir=logs, extra_args=DEVICE_ARGS)
    try:
        host = FakeHost(disc_image())
        ctl = Controller(host, Settings(endpoint=ep, daemon_path=daemon_program(), top_n=0), launcher=launcher)
        ctl.add_point(*FG1)
        ctl.matte()
        run_until(ctl, host, 120)
        assert ctl.status.startswith("matte done"), ctl.status
        assert ctl.started_daemon is None and launcher.get(ep) is None
        assert not any(text.startswith("starting") for _, text in host.messages)
        ctl.close()
        assert launcher.shutdown() == []
        with DaemonClient(ep, timeout_ms=30000, retries=0) as c:
            assert c.hello().protocol  # still there
        assert proc.poll() is None
    finally:
        stop_daemon(proc)


def test_the_started_daemon_goes_when_its_editor_goes(logs: Path) -> None:
    """``--owner-pid``: the daemon exits by itself once the editor process has ended (even a crash)."""
    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    ep = free_tcp_endpoint()
    launcher = L.Launcher(owner_pid=editor.pid, log_dir=logs, extra_args=DEVICE_ARGS)
    daemon = launcher.start(ep, [daemon_program()])
    try:
        with DaemonClient(ep, timeout_ms=300000, retries=0) as c:
            c.hello()
        editor.kill()
        editor.wait()
        t0 = time.monotonic()
        while daemon.exit_code() is None and time.monotonic() - t0 < 60:
            time.sleep(0.1)
        assert daemon.exit_code() == 0, daemon.failure_text()
        print(f"daemon exited {time.monotonic() - t0:.1f} s after its owner process was killed")
    finally:
        launcher.shutdown()
        if editor.poll() is None:
            editor.kill()


def test_a_remote_endpoint_is_never_started(logs: Path) -> None:
    marker = logs / "ran"
    program = logs / "fake-daemon"
    program.write_text(f"#!/bin/sh\ntouch {marker}\nsleep 30\n")
    program.chmod(0o755)
    remote = "tcp://192.0.2.1:5557"  # TEST-NET-1: nothing will answer
    launcher = L.Launcher(log_dir=logs)
    host = FakeHost(disc_image())
    ctl = Controller(host, Settings(endpoint=remote, daemon_path=str(program), timeout_s=1.0), launcher=launcher)
    ctl.add_point(*FG1)
    ctl.matte()
    assert ctl.run_until_idle(30), ctl.status
    assert not marker.exists() and launcher.get(remote) is None and ctl.started_daemon is None
    assert ctl.status_level == "error" and "no answer" in ctl.status and remote in ctl.status
    ctl.close()


@pytest.mark.parametrize("problem", ["missing", "not_executable", "exits"])
def test_a_bad_daemon_program_is_a_clear_message(logs: Path, problem: str) -> None:
    ep = free_tcp_endpoint()
    program = logs / "clickmatte-daemon"
    if problem == "not_executable":
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o644)
    elif problem == "exits":
        program.write_text("#!/bin/sh\necho 'clickmatte-daemon: error: cannot load the model: broken' >&2\nexit 2\n")
        program.chmod(0o755)
    launcher = L.Launcher(log_dir=logs)
    host = FakeHost(disc_image())
    ctl = Controller(host, Settings(endpoint=ep, daemon_path=str(program), timeout_s=5.0), launcher=launcher)
    ctl.add_point(*FG1)
    ctl.matte()
    assert ctl.run_until_idle(30), ctl.status
    assert ctl.status_level == "error" and not ctl.busy and host.busy_changes[-1] is False
    assert str(program) in ctl.status, ctl.status
    if problem == "missing":
        assert "does not exist" in ctl.status and "clickmatte-install" in ctl.status
    elif problem == "not_executable":
        assert "not executable" in ctl.status
    else:
        assert "exited with status 2" in ctl.status and "cannot load the model: broken" in ctl.status
    assert ctl.connection == f"not connected ({ep})" and host.mask is None
    ctl.close()


def test_no_recorded_program_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(L.LaunchError, match="clickmatte-install"):
        L.resolve_command("", folder=tmp_path)
    (tmp_path / L.DAEMON_FILE).write_bytes(L.daemon_file_bytes(["/opt/cm/bin/clickmatte-daemon", "--x"]))
    assert L.resolve_command("", folder=tmp_path) == ["/opt/cm/bin/clickmatte-daemon", "--x"]
    assert L.resolve_command(" /usr/local/bin/d ", folder=tmp_path) == ["/usr/local/bin/d"]
    (tmp_path / L.DAEMON_FILE).write_text('{"command": []}')
    with pytest.raises(L.LaunchError, match="names no daemon command"):
        L.resolve_command("", folder=tmp_path)
