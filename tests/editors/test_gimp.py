"""The ClickMatte plug-in inside a real GIMP 3.0 (batch mode), against a real daemon.

One GIMP run (``gimp_fixtures.gimp_run``) drives every procedure non-interactively; the tests
below check what it left. What is asserted, and why:

- The mask GIMP holds must be byte-for-byte what the daemon answers on this machine for the same
  pixels and points (fetched here with ``DaemonClient``): this checks the whole chain (paths ->
  points, layer pixels, mask writing) whether or not the network is trained.
- "alpha high at the fg point, low at the bg point" is asserted on top when the daemon serves
  trained weights (its ``hello`` says so). An untrained network (no weights shipped yet) is not
  decisive; then the equality is what is checked, and the test says so with a warning. (The
  reference is asked with the right labels, so swapped fg/bg would fail the equality even then.)
- The layer's RGB is compared exactly with the PNG that was loaded (a mask must never touch it).
- Refine selection: outside the selection the mask is unchanged to the byte; inside it equals the
  daemon's refined alpha. Refine uncertain edges: only the daemon's patches change.
- A matte after one more point equals the daemon's answer in a session that first answered the
  earlier points (the plug-in keeps no state; ``open`` with ``resume`` gets that session back).
"""
from __future__ import annotations

import json
import subprocess
import warnings

import numpy as np
import pytest

from clickmatte.plugin.client import DaemonClient

from editor_env import EDITOR_ENV, inner_path
from gimp_fixtures import BG_POINTS, FG_MORE, FG_POINTS, OFFSET, SELECTION, GimpRun, gimp_run  # noqa: F401


def _clicks() -> list:
    # the plug-in reads paths top of the Paths dialog first: "Background" was added after "fg"
    return ([{"x": float(x), "y": float(y), "label": "bg"} for x, y in BG_POINTS]
            + [{"x": float(x), "y": float(y), "label": "fg"} for x, y in FG_POINTS])


@pytest.fixture(scope="module")
def run(gimp_run: GimpRun) -> GimpRun:
    assert gimp_run.returncode == 0, f"GIMP batch failed ({gimp_run.returncode}):\n{gimp_run.log[-6000:]}"
    assert gimp_run.results.get("done"), f"driver did not finish:\n{gimp_run.log[-6000:]}"
    return gimp_run


@pytest.fixture(scope="module")
def reference(run: GimpRun) -> dict:
    """What the daemon answers, asked directly from here, for the requests the plug-in made."""
    img = np.ascontiguousarray(run.image)
    h, w = img.shape[:2]
    sel = np.zeros((h, w), np.uint8)
    x, y, sw, sh = SELECTION
    sel[y : y + sh, x : x + sw] = 255
    with DaemonClient(run.endpoint, timeout_ms=120000) as c:
        trained = c.hello().model.get("trained") is True
        s = c.open(img.tobytes(), w, h, channels=3, dtype="uint8", order="RGB").session
        pred = c.predict(s, _clicks(), uncertainty=True)
        refsel = c.refine(s, top_n=None, mask=sel.tobytes(), mask_width=w, mask_height=h)
        c.predict(s, _clicks(), uncertainty=False)
        refunc = c.refine(s, top_n=2)
        more = _clicks() + [{"x": float(FG_MORE[0]), "y": float(FG_MORE[1]), "label": "fg"}]
        s = c.open(img.tobytes(), w, h, channels=3, dtype="uint8", order="RGB").session
        c.predict(s, _clicks())
        chained = c.predict(s, more)  # the earlier matte fed back ("auto")
        unchained = c.predict(s, more, prev_alpha=False)
    as_plane = lambda b: np.frombuffer(b, np.uint8).reshape(h, w)  # noqa: E731
    return {"trained": trained, "alpha": as_plane(pred.alpha), "uncertainty": as_plane(pred.uncertainty),
            "refsel": as_plane(refsel.alpha), "refunc": as_plane(refunc.alpha), "patches": refunc.patches,
            "selection": sel > 0, "more": as_plane(chained.alpha), "more_unchained": as_plane(unchained.alpha)}


def test_plugin_registers_all_procedures(run: GimpRun) -> None:
    assert run.results["registered"] == ["decontaminate", "matte", "point-paths", "refine-selection",
                                         "refine-uncertain", "settings"]
    assert run.results["version"].startswith("3.")
    assert "installed the plug-in" in run.install_log


