"""``clickmatte-install gimp`` in a temporary HOME: what it puts where, and that --uninstall undoes exactly that.

No network: the pyzmq wheel comes from ``--wheel-dir`` (a small real wheel-format zip made here)
or vendoring is switched off. The real download is exercised by tests/editors/test_gimp.py.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict

import pytest

from clickmatte.installers import gimp
from clickmatte.installers.reporting import InstallError

REPO = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> Dict[str, str]:
    """path -> 'dir' | 'link:TARGET' | file bytes' length+hash, for every entry under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"link:{os.readlink(p)}"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = f"{p.stat().st_size}:{hash(p.read_bytes())}"
    return out


def fake_wheel(folder: Path, version: str = "3.13") -> Path:
    tag = "cp" + version.replace(".", "")
    folder.mkdir(parents=True, exist_ok=True)
    whl = folder / f"pyzmq-99.0.0-{tag}-{tag}-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("zmq/__init__.py", "FAKE = 'vendored'\n")
        zf.writestr("pyzmq-99.0.0.dist-info/METADATA", "Name: pyzmq\nVersion: 99.0.0\n")
    return whl


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return h


@pytest.fixture()
def profile(home: Path) -> Path:
    """A GIMP 3 profile as GIMP leaves it after a first start: a gimprc and someone else's plug-in."""
    p = home / ".config" / "GIMP" / "3.0"
    (p / "plug-ins" / "other").mkdir(parents=True)
    (p / "plug-ins" / "other" / "other.py").write_text("#!/usr/bin/env python3\n")
    (p / "gimprc").write_text("# GIMP gimprc\n(theme \"Dark\")\n")
    return p


def test_install_layout_exec_bit_interp_and_vendored_wheel(profile: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    fake_wheel(wheels)
    lines = []
    plugin_dir = gimp.install(profile, python_version="3.13", wheel_dir=wheels, report=lines.append,
                              platform="linux")
    assert plugin_dir == profile / "plug-ins" / "clickmatte"
    script = plugin_dir / "clickmatte.py"
    assert script.read_text().startswith("#!/usr/bin/env python3")
    assert script.stat().st_mode & stat.S_IXUSR  # GIMP ignores a plug-in without the exec bit
    core = plugin_dir / "clickmatte_core"
    for name in ("__init__.py", "protocol.py", "client.py", "host.py", "settings.py", "raster.py",
                 "gimp/__init__.py", "gimp/actions.py", "gimp/points.py", "gimp/formats.py", "gimp/gimp_host.py"):
        assert (core / name).is_file(), name
    for f in (REPO / "plugin").glob("*.py"):  # every core module (the protocol's and controller's parts too)
        assert (core / f.name).is_file(), f.name
    assert (plugin_dir / "vendor" / "zmq" / "__init__.py").read_text() == "FAKE = 'vendored'\n"
    interp = (profile / "interpreters" / "clickmatte.interp").read_text()
    assert "python3=/usr/bin/python3\n" in interp
    assert (profile / gimp.MANIFEST_NAME).is_file()
    assert any("vendored pyzmq-99.0.0" in line for line in lines)


def test_installed_core_imports_from_the_plugin_folder(profile: Path) -> None:
    """The copied core works with relative imports and without the clickmatte package."""
    plugin_dir = gimp.install(profile, vendor=False, report=lambda s: None, platform="linux")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from clickmatte_core.gimp import actions, points, formats; from clickmatte_core import settings; "
            "print(points.label_for_path_name('FG hair'), formats.pixel_format('rgb', 'u16-linear')[1], "
            "actions.__name__); "
            "from clickmatte_core import client, controller, protocol; "
            "print(protocol.decode(protocol.encode(protocol.hello_request('a'))).op, controller.Controller.__name__, "
            "client.DaemonTimeout.__module__, 'clickmatte' in sys.modules)")
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(plugin_dir)], capture_output=True, text=True,
                          cwd=str(profile))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["fg", "uint16", "clickmatte_core.gimp.actions",
                                   "hello", "Controller", "clickmatte_core.client_replies", "False"]


def test_uninstall_removes_exactly_what_was_installed(profile: Path, tmp_path: Path) -> None:
    before = snapshot(profile.parent.parent)
    fake_wheel(tmp_path / "w")
    gimp.install(profile, python_version="3.13", wheel_dir=tmp_path / "w", report=lambda s: None, platform="linux")
    # GIMP running the plug-in leaves byte-code caches behind: ours to remove as well
    (profile / "plug-ins" / "clickmatte" / "clickmatte_core" / "__pycache__").mkdir()
    (profile / "plug-ins" / "clickmatte" / "clickmatte_core" / "__pycache__" / "host.cpython-313.pyc").write_bytes(b"x")
    assert snapshot(profile.parent.parent) != before
    warnings = gimp.uninstall(profile, report=lambda s: None)
    assert warnings == []
    assert snapshot(profile.parent.parent) == before  # the other plug-in and gimprc untouched


def test_uninstall_keeps_a_file_the_user_changed(profile: Path) -> None:
    gimp.install(profile, vendor=False, report=lambda s: None, platform="linux")
    interp = profile / "interpreters" / "clickmatte.interp"
    interp.write_text("python3=/opt/my/python3\n")
    warnings = gimp.uninstall(profile, report=lambda s: None)
    assert interp.read_text() == "python3=/opt/my/python3\n"
    assert any("clickmatte.interp" in w for w in warnings)
    assert not (profile / "plug-ins" / "clickmatte").exists()


