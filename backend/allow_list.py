"""The daemon's CURVE allow-list (:class:`AllowList`, a part of ``server.DaemonServer``): the public keys in
``authorized_clients/``, read again when the folder changes (checked every :data:`KEY_CHECK_S`) or on
``request_key_reload`` (SIGHUP)."""
from __future__ import annotations

import logging
import os
import time
from typing import Tuple

from .config import AUTHORIZED_DIR

log = logging.getLogger("clickmatte.daemon")

KEY_CHECK_S = 1.0  # how often the CURVE allow-list folder is checked for changes


def _key_fingerprint(folder: str) -> Tuple[Tuple[str, int, int], ...]:
    try:
        with os.scandir(folder) as it:
            return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in it
                                if e.name.endswith(".key")))
    except OSError:
        return ()


class AllowList:
    """Reloading the allow-list; uses the server's ``config``, ``auth`` (the ZeroMQ authenticator), ``_reload``,
    ``_allowed``, ``_key_state`` and ``_next_key_check``."""

    def request_key_reload(self) -> None:
        """Read ``authorized_clients/`` again at the next turn of the loop (what SIGHUP does)."""
        self._reload.set()

    def _load_keys(self, initial: bool = False) -> None:
        from zmq.auth import load_certificates

        assert self.config.curve_keys is not None and self.auth is not None
        folder = str(self.config.curve_keys / AUTHORIZED_DIR)
        self._key_state = _key_fingerprint(folder)
        try:
            keys = load_certificates(folder)
        except Exception as exc:  # folder gone or unreadable: allow nobody rather than keep revoked keys
            log.error("cannot read the client keys in %s: %s; no client is allowed until it is fixed", folder, exc)
            keys = {}
        allowed = {k.decode("ascii") if isinstance(k, bytes) else str(k) for k in keys}
        self._allowed = allowed
        # the authenticator thread reads its own copy; configure_curve replaces it in one assignment
        self.auth.certs["*"] = dict(keys)
        self.auth.allow_any = False
        if not initial:
            log.info("client keys reloaded from %s: %d allowed", folder, len(allowed))

    def _maybe_reload_keys(self) -> None:
        if self.auth is None:
            return
        now = time.monotonic()
        if not self._reload.is_set() and now < self._next_key_check:
            return
        self._next_key_check = now + KEY_CHECK_S
        folder = str(self.config.curve_keys / AUTHORIZED_DIR)  # type: ignore[operator]
        if self._reload.is_set() or _key_fingerprint(folder) != self._key_state:
            self._reload.clear()
            self._load_keys()