def test_settings_procedure_defaults_are_the_shared_settings_defaults(run: GimpRun) -> None:
    from clickmatte.plugin.settings import Settings

    d = Settings()
    assert run.results["settings_defaults"] == {
        "endpoint": d.endpoint, "server-public-key": d.server_public_key, "client-public-key": d.client_public_key,
        "client-secret-key": d.client_secret_key, "timeout": d.timeout_s, "top-n": d.top_n,
        "guide-opacity": d.guide_opacity, "auto-start": d.auto_start, "daemon-path": d.daemon_path}


def test_no_points_gives_a_clear_message(run: GimpRun) -> None:
    st = run.step("no_points")
    assert st["status"] == "execution-error"
    assert '"fg"' in st["error"] and '"bg"' in st["error"] and "Paths tool" in st["error"]


def test_missing_daemon_gives_a_clear_message_not_a_hang(run: GimpRun) -> None:
    st = run.step("no_daemon")
    assert st["status"] == "execution-error"
    assert "No ClickMatte daemon answers at " + run.job["dead_endpoint"] in st["error"]
    assert "clickmatte-daemon" in st["error"]
    assert st["seconds"] < 30  # the hello timeout (5 s) bounds it, far below the 120 s job timeout
    assert st["has_mask"] is False


def test_settings_procedure_saves_the_shared_settings_file(run: GimpRun) -> None:
    import json

    assert run.step("settings")["status"] == "success"
    saved = json.loads((run.host_dir / "home" / ".config" / "clickmatte" / "plugin.json").read_text())
    assert saved["endpoint"] == run.endpoint and saved["top_n"] == 0 and saved["timeout_s"] == 120
    # the matte step passed no endpoint: it used the saved one
    assert run.step("matte")["status"] == "success"


def test_matte_writes_the_daemons_alpha_as_the_layer_mask(run: GimpRun, reference: dict) -> None:
    st = run.step("matte")
    assert st["status"] == "success", st["error"]
    assert st["has_mask"] and st["mask_tagged"]
    mask = run.mask("mask_matte")
    assert mask.shape == run.image.shape[:2]
    np.testing.assert_array_equal(mask, reference["alpha"])
    fg = [int(mask[y, x]) for x, y in FG_POINTS]
    bg = [int(mask[y, x]) for x, y in BG_POINTS]
    if reference["trained"]:
        assert min(fg) > 200 and max(bg) < 55, (fg, bg)
    else:
        warnings.warn(f"the daemon runs an UNTRAINED network (fg {fg}, bg {bg}): checked mask == daemon answer "
                      "for the same pixels and points only")


def test_layer_pixels_are_never_touched(run: GimpRun) -> None:
    np.testing.assert_array_equal(run.rgb("orig"), run.image)
    np.testing.assert_array_equal(run.rgb("rgb_matte"), run.image)
    np.testing.assert_array_equal(run.rgb("rgb_final"), run.image)


def test_uncertainty_guide_layer_above_the_layer(run: GimpRun) -> None:
    st = run.step("matte")
    assert st["guides"] == 1
    assert st["layers"][0] == "ClickMatte uncertainty"  # directly above the matted layer
    assert st["guide_opacity"] == pytest.approx(60.0)
    assert st["guide_size"] == [run.image.shape[1], run.image.shape[0]]
    assert st["selected"] == [st["layers"][1]]  # the user's layer stays the active one


def test_add_point_paths_makes_fg_and_bg_once_and_selects_fg(run: GimpRun) -> None:
    assert run.step("point_paths")["status"] == "success"
    st = run.step("point_paths_again")
    assert st["status"] == "success", st["error"]
    assert sorted(st["paths"]) == ["bg", "fg", "outline"]  # the second call added nothing
    assert st["selected_paths"] == ["fg"]  # the user's next Paths-tool click is a foreground point


def test_matte_is_one_undo_step_without_cant_undo_and_keeps_helpers_out_of_export(run: GimpRun) -> None:
    """GIMP records "Can't undo Attach Parasite to Item" for a persistent parasite without the UNDOABLE
    flag attached to an item already in the image: every ClickMatte tag carries both flags (1 | 2)."""
    st = run.step("matte")
    assert st["parasite_flags"] == [3, 3, 3]
    assert st["guide_visible"] is False  # a new guide starts hidden: not in a flattened export
    again = run.step("matte_again")
    assert again["guide_visible"] is True  # the user showed it; the replacement keeps that
    assert again["parasite_flags"] == [3, 3, 3]


