"""Runs INSIDE Krita (``kritarunner -s krita_driver -f main JOB.json``): the real-Krita test's work.

For each case of the job (8-bit and 16-bit RGBA):

1. create a document with a paint layer "Photo" (a bright disc on a dark background) and the
   points vector layer "ClickMatte points" written by the plugin's own ``KritaHost.write_points``;
   save it as ``CASE-points.kra``, close it and open it again (points must survive in the .kra);
2. run a matte through the plugin's code path: ``Controller`` + ``KritaHost`` over the reopened
   document, against the daemon at ``endpoint``, pumped with ``tick()`` like the docker's QTimer;
3. ask the daemon directly (blocking ``DaemonClient``) for the same request, as the reference;
4. save ``CASE.kra`` and write what happened into ``result.json``.

kritarunner always exits 0, so ``main`` ends with ``os._exit(code)`` and the test also reads
``result.json``. Standard library + Krita + the installed plugin only (no numpy).
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback

DISC = (64, 48, 30)


def disc_bgra(width: int, height: int, wide: bool) -> bytes:
    """Bright disc (centre DISC) on a dark background, opaque, BGRA, u8 or u16 (v * 257)."""
    cx, cy, r = DISC
    out = bytearray()
    for y in range(height):
        for x in range(width):
            if (x - cx) ** 2 + (y - cy) ** 2 <= r * r:
                px = (170, 214, 236 - (x % 5), 255)
            else:
                px = (48, 34 + (x % 7), 22, 255)
            if wide:
                for v in px:
                    out += (v * 257).to_bytes(2, "little")
            else:
                out += bytes(px)
    return bytes(out)


def save_as(doc, path: str, timeout_s: float = 60.0) -> bool:
    """``doc.saveAs`` and wait until the file is really there (Krita may finish saving in the
    background, after saveAs returns; an ``os._exit`` before that would lose the file). A refused
    save (another save of the document still finishing) is tried again, up to three times."""
    import zipfile

    from PyQt5.QtWidgets import QApplication

    if os.path.exists(path):
        os.unlink(path)
    ok = False
    for _ in range(3):  # Krita refuses a save while an earlier one of the document is still finishing
        ok = doc.saveAs(path)
        doc.waitForDone()
        if ok:
            break
        for _ in range(25):
            QApplication.processEvents()
            time.sleep(0.02)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path) and zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as zf:
                    if "maindoc.xml" in zf.namelist() and zf.testzip() is None:
                        return bool(ok)
            except (OSError, zipfile.BadZipFile):
                pass
        QApplication.processEvents()
        time.sleep(0.02)
    return False


def run_case(app, job: dict, case: dict, out: dict) -> None:
    from PyQt5.QtCore import QByteArray
    from PyQt5.QtWidgets import QApplication

    from clickmatte.controller import Controller
    from clickmatte.client import DaemonClient
    from clickmatte.host import Point
    from clickmatte.krita.adapter import GUIDE_NAME, MASK_NAME, KritaHost
    from clickmatte.protocol import image_digest
    from clickmatte.settings import Settings

    name, depth = case["name"], case["depth"]
    w, h = job["width"], job["height"]
    outdir = job["outdir"]
    res = out.setdefault("cases", {}).setdefault(name, {})
    doc = app.createDocument(w, h, name, "RGBA", depth, case.get("profile", ""), 72.0)
    doc.setBatchmode(True)
    root = doc.rootNode()
    for n in list(root.childNodes()):
        n.remove()
    layer = doc.createNode("Photo", "paintlayer")
    root.addChildNode(layer, None)
    pixels = disc_bgra(w, h, depth == "U16")
    layer.setPixelData(QByteArray(pixels), 0, 0, w, h)
    doc.setActiveNode(layer)
    doc.refreshProjection()
    host = KritaHost(get_document=lambda: doc)
    points = [Point.make(p[0], p[1], p[2]) for p in job["points"]]
    host.write_points(points)
    doc.waitForDone()
    points_path = os.path.join(outdir, f"{name}-points.kra")
    res["saved_points_doc"] = save_as(doc, points_path)
    doc.close()

    # reopen: the points must come back from the vector layer
    doc = app.openDocument(points_path)
    if doc is None:
        raise RuntimeError(f"cannot reopen {points_path}")
    doc.setBatchmode(True)
    doc.waitForDone()
    layer = doc.nodeByName("Photo")
    doc.setActiveNode(layer)
    before = bytes(layer.pixelData(0, 0, w, h))
    res["layer_depth"] = layer.colorDepth()
    res["layer_profile"] = layer.colorProfile()
    messages = []
    host = KritaHost(get_document=lambda: doc, status=lambda t, lvl: messages.append([lvl, t]))
    res["points_read"] = [list(p) for p in host.read_points()]
    settings = Settings(endpoint=job["endpoint"], top_n=job["top_n"], timeout_s=120.0, preview_size=64)
    ctl = Controller(host, settings)
    ctl.connect()
    t0 = time.monotonic()
    ctl.tick()  # adopts the document's points (what the docker's timer does)
    res["points_adopted"] = [list(p) for p in ctl.points]
    # rewriting the points without a view replaces the layer (Shape.remove() would crash Krita here)
    host.write_points(ctl.points)
    res["points_rewritten"] = [list(p) for p in host._read_shapes()]
    res["points_layers"] = sum(1 for n in doc.rootNode().childNodes() if n.name() == "ClickMatte points")
    ctl.matte()
    deadline = time.monotonic() + 240
    while ctl.busy and time.monotonic() < deadline:
        QApplication.processEvents()
        ctl.tick(wait_ms=20)
    res["matte_s"] = round(time.monotonic() - t0, 2)
    res["idle"] = not ctl.busy
    res["status"] = ctl.status
    res["messages"] = messages[-8:]
    mask = None
    for n in layer.childNodes():
        if n.name() == MASK_NAME and n.type() == "transparencymask":
            mask = n
    res["mask_found"] = mask is not None
    if mask is not None:
        res["mask_depth"] = mask.colorDepth()
        data = bytes(mask.pixelData(0, 0, w, h))
        res["mask_bytes_per_pixel"] = len(data) / float(w * h)
        step = 2 if mask.colorDepth() == "U16" else 1
        plane = data[step - 1 :: step]
        res["mask_digest"] = image_digest(plane, w, h, 1, "uint8", "A")
        res["mask_at_points"] = [plane[int(round(p.y)) * w + int(round(p.x))] for p in points]
    guide = doc.nodeByName(GUIDE_NAME)
    res["guide_found"] = guide is not None and guide.type() == "paintlayer"
    res["layer_unchanged"] = bytes(layer.pixelData(0, 0, w, h)) == before

    # the reference: the same request straight to the daemon
    img = host.read_image()
    res["sent_dtype"] = img.dtype
    if depth == "U16" and img.dtype == "uint8":  # linear 16-bit, converted by Krita: compare with Python's
        from clickmatte.krita.adapter import linear_u16_bgra_to_srgb_u8

        ref = linear_u16_bgra_to_srgb_u8(bytes(layer.pixelData(0, 0, w, h)))
        res["conversion_max_diff"] = max(abs(a - b) for a, b in zip(img.data, ref))
    c = DaemonClient(job["endpoint"], timeout_ms=120000, retries=0)
    try:
        s = c.open(img.data, img.width, img.height, img.channels, img.dtype, img.order)
        m = c.predict(s.session, [p.as_click() for p in points], preview=None)
        alpha = m.alpha
        if job["top_n"] > 0:
            alpha = c.refine(s.session, top_n=job["top_n"]).alpha
    finally:
        c.disconnect()
    res["expected_digest"] = image_digest(alpha, w, h, 1, "uint8", "A")
    res["expected_at_points"] = [alpha[int(round(p.y)) * w + int(round(p.x))] for p in points]
    res["expected_path"] = os.path.join(outdir, f"{name}-expected.alpha")
    with open(res["expected_path"], "wb") as f:
        f.write(alpha)

    path = os.path.join(outdir, f"{name}.kra")
    res["saved"] = save_as(doc, path)
    res["kra"] = path
    doc.close()


def check_unsupported(app, job: dict, out: dict) -> None:
    """A GRAYA document: the adapter must refuse it with a message that says what to do."""
    from clickmatte.host import HostError
    from clickmatte.krita.adapter import KritaHost

    doc = app.createDocument(64, 48, "gray", "GRAYA", "U8", "", 72.0)
    doc.setBatchmode(True)
    try:
        KritaHost(get_document=lambda: doc).read_image()
        out["graya_message"] = None
    except HostError as exc:
        out["graya_message"] = str(exc)
    doc.close()


def check_user_shapes(app, job: dict, out: dict) -> None:
    """Shapes a user draws on the points layer count: a rectangle is a background point, an ellipse a
    foreground one, and a shape named "bg..." is background whatever it is."""
    from clickmatte.krita.adapter import KritaHost

    doc = app.createDocument(128, 96, "shapes", "RGBA", "U8", "", 144.0)  # 144 dpi: 1 pt = 2 px
    doc.setBatchmode(True)
    host = KritaHost(get_document=lambda: doc)
    node = host.points_node(create=True)
    node.addShapesFromSvg(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64pt" height="48pt" viewBox="0 0 64 48">'
        '<rect x="10" y="10" width="4" height="4" fill="red"/>'
        '<ellipse cx="30" cy="20" rx="3" ry="2" fill="green"/>'
        '<path id="bg-mine" d="M 40 40 L 44 40 L 44 44 Z" fill="blue"/></svg>')
    doc.waitForDone()
    out["user_shapes"] = [[s.name(), s.type(), s.toSvg()[:300]] for s in node.shapes()]
    out["user_points"] = [list(p) for p in host.read_points()]
    doc.close()


def check_resize_plane(app, job: dict, out: dict) -> None:
    """The adapter's live-preview upscaling in Krita's own Qt: a horizontal gradient of a preview size
    (160 x 120) scaled to a photo size (700 x 525) must stay that gradient (Qt 5.15 returns a
    smoothly scaled Grayscale8 image as RGB32, which once turned the mask into stripes)."""
    from clickmatte.krita.adapter import KritaHost

    w, h, nw, nh = 160, 120, 700, 525
    plane = bytes((x * 255 // (w - 1)) for _ in range(h) for x in range(w))
    big = KritaHost(get_document=lambda: None).resize_plane(plane, w, h, nw, nh)
    out["resize_plane"] = {"len": len(big), "size": [nw, nh],
                           "rows": [list(big[r * nw:(r + 1) * nw]) for r in (0, nh // 2, nh - 1)]}


def main(args) -> None:
    code = 1
    out: dict = {"ok": False}
    result_path = None
    try:
        job_path = args[0] if args else os.environ["CLICKMATTE_KRITA_JOB"]
        with open(job_path) as f:
            job = json.load(f)
        result_path = os.path.join(job["outdir"], "result.json")
        sys.path.insert(0, job["pykrita"])
        import clickmatte  # the installed plugin package (registers the docker factory)
        import zmq

        out["plugin_file"] = clickmatte.__file__
        out["zmq_file"] = zmq.__file__
        out["zmq_version"] = zmq.zmq_version()
        from krita import Krita

        app = Krita.instance()
        out["krita_version"] = app.version()
        for case in job["cases"]:
            run_case(app, job, case, out)
        check_unsupported(app, job, out)
        check_user_shapes(app, job, out)
        check_resize_plane(app, job, out)
        out["ok"] = True
        code = 0
    except BaseException:  # noqa: BLE001 - everything must end in result.json + os._exit
        out["error"] = traceback.format_exc()
    try:
        if result_path is not None:
            with open(result_path, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
