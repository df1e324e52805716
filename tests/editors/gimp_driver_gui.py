"""GUI driver for the real-GIMP screenshot test (runs INSIDE GIMP 3 with its GUI, under Xvfb, via python-fu-eval).

    xvfb-run gimp-3.0 -n -d -f --batch-interpreter=python-fu-eval -b 'exec(open("tests/editors/gimp_driver_gui.py").read())'

with ``CLICKMATTE_GIMP_JOB`` naming a JSON job file ``{"image", "out", "endpoint", "fg": [[x, y], ...],
"bg": [[x, y], ...], "timeout"}``. As a user would: the photo in an image window, Layer > ClickMatte > Add
point paths, anchors added to "fg" and "bg", a screenshot (``gimp-points.png``), Matte, a screenshot
(``gimp-mask.png``). Screenshots come from GIMP's own File > Create > Screenshot procedure (the whole
X screen, which the test sizes like GIMP's window). Writes ``results.json`` into ``out`` and quits GIMP.
"""
import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

JOB = json.load(open(os.environ["CLICKMATTE_GIMP_JOB"]))
PDB = Gimp.get_pdb()
RESULTS = {"steps": {}}


def run_proc(name, image=None, layer=None, **props):
    proc = PDB.lookup_procedure(name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        cfg.set_property("image", image)
        cfg.set_core_object_array("drawables", [layer])
    for key, value in props.items():
        cfg.set_property(key, value)
    t0 = time.monotonic()
    res = proc.run(cfg)
    status = res.index(0)
    RESULTS["steps"][name] = {"status": status.value_nick, "seconds": round(time.monotonic() - t0, 2),
                              "error": PDB.get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""}
    return res


def shoot(name):
    """The whole screen through GIMP's screenshot procedure, exported as PNG into ``out``."""
    Gimp.displays_flush()
    time.sleep(1.5)  # the canvas repaints in GIMP's own process
    for _ in range(3):  # the screenshot plug-in sometimes fails to open the display ("GDK initialization failed")
        res = run_proc("plug-in-screenshot", shoot_type="screen")
        if res.index(0) == Gimp.PDBStatusType.SUCCESS:
            break
        time.sleep(1.0)
    else:
        raise RuntimeError(f"screenshot failed: {RESULTS['steps']['plug-in-screenshot']}")
    shot = res.index(1)
    path = os.path.join(JOB["out"], name)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, shot, Gio.File.new_for_path(path), None)
    RESULTS["steps"][name] = {"size": [shot.get_width(), shot.get_height()], "seconds": 0.0}
    shot.delete()


def add_anchors(image, name, points):
    path = [p for p in image.get_paths() if p.get_name() == name][0]
    for x, y in points:
        path.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, [float(x), float(y)] * 3, False)
    path.set_visible(True)


def main():
    Gegl.init(None)
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(JOB["image"]))
    layer = image.get_layers()[0]
    Gimp.Display.new(image)
    run_proc("plug-in-clickmatte-point-paths", image, layer)
    add_anchors(image, "fg", JOB["fg"])
    add_anchors(image, "bg", JOB["bg"])
    shoot("gimp-points.png")
    run_proc("plug-in-clickmatte-matte", image, layer, endpoint=JOB["endpoint"], **{"top-n": 0})
    mask = layer.get_mask()
    RESULTS["has_mask"] = mask is not None
    RESULTS["selected"] = [lyr.get_name() for lyr in image.get_selected_layers()]
    RESULTS["layer"] = layer.get_name()
    shoot("gimp-mask.png")
    image.clean_all()


try:
    main()
    RESULTS["ok"] = True
except Exception:
    RESULTS["ok"] = False
    RESULTS["error"] = traceback.format_exc()
with open(os.path.join(JOB["out"], "results.json"), "w") as f:
    json.dump(RESULTS, f, indent=1)
quit_proc = PDB.lookup_procedure("gimp-quit")
quit_cfg = quit_proc.create_config()
quit_cfg.set_property("force", True)
quit_proc.run(quit_cfg)