def test_matte_with_the_guide_selected_goes_to_its_layer(run: GimpRun) -> None:
    st = run.step("matte_from_guide")
    assert st["status"] == "success", st["error"]
    assert st["selected"] == [st["layers"][1]] and st["guides"] == 1
    np.testing.assert_array_equal(run.mask("mask_from_guide"), run.mask("mask_matte"))


def test_decontaminate_adds_the_daemons_colours_under_the_same_mask(run: GimpRun) -> None:
    st = run.step("decontaminate")
    assert st["status"] == "success", st["error"]
    assert st["new_layers"] == 1 and st["selected"] == [st["layers"][2]]  # above it; the photo stays selected
    mask = run.mask("mask_from_guide")
    np.testing.assert_array_equal(run.mask("mask_deco"), mask)
    img = np.ascontiguousarray(run.image)
    h, w = img.shape[:2]
    with DaemonClient(run.endpoint, timeout_ms=120000) as c:
        s = c.open(img.tobytes(), w, h, channels=3, dtype="uint8", order="RGB").session
        fg = np.frombuffer(c.foreground(s, np.ascontiguousarray(mask).tobytes(), w, h).rgb, np.uint8).reshape(h, w, 3)
    np.testing.assert_array_equal(run.rgb("rgb_deco"), fg)
    np.testing.assert_array_equal(run.rgb("rgb_final"), run.image)  # the photo layer untouched


def test_second_matte_replaces_mask_and_guide(run: GimpRun) -> None:
    st = run.step("matte_again")
    assert st["status"] == "success", st["error"]
    assert st["guides"] == 1 and st["mask_tagged"]
    assert len(st["layers"]) == 2
    np.testing.assert_array_equal(run.mask("mask_again"), run.mask("mask_matte"))


def test_matte_from_the_menu_uses_the_saved_settings(run: GimpRun) -> None:
    st = run.step("matte_interactive")
    assert st["status"] == "success", st["error"]
    np.testing.assert_array_equal(run.mask("mask_interactive"), run.mask("mask_matte"))


def test_matte_after_an_added_point_refines_the_previous_matte(run: GimpRun, reference: dict) -> None:
    """Each call is a new plug-in process, and the daemon forgot the session before this one (the driver closed
    it, as a restart would): the document carries the matte over. The mask's parasite holds the points of its
    matte, the points only add to them, so the mask goes back as the previous alpha."""
    forget = run.step("forget")
    assert forget["resumed"] and forget["closed"], forget
    tag = json.loads(forget["mask_tag"])
    assert sorted((x, y, lab) for x, y, lab in tag["points"]) == sorted(
        (c["x"], c["y"], c["label"]) for c in _clicks())
    st = run.step("matte_more")
    assert st["status"] == "success", st["error"]
    np.testing.assert_array_equal(run.mask("mask_more"), reference["more"])
    assert not np.array_equal(reference["more"], reference["more_unchained"])


def test_refine_selection_changes_only_pixels_inside_the_selection(run: GimpRun, reference: dict) -> None:
    assert run.step("refine_selection")["status"] == "success", run.step("refine_selection")["error"]
    before, after = run.mask("mask_painted"), run.mask("mask_refsel")
    assert (before == 255).all()  # the driver painted the mask white first
    inside = reference["selection"]
    np.testing.assert_array_equal(after[~inside], before[~inside])
    np.testing.assert_array_equal(after[inside], reference["refsel"][inside])
    assert (after[inside] != 255).any()  # the refine did write inside


def test_refine_selection_without_a_selection_says_so(run: GimpRun) -> None:
    st = run.step("refine_selection_none")
    assert st["status"] == "execution-error" and "needs a selection" in st["error"]


def test_refine_uncertain_changes_only_the_refined_patches(run: GimpRun, reference: dict) -> None:
    assert run.step("refine_uncertain")["status"] == "success", run.step("refine_uncertain")["error"]
    before, after = run.mask("mask_refsel"), run.mask("mask_refunc")
    expected = before.copy()
    assert 1 <= len(reference["patches"]) <= 2
    for x, y, w, h in reference["patches"]:
        expected[y : y + h, x : x + w] = reference["refunc"][y : y + h, x : x + w]
    np.testing.assert_array_equal(after, expected)


