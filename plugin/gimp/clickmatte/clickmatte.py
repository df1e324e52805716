#!/usr/bin/env python3
"""ClickMatte for GIMP 3: a layer mask from foreground/background points, refined where unsure.

Menu: Layer > ClickMatte > Add point paths (fg, bg) / Matte from points / Refine uncertain edges... /
Refine selection / Decontaminate colours / Settings... . Points are the anchors of paths named "fg"
and "bg" (any name starting with fg/foreground or bg/background, any case), drawn with the Paths tool. The daemon
(``clickmatte-daemon``) computes the matte; its endpoint and CURVE keys are set in Settings
(shared with the Krita plugin) or passed as procedure arguments.

Every procedure also runs non-interactively (scripts, batch mode) with all its values as
arguments, e.g. from ``gimp-console-3.0 --batch-interpreter=python-fu-eval``::

    proc = Gimp.get_pdb().lookup_procedure("plug-in-clickmatte-matte")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    cfg.set_property("endpoint", "tcp://127.0.0.1:5557")
    proc.run(cfg)

Installed by ``clickmatte-install gimp`` as ``plug-ins/clickmatte/clickmatte.py`` (executable),
next to ``clickmatte_core/`` (the host-agnostic core plus the GIMP adapter) and ``vendor/``
(pyzmq built for GIMP's Python when it could be downloaded; searched after the system's
packages). pyzmq is imported only when a procedure runs, so the plug-in registers (and
explains the problem) without it.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # clickmatte_core/
_VENDOR = os.path.join(HERE, "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.append(_VENDOR)  # pyzmq for GIMP's Python; a system pyzmq, when present, wins

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PROC_MATTE = "plug-in-clickmatte-matte"
PROC_REFINE_UNCERTAIN = "plug-in-clickmatte-refine-uncertain"
PROC_REFINE_SELECTION = "plug-in-clickmatte-refine-selection"
PROC_SETTINGS = "plug-in-clickmatte-settings"
PROC_POINT_PATHS = "plug-in-clickmatte-point-paths"
PROC_DECONTAMINATE = "plug-in-clickmatte-decontaminate"
MENU = "<Image>/Layer/ClickMatte"
RW = GObject.ParamFlags.READWRITE

_ACTION_OF = {
    PROC_MATTE: "matte",
    PROC_REFINE_UNCERTAIN: "refine-uncertain",
    PROC_REFINE_SELECTION: "refine-selection",
    PROC_DECONTAMINATE: "decontaminate",
}


def _core():
    """The core modules, imported lazily so that a broken install still registers and explains itself."""
    try:
        from clickmatte_core import host, settings
        from clickmatte_core.gimp import actions, gimp_host
    except ImportError as exc:
        raise RuntimeError(
            f"ClickMatte is not installed completely ({exc}): the folder {HERE} must hold clickmatte_core/. "
            "Re-run `clickmatte-install gimp`."
        ) from exc
    return host, settings, actions, gimp_host


def _settings_module():
    """``clickmatte_core.settings`` (the defaults and ranges of every setting, written there once), or None
    when the install is broken: the procedures then register without their arguments and explain the
    problem when run."""
    try:
        from clickmatte_core import settings
    except ImportError:
        return None
    return settings


def _fail(procedure, message, status=Gimp.PDBStatusType.EXECUTION_ERROR):
    """Return ``message`` as the procedure's error: GIMP shows it in its error console (menu runs) or
    hands it to the caller (scripts: ``Gimp.get_pdb().get_last_error()``)."""
    err = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
    return procedure.new_return_values(status, err)


def _dialog(procedure, config, title, names):
    """Show GIMP's standard dialog for ``names``; False if the user cancelled."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init("clickmatte")
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=title)
    dialog.fill(names)
    ok = dialog.run()
    dialog.destroy()
    return ok


