"""A pykrita plugin that plays a new user in the real Krita GUI (under Xvfb), for ``test_krita.py``.

Installed by the test into a *fresh* HOME only (``pykrita/clickmatte_autostart_driver/``), active only
when ``$CLICKMATTE_KRITA_AUTOSTART_JOB`` names a job file. Nothing is started by hand: the only
other thing in that HOME is what ``clickmatte-install krita`` put there. Once the window is up it:

1. records whether the ClickMatte docker is visible (first start) and connecting by itself;
2. opens the photo, turns on *Pick points*, clicks twice on the canvas (real mouse events), presses
   *Matte* and waits for the mask, recording every status line the docker showed;
   (and takes two screenshots of the window: while the model starts, and with the mask);
3. asks the daemon (which the docker started) for the reference answer, writes ``result.json``,
   closes the document and quits Krita through ``file_quit`` (so Krita's own quit path runs).
"""
from __future__ import annotations

import json
import os
import time
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication

JOB_ENV = "CLICKMATTE_KRITA_AUTOSTART_JOB"


def _job_dir() -> str:
    return os.path.dirname(os.environ[JOB_ENV])


def trace(msg: str) -> None:
    with open(os.path.join(_job_dir(), "trace.txt"), "a") as f:
        f.write(f"{time.monotonic():.2f} {msg}\n")