def test_reinstall_replaces_the_earlier_install(profile: Path) -> None:
    gimp.install(profile, vendor=False, report=lambda s: None, platform="linux")
    lines = []
    gimp.install(profile, vendor=False, report=lines.append, platform="linux")
    assert any("replacing the earlier install" in line for line in lines)
    gimp.uninstall(profile, report=lambda s: None)
    assert not (profile / "plug-ins" / "clickmatte").exists()
    assert not (profile / "interpreters").exists()


def test_refuses_a_foreign_clickmatte_folder(profile: Path) -> None:
    foreign = profile / "plug-ins" / "clickmatte"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(InstallError, match="not installed by clickmatte-install"):
        gimp.install(profile, vendor=False, report=lambda s: None, platform="linux")
    assert (foreign / "mine.txt").read_text() == "keep me"
    assert not (profile / gimp.MANIFEST_NAME).exists()


def test_link_mode_symlinks_to_the_source_tree(profile: Path) -> None:
    plugin_dir = gimp.install(profile, link=True, vendor=False, report=lambda s: None, platform="linux")
    script = plugin_dir / "clickmatte.py"
    assert script.is_symlink()
    assert script.resolve() == (REPO / "plugin" / "gimp" / "clickmatte" / "clickmatte.py").resolve()
    assert os.access(script, os.X_OK)
    assert (plugin_dir / "clickmatte_core" / "gimp" / "points.py").resolve() == (REPO / "plugin" / "gimp" / "points.py")
    gimp.uninstall(profile, report=lambda s: None)
    assert not plugin_dir.exists()
    assert (REPO / "plugin" / "gimp" / "points.py").is_file()  # the source is never removed


def test_no_wheel_falls_back_to_the_system_pyzmq(profile: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    lines = []
    plugin_dir = gimp.install(profile, python_version="3.13", wheel_dir=tmp_path / "empty", report=lines.append,
                              platform="linux")
    assert not (plugin_dir / "vendor").exists()
    assert any("system's pyzmq" in line for line in lines)


def test_no_interpreter_file_on_windows_and_macos(tmp_path: Path) -> None:
    for plat in ("win32", "darwin"):
        prof = tmp_path / plat
        gimp.install(prof, vendor=False, report=lambda s: None, platform=plat)
        assert not (prof / "interpreters").exists()
        assert (prof / "plug-ins" / "clickmatte" / "clickmatte.py").is_file()


def test_find_profile_per_platform(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert gimp.find_profile("linux", {}, home) == home / ".config" / "GIMP" / "3.0"
    assert gimp.find_profile("linux", {"XDG_CONFIG_HOME": str(tmp_path / "x")}, home) == tmp_path / "x" / "GIMP" / "3.0"
    assert gimp.find_profile("win32", {"APPDATA": str(tmp_path / "ad")}, home) == tmp_path / "ad" / "GIMP" / "3.0"
    assert gimp.find_profile("darwin", {}, home) == home / "Library" / "Application Support" / "GIMP" / "3.0"
    # only the Flatpak's profile exists -> that one
    flat = home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"
    flat.mkdir(parents=True)
    assert gimp.find_profile("linux", {}, home) == flat
    # the newest 3.x of the native install wins
    for v in ("3.0", "3.2", "2.10"):
        (home / ".config" / "GIMP" / v).mkdir(parents=True)
    assert gimp.find_profile("linux", {}, home) == home / ".config" / "GIMP" / "3.2"


def test_cli_install_and_uninstall_in_a_temporary_home(home: Path) -> None:
    env = dict(os.environ, HOME=str(home))
    env.pop("XDG_CONFIG_HOME", None)
    cli = [sys.executable, "-m", "clickmatte.installers.cli", "gimp"]
    proc = subprocess.run(cli + ["--no-vendor"], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    plugin = home / ".config" / "GIMP" / "3.0" / "plug-ins" / "clickmatte" / "clickmatte.py"
    assert plugin.is_file() and os.access(plugin, os.X_OK)
    assert "Layer > ClickMatte" in proc.stdout
    proc = subprocess.run(cli + ["--uninstall"], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert not plugin.parent.exists()
    proc = subprocess.run(cli + ["--uninstall"], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 1 and "no clickmatte install found" in proc.stderr


def test_plugin_file_is_committed_executable() -> None:
    out = subprocess.run(["git", "ls-files", "-s", "plugin/gimp/clickmatte/clickmatte.py"], capture_output=True,
                         text=True, cwd=REPO)
    if out.returncode != 0 or not out.stdout:
        pytest.skip("not a git checkout")
    assert out.stdout.startswith("100755 ")


def test_the_daemon_program_is_recorded_for_matte(profile: Path, tmp_path: Path) -> None:
    """daemon.json beside the installed core names this environment's clickmatte-daemon (or --daemon);
    the installed launcher reads it, and --uninstall removes it."""
    before = snapshot(profile)
    plugin_dir = gimp.install(profile, vendor=False, report=lambda s: None, platform="linux")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from clickmatte_core import launcher; "
            "print(launcher.resolve_command()[0])")
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(plugin_dir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(Path(sys.executable).with_name("clickmatte-daemon").absolute())
    gimp.uninstall(profile, report=lambda s: None)
    assert snapshot(profile) == before
    mine = tmp_path / "bin" / "clickmatte-daemon"
    mine.parent.mkdir()
    mine.write_text("#!/bin/sh\n")
    mine.chmod(0o755)
    assert gimp.main(["--profile", str(profile), "--no-vendor", "--daemon", str(mine)]) == 0
    assert json.loads((plugin_dir / "clickmatte_core" / "daemon.json").read_text())["command"] == [str(mine)]
    gimp.uninstall(profile, report=lambda s: None)