def run_image_action(procedure, run_mode, image, drawables, config, data):
    """Shared body of the three image procedures (Matte, Refine uncertain, Refine selection)."""
    name = procedure.get_name()
    action = _ACTION_OF[name]
    try:
        host_mod, settings_mod, actions, gimp_host = _core()
    except RuntimeError as exc:
        return _fail(procedure, str(exc))
    Gegl.init(None)
    if run_mode == Gimp.RunMode.INTERACTIVE and action == "refine-uncertain":
        if not _dialog(procedure, config, "Refine uncertain edges", ["top-n"]):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())

    settings = settings_mod.load()
    if settings.problem:
        Gimp.message(f"ClickMatte: {settings.problem}")
    endpoint = config.get_property("endpoint") or settings.endpoint
    timeout = config.get_property("timeout")
    top_n = 0
    guide = False
    if action == "matte":
        top_n = config.get_property("top-n")
        top_n = settings.top_n if top_n < 0 else top_n
        guide = bool(config.get_property("guide"))
    elif action == "refine-uncertain":
        top_n = config.get_property("top-n")

    client = None
    Gimp.progress_init(f"ClickMatte: {procedure.get_menu_label().replace('_', '').rstrip('.')}")
    image.undo_group_start()
    try:
        layer = gimp_host.resolve_layer(drawables)
        host = gimp_host.GimpHost(image, layer, guide_opacity=settings.guide_opacity)
        actions.ensure_daemon(settings, endpoint, progress=host.set_fraction)  # a local daemon, started if none
        client = actions.make_client(settings, endpoint, timeout)
        result = actions.run_action(action, host, client, endpoint=endpoint, top_n=top_n, guide=guide,
                                    progress=host.set_fraction)
    except (host_mod.HostError, actions.ActionError) as exc:
        return _fail(procedure, str(exc))
    except Exception as exc:  # a bug: say so, with the type, rather than "plug-in crashed"
        return _fail(procedure, f"unexpected error ({type(exc).__name__}): {exc}")
    finally:
        image.undo_group_end()
        Gimp.progress_end()
        if client is not None:
            client.disconnect()
    for w in result.warnings:
        Gimp.message(f"ClickMatte: {w}")
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


_SETTING_ARGS = (
    # (argument, Settings field)
    ("endpoint", "endpoint"),
    ("server-public-key", "server_public_key"),
    ("client-public-key", "client_public_key"),
    ("client-secret-key", "client_secret_key"),
    ("timeout", "timeout_s"),
    ("top-n", "top_n"),
    ("guide-opacity", "guide_opacity"),
    ("auto-start", "auto_start"),
    ("daemon-path", "daemon_path"),
)


def run_settings(procedure, config, data):
    """Settings: show the shared settings (interactive) and save them; or save the given arguments."""
    run_mode = config.get_property("run-mode")
    try:
        _host, settings_mod, _actions, _gimp_host = _core()
    except RuntimeError as exc:
        return _fail(procedure, str(exc))
    current = settings_mod.load()
    if run_mode == Gimp.RunMode.INTERACTIVE:
        for arg, attr in _SETTING_ARGS:
            config.set_property(arg, getattr(current, attr))
        if not _dialog(procedure, config, "ClickMatte settings", [a for a, _ in _SETTING_ARGS]):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    values = {attr: config.get_property(arg) for arg, attr in _SETTING_ARGS}
    values["endpoint"] = values["endpoint"].strip() or current.endpoint
    try:
        new = settings_mod.Settings(**{**current.to_json(), **values})
        path = settings_mod.save(new)
    except (ValueError, OSError) as exc:
        return _fail(procedure, f"settings not saved: {exc}")
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(f"ClickMatte: settings saved to {path}")
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def run_point_paths(procedure, run_mode, image, drawables, config, data):
    """Add point paths: the paths "fg" and "bg" (unless there), "fg" selected, one undo step."""
    try:
        _host, _settings, _actions, gimp_host = _core()
    except RuntimeError as exc:
        return _fail(procedure, str(exc))
    image.undo_group_start()
    try:
        gimp_host.ensure_point_paths(image)
    finally:
        image.undo_group_end()
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(gimp_host.POINT_PATHS_HINT)
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _add_connection_args(procedure, settings_mod):
    d, ranges = settings_mod.Settings(), settings_mod.RANGES
    procedure.add_string_argument("endpoint", "Daemon _endpoint",
                                  f"Daemon endpoint, e.g. {d.endpoint} (empty: from Settings)", "", RW)
    procedure.add_double_argument("timeout", "_Timeout (s)", "Seconds to wait for the daemon (0: from Settings)",
                                  0.0, ranges["timeout_s"][1], 0.0, RW)


def _add_setting_args(proc, settings_mod):
    """The Settings procedure's arguments (:data:`_SETTING_ARGS`): defaults and ranges are the settings
    module's (``Settings()``, ``RANGES``)."""
    d, ranges = settings_mod.Settings(), settings_mod.RANGES
    proc.add_string_argument("endpoint", "Daemon _endpoint", f"e.g. {d.endpoint}", d.endpoint, RW)
    proc.add_string_argument("server-public-key", "_Server public key (Z85)",
                             "The daemon's CURVE public key (remote daemons only)", d.server_public_key, RW)
    proc.add_string_argument("client-public-key", "_Client public key (Z85)",
                             "This machine's CURVE public key", d.client_public_key, RW)
    proc.add_string_argument("client-secret-key", "Client s_ecret key (Z85)",
                             "This machine's CURVE secret key", d.client_secret_key, RW)
    proc.add_double_argument("timeout", "_Timeout (s)", "Seconds to wait for the daemon",
                             *ranges["timeout_s"], d.timeout_s, RW)
    proc.add_int_argument("top-n", "Patches refined after a _matte",
                          "Most uncertain patches refined automatically by Matte from points",
                          *ranges["top_n"], d.top_n, RW)
    proc.add_int_argument("guide-opacity", "_Guide opacity (%)",
                          "Opacity of the ClickMatte uncertainty layer", *ranges["guide_opacity"], d.guide_opacity, RW)
    proc.add_boolean_argument("auto-start", "St_art the daemon when none answers",
                              "Matte starts clickmatte-daemon when none answers at a local endpoint "
                              "(never for another machine)", d.auto_start, RW)
    proc.add_string_argument("daemon-path", "Daemon _program",
                             "The clickmatte-daemon to start (empty: the one clickmatte-install recorded)",
                             d.daemon_path, RW)


