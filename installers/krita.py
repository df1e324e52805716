"""``clickmatte-install krita``: put the ClickMatte plugin into Krita's ``pykrita`` folder.

What it does (each step printed, all recorded in a manifest so ``--uninstall`` undoes exactly it):

1. finds Krita's resource folder: ``~/.local/share/krita/pykrita`` (Linux, honouring
   ``$XDG_DATA_HOME``), ``%APPDATA%\\krita\\pykrita`` (Windows),
   ``~/Library/Application Support/krita/pykrita`` (macOS); ``--profile DIR`` uses ``DIR`` as
   the home folder instead (for a test HOME, a chroot, or another user);
2. copies (``--link``: symlinks, for development) the plugin: ``pykrita/clickmatte.desktop`` and
   ``pykrita/clickmatte/`` = the host-agnostic core (``plugin/*.py``) + ``krita/`` (the adapter) +
   a generated ``__init__.py`` that registers the docker;
3. vendors pyzmq wheels built for Krita's Python (``--python-version``; default: the system
   ``python3`` on Linux, which distribution packages of Krita use, and 3.10 — the Python bundled
   with Krita 5.2 — on Windows/macOS and for AppImages pass ``--python-version 3.10``) into
   ``pykrita/clickmatte/_vendor``; when no wheel can be had it says so, and the plugin uses a
   system pyzmq (Debian/Ubuntu: ``python3-zmq``);
4. records the ``clickmatte-daemon`` program of this installation (``--daemon PATH``: another one)
   in ``pykrita/clickmatte/daemon.json``: the docker starts it when no daemon answers at a local
   endpoint, and stops it when Krita quits;
5. enables the plugin in ``kritarc`` (``[python]`` ``enable_clickmatte=true``); the docker shows
   itself on Krita's first start with the plugin (``[clickmatte]`` ``docker_shown`` in kritarc,
   written by the plugin) and connects by itself.

The manifest is ``pykrita/clickmatte.install-manifest.json``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from .manifest import Manifest
from .plugin_files import daemon_command, iter_plugin_files, write_daemon_file
from .reporting import InstallError
from .wheels import os_name, parse_python_version, vendor_wheels, wheel_platform_tags

NAME = "krita"
HELP = "install the ClickMatte docker into Krita 5.2+ (pykrita)"
PACKAGE = "clickmatte"
MANIFEST_NAME = "clickmatte.install-manifest.json"
KRITARC_SECTION = "python"
KRITARC_KEY = f"enable_{PACKAGE}"
VENDOR_DIR = "_vendor"
VENDORED_PACKAGES = ("pyzmq",)
#: Python bundled with Krita 5.2's official Windows/macOS/AppImage builds
BUNDLED_PYTHON = "3.10"

INIT_TEMPLATE = '''"""ClickMatte for Krita (written by clickmatte-install; the code is in this folder)."""
import os as _os
import sys as _sys

# pyzmq wheels vendored for this Krita's Python come last: a system pyzmq, when present, wins.
_VENDOR = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "{vendor}")
if _os.path.isdir(_VENDOR) and _VENDOR not in _sys.path:
    _sys.path.append(_VENDOR)

from .krita.extension import register as _register  # noqa: E402

_register()
'''


@dataclass(frozen=True)
class KritaPaths:
    """Where things go: the ``pykrita`` folder and the ``kritarc`` file."""

    pykrita: Path
    kritarc: Path

    @property
    def package(self) -> Path:
        return self.pykrita / PACKAGE

    @property
    def desktop(self) -> Path:
        return self.pykrita / f"{PACKAGE}.desktop"

    @property
    def manifest(self) -> Path:
        return self.pykrita / MANIFEST_NAME


def krita_paths(os_kind: str, home: Path, env: Optional[dict] = None) -> KritaPaths:
    """Krita's per-user ``pykrita`` folder and ``kritarc`` for ``os_kind`` under ``home``.

    ``env`` (e.g. ``os.environ``) supplies ``XDG_DATA_HOME``/``XDG_CONFIG_HOME`` (Linux) and
    ``APPDATA``/``LOCALAPPDATA`` (Windows); pass ``{}`` to derive everything from ``home``.
    """
    env = {} if env is None else env
    home = Path(home)
    if os_kind == "linux":
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        return KritaPaths(data / "krita" / "pykrita", config / "kritarc")
    if os_kind == "windows":
        roaming = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return KritaPaths(roaming / "krita" / "pykrita", local / "kritarc")
    if os_kind == "macos":
        return KritaPaths(home / "Library" / "Application Support" / "krita" / "pykrita",
                          home / "Library" / "Preferences" / "kritarc")
    raise InstallError(f"unknown OS {os_kind!r}")


def plugin_source() -> Path:
    """The ``plugin/`` folder of this clickmatte installation (holds the core and ``krita/``)."""
    here = Path(__file__).resolve().parent.parent / "plugin"
    if (here / "controller.py").is_file() and (here / "krita").is_dir():
        return here
    import importlib.util

    spec = importlib.util.find_spec("clickmatte.plugin")
    if spec is None or not spec.submodule_search_locations:
        raise InstallError("cannot find the clickmatte plugin sources (is clickmatte installed?)")
    return Path(list(spec.submodule_search_locations)[0])


def default_python_version(os_kind: str) -> tuple:
    """``(version, how it was chosen)`` for Krita's Python when ``--python-version`` is not given."""
    if os_kind == "linux":
        for exe in ("/usr/bin/python3", "python3"):
            try:
                out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                     capture_output=True, text=True, timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip(), (f"the system Python ({exe}), which distribution packages of Krita use; "
                                            f"for the Krita AppImage pass --python-version {BUNDLED_PYTHON}")
    return BUNDLED_PYTHON, "the Python bundled with Krita 5.2"


