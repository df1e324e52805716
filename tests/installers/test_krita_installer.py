"""clickmatte-install krita in a temporary HOME: what goes where, and --uninstall removes exactly that."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

from clickmatte.installers import cli
from clickmatte.installers.ini import ini_get, ini_restore, ini_set
from clickmatte.installers.manifest import Manifest
from clickmatte.installers.wheels import wheel_fits
from clickmatte.installers.krita import KritaPaths, krita_paths, plugin_source

KRITARC = "[General]\nfoo=bar\n\n[python]\nenable_other=true\n\n[MainWindow]\nState=abc==\n"


def snapshot(root: Path) -> Dict[str, str]:
    """Every file/link under root -> content hash (or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def run_cli(*args: str) -> int:
    return cli.main(["--quiet", *args])


def make_wheel(folder: Path, name: str = "pyzmq-99.0.0-cp313-cp313-manylinux_2_28_x86_64.whl") -> Path:
    """A tiny but real wheel file (zip) standing for pyzmq, for offline vendoring."""
    path = folder / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("zmq/__init__.py", "__version__ = '99.0.0'\n")
        zf.writestr("pyzmq-99.0.0.dist-info/METADATA", "Name: pyzmq\nVersion: 99.0.0\n")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    (h / ".config").mkdir(parents=True)
    (h / ".config" / "kritarc").write_text(KRITARC)
    other = h / ".local" / "share" / "krita" / "pykrita" / "otherplugin"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("# someone else's plugin\n")
    return h


def paths_of(home: Path) -> KritaPaths:
    return krita_paths("linux", home, {})


def test_paths_per_platform(tmp_path: Path) -> None:
    h = tmp_path
    assert krita_paths("linux", h, {}).pykrita == h / ".local/share/krita/pykrita"
    assert krita_paths("linux", h, {}).kritarc == h / ".config/kritarc"
    xdg = krita_paths("linux", h, {"XDG_DATA_HOME": "/d", "XDG_CONFIG_HOME": "/c"})
    assert xdg == KritaPaths(Path("/d/krita/pykrita"), Path("/c/kritarc"))
    win = krita_paths("windows", h, {"APPDATA": str(h / "R"), "LOCALAPPDATA": str(h / "L")})
    assert win == KritaPaths(h / "R" / "krita" / "pykrita", h / "L" / "kritarc")
    assert krita_paths("windows", h, {}).pykrita == h / "AppData/Roaming/krita/pykrita"
    mac = krita_paths("macos", h, {})
    assert mac.pykrita == h / "Library/Application Support/krita/pykrita"
    assert mac.kritarc == h / "Library/Preferences/kritarc"


def test_install_then_uninstall_restores_exactly(home: Path, tmp_path: Path) -> None:
    before = snapshot(home)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels)
    assert run_cli("krita", "--profile", str(home), "--python-version", "3.13", "--wheel-dir", str(wheels)) == 0
    p = paths_of(home)
    pkg = p.package
    # the plugin: desktop file, generated __init__, the core and the Krita adapter, relative imports only
    desktop = p.desktop.read_text()
    assert "X-KDE-Library=clickmatte" in desktop and "ServiceTypes=Krita/PythonPlugin" in desktop
    for name in ("__init__.py", "controller.py", "host.py", "client.py", "protocol.py", "settings.py",
                 "krita/adapter.py", "krita/docker.py", "krita/extension.py", "_vendor/zmq/__init__.py"):
        assert (pkg / name).is_file(), name
    for f in plugin_source().glob("*.py"):  # every core module (the protocol's and controller's parts too)
        assert (pkg / f.name).is_file(), f.name
    for f in (plugin_source() / "krita").glob("*.py"):  # every Krita module (pixels, nodes, matte_undo too)
        assert (pkg / "krita" / f.name).is_file(), f"krita/{f.name}"
    assert not (pkg / "gimp").exists()
    for f in pkg.rglob("*.py"):
        if "_vendor" not in f.parts:
            assert "from clickmatte" not in f.read_text() and "import clickmatte" not in f.read_text(), f
    # kritarc: our key added, everything else byte-for-byte
    rc = p.kritarc.read_text()
    assert ini_get(rc, "python", "enable_clickmatte") == "true"
    assert rc.replace("enable_clickmatte=true\n", "") == KRITARC
    # the user later adds files of their own next to ours
    (pkg / "notes.txt").write_text("mine")
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0
    assert (pkg / "notes.txt").read_text() == "mine"  # kept: not ours
    (pkg / "notes.txt").unlink()
    pkg.rmdir()
    assert snapshot(home) == before


