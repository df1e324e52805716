"""``clickmatte-daemon``: serve the matting model over ZeroMQ (protocol ``clickmatte/1``).

``clickmatte-daemon [--bind tcp://127.0.0.1:5557] [--device auto|cpu|cuda] [--checkpoint PATH]
[--max-sessions N] [--max-cache-mb M] [--max-image-mp P] [--max-queue-mb Q] [--max-top-n N]
[--max-region-mp R] [--curve-keys DIR] [--owner-pid PID] [--test-delay-s S]``

``--owner-pid PID``: exit (as on SIGTERM) once process PID is gone, so a daemon an editor plugin
started goes with the editor. ``--test-delay-s S`` is for tests only: every predict and refine
waits S seconds first, as a slow model would (off by default).

Logs go to stderr; the line ``clickmatte-daemon ready on ENDPOINT`` marks the start of serving.
A configuration it cannot run with (port in use, checkpoint missing, CUDA requested but absent,
non-loopback address without ``--curve-keys``) prints one ``clickmatte-daemon: error: ...`` line
and exits with status 2. SIGINT / SIGTERM finish the request in progress and exit 0. With
``--curve-keys``, the allow-list ``DIR/authorized_clients/`` is read again within a second of a
change (a key added, or deleted to revoke it), and at once on SIGHUP: a revoked client gets no new
connection and nothing more on the one it has.
"""
from __future__ import annotations

import logging
import signal
import sys
from typing import Any, Optional, Sequence

from .config import ConfigError, parse_config
from .server import BindError, DaemonServer

log = logging.getLogger("clickmatte.daemon")


def _fail(message: str) -> int:
    print(f"clickmatte-daemon: error: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        cfg = parse_config(argv)
    except ConfigError as exc:
        return _fail(str(exc))
    logging.basicConfig(level=getattr(logging, cfg.log_level), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = DaemonServer(cfg)
    try:
        endpoint = server.bind()
    except BindError as exc:
        return _fail(str(exc))
    except Exception as exc:  # e.g. unreadable key files
        return _fail(f"cannot set up {cfg.bind}: {type(exc).__name__}: {exc}")

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        server.stop.set()

    def on_hup(signum: int, _frame: Any) -> None:
        log.info("signal %d: reloading the client keys", signum)
        server.request_key_reload()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "SIGHUP"):
        old[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    try:
        try:
            server.engine.load()
        except Exception as exc:  # CUDA absent, corrupt checkpoint, ...
            return _fail(f"cannot load the model: {exc}")
        if server.stop.is_set():
            return 0
        log.info("clickmatte-daemon ready on %s (device %s%s)", endpoint, server.engine.device,
                 ", CURVE" if cfg.curve_keys else "")
        server.serve()
        log.info("stopped after %d requests (%d errors, %d superseded, %d refused at admission)",
                 server.stats["requests"], server.stats["errors"], server.stats["superseded"],
                 server.stats["refused"])
        return 0
    finally:
        server.close()
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
