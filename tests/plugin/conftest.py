"""Shared fixtures for the plugin tests."""
from __future__ import annotations

import os
import tempfile
from typing import Iterator

import pytest

from clickmatte.backend.embedded import free_tcp_endpoint, start_daemon, stop_daemon


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    """A real daemon process (real model, CPU) on a free loopback port, shared by the plugin tests."""
    with tempfile.TemporaryDirectory(prefix="cm-plugin-") as tmp:
        ep = free_tcp_endpoint()
        proc, client = start_daemon(ep, ["--device", "cpu"], os.path.join(tmp, "daemon.log"), startup_timeout_s=300)
        client.disconnect()
        try:
            yield ep
        finally:
            stop_daemon(proc)
