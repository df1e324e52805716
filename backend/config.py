"""Daemon configuration: command-line options, their checks, and the loopback / CURVE rule.

Nothing here imports torch or the model, so ``clickmatte-daemon --help`` and configuration
errors are instant.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from clickmatte.model.inference.config import (MAX_SIDE, PredictorConfig, add_predictor_arguments,
                                              predictor_config_from_args)
from clickmatte.plugin.protocol import DEFAULT_ENDPOINT, MAX_HEADER_BYTES, MAX_TOP_N

#: the largest --max-image-mp (megapixels): the model takes sides up to MAX_SIDE, and 64 MP is 8000 x 8000
MAX_IMAGE_MP = MAX_SIDE * MAX_SIDE / 1_000_000
SERVER_SECRET_FILE = "server.key_secret"
SERVER_PUBLIC_FILE = "server.key"
AUTHORIZED_DIR = "authorized_clients"
CLIENTS_DIR = "clients"


class ConfigError(ValueError):
    """A configuration the daemon cannot run with; the message is one line meant for the user."""


@dataclass
class DaemonConfig:
    """Validated daemon settings.

    ``max_image_mp``: largest image in megapixels (width * height / 1e6); ``max_cache_mb``: bytes of
    images + per-session alpha/uncertainty kept (LRU); ``max_sessions``: sessions kept (LRU).
    ``max_queue_mb``: bytes of requests received and not yet answered (None: two of the largest
    messages); ``max_top_n`` / ``max_region_mp``: the most patches one refine may ask for, and the
    largest area its regions (or the bounding box of its mask) may cover. ``predictor``: the model's
    inference settings (:class:`~clickmatte.model.inference.config.PredictorConfig`).
    """

    bind: str = DEFAULT_ENDPOINT
    device: str = "auto"
    checkpoint: Optional[Path] = None
    max_sessions: int = 8
    max_cache_mb: int = 2048
    max_image_mp: float = 50.0
    curve_keys: Optional[Path] = None
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    max_queue_mb: Optional[int] = None
    max_top_n: int = 1024
    max_region_mp: float = 16.0
    log_level: str = "INFO"
    #: stop serving when this process ends (the editor that started the daemon); None = never
    owner_pid: Optional[int] = None
    #: FOR TESTS ONLY: sleep this long before each predict / refine, as a slow model would (0 = off)
    test_delay_s: float = 0.0

    @property
    def max_image_pixels(self) -> int:
        return int(self.max_image_mp * 1_000_000)

    @property
    def max_message_bytes(self) -> int:
        """Largest accepted message: the biggest image as 4-channel uint16, plus the header."""
        return self.max_image_pixels * 4 * 2 + MAX_HEADER_BYTES

    @property
    def max_cache_bytes(self) -> int:
        return self.max_cache_mb * 1024 * 1024

    @property
    def max_queue_bytes(self) -> int:
        """Cap on the bytes of requests held at once (queued or being served)."""
        if self.max_queue_mb is None:
            return 2 * self.max_message_bytes
        return self.max_queue_mb * 1024 * 1024

    @property
    def max_region_pixels(self) -> int:
        return int(self.max_region_mp * 1_000_000)

    @property
    def rcv_hwm(self) -> int:
        """ZeroMQ receive high-water mark per peer: as many of the largest messages as the queue holds
        (at least 2, at most 256), so that ZeroMQ itself never buffers much more than the queue cap."""
        return max(2, min(256, self.max_queue_bytes // self.max_message_bytes + 1))


def is_local_endpoint(endpoint: str) -> bool:
    """True for endpoints only this machine can reach: ``ipc://``, ``inproc://``, and ``tcp://`` on a
    loopback address (127.0.0.0/8, ::1, localhost). Wildcards (``*``, ``0.0.0.0``) are not local."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    hostport = endpoint[len("tcp://"):]
    if ";" in hostport:  # "source;destination" syntax: judge the bound part
        hostport = hostport.split(";")[-1]
    host, sep, _port = hostport.rpartition(":")
    if not sep:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # interface names, hostnames, "*"


