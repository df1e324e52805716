"""``clickmatte-keys DIR [--client NAME ...]``: CURVE key pairs for a daemon reachable over the network.

Layout made in DIR (existing keys are kept unless ``--force``):

- ``server.key`` / ``server.key_secret``: the daemon's pair (``clickmatte-daemon --curve-keys DIR``);
  give ``server.key`` (public) to every client;
- ``clients/NAME.key`` / ``clients/NAME.key_secret``: one pair per client; copy both to that client
  (``DaemonClient(server_key="server.key", client_keys="NAME.key_secret")``);
- ``authorized_clients/NAME.key``: the public keys the daemon allows (delete one to revoke it).

Without ``--client`` a client named ``client`` is made.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from .config import AUTHORIZED_DIR, CLIENTS_DIR, SERVER_PUBLIC_FILE, SERVER_SECRET_FILE


def create_keys(directory: Path, clients: Sequence[str] = ("client",), force: bool = False) -> List[Path]:
    """Create the server pair (if missing or ``force``) and one pair per client name; returns the files written.

    Raises ``ValueError`` for a client name that is not ``[A-Za-z0-9_.-]+``.
    """
    import zmq.auth

    for name in clients:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name in (".", ".."):
            raise ValueError(f"client name must be letters, digits, '_', '.', '-' (1..64), got {name!r}")
    written: List[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    if force or not (directory / SERVER_SECRET_FILE).is_file():
        pub, sec = zmq.auth.create_certificates(str(directory), "server")
        written += [Path(pub), Path(sec)]
    cdir = directory / CLIENTS_DIR
    adir = directory / AUTHORIZED_DIR
    cdir.mkdir(exist_ok=True)
    adir.mkdir(exist_ok=True)
    for name in clients:
        if (cdir / f"{name}.key_secret").is_file() and not force:
            continue
        pub, sec = zmq.auth.create_certificates(str(cdir), name)
        shutil.copyfile(pub, adir / f"{name}.key")
        written += [Path(pub), Path(sec), adir / f"{name}.key"]
    for p in written:
        if p.name.endswith(".key_secret"):
            os.chmod(p, 0o600)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="clickmatte-keys", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory", type=Path)
    ap.add_argument("--client", action="append", default=None, help="client name (repeatable; default 'client')")
    ap.add_argument("--force", action="store_true", help="replace existing key pairs")
    a = ap.parse_args(argv)
    try:
        written = create_keys(a.directory, a.client or ["client"], a.force)
    except (ValueError, OSError) as exc:
        print(f"clickmatte-keys: error: {exc}", file=sys.stderr)
        return 2
    for p in written:
        print(p)
    if not written:
        print(f"keys already present in {a.directory} (use --force to replace)")
    print(f"server public key: {a.directory / SERVER_PUBLIC_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
