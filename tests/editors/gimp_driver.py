"""Batch driver for the real-GIMP test (runs INSIDE GIMP 3, via python-fu-eval).

    gimp-console-3.0 -i -d -f --quit -g GIMPRC --batch-interpreter=python-fu-eval \
        -b 'exec(open("tests/editors/gimp_driver.py").read())'

with ``CLICKMATTE_GIMP_JOB`` naming a JSON job file (written by ``test_gimp.py``)::

    {"image": PNG, "out": FOLDER, "endpoint": "tcp://127.0.0.1:PORT", "dead_endpoint": ...,
     "timeout": seconds, "fg": [[x, y], ...], "bg": [[x, y], ...], "fg_more": [x, y],
     "selection": [x, y, w, h], "offset_layer": [dx, dy]}

It drives the installed ClickMatte procedures non-interactively, the way a script would, and
writes into ``out``: ``results.json`` (per step: PDB status, error text, seconds, observations)
and raw planes (``NAME.pgm`` masks, ``NAME.ppm`` layer RGB) for the test to check on the host.
Any exception propagates, so GIMP's batch exits with 64.
"""
import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

JOB = json.load(open(os.environ["CLICKMATTE_GIMP_JOB"]))
OUT = JOB["out"]
PDB = Gimp.get_pdb()
RESULTS = {"steps": {}, "version": Gimp.version()}
NAMES = {
    "matte": "plug-in-clickmatte-matte",
    "refine-uncertain": "plug-in-clickmatte-refine-uncertain",
    "refine-selection": "plug-in-clickmatte-refine-selection",
    "settings": "plug-in-clickmatte-settings",
    "point-paths": "plug-in-clickmatte-point-paths",
    "decontaminate": "plug-in-clickmatte-decontaminate",
}


def forget_session(image, layer):
    """Close the daemon's session on this layer's pixels (the one the plug-in's next ``open`` would
    resume), with the installed plug-in's own modules; records the mask's parasite text."""
    import sys

    plugin_dir = os.path.join(os.environ["XDG_CONFIG_HOME"], "GIMP", "3.0", "plug-ins", "clickmatte")
    for p in (plugin_dir, os.path.join(plugin_dir, "vendor")):
        if p not in sys.path:
            sys.path.append(p)
    from clickmatte_core.client import DaemonClient
    from clickmatte_core.gimp.gimp_host import GimpHost

    t0 = time.monotonic()
    img = GimpHost(image, layer).read_image()
    with DaemonClient(JOB["endpoint"], timeout_ms=60000, retries=0) as c:
        opened = c.open(img.data, img.width, img.height, img.channels, img.dtype, img.order, resume=True)
        closed = c.close(opened.session)
    par = layer.get_mask().get_parasite("clickmatte-mask")
    RESULTS["steps"]["forget"] = {"seconds": round(time.monotonic() - t0, 3), "resumed": opened.resumed, "closed": bool(closed),
                                  "mask_tag": bytes(par.get_data()).decode() if par is not None else None}


def save_results():
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)


def call(step, what, image=None, layer=None, run_mode=Gimp.RunMode.NONINTERACTIVE, **props):
    """Run a ClickMatte procedure (non-interactively by default); record status, error text and duration."""
    proc = PDB.lookup_procedure(NAMES[what])
    cfg = proc.create_config()
    cfg.set_property("run-mode", run_mode)
    if image is not None:
        cfg.set_property("image", image)
        cfg.set_core_object_array("drawables", [layer])
    for key, value in props.items():
        cfg.set_property(key, value)
    t0 = time.monotonic()
    result = proc.run(cfg)
    status = result.index(0)
    rec = {"status": status.value_nick, "seconds": round(time.monotonic() - t0, 3),
           "error": PDB.get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""}
    RESULTS["steps"][step] = rec
    save_results()
    return rec


def plane(drawable, fmt, channels):
    w, h = drawable.get_width(), drawable.get_height()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    data = bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
    assert len(data) == w * h * channels
    return w, h, data