class Watch:
    """Pumps Qt events and keeps every distinct status line of the docker, with its time."""

    def __init__(self) -> None:
        self.docker = None
        self.t0 = time.monotonic()
        self.lines: list = []
        self.labels: list = []

    def wait(self, pred, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            QApplication.processEvents()
            if self.docker is not None:
                for attr, seen in (("status_label", self.lines), ("connection_label", self.labels)):
                    text = getattr(self.docker, attr).text()
                    if not seen or seen[-1][1] != text:
                        seen.append([round(time.monotonic() - self.t0, 2), text])
            if pred():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def shoot(win, name: str, width: int = 960) -> str:
    """Save the main window as ``name`` (PNG, scaled to ``width`` px) beside the result; returns the path."""
    from PyQt5.QtCore import Qt

    path = os.path.join(_job_dir(), name)
    win.qwindow().grab().scaledToWidth(width, Qt.SmoothTransformation).save(path, "PNG")
    return path


def run(job: dict, out: dict) -> None:
    import krita_driver_gui as gui  # _click (real mouse events); driver_dir is on sys.path
    from clickmatte.client import DaemonClient
    from clickmatte.host import Point
    from clickmatte.krita import geometry
    from clickmatte.krita.docker import ClickMatteDocker, find_canvas_widget
    from clickmatte.protocol import image_digest

    app = Krita.instance()
    w = Watch()
    dockers = [d for d in app.dockers() if isinstance(d, ClickMatteDocker)]
    out["dockers"] = len(dockers)
    docker = w.docker = dockers[0]
    out["docker_visible"] = w.wait(docker.isVisible, 10)
    out["docker_shown_setting"] = app.readSetting("clickmatte", "docker_shown", "")
    out["auto_connecting"] = w.wait(lambda: docker.controller is not None, 10)
    trace(f"docker visible {out['docker_visible']}, controller {out['auto_connecting']}")

    doc = app.openDocument(job["photo"])
    win = app.activeWindow()
    view = win.addView(doc)
    doc.setBatchmode(True)
    layer = next(n for n in doc.rootNode().childNodes() if n.type() == "paintlayer")
    doc.setActiveNode(layer)
    w.wait(lambda: False, 1.0)
    wi, hi = doc.width(), doc.height()
    out["photo_size"] = [wi, hi]
    pixels_before = bytes(layer.pixelData(0, 0, wi, hi))

    docker.pick_button.setChecked(True)
    widget = find_canvas_widget()
    f2c = geometry.from_qtransform(view.flakeToCanvasTransform())
    f2i = geometry.from_qtransform(view.flakeToImageTransform())
    image_to_widget = geometry.multiply(geometry.invert(f2i), f2c)
    for x, y in job["clicks"]:
        wx, wy = geometry.map_point(image_to_widget, x + 0.5, y + 0.5)
        gui._click(widget, wx, wy)
    ctl = docker.controller
    out["points"] = [list(p) for p in ctl.points]
    w.wait(lambda: False, 0.5)
    out["shot_starting"] = shoot(win, "krita-starting.png")
    out["shot_starting_status"] = docker.status_label.text()
    trace(f"points {out['points']}; status {docker.status_label.text()!r}")
    docker.matte_button.click()
    out["finished"] = w.wait(lambda: not ctl.busy and any(
        n.name() == "ClickMatte alpha" for n in layer.childNodes()), job["timeout_s"])
    out["status"] = docker.status_label.text()
    out["connection"] = docker.connection_label.text()
    out["seconds_to_mask"] = round(time.monotonic() - w.t0, 1)
    w.wait(lambda: False, 1.0)  # let the canvas repaint with the mask
    out["shot_mask"] = shoot(win, "krita-mask.png")
    trace(f"matte finished={out['finished']}: {out['status']}")
    daemon = ctl.started_daemon
    out["daemon_pid"] = daemon.pid if daemon is not None else None
    out["daemon_ready_s"] = daemon.ready_s if daemon is not None else None
    out["daemon_command"] = daemon.command if daemon is not None else None
    if daemon is not None:
        with open(f"/proc/{daemon.pid}/cmdline", "rb") as f:
            out["daemon_cmdline"] = [a.decode() for a in f.read().split(b"\0") if a]
    out["krita_pid"] = os.getpid()
    mask = [n for n in layer.childNodes() if n.name() == "ClickMatte alpha"]
    if mask:
        out["mask_digest"] = image_digest(bytes(mask[0].pixelData(0, 0, wi, hi)), wi, hi, 1, "uint8", "A")
        m = bytes(mask[0].pixelData(0, 0, wi, hi))
        out["mask_at_points"] = [m[int(round(y)) * wi + int(round(x))] for x, y, _ in out["points"]]
    out["layer_unchanged"] = bytes(layer.pixelData(0, 0, wi, hi)) == pixels_before

    img = docker.host.read_image()
    with DaemonClient(docker.settings.endpoint, timeout_ms=120000, retries=0) as c:
        s = c.open(img.data, img.width, img.height, img.channels, img.dtype, img.order)
        alpha = c.predict(s.session, [Point(*p).as_click() for p in ctl.points]).alpha
        if docker.settings.top_n:
            alpha = c.refine(s.session, top_n=docker.settings.top_n).alpha
    out["expected_digest"] = image_digest(alpha, wi, hi, 1, "uint8", "A")
    out["lines"], out["labels"] = w.lines, w.labels
    doc.setModified(False)
    out["closed"] = doc.close()


class AutoStartDriver(Extension):
    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.started = False

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # noqa: N802 - Krita API
        if not self.started:
            self.started = True
            QTimer.singleShot(1500, self.go)

    def go(self) -> None:
        import sys

        sys.excepthook = lambda t, v, tb: trace("UNCAUGHT " + "".join(traceback.format_exception(t, v, tb)))
        out: dict = {"ok": False}
        try:
            with open(os.environ[JOB_ENV]) as f:
                job = json.load(f)
            sys.path.insert(0, job["driver_dir"])
            run(job, out)
            out["ok"] = True
        except BaseException:  # noqa: BLE001
            out["error"] = traceback.format_exc()
        with open(os.path.join(_job_dir(), "result.json"), "w") as f:
            json.dump(out, f, indent=1)
        trace("quitting through file_quit")
        Krita.instance().action("file_quit").trigger()


if os.environ.get(JOB_ENV):
    Krita.instance().addExtension(AutoStartDriver(Krita.instance()))