def test_install_into_empty_home_and_uninstall_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    home.mkdir()
    assert run_cli("krita", "--profile", str(home), "--no-vendor") == 0
    assert ini_get(paths_of(home).kritarc.read_text(), "python", "enable_clickmatte") == "true"
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0
    assert snapshot(home) == {}


def test_reinstall_replaces_and_link_mode_links(home: Path) -> None:
    before = snapshot(home)
    assert run_cli("krita", "--profile", str(home), "--no-vendor") == 0
    assert run_cli("krita", "--profile", str(home), "--no-vendor", "--link") == 0  # replaces the copy
    pkg = paths_of(home).package
    assert (pkg / "controller.py").is_symlink()
    assert (pkg / "controller.py").resolve() == (plugin_source() / "controller.py").resolve()
    assert (pkg / "krita").is_symlink() and (pkg / "krita" / "docker.py").is_file()
    assert not (pkg / "__init__.py").is_symlink()  # generated
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0
    assert snapshot(home) == before
    assert (plugin_source() / "controller.py").is_file()  # the sources behind the links are untouched


def test_changed_files_and_user_settings_are_kept(home: Path) -> None:
    assert run_cli("krita", "--profile", str(home), "--no-vendor") == 0
    p = paths_of(home)
    (p.package / "settings.py").write_text("# edited by the user\n")
    rc = p.kritarc.read_text().replace("enable_clickmatte=true", "enable_clickmatte=false")
    p.kritarc.write_text(rc + "[New]\nk=v\n")  # Krita and the user change kritarc meanwhile
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0
    assert (p.package / "settings.py").read_text() == "# edited by the user\n"
    rc = p.kritarc.read_text()
    assert ini_get(rc, "python", "enable_clickmatte") == "false" and "[New]\nk=v\n" in rc
    assert not p.manifest.exists() and not (p.package / "controller.py").exists()


def test_refuses_to_overwrite_a_foreign_plugin(home: Path, capsys: pytest.CaptureFixture) -> None:
    p = paths_of(home)
    p.package.mkdir(parents=True)
    (p.package / "__init__.py").write_text("# another clickmatte\n")
    before = snapshot(home)
    assert run_cli("krita", "--profile", str(home), "--no-vendor") == 1
    assert "not installed by clickmatte-install" in capsys.readouterr().err
    assert snapshot(home) == before