def test_16_bit_image_gives_the_same_mask(run: GimpRun) -> None:
    st = run.step("matte_u16")
    assert run.results["u16_precision"] == "u16-non-linear"
    assert st["status"] == "success", st["error"]
    diff = np.abs(run.mask("mask_u16").astype(int) - run.mask("mask_matte").astype(int))
    assert diff.max() <= 2, diff.max()


def test_offset_layer_keeps_points_on_its_content(run: GimpRun) -> None:
    st = run.step("matte_offset")
    assert st["status"] == "success", st["error"]
    assert st["guide_offsets"] == OFFSET and st["guides"] == 1, st
    np.testing.assert_array_equal(run.mask("mask_offset"), run.mask("mask_matte"))


def test_foreign_mask_is_left_alone(run: GimpRun) -> None:
    st = run.step("foreign_mask")
    assert st["status"] == "execution-error" and "did not make" in st["error"]
    assert not run.mask("mask_foreign").any()  # the user's black mask is untouched


def test_grayscale_image_gives_a_clear_message(run: GimpRun) -> None:
    st = run.step("gray")
    assert st["status"] == "execution-error"
    assert "grayscale" in st["error"] and "Image > Mode > RGB" in st["error"]


def test_xcf_saved_with_mask(run: GimpRun) -> None:
    assert run.results["xcf_bytes"] > 1000


def test_vendored_pyzmq_loads_in_gimps_python(run: GimpRun) -> None:
    """The wheel the installer vendored imports in GIMP's own Python (the system pyzmq is hidden)."""
    if "vendored pyzmq" not in run.install_log:
        pytest.skip("no pyzmq wheel could be downloaded here (the plug-in used the system's python3-zmq)")
    vendor = inner_path(run.root, run.host_dir / "home" / ".config" / "GIMP" / "3.0" / "plug-ins" / "clickmatte"
                        / "vendor")
    code = (f"import sys; sys.path = [p for p in sys.path if 'dist-packages' not in p]; "
            f"sys.path.append({vendor!r}); import zmq; print(zmq.__file__, zmq.zmq_version())")
    proc = subprocess.run(["bash", str(EDITOR_ENV), "run", "python3", "-c", code],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(vendor), proc.stdout


# -- a new user: fresh profile, only clickmatte-install gimp; the first Matte starts the daemon --------
def test_fresh_profile_matte_starts_the_daemon_and_it_goes_with_gimp(editor_root) -> None:
    """Fresh HOME, ``clickmatte-install gimp`` only, no daemon anywhere: Add point paths, two anchors in
    "fg", Matte from points -> the layer mask (the daemon's answer), the daemon started by the plug-in
    with --owner-pid of GIMP, and gone soon after GIMP quit."""
    import json
    import os
    import shutil
    import sys
    import time
    import uuid
    from pathlib import Path

    from clickmatte.backend.embedded import free_tcp_endpoint
    from editor_env import REPO, host_daemon_wrapper

    root = Path(editor_root)
    tag = uuid.uuid4().hex[:8]
    host_dir = root / "tmp" / f"clickmatte-gimp-fresh-{tag}"
    home, out = host_dir / "home", host_dir / "out"
    out.mkdir(parents=True)
    home.mkdir()
    wrapper = f"/tmp/clickmatte-gimp-daemon-{tag}/clickmatte-daemon"
    try:
        extra = []
        if str(root) != "/":
            host_daemon_wrapper(root, wrapper)
            extra = ["--daemon", wrapper]
        profile = home / ".config" / "GIMP" / "3.0"
        inst = subprocess.run([sys.executable, "-m", "clickmatte.installers.cli", "gimp", "--profile", str(profile),
                               "--python-version", "3.13", *extra], capture_output=True, text=True, timeout=600,
                              cwd=REPO)
        assert inst.returncode == 0, inst.stdout + inst.stderr
        shutil.copyfile(root / "etc" / "gimp" / "3.0" / "gimprc", host_dir / "gimprc")
        endpoint = free_tcp_endpoint()  # instead of the default 5557, which another program may hold here
        fg = [[330, 200], [340, 330]]
        job = {"image": "/repo/examples/lemur.png" if str(root) != "/" else str(REPO / "examples" / "lemur.png"),
               "out": inner_path(root, out), "fg": fg,
               "plugin_dir": inner_path(root, profile / "plug-ins" / "clickmatte")}
        (host_dir / "job.json").write_text(json.dumps(job))
        inner_home = inner_path(root, home)
        cmd = ["bash", str(EDITOR_ENV), "run", "env", "-u", "CLICKMATTE_CONFIG_DIR",
               f"HOME={inner_home}", f"XDG_CONFIG_HOME={inner_home}/.config", f"CLICKMATTE_ENDPOINT={endpoint}",
               f"CLICKMATTE_GIMP_AUTOSTART_JOB={inner_path(root, host_dir / 'job.json')}",
               "timeout", "400", "gimp-console-3.0", "-i", "-d", "-f", "--quit",
               "-g", inner_path(root, host_dir / "gimprc"), "--batch-interpreter=python-fu-eval",
               "-b", 'exec(open("tests/editors/gimp_driver_autostart.py").read())']
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=460,
                              env=dict(os.environ, CLICKMATTE_EDITOR_HOME=inner_home))
        gimp_s = time.monotonic() - t0
        res_path = out / "results.json"
        assert res_path.is_file(), f"no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        res = json.loads(res_path.read_text())
        assert proc.returncode == 0, f"GIMP batch failed ({proc.returncode}): {res}\n{proc.stderr[-3000:]}"
        assert res["steps"]["point_paths"]["status"] == "success"
        matte = res["steps"]["matte"]
        assert matte["status"] == "success", matte["error"]
        assert res["endpoint"] == endpoint and res["has_mask"]
        assert res["mask_equals_daemon"] and min(res["mask_at_points"]) >= 128, res
        # exactly one daemon serves the endpoint: the one the plug-in started, owned by GIMP
        assert len(res["daemons"]) == 1, res["daemons"]
        pid, argv = res["daemons"][0]
        assert argv[-4:] == ["--bind", endpoint, "--owner-pid", str(res["gimp_pid"])], argv
        # GIMP has quit (the batch ended): the daemon follows within a few seconds (--owner-pid)
        t1 = time.monotonic()
        while Path(f"/proc/{pid}").exists() and time.monotonic() - t1 < 30:
            stat = Path(f"/proc/{pid}/stat")
            try:
                if stat.read_text().split(")")[-1].split()[0] == "Z":
                    break
            except OSError:
                break
            time.sleep(0.1)
        gone_after = time.monotonic() - t1
        assert gone_after < 30, f"daemon {pid} still runs 30 s after GIMP quit"
        log = "".join(p.read_text(errors="replace") for p in (home / ".config" / "clickmatte").glob("daemon-*.log"))
        assert "ready on" in log and "is gone: shutting down" in log, log[-2000:]
        print(f"GIMP fresh profile: batch {gimp_s:.0f} s, Matte (starting the daemon included) "
              f"{matte['seconds']:.1f} s; daemon gone {gone_after:.1f} s after GIMP's batch returned")
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
        if str(root) != "/":
            for base in (Path("/"), root):
                shutil.rmtree(base / Path(wrapper).parent.relative_to("/"), ignore_errors=True)


