"""``clickmatte-install gimp``: put the ClickMatte plug-in into GIMP 3's profile (standard library only).

What an install creates (and ``--uninstall`` removes again, guided by the manifest
``<profile>/clickmatte-gimp-manifest.json``)::

    <profile>/plug-ins/clickmatte/clickmatte.py          the plug-in (mode 755; GIMP needs the exec bit
                                                         and a folder named like the file)
    <profile>/plug-ins/clickmatte/clickmatte_core/       plugin/*.py (protocol, client, host, settings, ...)
    <profile>/plug-ins/clickmatte/clickmatte_core/gimp/  plugin/gimp/*.py (the GIMP adapter)
    <profile>/plug-ins/clickmatte/vendor/                pyzmq unpacked from a wheel for GIMP's Python
                                                         (used when the system has no pyzmq)
    <profile>/interpreters/clickmatte.interp             Linux: run "python3" plug-ins with /usr/bin/python3
    <profile>/plug-ins/clickmatte/clickmatte_core/daemon.json  the clickmatte-daemon program (``--daemon``;
                                                         default: this installation's), started by
                                                         Matte when no local daemon answers

``<profile>`` is GIMP 3's user folder: ``~/.config/GIMP/3.0`` on Linux (the Flatpak's
``~/.var/app/org.gimp.GIMP/config/GIMP/3.0`` when only that exists), ``%APPDATA%\\GIMP\\3.0`` on
Windows, ``~/Library/Application Support/GIMP/3.0`` on macOS; the newest existing ``3.x`` folder
wins. ``--profile DIR`` names it directly.

The interpreters file: GIMP starts Python plug-ins through their ``#!/usr/bin/env python3`` line,
i.e. whichever ``python3`` comes first on PATH; a virtualenv or pyenv python there cannot import
GIMP's ``gi`` bindings and the plug-in crashes. Mapping ``python3`` to the system interpreter fixes
that (Windows and macOS builds of GIMP ship their own mapping; nothing is written there).

pyzmq: ``pip download`` of the binary wheel for GIMP's Python (``--python-version``, default: the
version of the interpreter above, else this Python's), unpacked into ``vendor/``. Without network
(or with ``--no-vendor``) the plug-in falls back to a system pyzmq (Debian/Ubuntu: python3-zmq).
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from .manifest import Manifest
from .plugin_files import daemon_command, iter_plugin_files, write_daemon_file
from .reporting import InstallError, Reporter
from .wheels import os_name, vendor_wheels, wheel_platform_tags

NAME = "gimp"
HELP = "GIMP 3: the plug-in Layer > ClickMatte (points from paths named fg / bg)"
PLUGIN_NAME = "clickmatte"
MANIFEST_NAME = "clickmatte-gimp-manifest.json"
INTERP_NAME = "clickmatte.interp"
DEFAULT_INTERPRETER = "/usr/bin/python3"
FLATPAK_CONFIG = Path(".var") / "app" / "org.gimp.GIMP" / "config" / "GIMP"


def source_dirs() -> tuple[Path, Path, Path]:
    """``(core folder, gimp adapter folder, plug-in file)`` of this clickmatte installation."""
    core_pkg = importlib.import_module("clickmatte.plugin")
    core = Path(core_pkg.__file__).resolve().parent
    gimp = core / "gimp"
    script = gimp / PLUGIN_NAME / f"{PLUGIN_NAME}.py"
    if not script.is_file():
        raise InstallError(f"the GIMP plug-in {script} is missing from this clickmatte installation")
    return core, gimp, script


def _gimp_base(os_kind: str, env: dict, home: Path) -> List[Path]:
    if os_kind == "windows":
        return [Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"]
    if os_kind == "macos":
        return [home / "Library" / "Application Support" / "GIMP"]
    native = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "GIMP"
    return [native, home / FLATPAK_CONFIG]


def _version_key(p: Path) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in p.name.split("."))


def find_profile(platform: Optional[str] = None, env: Optional[dict] = None, home: Optional[Path] = None) -> Path:
    """GIMP 3's user profile folder (it may not exist yet if GIMP 3 never ran: then ``.../3.0``)."""
    os_kind = os_name(platform)
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else Path(home)
    bases = _gimp_base(os_kind, env, home)
    for base in bases:
        versions = sorted((p for p in base.glob("3.*") if p.is_dir()), key=_version_key) if base.is_dir() else []
        if versions:
            return versions[-1]
    return bases[0] / "3.0"


