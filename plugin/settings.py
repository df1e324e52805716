"""Plugin settings, stored as JSON in a per-user config folder (standard library only).

Location: ``$CLICKMATTE_CONFIG_DIR`` if set, else ``%APPDATA%\\clickmatte`` on Windows,
``~/Library/Application Support/clickmatte`` on macOS, ``$XDG_CONFIG_HOME/clickmatte``
(default ``~/.config/clickmatte``) elsewhere; the file is ``plugin.json``.
``$CLICKMATTE_ENDPOINT`` overrides the stored endpoint (handy for tests and remote GPU boxes).

A missing file gives the defaults; a broken file gives the defaults plus ``Settings.problem``
(a message for the status line) and is left untouched until the user saves.
The daemon program that ``auto_start`` runs is recorded by the installer next to the plugin
code (``plugin/launcher.py``), not here; ``daemon_path`` overrides it.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from .protocol import DEFAULT_ENDPOINT, DEFAULT_TOP_N

FILE_NAME = "plugin.json"
#: allowed (lowest, highest) of the numeric settings, checked by ``Settings.validate`` (dialogs use them too)
RANGES = {"timeout_s": (0.5, 3600.0), "preview_size": (0, 8000), "top_n": (0, 256), "guide_opacity": (0, 100)}


def config_dir(env: Optional[dict] = None, platform: Optional[str] = None, home: Optional[Path] = None) -> Path:
    """The folder that holds ``plugin.json`` (not created here)."""
    env = dict(os.environ) if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    if env.get("CLICKMATTE_CONFIG_DIR"):
        return Path(env["CLICKMATTE_CONFIG_DIR"])
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "clickmatte"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "clickmatte"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "clickmatte"


@dataclass
class Settings:
    """User-tunable values. Ranges are enforced by ``validate()`` (``ValueError``)."""

    endpoint: str = DEFAULT_ENDPOINT
    #: CURVE keys for a remote daemon (z85 text): the daemon's public key and this client's key pair
    server_public_key: str = ""
    client_public_key: str = ""
    client_secret_key: str = ""
    #: seconds a heartbeat (status request) may go unanswered before the status line says the daemon
    #: does not answer; work itself may take longer while the daemon answers heartbeats
    timeout_s: float = 20.0
    #: long side of live previews (pixels); 0 = full size
    preview_size: int = 512
    #: patches refined automatically after a full-size matte (0 = none)
    top_n: int = DEFAULT_TOP_N
    #: guide layer opacity in percent
    guide_opacity: int = 60
    #: live preview after every point change
    live: bool = False
    #: start clickmatte-daemon when none answers at a local endpoint (never for a remote one)
    auto_start: bool = True
    #: the daemon program to start; empty = the one clickmatte-install recorded (``launcher.DAEMON_FILE``)
    daemon_path: str = ""
    problem: str = field(default="", compare=False, repr=False)

    def validate(self) -> "Settings":
        if not isinstance(self.endpoint, str) or "://" not in self.endpoint:
            raise ValueError(f"endpoint must look like tcp://HOST:PORT, got {self.endpoint!r}")
        for name, (lo, hi) in RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be within {lo:g}..{hi:g}, got {value!r}")
        return self

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("problem")
        return d

    @classmethod
    def from_json(cls, data: Any) -> "Settings":
        if not isinstance(data, dict):
            raise ValueError("settings file must hold a JSON object")
        known = {f.name: f for f in fields(cls) if f.name != "problem"}
        kwargs = {}
        for k, v in data.items():
            if k in known:
                default = known[k].default
                if isinstance(default, bool):
                    if not isinstance(v, bool):
                        raise ValueError(f"{k} must be true or false, got {v!r}")
                    kwargs[k] = v
                elif isinstance(default, str):
                    if not isinstance(v, str):
                        raise ValueError(f"{k} must be a string, got {v!r}")
                    kwargs[k] = v
                else:
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise ValueError(f"{k} must be a number, got {v!r}")
                    kwargs[k] = type(default)(v)
        return cls(**kwargs).validate()


def load(path: Optional[Path] = None, env: Optional[dict] = None) -> Settings:
    """Settings from ``path`` (default: ``config_dir()/plugin.json``); never raises."""
    env = dict(os.environ) if env is None else env
    path = (config_dir(env) / FILE_NAME) if path is None else Path(path)
    s = Settings()
    try:
        s = Settings.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError) as exc:
        s = Settings()
        s.problem = f"settings file {path} ignored: {exc}"
    if env.get("CLICKMATTE_ENDPOINT"):
        s.endpoint = env["CLICKMATTE_ENDPOINT"]
    return s


def save(settings: Settings, path: Optional[Path] = None) -> Path:
    """Validate and write ``settings`` atomically; returns the path."""
    settings.validate()
    path = (config_dir() / FILE_NAME) if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(settings.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