GUI_SCREEN = (1280, 800)  # the Xvfb screen, and GIMP's single window on it (sessionrc)


def gui_sessionrc(width: int, height: int) -> str:
    """A sessionrc: GIMP's single window at (0, 0) sized ``width`` x ``height``, the tool options at the left,
    the Paths dialog above the Layers dialog at the right."""
    def book(*dockables: str, position: str = "") -> str:
        tabs = "".join(f'\n            (dockable "{d}" (tab-style automatic){" (preview-size 32)" if d.endswith("-list") else ""}'
                       f'\n                (aux-info (show-button-bar "true")))' for d in dockables)
        return f"\n        (book{position}\n            (current-page 0){tabs})"
    return ('(session-info "toplevel"\n    (factory-entry "gimp-single-image-window")\n    (position 0 0)\n'
            f'    (size {width} {height})\n    (open-on-exit)\n'
            '    (aux-info (left-docks-width "200") (right-docks-width "250") (maximized "no"))\n'
            f'    (gimp-toolbox\n        (side left){book("gimp-tool-options")})\n'
            f'    (gimp-dock\n        (side right){book("gimp-vectors-list")}'
            f'{book("gimp-layer-list", "gimp-channel-list", position=" (position 260)")}))\n(hide-docks no)\n')
LEMUR_FG, LEMUR_BG = [[330, 200], [340, 330], [250, 110]], [[80, 120], [620, 380]]  # examples/lemur_clicks.json