def build_parser() -> argparse.ArgumentParser:
    """The daemon's flags; every default is :class:`DaemonConfig`'s (inference settings:
    :func:`~clickmatte.model.inference.config.add_predictor_arguments`)."""
    d = DaemonConfig()
    ap = argparse.ArgumentParser(
        prog="clickmatte-daemon",
        description="clickmatte inference daemon (ZeroMQ ROUTER, protocol clickmatte/1).",
    )
    ap.add_argument("--bind", default=d.bind,
                    help=f"ZeroMQ endpoint to bind (default {d.bind}; ipc:///path works too). "
                         "A non-loopback address needs --curve-keys.")
    ap.add_argument("--device", default=d.device, help=f"auto | cpu | cuda | cuda:N (default {d.device})")
    ap.add_argument("--checkpoint", type=Path, default=d.checkpoint,
                    help="model checkpoint (default: the shipped weights, else an untrained net)")
    ap.add_argument("--max-sessions", type=int, default=d.max_sessions,
                    help=f"sessions kept, least recently used dropped ({d.max_sessions})")
    ap.add_argument("--max-cache-mb", type=int, default=d.max_cache_mb,
                    help=f"memory for cached images and session results in MiB ({d.max_cache_mb})")
    ap.add_argument("--max-image-mp", type=float, default=d.max_image_mp,
                    help=f"largest image in megapixels ({d.max_image_mp:g})")
    ap.add_argument("--curve-keys", type=Path, default=d.curve_keys,
                    help=f"key folder made by clickmatte-keys: {SERVER_SECRET_FILE} and {AUTHORIZED_DIR}/*.key "
                         "(enables CURVE encryption and the client allow-list)")
    add_predictor_arguments(ap, d.predictor)
    ap.add_argument("--max-queue-mb", type=int, default=d.max_queue_mb, metavar="M",
                    help="memory for requests received and not yet answered, in MiB; a message that does not fit "
                         "is answered 'busy' (one larger than all of it 'too_large') without being kept "
                         "(default: two of the largest messages --max-image-mp allows)")
    ap.add_argument("--max-top-n", type=int, default=d.max_top_n, metavar="N",
                    help=f"most patches one refine may ask for (1..{MAX_TOP_N}; {d.max_top_n}); more is 'too_large'")
    ap.add_argument("--max-region-mp", type=float, default=d.max_region_mp, metavar="P",
                    help="largest area in megapixels that one refine's regions (or its mask's bounding box) may "
                         f"cover ({d.max_region_mp:g}); more is 'too_large'")
    ap.add_argument("--log-level", default=d.log_level, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    ap.add_argument("--owner-pid", type=int, default=d.owner_pid, metavar="PID",
                    help="exit when process PID ends (what an editor plugin that starts the daemon passes: its "
                         "daemon goes when the editor goes; POSIX only)")
    ap.add_argument("--test-delay-s", type=float, default=d.test_delay_s, metavar="S",
                    help="FOR TESTS ONLY: wait S seconds before each predict and refine, as a slow model would "
                         "(0 = off, the default)")
    return ap


def parse_config(argv: Optional[Sequence[str]] = None) -> DaemonConfig:
    """Parse and check the command line; raises :class:`ConfigError` (argparse exits on syntax errors)."""
    a = build_parser().parse_args(argv)
    try:
        predictor = predictor_config_from_args(a)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cfg = DaemonConfig(bind=a.bind, device=a.device, checkpoint=a.checkpoint, max_sessions=a.max_sessions,
                       max_cache_mb=a.max_cache_mb, max_image_mp=a.max_image_mp, curve_keys=a.curve_keys,
                       predictor=predictor, max_queue_mb=a.max_queue_mb, max_top_n=a.max_top_n,
                       max_region_mp=a.max_region_mp, log_level=a.log_level, owner_pid=a.owner_pid,
                       test_delay_s=a.test_delay_s)
    validate_config(cfg)
    return cfg


def validate_config(cfg: DaemonConfig) -> None:
    """Raise :class:`ConfigError` with a one-line explanation for settings the daemon cannot run with."""
    if not cfg.bind.startswith(("tcp://", "ipc://", "inproc://")):
        raise ConfigError(f"--bind must be a tcp://, ipc:// or inproc:// endpoint, got {cfg.bind!r}")
    if cfg.max_sessions < 1:
        raise ConfigError(f"--max-sessions must be >= 1, got {cfg.max_sessions}")
    if cfg.max_cache_mb < 1:
        raise ConfigError(f"--max-cache-mb must be >= 1, got {cfg.max_cache_mb}")
    if not 0 < cfg.max_image_mp <= MAX_IMAGE_MP:
        raise ConfigError(f"--max-image-mp must be within (0, {MAX_IMAGE_MP:g}] (the model takes sides up to "
                          f"{MAX_SIDE} px), got {cfg.max_image_mp}")
    if cfg.max_queue_mb is not None and cfg.max_queue_mb < 1:
        raise ConfigError(f"--max-queue-mb must be >= 1, got {cfg.max_queue_mb}")
    if not 1 <= cfg.max_top_n <= MAX_TOP_N:
        raise ConfigError(f"--max-top-n must be within 1..{MAX_TOP_N}, got {cfg.max_top_n}")
    if not cfg.max_region_mp > 0:
        raise ConfigError(f"--max-region-mp must be > 0, got {cfg.max_region_mp}")
    if cfg.owner_pid is not None and cfg.owner_pid < 1:
        raise ConfigError(f"--owner-pid must be a process id >= 1, got {cfg.owner_pid}")
    if not 0.0 <= cfg.test_delay_s <= 3600.0:
        raise ConfigError(f"--test-delay-s must be within 0..3600, got {cfg.test_delay_s}")
    dev = cfg.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {dev!r}")
    if cfg.checkpoint is not None and not cfg.checkpoint.is_file():
        raise ConfigError(f"checkpoint not found: {cfg.checkpoint}")
    if cfg.curve_keys is not None:
        secret = cfg.curve_keys / SERVER_SECRET_FILE
        if not secret.is_file():
            raise ConfigError(f"--curve-keys {cfg.curve_keys}: no {SERVER_SECRET_FILE} there "
                              f"(create keys with: clickmatte-keys {cfg.curve_keys})")
        allowed = cfg.curve_keys / AUTHORIZED_DIR
        if not allowed.is_dir() or not any(p.suffix == ".key" for p in allowed.iterdir()):
            raise ConfigError(f"--curve-keys {cfg.curve_keys}: no client public keys in {allowed} "
                              f"(add one with: clickmatte-keys {cfg.curve_keys} --client NAME)")
    elif not is_local_endpoint(cfg.bind):
        raise ConfigError(
            f"refusing to bind {cfg.bind} without encryption: anyone on the network could send images and "
            "read results. Use a loopback address (tcp://127.0.0.1:PORT) or ipc://, or pass --curve-keys DIR "
            "(made by clickmatte-keys) to require CURVE encryption and an allow-list of client keys.")
    if cfg.bind.startswith("ipc://"):
        parent = Path(cfg.bind[len("ipc://"):]).parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(f"--bind {cfg.bind}: folder {parent} does not exist or is not writable")