def interpreter_version(interpreter: str, timeout: float = 20) -> Optional[str]:
    """``"3.13"`` for the Python at ``interpreter``, or None if it cannot be run here."""
    try:
        out = subprocess.run([interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and text.startswith("3.") else None


def _install_tree(manifest: Manifest, src_files: Sequence[Path], dst_dir: Path, link: bool) -> None:
    for f in src_files:
        dst = dst_dir / f.name
        if link:
            manifest.link(f, dst)
        else:
            manifest.copy_file(f, dst)


def install(profile: Optional[Path] = None, link: bool = False, python_version: Optional[str] = None,
            vendor: bool = True, wheel_dir: Optional[Path] = None, interpreter: Optional[str] = None,
            write_interp: Optional[bool] = None, platform: Optional[str] = None,
            report: Callable[[str], None] = print, daemon: Optional[List[str]] = None) -> Path:
    """Install the plug-in (see the module docstring); returns the plug-in folder.

    An earlier install (found by its manifest) is removed first. ``link`` symlinks the files to
    this source tree instead of copying (for development). ``write_interp`` defaults to True on
    Linux. ``daemon``: the command recorded in ``daemon.json`` (default: ``plugin_files.daemon_command()``).
    Raises ``InstallError`` for anything the user must fix.
    """
    os_kind = os_name(platform)
    profile = Path(profile) if profile is not None else find_profile(platform)
    core, gimp, script = source_dirs()
    manifest_path = profile / MANIFEST_NAME
    if manifest_path.exists():
        report(f"replacing the earlier install recorded in {manifest_path}")
        uninstall(profile, report=report)
    plugin_dir = profile / "plug-ins" / PLUGIN_NAME
    if plugin_dir.exists() or plugin_dir.is_symlink():
        raise InstallError(f"{plugin_dir} exists but was not installed by clickmatte-install; remove it first")
    if not profile.exists():
        # GIMP's own folder: created (GIMP would create it too) but not recorded, so that the manifest
        # inside it never keeps it from being removed and an uninstall leaves GIMP's folder alone
        report(f"note: {profile} does not exist yet (has GIMP 3 run on this account?); creating it")
        profile.mkdir(parents=True)

    manifest = Manifest("gimp", manifest_path)
    manifest.info.update({"profile": str(profile), "link": link, "source": str(core)})
    try:
        manifest.make_dir(plugin_dir)
        if link:
            manifest.link(script, plugin_dir / script.name)
        else:
            manifest.copy_file(script, plugin_dir / script.name)
            os.chmod(plugin_dir / script.name, 0o755)
        if not os.access(plugin_dir / script.name, os.X_OK) and os_kind != "windows":
            raise InstallError(f"{script} is not executable; GIMP would ignore it (chmod +x it)")
        report(f"installed the plug-in {plugin_dir / script.name}")
        pkg = plugin_dir / "clickmatte_core"
        manifest.make_dir(pkg / "gimp")
        _install_tree(manifest, [f for f in iter_plugin_files(core) if f.name != "__init__.py"], pkg, link)
        manifest.write_file(pkg / "__init__.py", b'"""clickmatte plugin core, installed by clickmatte-install."""\n')
        _install_tree(manifest, iter_plugin_files(gimp), pkg / "gimp", link)
        write_daemon_file(manifest, pkg, daemon or daemon_command(), report)
        report(f"installed the core modules into {pkg}")

        if vendor:
            version = python_version
            if version is None and os_kind == "linux":
                version = interpreter_version(interpreter or DEFAULT_INTERPRETER)
            if version is None:
                version = "%d.%d" % sys.version_info[:2]
                report(f"assuming GIMP's Python is {version} (this Python's); if it is not, re-run with "
                       "--python-version X.Y (GIMP: Filters > Development > Python-Fu > Console shows it)")
            manifest.info["python_version"] = version
            ok = vendor_wheels(["pyzmq"], version, wheel_platform_tags(os_kind), plugin_dir / "vendor", manifest,
                               report, wheel_dir=wheel_dir)
            manifest.info["vendored"] = ok
            if not ok:
                report("the plug-in will use the system's pyzmq instead (Debian/Ubuntu: apt install python3-zmq)")
        else:
            report("not vendoring pyzmq (--no-vendor): the plug-in uses the system's pyzmq (python3-zmq)")

        if write_interp is None:
            write_interp = os_kind == "linux"
        if write_interp:
            target = interpreter or DEFAULT_INTERPRETER
            text = (
                "# written by clickmatte-install: run python3 plug-ins with the system Python, not a\n"
                "# virtualenv/pyenv python that happens to come first on PATH\n"
                f"python3={target}\n"
                f"/usr/bin/python3={target}\n"
                f":Python:E::py::python3:\n"
            )
            interp = profile / "interpreters" / INTERP_NAME
            manifest.write_file(interp, text.encode("utf-8"))
            report(f"wrote {interp} (python3 -> {target})")
    except BaseException:
        manifest.save()  # what was done so far can still be undone with --uninstall
        raise
    manifest.save()
    report(f"recorded the install in {manifest_path}; restart GIMP, then use Layer > ClickMatte")
    return plugin_dir


def uninstall(profile: Optional[Path] = None, platform: Optional[str] = None,
              report: Callable[[str], None] = print) -> List[str]:
    """Remove exactly what ``install`` recorded; returns warnings (files kept because the user changed them)."""
    profile = Path(profile) if profile is not None else find_profile(platform)
    manifest_path = profile / MANIFEST_NAME
    if not manifest_path.exists():
        raise InstallError(f"no clickmatte install found in {profile} ({MANIFEST_NAME} is missing)")
    warnings = Manifest.load(manifest_path).undo(report)
    for w in warnings:
        report(f"warning: {w}")
    return warnings


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``clickmatte-install gimp``."""
    p.add_argument("--profile", type=Path, default=None,
                   help="GIMP 3 profile folder (default: ~/.config/GIMP/3.0, %%APPDATA%%\\GIMP\\3.0, "
                        "~/Library/Application Support/GIMP/3.0)")
    p.add_argument("--link", action="store_true", help="symlink the files to this source tree (development)")
    p.add_argument("--uninstall", action="store_true", help="remove what an earlier install added")
    p.add_argument("--python-version", default=None, metavar="X.Y",
                   help="GIMP's Python version, for the pyzmq wheel (default: that of --interpreter)")
    p.add_argument("--interpreter", default=None,
                   help=f"Python that runs GIMP's plug-ins (default {DEFAULT_INTERPRETER}; Linux only)")
    p.add_argument("--no-interpreter-file", action="store_true", help="do not write interpreters/clickmatte.interp")
    p.add_argument("--no-vendor", action="store_true", help="do not download pyzmq (use the system's)")
    p.add_argument("--daemon", default=None, metavar="PROGRAM",
                   help="the clickmatte-daemon program Matte starts (default: the one beside this Python, else on PATH)")
    p.add_argument("--wheel-dir", type=Path, default=None, help="take the pyzmq wheel from this folder (offline)")


def run(args: argparse.Namespace, report: Optional[Callable[[str], None]] = None) -> int:
    """Carry out parsed ``clickmatte-install gimp`` arguments; returns the exit status."""
    report = report or Reporter()
    try:
        if args.uninstall:
            uninstall(args.profile, report=report)
        else:
            install(args.profile, link=args.link, python_version=args.python_version, vendor=not args.no_vendor,
                    wheel_dir=args.wheel_dir, interpreter=args.interpreter,
                    write_interp=False if args.no_interpreter_file else None, report=report,
                    daemon=daemon_command(args.daemon))
    except InstallError as exc:
        print(f"clickmatte-install gimp: error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m clickmatte.installers.gimp ARGS`` (same as ``clickmatte-install gimp ARGS``)."""
    parser = argparse.ArgumentParser(prog="clickmatte-install gimp", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