def install(paths: KritaPaths, source: Path, report: Callable[[str], None], link: bool = False,
            python_version: Optional[str] = None, vendor: bool = True, wheel_dir: Optional[Path] = None,
            os_kind: str = "linux", machine: Optional[str] = None,
            daemon: Optional[List[str]] = None) -> Manifest:
    """Install (replacing an earlier clickmatte-install of the same place); returns the manifest.

    ``daemon``: the command recorded in ``daemon.json`` (default: :func:`.plugin_files.daemon_command`)."""
    if paths.manifest.exists():
        report(f"replacing the earlier install recorded in {paths.manifest}")
        uninstall(paths, report)
    for p in (paths.package, paths.desktop):
        if p.exists() or p.is_symlink():
            raise InstallError(f"{p} exists but was not installed by clickmatte-install; move it away first")
    core = [f for f in iter_plugin_files(source) if f.name != "__init__.py"]
    adapter_dir = source / "krita"
    adapter = iter_plugin_files(adapter_dir, ("*.py", "*.html", "*.png"))  # the manual's pictures too
    desktop = adapter_dir / f"{PACKAGE}.desktop"
    if not core or not adapter or not desktop.is_file():
        raise InstallError(f"{source} does not look like the clickmatte plugin folder")

    manifest = Manifest(NAME, paths.manifest)
    try:
        manifest.make_dir(paths.package)
        put = manifest.link if link else (lambda src, dst: manifest.copy_file(src, dst))
        for f in core:
            put(f.resolve() if link else f, paths.package / f.name)
        if link:
            manifest.link(adapter_dir.resolve(), paths.package / "krita")
        else:
            for f in adapter:
                manifest.copy_file(f, paths.package / "krita" / f.name)
        manual = adapter_dir / "Manual.html"
        if manual.is_file():
            put(manual.resolve() if link else manual, paths.package / "Manual.html")
        manifest.write_file(paths.package / "__init__.py", INIT_TEMPLATE.format(vendor=VENDOR_DIR).encode())
        write_daemon_file(manifest, paths.package, daemon or daemon_command(), report)
        put(desktop.resolve() if link else desktop, paths.desktop)
        how = "linked" if link else "copied"
        report(f"{how} the plugin ({len(core)} core + {len(adapter)} Krita files) into {paths.package}")
        report(f"{how} {paths.desktop}")

        vendored = False
        if vendor:
            if python_version is None:
                python_version, why = default_python_version(os_kind)
                report(f"Krita's Python assumed to be {python_version}: {why}")
            parse_python_version(python_version)
            tags = wheel_platform_tags(os_kind, machine)
            vendored = vendor_wheels(VENDORED_PACKAGES, python_version, tags, paths.package / VENDOR_DIR,
                                     manifest, report, wheel_dir=wheel_dir)
            if not vendored:
                report("the plugin will use a system pyzmq instead (Debian/Ubuntu: apt install python3-zmq; "
                       "Fedora: python3-zmq); without one the docker shows how to fix it")
        else:
            report("not vendoring pyzmq (--no-vendor): the plugin uses a system pyzmq (e.g. Debian python3-zmq)")

        previous = manifest.set_ini(paths.kritarc, KRITARC_SECTION, KRITARC_KEY, "true")
        state = "already" if previous == "true" else "now"
        report(f"{state} enabled in {paths.kritarc} ([{KRITARC_SECTION}] {KRITARC_KEY}=true)")
        manifest.info = {"python_version": python_version, "linked": link, "vendored": vendored,
                         "source": str(source)}
        manifest.save()
    except BaseException:
        manifest.undo(lambda _msg: None)
        raise
    report(f"recorded what was installed in {paths.manifest} (clickmatte-install krita --uninstall removes it)")
    report("restart Krita: the ClickMatte docker shows itself and starts the daemon when it is needed")
    return manifest