def test_gui_point_paths_and_matte_with_screenshots(editor_root, daemon_endpoint: str) -> None:
    """GIMP with its GUI under Xvfb (fresh profile, ``clickmatte-install gimp``): the lemur in an image window,
    Add point paths, anchors in "fg" and "bg", Matte -> a layer mask; two screenshots by GIMP's own screenshot
    procedure. ``CLICKMATTE_SCREENSHOTS=DIR`` copies them (256 colours) for plugin/gimp/README.md."""
    import os
    import shutil
    import sys
    import time
    import uuid
    from pathlib import Path

    from PIL import Image

    root = Path(editor_root)
    host_dir = root / "tmp" / f"clickmatte-gimp-gui-{uuid.uuid4().hex[:8]}"
    home, out = host_dir / "home", host_dir / "out"
    out.mkdir(parents=True)
    home.mkdir()
    try:
        profile = home / ".config" / "GIMP" / "3.0"
        ver = subprocess.run(["bash", str(EDITOR_ENV), "run", "python3", "-c",
                              "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=120)
        inst = subprocess.run([sys.executable, "-m", "clickmatte.installers.cli", "gimp", "--profile", str(profile),
                               "--python-version", ver.stdout.strip()], capture_output=True, text=True, timeout=600)
        assert inst.returncode == 0, inst.stdout + inst.stderr
        # no welcome dialog; the single window fills the screen, with the Paths and the Layers dialogs at the right
        with open(profile / "gimprc", "a") as f:
            f.write("(show-welcome-dialog no)\n(show-tips no)\n")
        w, h = GUI_SCREEN
        (profile / "sessionrc").write_text(gui_sessionrc(w, h))
        photo = host_dir / "lemur.png"
        shutil.copyfile(Path(__file__).resolve().parents[2] / "examples" / "lemur.png", photo)
        job = {"image": inner_path(root, photo), "out": inner_path(root, out), "endpoint": daemon_endpoint,
               "fg": LEMUR_FG, "bg": LEMUR_BG}
        (host_dir / "job.json").write_text(json.dumps(job))
        inner_home = inner_path(root, home)
        t0 = time.monotonic()
        proc = subprocess.run(
            ["bash", str(EDITOR_ENV), "run", "env", f"HOME={inner_home}", f"XDG_CONFIG_HOME={inner_home}/.config",
             "PATH=/usr/local/bin:/usr/bin:/bin", f"CLICKMATTE_GIMP_JOB={inner_path(root, host_dir / 'job.json')}",
             "timeout", "300", "xvfb-run", "-a", "-s", f"-screen 0 {w}x{h}x24", "gimp-3.0", "-n", "-d", "-f",
             "--batch-interpreter=python-fu-eval", "-b", 'exec(open("tests/editors/gimp_driver_gui.py").read())'],
            capture_output=True, text=True, timeout=400, env=dict(os.environ, CLICKMATTE_EDITOR_HOME=inner_home))
        gimp_s = time.monotonic() - t0
        res_path = out / "results.json"
        assert res_path.is_file(), f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        res = json.loads(res_path.read_text())
        assert res["ok"], res.get("error")
        for step in ("plug-in-clickmatte-point-paths", "plug-in-clickmatte-matte"):
            assert res["steps"][step]["status"] == "success", res["steps"][step]
        assert res["has_mask"] and res["selected"] == [res["layer"]]  # the photo stays the selected layer
        shots = os.environ.get("CLICKMATTE_SCREENSHOTS")
        pictures = {}
        for name in ("gimp-points.png", "gimp-mask.png"):
            pic = np.asarray(Image.open(out / name).convert("RGB"))
            assert pic.shape[:2] == (h, w), (name, pic.shape)
            pictures[name] = pic
            if shots:
                Image.fromarray(pic).quantize(256).save(Path(shots) / name, optimize=True)
        changed = (np.abs(pictures["gimp-points.png"].astype(int) - pictures["gimp-mask.png"]).sum(-1) > 30).mean()
        assert changed > 0.02, changed  # the canvas shows the cut-out (a checkerboard where the mask is 0)
        print(f"GIMP GUI: run {gimp_s:.0f} s (exit {proc.returncode}); Matte {res['steps']['plug-in-clickmatte-matte']['seconds']} s; "
              f"{changed:.1%} of the screen changed by the Matte")
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
