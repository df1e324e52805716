"""Fixtures for the real-GIMP test: the editor root, a real daemon, one batch run of GIMP.

Imported by ``test_gimp.py`` (kept apart from the shared ``conftest.py``). Everything happens once
per module: a fresh GIMP HOME inside the editor root, ``clickmatte-install gimp --profile`` into it,
a daemon subprocess (the real model, on CPU) on a free loopback port, and ONE
``gimp-console-3.0`` batch run of ``gimp_driver.py`` whose results the tests then check.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EDITOR_ENV = REPO / "tests" / "editors" / "editor_env.sh"
DRIVER = "tests/editors/gimp_driver.py"  # relative to the repo, which is the cwd inside the root
GIMP_TIMEOUT_S = 420
DAEMON_START_TIMEOUT_S = 300

# the synthetic scene: a bright disc on a dark background, points deep inside / outside
SIZE = (128, 96)
DISC = (64, 48, 30)  # centre x, y, radius
FG_POINTS = [[64, 48], [58, 44]]
BG_POINTS = [[8, 8], [120, 88]]
SELECTION = [24, 16, 40, 32]  # x, y, w, h (over the disc's left edge)
OFFSET = [10, 6]


def make_disc_image(path: Path) -> np.ndarray:
    """Write the test scene as an 8-bit RGB PNG and return it (H, W, 3 uint8)."""
    w, h = SIZE
    cx, cy, r = DISC
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    img = np.empty((h, w, 3), np.uint8)
    img[...] = (22, 34, 48)
    img[inside] = (236, 214, 170)
    img[..., 1] += (xx % 7).astype(np.uint8)  # a little texture, so that rows differ
    Image.fromarray(img, "RGB").save(path)
    return img


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_pnm(path: Path) -> np.ndarray:
    """P5 (gray) -> (H, W) uint8; P6 (RGB) -> (H, W, 3) uint8."""
    data = path.read_bytes()
    magic, w, h, maxval, rest = data.split(maxsplit=4)
    assert maxval == b"255", path
    w, h = int(w), int(h)
    ch = 1 if magic == b"P5" else 3
    arr = np.frombuffer(rest[: w * h * ch], np.uint8)
    return arr.reshape(h, w) if ch == 1 else arr.reshape(h, w, 3)


@pytest.fixture(scope="module")
def gimp_editor_root() -> Path:
    """The Debian 13 root with GIMP 3 (built once by editor_env.sh); skips with its reason if unavailable."""
    try:
        proc = subprocess.run(["bash", str(EDITOR_ENV), "ensure"], capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        pytest.skip("building the editor environment took longer than 30 min")
    if proc.returncode == 77:
        why = (proc.stderr.strip().splitlines() or ["exit 77"])[-1]
        pytest.skip(f"no GIMP 3 environment here: {why}")
    assert proc.returncode == 0, f"editor_env.sh ensure failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def gimp_daemon() -> Iterator[str]:
    """A real daemon subprocess (the real model, CPU) on a free loopback port; yields its endpoint."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "clickmatte.backend.daemon", "--bind", endpoint,
                             "--device", "cpu", "--max-sessions", "4", "--log-level", "INFO"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    lines: List[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "ready on" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
    while not ready.is_set() and proc.poll() is None and time.monotonic() < deadline:
        ready.wait(0.2)
    if not ready.is_set():
        proc.kill()
        proc.wait()
        pytest.fail("the daemon did not start:\n" + "".join(lines[-30:]))
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class GimpRun:
    """The outcome of one GIMP batch run: ``results`` (driver's results.json), files under ``out``."""

    root: Path
    host_dir: Path  # the work folder as seen from this machine
    out: Path
    returncode: int
    log: str
    results: Dict[str, Any]
    job: Dict[str, Any]
    image: np.ndarray
    endpoint: str
    install_log: str

    def step(self, name: str) -> Dict[str, Any]:
        assert name in self.results["steps"], f"step {name!r} did not run; GIMP log:\n{self.log[-4000:]}"
        return self.results["steps"][name]

    def mask(self, name: str) -> np.ndarray:
        return read_pnm(self.out / f"{name}.pgm")

    def rgb(self, name: str) -> np.ndarray:
        return read_pnm(self.out / f"{name}.ppm")


def inner_path(root: Path, host_path: Path) -> str:
    """A path under ``root`` as seen from inside the editor root."""
    return "/" + str(host_path.relative_to(root)) if str(root) != "/" else str(host_path)


@pytest.fixture(scope="module")
def gimp_run(gimp_editor_root: Path, gimp_daemon: str) -> Iterator[GimpRun]:
    root = gimp_editor_root
    host_dir = root / "tmp" / f"clickmatte-gimp-{uuid.uuid4().hex[:10]}"
    out = host_dir / "out"
    home = host_dir / "home"
    out.mkdir(parents=True)
    home.mkdir()
    try:
        image = make_disc_image(host_dir / "disc.png")
        shutil.copyfile(root / "etc" / "gimp" / "3.0" / "gimprc", host_dir / "gimprc")  # GIMP rewrites it

        # GIMP's Python version (the wheel to vendor), then the real installer into that HOME
        ver = subprocess.run(["bash", str(EDITOR_ENV), "run", "python3", "-c",
                              "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=120)
        assert ver.returncode == 0, ver.stderr
        profile = home / ".config" / "GIMP" / "3.0"
        inst = subprocess.run([sys.executable, "-m", "clickmatte.installers.cli", "gimp", "--profile", str(profile),
                               "--python-version", ver.stdout.strip()],
                              capture_output=True, text=True, timeout=600, cwd=REPO)
        assert inst.returncode == 0, f"clickmatte-install gimp failed:\n{inst.stdout}\n{inst.stderr}"

        job = {
            "image": inner_path(root, host_dir / "disc.png"),
            "out": inner_path(root, out),
            "endpoint": gimp_daemon,
            "dead_endpoint": f"tcp://127.0.0.1:{free_port()}",
            "timeout": 120,
            "fg": FG_POINTS,
            "bg": BG_POINTS,
            "selection": SELECTION,
            "offset_layer": OFFSET,
        }
        (host_dir / "job.json").write_text(json.dumps(job))
        inner_home = inner_path(root, home)
        cmd = ["bash", str(EDITOR_ENV), "run", "env", "-u", "CLICKMATTE_ENDPOINT", "-u", "CLICKMATTE_CONFIG_DIR",
               f"HOME={inner_home}", f"XDG_CONFIG_HOME={inner_home}/.config",
               f"CLICKMATTE_GIMP_JOB={inner_path(root, host_dir / 'job.json')}",
               "timeout", str(GIMP_TIMEOUT_S), "gimp-console-3.0", "-i", "-d", "-f", "--quit",
               "-g", inner_path(root, host_dir / "gimprc"), "--batch-interpreter=python-fu-eval",
               "-b", f'exec(open("{DRIVER}").read())']
        env = dict(os.environ, CLICKMATTE_EDITOR_HOME=inner_home)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=GIMP_TIMEOUT_S + 60, env=env)
        log = proc.stdout + proc.stderr + f"\n[gimp batch run took {time.monotonic() - t0:.1f} s]\n"
        res_path = out / "results.json"
        results = json.loads(res_path.read_text()) if res_path.exists() else {"steps": {}}
        yield GimpRun(root, host_dir, out, proc.returncode, log, results, job, image, gimp_daemon,
                      inst.stdout + inst.stderr)
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)  # plain files only: nothing is mounted in there