def uninstall(paths: KritaPaths, report: Callable[[str], None]) -> List[str]:
    """Undo the install recorded in ``paths.manifest``; returns warnings about things kept."""
    if not paths.manifest.exists():
        raise InstallError(f"nothing to uninstall: no clickmatte install manifest at {paths.manifest}")
    manifest = Manifest.load(paths.manifest)
    warnings = manifest.undo(report)
    for w in warnings:
        report(f"warning: {w}")
    return warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="treat DIR as the home folder (default: your home, honouring XDG_*/APPDATA)")
    parser.add_argument("--link", action="store_true", help="symlink the plugin files instead of copying (development)")
    parser.add_argument("--uninstall", action="store_true", help="remove exactly what an earlier install added")
    parser.add_argument("--python-version", metavar="X.Y",
                        help="Krita's Python version, for the pyzmq wheels (default: see above)")
    parser.add_argument("--no-vendor", action="store_true", help="do not vendor pyzmq (use a system pyzmq)")
    parser.add_argument("--wheel-dir", type=Path, metavar="DIR",
                        help="take the pyzmq wheel from DIR instead of downloading it (offline installs)")
    parser.add_argument("--daemon", metavar="PROGRAM",
                        help="the clickmatte-daemon program the docker starts (default: the one beside this "
                             "Python, else on PATH)")
    parser.add_argument("--os", choices=("linux", "windows", "macos"), help=argparse.SUPPRESS)


def run(args: argparse.Namespace, report: Callable[[str], None]) -> int:
    os_kind = args.os or os_name()
    if args.profile is not None:
        paths = krita_paths(os_kind, args.profile.expanduser().resolve(), {})
    else:
        paths = krita_paths(os_kind, Path.home(), dict(os.environ))
    if args.uninstall:
        uninstall(paths, report)
        return 0
    install(paths, plugin_source(), report, link=args.link, python_version=args.python_version,
            vendor=not args.no_vendor, wheel_dir=args.wheel_dir, os_kind=os_kind,
            daemon=daemon_command(args.daemon))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: clickmatte-install krita ...")
