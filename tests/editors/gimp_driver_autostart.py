"""Batch driver for the real-GIMP auto-start test (runs INSIDE GIMP 3, via python-fu-eval).

With ``CLICKMATTE_GIMP_AUTOSTART_JOB`` naming ``{"image", "out", "plugin_dir", "fg": [[x, y], ...]}``, in
a fresh profile where only ``clickmatte-install gimp`` ran and no daemon listens: load the photo, run
Layer > ClickMatte > Add point paths, add the clicks as anchors of "fg" (what the Paths tool does),
run Matte from points (endpoint and everything else from the defaults: the plug-in starts the
daemon), then ask that daemon for the reference answer and note which process it is. Writes
``out/results.json``; GIMP quits after the batch (``--quit``).
"""
import json
import os
import sys
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

JOB = json.load(open(os.environ["CLICKMATTE_GIMP_AUTOSTART_JOB"]))
PDB = Gimp.get_pdb()
OUT = {"gimp_pid": os.getppid(), "steps": {}}


def save():
    with open(os.path.join(JOB["out"], "results.json"), "w") as f:
        json.dump(OUT, f, indent=1)


def call(step, name, image, layer):
    proc = PDB.lookup_procedure(name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    t0 = time.monotonic()
    status = proc.run(cfg).index(0)
    OUT["steps"][step] = {"status": status.value_nick, "seconds": round(time.monotonic() - t0, 2),
                          "error": PDB.get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""}
    save()


def daemons(endpoint):
    """(pid, argv) of every process serving ``endpoint`` (the pid namespace is the host's)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = [a.decode() for a in f.read().split(b"\0") if a]
            except OSError:
                continue
            if "--bind" in argv and argv[argv.index("--bind") + 1] == endpoint:
                found.append([int(d), argv])
    return found


def main():
    Gegl.init(None)
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(JOB["image"]))
    layer = image.get_layers()[0]
    call("point_paths", "plug-in-clickmatte-point-paths", image, layer)
    fg = [p for p in image.get_paths() if p.get_name() == "fg"][0]
    for x, y in JOB["fg"]:
        fg.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, [float(x), float(y)] * 3, False)
    call("matte", "plug-in-clickmatte-matte", image, layer)
    mask = layer.get_mask()
    OUT["has_mask"] = mask is not None
    sys.path.insert(0, JOB["plugin_dir"])
    from clickmatte_core import settings
    from clickmatte_core.client import DaemonClient
    from clickmatte_core.gimp import gimp_host

    s = settings.load()
    OUT["endpoint"] = s.endpoint
    OUT["daemons"] = daemons(s.endpoint)
    if mask is not None:
        w, h = mask.get_width(), mask.get_height()
        data = bytes(mask.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.NONE))
        OUT["mask_at_points"] = [data[int(y) * w + int(x)] for x, y in JOB["fg"]]
        img = gimp_host.GimpHost(image, layer).read_image()
        with DaemonClient(s.endpoint, timeout_ms=120000, retries=0) as c:
            sess = c.open(img.data, img.width, img.height, img.channels, img.dtype, img.order).session
            c.predict(sess, [{"x": float(x), "y": float(y), "label": "fg"} for x, y in JOB["fg"]])
            ref = bytes(c.refine(sess, top_n=s.top_n).alpha) if s.top_n else None
        OUT["mask_equals_daemon"] = ref == data
    save()
    image.delete()


main()
