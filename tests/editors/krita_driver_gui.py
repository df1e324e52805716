"""A pykrita plugin that drives the ClickMatte docker in the real Krita GUI (under Xvfb) for a test.

Installed by ``test_krita.py`` into the test HOME only, as ``pykrita/clickmatte_gui_driver/__init__.py``
(+ ``.desktop``), and active only when ``$CLICKMATTE_KRITA_GUI_JOB`` names a job file. Once the main
window is up it:

1. creates a document with a paint layer "Photo" in a view, zooms, rotates and mirrors the canvas;
2. turns the docker's *Pick points* on and clicks on the canvas widget (real mouse events through
   the docker's event filter) at widget positions computed from the view's transforms:
   click = foreground, Shift-click / Alt-click = background, a click on a point removes it;
3. presses the docker's *Matte* button and lets the docker's own QTimer drive the controller;
4. saves ``gui.kra``, asks the daemon for the reference answer;
5. from the event loop (``active_layer_steps``): two clicks, Matte, then Refine top-N, noting after each
   which node is active and which layer Krita's "fill with foreground colour" paints (undone again);
   then writes ``result.json`` and exits.
"""
from __future__ import annotations

import json
import os
import time
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QEvent, QPointF, Qt, QTimer
from PyQt5.QtGui import QMouseEvent
from PyQt5.QtWidgets import QApplication

JOB_ENV = "CLICKMATTE_KRITA_GUI_JOB"


_TRACE = []


def trace(msg: str) -> None:
    """Progress lines, appended to ``trace.txt`` beside the result (for a run that hangs)."""
    _TRACE.append(msg)
    path = os.environ.get(JOB_ENV, "")
    if path:
        with open(os.path.join(os.path.dirname(path), "trace.txt"), "a") as f:
            f.write(f"{time.monotonic():.2f} {msg}\n")