def dump_mask(layer, name):
    mask = layer.get_mask()
    if mask is None:
        return None
    w, h, data = plane(mask, "Y u8", 1)
    with open(os.path.join(OUT, name + ".pgm"), "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h) + data)
    return name


def dump_rgb(layer, name):
    w, h, data = plane(layer, "R'G'B' u8", 3)
    with open(os.path.join(OUT, name + ".ppm"), "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + data)


def add_path(image, name, anchors):
    path = Gimp.Path.new(image, name)
    image.insert_path(path, None, 0)
    for x, y in anchors:  # one stroke per point: in-handle, anchor, out-handle all at the point
        path.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, [float(x), float(y)] * 3, False)
    return path


def guide_of(image):
    return [lyr for lyr in image.get_layers() if lyr.get_name().startswith("ClickMatte uncertainty")][0]


def flags(item, name):
    par = item.get_parasite(name) if item is not None else None
    return par.get_flags() if par is not None else None


def describe(image, layer, step):
    guides = [lyr for lyr in image.get_layers() if lyr.get_name().startswith("ClickMatte uncertainty")]
    mask = layer.get_mask()
    RESULTS["steps"][step].update({
        "guide_visible": guides[0].get_visible() if guides else None,
        "parasite_flags": [flags(mask, "clickmatte-mask"), flags(guides[0] if guides else None, "clickmatte-guide"),
                           flags(layer, "clickmatte-layer")],
        "layers": [lyr.get_name() for lyr in image.get_layers()],
        "guides": len(guides),
        "guide_opacity": guides[0].get_opacity() if guides else None,
        "guide_size": [guides[0].get_width(), guides[0].get_height()] if guides else None,
        "guide_offsets": list(guides[0].get_offsets()[1:]) if guides else None,
        "has_mask": mask is not None,
        "mask_tagged": bool(mask is not None and mask.get_parasite("clickmatte-mask") is not None),
        "selected": [lyr.get_name() for lyr in image.get_selected_layers()],
    })
    save_results()


def main():
    Gegl.init(None)
    RESULTS["registered"] = sorted(k for k, n in NAMES.items() if PDB.lookup_procedure(n) is not None)
    fresh = PDB.lookup_procedure(NAMES["settings"]).create_config()  # the arguments' defaults
    RESULTS["settings_defaults"] = {a: fresh.get_property(a) for a in (
        "endpoint", "server-public-key", "client-public-key", "client-secret-key", "timeout", "top-n",
        "guide-opacity", "auto-start", "daemon-path")}
    save_results()
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(JOB["image"]))
    layer = image.get_layers()[0]
    dump_rgb(layer, "orig")

    # 1. no fg/bg paths yet -> a clear error (a decoy path with another name does not count)
    add_path(image, "outline", [[5, 5]])
    call("no_points", "matte", image, layer, endpoint=JOB["endpoint"])

    # 2. points: Add point paths makes "fg" and "bg" (twice: nothing more the second time), the user
    # clicks into "fg"; for the background a natural long name (the empty "bg" adds no point)
    call("point_paths", "point-paths", image, layer)
    call("point_paths_again", "point-paths", image, layer)
    RESULTS["steps"]["point_paths_again"].update({
        "paths": [p.get_name() for p in image.get_paths()],
        "selected_paths": [p.get_name() for p in image.get_selected_paths()]})
    fg_path = [p for p in image.get_paths() if p.get_name() == "fg"][0]
    for x, y in JOB["fg"]:
        fg_path.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, [float(x), float(y)] * 3, False)
    add_path(image, "Background", JOB["bg"])

    # 3. settings saved non-interactively; the matte below takes its endpoint from them
    call("settings", "settings", endpoint=JOB["endpoint"], timeout=float(JOB["timeout"]), **{"top-n": 0})

    # 4. nobody listening -> a clear message within the hello timeout, nothing written
    call("no_daemon", "matte", image, layer, endpoint=JOB["dead_endpoint"])
    RESULTS["steps"]["no_daemon"]["has_mask"] = layer.get_mask() is not None

    # 5. the matte (endpoint from settings), then again (replaces, never duplicates)
    call("matte", "matte", image, layer, **{"top-n": 0})
    describe(image, layer, "matte")
    dump_mask(layer, "mask_matte")
    dump_rgb(layer, "rgb_matte")
    guide_of(image).set_visible(True)  # the user shows the guide: the next matte keeps it shown
    call("matte_again", "matte", image, layer, endpoint=JOB["endpoint"], **{"top-n": 0})
    describe(image, layer, "matte_again")
    dump_mask(layer, "mask_again")
    # the guide selected (as GIMP leaves it after Edit > Redo of a matte): the matte goes to its layer
    call("matte_from_guide", "matte", image, guide_of(image), endpoint=JOB["endpoint"], **{"top-n": 0})
    describe(image, layer, "matte_from_guide")
    dump_mask(layer, "mask_from_guide")
    # decontaminate: a new layer with the estimated colours under a copy of the mask, one undo step
    call("decontaminate", "decontaminate", image, layer, endpoint=JOB["endpoint"])
    describe(image, layer, "decontaminate")
    deco = [lyr for lyr in image.get_layers() if lyr.get_name().endswith("(decontaminated)")]
    RESULTS["steps"]["decontaminate"]["new_layers"] = len(deco)
    if deco:
        dump_rgb(deco[0], "rgb_deco")
        dump_mask(deco[0], "mask_deco")
        image.remove_layer(deco[0])  # the later steps expect the layers as they were
    # as from the menu: no dialog for this one; endpoint and top-N come from the saved settings
    call("matte_interactive", "matte", image, layer, run_mode=Gimp.RunMode.INTERACTIVE)
    dump_mask(layer, "mask_interactive")
    # one more fg point (last in the point list): the daemon's session of the calls before feeds
    # their matte back; then the point goes again, so the refines below start afresh
    stroke = fg_path.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, [float(v) for v in JOB["fg_more"]] * 3, False)
    # ... and the daemon forgets that session first (as after a restart): the matte must come out the same,
    # from the document alone (the mask, whose parasite holds the points of its matte, goes back as prev_alpha)
    forget_session(image, layer)
    call("matte_more", "matte", image, layer, endpoint=JOB["endpoint"], **{"top-n": 0})
    dump_mask(layer, "mask_more")
    fg_path.remove_stroke(stroke)

    # 6. refine inside a rectangular selection. First the user paints the whole mask white (a
    # state no network produces), so that any change the refine makes is visible, trained or not.
    layer.get_mask().fill(Gimp.FillType.WHITE)
    dump_mask(layer, "mask_painted")
    x, y, w, h = JOB["selection"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    call("refine_selection", "refine-selection", image, layer, endpoint=JOB["endpoint"])
    dump_mask(layer, "mask_refsel")
    Gimp.Selection.none(image)
    call("refine_selection_none", "refine-selection", image, layer, endpoint=JOB["endpoint"])

    # 7. refine the 2 most uncertain patches
    call("refine_uncertain", "refine-uncertain", image, layer, endpoint=JOB["endpoint"], **{"top-n": 2})
    dump_mask(layer, "mask_refunc")
    dump_rgb(layer, "rgb_final")
    xcf = os.path.join(OUT, "matte.xcf")
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(xcf), None)
    RESULTS["xcf_bytes"] = os.path.getsize(xcf)

    # 8. a 16-bit copy gives the same matte
    deep = image.duplicate()
    deep.convert_precision(Gimp.Precision.U16_NON_LINEAR)
    deep_layer = [lyr for lyr in deep.get_layers() if lyr.get_name() == layer.get_name()][0]
    RESULTS["u16_precision"] = deep.get_precision().value_nick
    call("matte_u16", "matte", deep, deep_layer, endpoint=JOB["endpoint"], **{"top-n": 0})
    describe(deep, deep_layer, "matte_u16")
    dump_mask(deep_layer, "mask_u16")

    # 9. a layer moved by an offset: the points follow the layer's own pixel grid
    dx, dy = JOB["offset_layer"]
    moved = image.duplicate()
    moved_layer = [lyr for lyr in moved.get_layers() if lyr.get_name() == layer.get_name()][0]
    moved_layer.remove_mask(Gimp.MaskApplyMode.DISCARD)
    moved.resize(moved.get_width() + dx, moved.get_height() + dy, 0, 0)
    moved_layer.set_offsets(dx, dy)
    for p in moved.get_paths():
        p.transform_translate(dx, dy)  # the user's points stay on the same content
    call("matte_offset", "matte", moved, moved_layer, endpoint=JOB["endpoint"], **{"top-n": 0})
    describe(moved, moved_layer, "matte_offset")
    dump_mask(moved_layer, "mask_offset")

    # 10. a layer mask ClickMatte did not make is left alone, with a message
    other = Gimp.Layer.new_from_drawable(layer, image)
    image.insert_layer(other, None, 0)
    other.set_name("Other")
    if other.get_mask() is not None:
        other.remove_mask(Gimp.MaskApplyMode.DISCARD)
    other.add_mask(other.create_mask(Gimp.AddMaskType.BLACK))
    call("foreign_mask", "matte", image, other, endpoint=JOB["endpoint"])
    dump_mask(other, "mask_foreign")

    # 11. grayscale -> a clear message
    gray = image.duplicate()
    gray.convert_grayscale()
    call("gray", "matte", gray, gray.get_layers()[-1], endpoint=JOB["endpoint"])

    for img in (deep, moved, gray, image):
        img.delete()
    RESULTS["done"] = True
    save_results()


main()
