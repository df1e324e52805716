"""Fixture for the real-GIMP test: one batch run of GIMP 3 against a real daemon.

Imported by ``test_gimp.py`` (kept apart from the shared ``conftest.py``, whose ``editor_root``
and ``daemon_endpoint`` it uses). Once per module: a fresh GIMP HOME inside the editor root,
``clickmatte-install gimp --profile`` into it, and ONE ``gimp-console-3.0`` batch run of
``gimp_driver.py`` whose results the tests then check.

The run puts a broken ``python3`` first on PATH: GIMP starts Python plug-ins (ours and its own
python-fu-eval) through ``#!/usr/bin/env python3``, so the run only works because the installer's
``interpreters/clickmatte.interp`` maps ``python3`` to ``/usr/bin/python3`` (editors.md: a venv
python first on PATH crashes plug-ins).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import pytest
from PIL import Image

from editor_env import EDITOR_ENV, REPO, inner_path

DRIVER = "tests/editors/gimp_driver.py"  # relative to the repo, which is the cwd inside the root
GIMP_TIMEOUT_S = 420

# the synthetic scene: a bright disc on a dark background, points deep inside / outside
SIZE = (128, 96)
DISC = (64, 48, 30)  # centre x, y, radius
FG_POINTS = [[64, 48], [58, 44]]
FG_MORE = [72, 56]  # a point added later (on the disc too)
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
    # header: 4 whitespace-separated tokens, then exactly ONE whitespace byte before the pixels
    # (pixel bytes may themselves look like whitespace, so no split() over the data)
    tokens, pos = [], 0
    while len(tokens) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos : pos + 1].isspace():
            pos += 1
        tokens.append(data[start:pos])
    magic, w, h, maxval = tokens
    rest = data[pos + 1 :]
    assert maxval == b"255", path
    w, h = int(w), int(h)
    ch = 1 if magic == b"P5" else 3
    arr = np.frombuffer(rest[: w * h * ch], np.uint8)
    return arr.reshape(h, w) if ch == 1 else arr.reshape(h, w, 3)


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


@pytest.fixture(scope="module")
def gimp_run(editor_root: Path, daemon_endpoint: str) -> Iterator[GimpRun]:
    root = editor_root
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
            "endpoint": daemon_endpoint,
            "dead_endpoint": f"tcp://127.0.0.1:{free_port()}",
            "timeout": 120,
            "fg": FG_POINTS,
            "fg_more": FG_MORE,
            "bg": BG_POINTS,
            "selection": SELECTION,
            "offset_layer": OFFSET,
        }
        (host_dir / "job.json").write_text(json.dumps(job))
        inner_home = inner_path(root, home)
        fakebin = host_dir / "fakebin"
        fakebin.mkdir()
        (fakebin / "python3").write_text("#!/bin/sh\necho 'the python3 first on PATH was used' >&2\nexit 3\n")
        (fakebin / "python3").chmod(0o755)
        path = f"{inner_path(root, fakebin)}:/usr/local/bin:/usr/bin:/bin"
        cmd = ["bash", str(EDITOR_ENV), "run", "env", "-u", "CLICKMATTE_ENDPOINT", "-u", "CLICKMATTE_CONFIG_DIR",
               f"HOME={inner_home}", f"XDG_CONFIG_HOME={inner_home}/.config", f"PATH={path}",
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
        print(f"\n[gimp] batch run {time.monotonic() - t0:.1f} s (exit {proc.returncode}); steps: "
              + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in results["steps"].items()))
        yield GimpRun(root, host_dir, out, proc.returncode, log, results, job, image, daemon_endpoint,
                      inst.stdout + inst.stderr)
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)  # plain files only: nothing is mounted in there