class ClickMatte(Gimp.PlugIn):
    """Registers the ClickMatte procedures under Layer > ClickMatte."""

    def do_query_procedures(self):
        return [PROC_POINT_PATHS, PROC_MATTE, PROC_REFINE_UNCERTAIN, PROC_REFINE_SELECTION, PROC_DECONTAMINATE,
                PROC_SETTINGS]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        settings_mod = _settings_module()
        if name == PROC_POINT_PATHS:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_point_paths, None)
            proc.set_image_types("*")
            proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
            proc.set_menu_label("Add _point paths (fg, bg)")
            proc.set_documentation(
                "Add the paths 'fg' and 'bg' that hold ClickMatte's points, and select 'fg'",
                "Adds the paths 'fg' and 'bg' (unless paths with those labels exist) and selects 'fg': "
                "then each click of the Paths tool (B) is a foreground point; select 'bg' for background "
                "points.",
                name)
        elif name == PROC_SETTINGS:
            proc = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_settings, None)
            proc.set_menu_label("_Settings...")
            proc.set_documentation(
                "ClickMatte settings: daemon endpoint, CURVE keys, timeout, refinement, guide opacity, auto-start",
                "Saved in the per-user clickmatte settings file shared with the Krita plugin. Keys are the "
                "Z85 text made by `clickmatte-keys` (needed only for a daemon on another machine).",
                name)
            proc.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                   Gimp.RunMode.NONINTERACTIVE, RW)
            if settings_mod is not None:
                _add_setting_args(proc, settings_mod)
        else:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_image_action, None)
            proc.set_image_types("*")  # grayscale and indexed images get a clear message
            proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            if settings_mod is not None:
                _add_connection_args(proc, settings_mod)
            if name == PROC_MATTE:
                proc.set_menu_label("_Matte from points")
                proc.set_documentation(
                    "Layer mask from the anchors of the paths named fg / bg",
                    "Foreground points: anchors of paths whose name starts with 'fg' (or 'foreground'); "
                    "background: 'bg' (or 'background'); any case. Replaces an earlier ClickMatte mask on "
                    "the active layer (never its pixels) and adds the layer 'ClickMatte uncertainty', "
                    "all in one undo step.",
                    name)
                if settings_mod is not None:
                    proc.add_int_argument("top-n", "_Refine patches",
                                          "Most uncertain patches refined right away (-1: from Settings, 0: none)",
                                          -1, settings_mod.RANGES["top_n"][1], -1, RW)
                    proc.add_boolean_argument("guide", "Uncertainty _guide layer",
                                              "Add or replace the 'ClickMatte uncertainty' layer", True, RW)
            elif name == PROC_REFINE_UNCERTAIN:
                proc.set_menu_label("Refine _uncertain edges...")
                proc.set_documentation(
                    "Refine the most uncertain patches of the ClickMatte mask",
                    "Recomputes the matte from the fg/bg paths and refines its N most uncertain 64x64 "
                    "patches at full resolution; only those patches of the mask change (inside the "
                    "selection, if there is one).",
                    name)
                if settings_mod is not None:
                    proc.add_int_argument("top-n", "_Number of patches", "How many 64x64 patches to refine",
                                          1, settings_mod.RANGES["top_n"][1], settings_mod.Settings().top_n, RW)
            elif name == PROC_DECONTAMINATE:
                proc.set_menu_label("_Decontaminate colours")
                proc.set_documentation(
                    "Add a layer with the foreground colours estimated under the ClickMatte mask",
                    "Adds '<layer> (decontaminated)' above the layer: the colours of the subject without the "
                    "old background's spill at soft edges (hair, fur), under a copy of the mask. The layer "
                    "itself is not changed. One undo step.",
                    name)
            else:
                proc.set_menu_label("Refine _selection")
                proc.set_documentation(
                    "Refine the ClickMatte mask inside the selection",
                    "Recomputes the matte from the fg/bg paths and refines it at full resolution inside the "
                    "current selection; mask pixels outside the selection are left as they are.",
                    name)
        proc.set_attribution("clickmatte", "clickmatte contributors", "2026")
        proc.add_menu_path(MENU)
        return proc


if __name__ == "__main__":
    Gimp.main(ClickMatte.__gtype__, sys.argv)