def _wait(pred, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if pred():
            return True
        time.sleep(0.01)
    return False


def _click(widget, x: float, y: float, mods=Qt.NoModifier) -> None:
    pos = QPointF(x, y)
    for et, buttons in ((QEvent.MouseButtonPress, Qt.LeftButton), (QEvent.MouseButtonRelease, Qt.NoButton)):
        ev = QMouseEvent(et, pos, widget.mapToGlobal(pos.toPoint()), Qt.LeftButton, buttons, mods)
        QApplication.sendEvent(widget, ev)
    QApplication.processEvents()


def run(job: dict) -> dict:
    from clickmatte.client import DaemonClient
    from clickmatte.host import Point
    from clickmatte.krita import geometry
    from clickmatte.krita.docker import ClickMatteDocker, find_canvas_widget
    from clickmatte.protocol import image_digest
    from PyQt5.QtCore import QByteArray

    import krita_driver as shared  # the disc picture of the kritarunner driver (driver_dir is on sys.path)

    out: dict = {}
    trace("run: start")
    app = Krita.instance()
    w, h = job["width"], job["height"]
    win = app.activeWindow()
    doc = app.createDocument(w, h, "gui", "RGBA", "U8", "", 72.0)
    root = doc.rootNode()
    for n in list(root.childNodes()):
        n.remove()
    layer = doc.createNode("Photo", "paintlayer")
    root.addChildNode(layer, None)
    layer.setPixelData(QByteArray(shared.disc_bgra(w, h, False)), 0, 0, w, h)
    view = win.addView(doc)
    doc.setActiveNode(layer)
    doc.setBatchmode(True)
    doc.refreshProjection()
    canvas = view.canvas()
    canvas.setZoomLevel(job["zoom"])
    canvas.setRotation(job["rotation"])
    canvas.setMirror(job["mirror"])

    def transforms() -> tuple:
        return (geometry.from_qtransform(view.flakeToCanvasTransform()),
                geometry.from_qtransform(view.flakeToImageTransform()))

    # the canvas applies zoom/rotation/mirror asynchronously: wait until its transforms settle
    last = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _wait(lambda: False, 0.25)
        now = transforms()
        if now == last:
            break
        last = now

    trace("document and view ready")
    dockers = [d for d in app.dockers() if isinstance(d, ClickMatteDocker)]
    out["dockers"] = len(dockers)
    docker = dockers[0]
    docker.pick_button.setChecked(True)
    widget = find_canvas_widget()
    out["canvas_widget"] = widget.metaObject().className() if widget is not None else None
    out["status_after_pick"] = docker.status_label.text()
    f2c, f2i = transforms()
    image_to_widget = geometry.multiply(geometry.invert(f2i), f2c)
    out["transforms"] = {"flake_to_canvas": f2c, "flake_to_image": f2i}
    mods = {"": Qt.NoModifier, "shift": Qt.ShiftModifier, "alt": Qt.AltModifier}
    clicks = []
    for x, y, mod in job["clicks"]:
        wx, wy = geometry.map_point(image_to_widget, x + 0.5, y + 0.5)
        clicks.append([wx, wy])
        _click(widget, wx, wy, mods[mod])
        c = docker.controller
        trace(f"click {x},{y},{mod!r} -> points {[tuple(p) for p in c.points] if c else None}; "
              f"status {docker.status_label.text()!r}")
    out["widget_clicks"] = clicks
    out["transforms_stable"] = transforms() == (f2c, f2i)
    trace(f"clicked {len(clicks)} times")
    out["widget_size"] = [widget.width(), widget.height()]
    ctl = docker.controller
    out["points"] = [list(p) for p in ctl.points] if ctl is not None else None
    _wait(lambda: False, 0.3)
    out["points_on_layer"] = [list(p) for p in docker.host.read_points()]

    def outputs(label: str) -> list:
        """[label, mask digest, guide digest (None: absent, or hidden by an undo), docker points, points layer,
        photo unchanged, digest of the whole picture (Krita's projection), Krita's last undo steps]"""
        _wait(lambda: docker.host._pending is None, 3.0)
        doc.refreshProjection()
        doc.waitForDone()
        host = docker.host
        m = host._present(next((n for n in layer.childNodes() if n.name() == "ClickMatte alpha"), None))
        g = host._present(doc.nodeByName("ClickMatte uncertainty"))
        from PyQt5.QtWidgets import QListView

        hist = []
        for d in app.dockers():
            if d.objectName() == "History":
                for v in d.findChildren(QListView):
                    mdl = v.model()
                    hist = [mdl.index(r, 0).data() for r in range(v.currentIndex().row() + 1)][-4:]
        step = [label, image_digest(bytes(m.pixelData(0, 0, w, h)), w, h, 1, "uint8", "A") if m else None,
                image_digest(bytes(g.pixelData(0, 0, w, h)), w, h, 4, "uint8", "BGRA") if g is not None else None,
                [list(p) for p in docker.controller.points], [list(p) for p in host._read_shapes()],
                bytes(layer.pixelData(0, 0, w, h)) == shared.disc_bgra(w, h, False),
                image_digest(bytes(root.projectionPixelData(0, 0, w, h)), w, h, 4, "uint8", "BGRA"), hist]
        trace(f"{label}: mask {step[1] and step[1][7:15]} guide {step[2] and step[2][7:15]} points "
              f"{len(step[3])}/{len(step[4])}; picture {step[6][7:15]}; history ...{hist}")
        return step

    def krita(action: str) -> None:
        app.action(action).trigger()
        _wait(lambda: False, 0.6)  # the docker's own timer runs meanwhile
        docker.controller.tick()

    trace(f"points {out['points']}; pressing Matte")
    matte_points = list(ctl.points)
    before_first = outputs("before")
    docker.matte_button.click()
    out["finished"] = _wait(lambda: not docker.controller.busy, job["timeout_s"])
    out["status"] = docker.status_label.text()
    trace(f"matte finished={out['finished']}: {out['status']}")
    mask = [n for n in layer.childNodes() if n.name() == "ClickMatte alpha"]
    out["mask_found"] = bool(mask)
    guide_node = doc.nodeByName("ClickMatte uncertainty")
    out["guide_visible_after_matte"] = guide_node.visible() if guide_node is not None else None
    # Krita's own Ctrl+Z / Ctrl+Shift+Z right after the first Matte: no mask, no guide; then both back
    out["first_matte_undo"] = [before_first, outputs("matte")]
    krita("edit_undo")
    out["first_matte_undo"].append(outputs("undo"))
    krita("edit_redo")
    out["first_matte_undo"].append(outputs("redo"))
    mask = [n for n in layer.childNodes() if n.name() == "ClickMatte alpha"]
    if mask:
        out["mask_digest"] = image_digest(bytes(mask[0].pixelData(0, 0, w, h)), w, h, 1, "uint8", "A")
    path = os.path.join(job["outdir"], "gui.kra")
    out["saved"] = shared.save_as(doc, path)

    # Decontaminate colours: a new layer above the photo, the daemon's colours under a copy of the mask
    deco_mask_in = bytes(mask[0].pixelData(0, 0, w, h)) if mask else b""
    docker.decontaminate_button.click()
    _wait(lambda: docker.controller.busy, 2.0)
    out["deco_finished"] = _wait(lambda: not docker.controller.busy, job["timeout_s"])
    out["deco_status"] = docker.status_label.text()
    deco = doc.nodeByName("Photo (decontaminated)")
    out["deco_layers"] = [n.name() for n in root.childNodes()]
    if deco is not None:
        deco_masks = [n for n in deco.childNodes() if n.type() == "transparencymask"]
        out["deco_mask_same"] = bool(deco_masks) and bytes(deco_masks[0].pixelData(0, 0, w, h)) == deco_mask_in
        bgra = bytes(deco.pixelData(0, 0, w, h))
        rgb = bytearray(w * h * 3)
        rgb[0::3], rgb[1::3], rgb[2::3] = bgra[2::4], bgra[1::4], bgra[0::4]
        out["deco_digest"] = image_digest(bytes(rgb), w, h, 3, "uint8", "RGB")
        deco.remove()  # the checks below expect the layers as they were
        doc.refreshProjection()

    # Refine selection: only pixels inside the selection may change
    from krita import Selection

    mask = [n for n in layer.childNodes() if n.name() == "ClickMatte alpha"]

    before = bytes(mask[0].pixelData(0, 0, w, h)) if mask else b""
    sx, sy, sw, sh = job["selection"]
    sel = Selection()
    sel.select(sx, sy, sw, sh, 255)
    doc.setSelection(sel)
    _wait(lambda: False, 0.2)
    docker.refine_sel_button.click()
    _wait(lambda: docker.controller.busy, 2.0)
    out["refine_finished"] = _wait(lambda: not docker.controller.busy, job["timeout_s"])
    out["refine_status"] = docker.status_label.text()
    after = bytes(mask[0].pixelData(0, 0, w, h)) if mask else b""
    inside = {(x, y) for y in range(sy, sy + sh) for x in range(sx, sx + sw)}
    out["changed_outside_selection"] = sum(1 for i in range(w * h)
                                           if before[i] != after[i] and (i % w, i // w) not in inside)
    out["changed_inside_selection"] = sum(1 for i in range(w * h)
                                          if before[i] != after[i] and (i % w, i // w) in inside)
    trace(f"refine selection: {out['refine_status']}")
    # guide opacity slider -> the guide layer's opacity
    docker.opacity_slider.setValue(30)
    guide = doc.nodeByName("ClickMatte uncertainty")
    out["guide_opacity"] = guide.opacity() if guide is not None else None
    # Undo point (the docker button), then Reset
    docker.undo_button.click()
    _wait(lambda: False, 0.3)
    out["points_after_undo"] = [list(p) for p in ctl.points]
    out["points_on_layer_after_undo"] = [list(p) for p in docker.host.read_points()]
    # Krita's own Edit > Undo / Redo (Ctrl+Z, Ctrl+Shift+Z): the docker's list follows the points layer
    out["krita_undo_redo"] = []
    for name in ("edit_undo", "edit_undo", "edit_redo", "edit_redo"):
        # a docker edit is taken as done once the layer shows it (shapes appear asynchronously)
        out.setdefault("pending_settled", []).append(_wait(lambda: docker.host._pending is None, 3.0))
        app.action(name).trigger()
        _wait(lambda: False, 0.6)
        docker.controller.tick()
        out["krita_undo_redo"].append([name, [list(p) for p in ctl.points],
                                       [list(p) for p in docker.host._read_shapes()]])
    # a second Matte over an existing mask: Ctrl+Z puts the previous mask pixels back, Ctrl+Shift+Z the new
    # ones; a point added afterwards is its own step (Ctrl+Z takes the point, the mask stays)
    seq = [outputs("before")]
    docker.matte_button.click()
    _wait(lambda: docker.controller.busy, 2.0)
    out["second_matte_finished"] = _wait(lambda: not docker.controller.busy, job["timeout_s"])
    seq.append(outputs("matte"))
    krita("edit_undo")
    seq.append(outputs("undo"))
    krita("edit_redo")
    seq.append(outputs("redo"))
    wx, wy = geometry.map_point(image_to_widget, job["extra_click"][0] + 0.5, job["extra_click"][1] + 0.5)
    _click(widget, wx, wy)
    seq.append(outputs("point"))
    krita("edit_undo")
    seq.append(outputs("undo point"))
    out["second_matte_undo"] = seq
    docker.reset_button.click()
    _wait(lambda: False, 0.5)
    out["points_after_reset"] = [list(p) for p in ctl.points]
    out["mask_after_reset"] = any(n.name() == "ClickMatte alpha" for n in layer.childNodes())
    out["guide_after_reset"] = doc.nodeByName("ClickMatte uncertainty") is not None
    out["layer_unchanged"] = bytes(layer.pixelData(0, 0, w, h)) == shared.disc_bgra(w, h, False)
    trace("undo/reset done")

    img = docker.host.read_image()
    with DaemonClient(docker.settings.endpoint, timeout_ms=120000, retries=0) as c:
        s = c.open(img.data, img.width, img.height, img.channels, img.dtype, img.order)
        m = c.predict(s.session, [Point(*p).as_click() for p in matte_points])
        alpha = m.alpha if not docker.settings.top_n else c.refine(s.session, top_n=docker.settings.top_n).alpha
        fg = c.foreground(s.session, deco_mask_in, w, h) if deco_mask_in else None
    with open(os.path.join(job["outdir"], "gui-expected.alpha"), "wb") as f:
        f.write(alpha)
    out["expected_digest"] = image_digest(alpha, w, h, 1, "uint8", "A")
    out["expected_deco_digest"] = image_digest(fg.rgb, w, h, 3, "uint8", "RGB") if fg is not None else None
    _CTX.update(app=app, doc=doc, layer=layer, docker=docker, widget=widget, image_to_widget=image_to_widget)
    return out


_CTX: dict = {}  # what run() leaves for active_layer_steps()


def active_layer_steps(job: dict, out: dict):
    """Matte and Refine from the event loop (each ``yield`` returns to it for that many seconds, as in a
    user's session), recording after each which node is active and which layer Krita's own "fill with
    the foreground colour" action paints. (Inside one long callback Krita holds back the events that
    tell its layer model about added nodes, so there no node can become active.)"""
    from clickmatte.krita import geometry

    app, doc, layer, docker = _CTX["app"], _CTX["doc"], _CTX["layer"], _CTX["docker"]
    w, h = job["width"], job["height"]
    res = out["active_layer"] = {}

    def node_ref(n) -> list:
        return [n.name(), n.type()] if n is not None else None

    def pixels(n) -> bytes:
        return bytes(n.pixelData(0, 0, w, h)) if n is not None else b""

    def settle(pred, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while not pred() and time.monotonic() < deadline:
            yield 0.05

    doc.setActiveNode(layer)
    yield 0.3
    res["before"] = node_ref(doc.activeNode())
    for x, y, mod in job["active_clicks"]:
        wx, wy = geometry.map_point(_CTX["image_to_widget"], x + 0.5, y + 0.5)
        _click(_CTX["widget"], wx, wy, {"": Qt.NoModifier, "alt": Qt.AltModifier}[mod])
        yield 0.1
    res["points"] = len(docker.controller.points)
    for label, button in (("matte", docker.matte_button), ("refine", docker.refine_button)):
        button.click()
        yield from settle(lambda: docker.controller.busy, 2.0)
        yield from settle(lambda: not docker.controller.busy, job["timeout_s"])
        yield 0.5  # Krita's own events after the last node was added
        mask = next((n for n in layer.childNodes() if n.name() == "ClickMatte alpha"), None)
        guide = doc.nodeByName("ClickMatte uncertainty")
        step = {"status": docker.status_label.text(), "active": node_ref(doc.activeNode()),
                "mask": mask is not None, "guide": guide is not None}
        before = [pixels(n) for n in (layer, mask, guide)]
        app.action("fill_selection_foreground_color").trigger()
        yield 0.3
        doc.waitForDone()
        yield 0.2
        after = [pixels(n) for n in (layer, mask, guide)]
        step["filled"] = [name for name, b, a in zip(("photo", "mask", "guide"), before, after) if b != a]
        app.action("edit_undo").trigger()  # the photo as it was
        yield 0.5
        doc.waitForDone()
        step["photo_back"] = pixels(layer) == before[0]
        step["active_after_undo"] = node_ref(doc.activeNode())
        res[label] = step
        trace(f"active layer after {label}: {step}")


class GuiDriver(Extension):
    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.started = False

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # noqa: N802 - Krita API
        trace("createActions")
        if not self.started and os.environ.get(JOB_ENV):
            self.started = True
            QTimer.singleShot(1500, self.go)

    def go(self) -> None:
        trace("go")
        import faulthandler

        self._stacks = open(os.path.join(os.path.dirname(os.environ[JOB_ENV]), "stacks.txt"), "w")
        faulthandler.dump_traceback_later(40, exit=False, file=self._stacks)
        import sys

        # an exception in a Qt callback would open Krita's modal error dialog and hang the run
        sys.excepthook = lambda t, v, tb: trace("UNCAUGHT " + "".join(traceback.format_exception(t, v, tb)))
        code, out, result = 1, {"ok": False}, None
        try:
            with open(os.environ[JOB_ENV]) as f:
                job = json.load(f)
            result = os.path.join(job["outdir"], "result.json")
            import sys

            sys.path.insert(0, job["driver_dir"])
            out.update(run(job))
        except BaseException:  # noqa: BLE001
            out["error"] = traceback.format_exc()
            self.finish(1, out, result)
        self.steps(active_layer_steps(job, out), out, result)

    def steps(self, gen, out: dict, result: str) -> None:
        """Run the generator ``gen`` from the event loop: each value it yields is a pause in seconds."""
        def tick() -> None:
            try:
                delay = next(gen)
            except StopIteration:
                out["ok"] = True
                self.finish(0, out, result)
            except BaseException:  # noqa: BLE001
                out["error"] = traceback.format_exc()
                self.finish(1, out, result)
            QTimer.singleShot(int(delay * 1000), tick)

        QTimer.singleShot(0, tick)

    @staticmethod
    def finish(code: int, out: dict, result) -> None:
        if result is not None:
            with open(result, "w") as f:
                json.dump(out, f, indent=1)
        os._exit(code)


if os.environ.get(JOB_ENV):
    Krita.instance().addExtension(GuiDriver(Krita.instance()))