def test_uninstall_without_install_is_an_error(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 1
    assert "nothing to uninstall" in capsys.readouterr().err


def test_bad_python_version_is_refused_and_nothing_is_left(home: Path, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(home)
    assert run_cli("krita", "--profile", str(home), "--python-version", "three") == 1
    assert "--python-version" in capsys.readouterr().err
    assert snapshot(home) == before  # the partial install was rolled back


def test_missing_wheel_is_reported_and_install_goes_on(home: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "nowheels"
    empty.mkdir()
    assert cli.main(["krita", "--profile", str(home), "--python-version", "3.13", "--wheel-dir", str(empty)]) == 0
    out = capsys.readouterr().out
    assert "could not get pyzmq wheels for Python 3.13" in out and "python3-zmq" in out
    assert not (paths_of(home).package / "_vendor").exists()
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0


def test_prints_what_it_did(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["krita", "--profile", str(home), "--no-vendor"]) == 0
    out = capsys.readouterr().out
    assert "copied the plugin" in out and "kritarc" in out and "manifest" in out
    assert cli.main(["krita", "--profile", str(home), "--uninstall"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and "enable_clickmatte" in out


def test_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("clickmatte-install")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "clickmatte.installers.cli"]
    proc = subprocess.run(cmd + ["krita", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--python-version" in proc.stdout and "--uninstall" in proc.stdout


def test_vendoring_downloads_a_wheel_for_another_python(tmp_path: Path) -> None:
    """The real thing: pip download pyzmq for CPython 3.13 (skipped without network)."""
    home = tmp_path / "h"
    home.mkdir()
    rc = cli.main(["krita", "--profile", str(home), "--python-version", "3.13"])
    assert rc == 0
    vendor = paths_of(home).package / "_vendor"
    if not vendor.exists():
        pytest.skip("no pyzmq wheel could be downloaded here (no network to PyPI?)")
    so = list((vendor / "zmq").rglob("*.so"))
    assert so and all("cp313" in s.name or "abi3" in s.name for s in so if "backend" in str(s)), so
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0
    assert snapshot(home) == {}


# -- the INI and wheel helpers -------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "[python]\n", "[a]\nx=1", "[python]\nenable_clickmatte=false\nz=1\n",
                                  "[a]\r\nx=1\r\n", "[python]\nk=v\n\n[b]\ny=2\n"])
def test_ini_set_then_restore_round_trips(text: str) -> None:
    new, prev, created = ini_set(text, "python", "enable_clickmatte", "true")
    assert ini_get(new, "python", "enable_clickmatte") == "true"
    added_newline = bool(created and text and not text.endswith("\n"))
    restored, note = ini_restore(new, "python", "enable_clickmatte", "true", prev, created, added_newline)
    assert note == "" and restored == text


def test_wheel_tags() -> None:
    assert wheel_fits("pyzmq-27.0.0-cp312-abi3-manylinux_2_28_x86_64.whl", 3, 13)
    assert not wheel_fits("pyzmq-27.0.0-cp312-abi3-manylinux_2_28_x86_64.whl", 3, 11)
    assert wheel_fits("pyzmq-26.0.0-cp310-cp310-win_amd64.whl", 3, 10)
    assert not wheel_fits("pyzmq-26.0.0-cp310-cp310-win_amd64.whl", 3, 11)
    assert not wheel_fits("not-a-wheel.zip", 3, 10)


def test_manifest_records_and_undoes(tmp_path: Path) -> None:
    m = Manifest("t", tmp_path / "m.json")
    m.write_file(tmp_path / "a" / "b" / "f.txt", b"x")
    m.save()
    loaded = Manifest.load(tmp_path / "m.json")
    assert [e["kind"] for e in loaded.entries] == ["dir", "dir", "file"]
    lines: List[str] = []
    assert loaded.undo(lines.append) == []
    assert list(tmp_path.iterdir()) == []


def test_the_daemon_program_is_recorded_for_the_docker(home: Path, tmp_path: Path, capsys) -> None:
    from clickmatte.plugin.launcher import installed_command

    before = snapshot(home)
    assert run_cli("krita", "--profile", str(home), "--no-vendor") == 0
    pkg = paths_of(home).package
    venv_daemon = Path(sys.executable).with_name("clickmatte-daemon").absolute()
    assert installed_command(pkg) == [str(venv_daemon)]  # this environment's, used even when not activated
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0
    assert snapshot(home) == before  # daemon.json went with the rest
    other = tmp_path / "my-daemon"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert run_cli("krita", "--profile", str(home), "--no-vendor", "--daemon", str(other)) == 0
    assert installed_command(pkg) == [str(other)]
    assert run_cli("krita", "--profile", str(home), "--uninstall") == 0
    capsys.readouterr()
    assert run_cli("krita", "--profile", str(home), "--no-vendor", "--daemon", str(tmp_path / "nope")) == 1
    assert "--daemon" in capsys.readouterr().err and not pkg.exists()
