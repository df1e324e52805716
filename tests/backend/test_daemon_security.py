"""CURVE: allowed clients work, unknown keys and plain clients get nothing; keys command layout."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import zmq

from clickmatte.backend.config import ConfigError, DaemonConfig, is_local_endpoint, validate_config
from clickmatte.backend.embedded import free_tcp_endpoint
from clickmatte.backend.keys import create_keys, main as keys_main
from clickmatte.plugin.client import DaemonClient, DaemonTimeout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("curve")
    create_keys(d / "server", ["alice", "bob"])
    create_keys(d / "stranger", ["mallory"])  # a valid key pair the daemon never heard of
    return d


@pytest.fixture(scope="module")
def curve_daemon(keys):
    if not zmq.has("curve"):
        pytest.skip("this libzmq has no CURVE support")
    with tempfile.TemporaryDirectory(prefix="cm-curve-") as tmp:
        log = str(Path(tmp) / "daemon.log")
        endpoint = free_tcp_endpoint()
        proc = None
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "clickmatte.backend.daemon", "--bind", endpoint, "--device", "cpu",
                 "--curve-keys", str(keys / "server")],
                stderr=open(log, "w"), stdout=subprocess.DEVNULL)
            c = DaemonClient(endpoint, timeout_ms=240000, retries=0, server_key=keys / "server" / "server.key",
                             client_keys=keys / "server" / "clients" / "alice.key_secret")
            c.hello()  # waits for the model to load
            c.disconnect()
            yield endpoint
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()


def test_keys_command_layout(tmp_path, capsys):
    assert keys_main([str(tmp_path / "k"), "--client", "bob", "--client", "eve"]) == 0
    k = tmp_path / "k"
    for rel in ["server.key", "server.key_secret", "clients/bob.key", "clients/bob.key_secret",
                "clients/eve.key_secret", "authorized_clients/bob.key", "authorized_clients/eve.key"]:
        assert (k / rel).is_file(), rel
    assert (k / "server.key_secret").stat().st_mode & 0o077 == 0
    before = (k / "server.key_secret").read_bytes()
    assert keys_main([str(k)]) == 0  # adds 'client', keeps the server pair
    assert (k / "server.key_secret").read_bytes() == before
    assert keys_main([str(k), "--client", "../evil"]) == 2


def test_allowed_client_works_and_unknown_key_gets_nothing(curve_daemon, keys, make_image):
    good = DaemonClient(curve_daemon, timeout_ms=60000, retries=0, server_key=keys / "server" / "server.key",
                        client_keys=keys / "server" / "clients" / "alice.key_secret")
    bad = DaemonClient(curve_daemon, timeout_ms=1500, retries=1, server_key=keys / "server" / "server.key",
                       client_keys=keys / "stranger" / "clients" / "mallory.key_secret")
    plain = DaemonClient(curve_daemon, timeout_ms=1500, retries=0)
    try:
        assert good.hello().protocol == "1.4"
        with pytest.raises(DaemonTimeout):
            bad.hello()
        with pytest.raises(DaemonTimeout):
            plain.hello()
        s = good.open(make_image(64, 48).tobytes(), 64, 48, 3, "uint8", "RGB")
        m = good.predict(s.session, [{"x": 32, "y": 24, "label": "fg"}])
        assert (m.width, m.height) == (64, 48)
        with pytest.raises(DaemonTimeout):  # still nothing for the stranger...
            bad.close(s.session)
        assert good.close(s.session) is True  # ...whose close never reached the daemon
    finally:
        for c in (good, bad, plain):
            c.disconnect()


@pytest.mark.parametrize("endpoint,local", [
    ("tcp://127.0.0.1:5557", True), ("tcp://127.5.0.1:1", True), ("tcp://localhost:5557", True),
    ("tcp://[::1]:5557", True), ("ipc:///tmp/x.sock", True), ("tcp://0.0.0.0:5557", False),
    ("tcp://*:5557", False), ("tcp://192.168.1.4:5557", False), ("tcp://eth0:5557", False),
])
def test_loopback_rule(endpoint, local):
    assert is_local_endpoint(endpoint) is local


def test_non_loopback_without_keys_is_refused_with_an_explanation(tmp_path):
    with pytest.raises(ConfigError, match="curve-keys"):
        validate_config(DaemonConfig(bind="tcp://0.0.0.0:5557"))
    r = subprocess.run([sys.executable, "-m", "clickmatte.backend.daemon", "--bind", "tcp://0.0.0.0:5599"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to bind" in lines[0] and "--curve-keys" in lines[0]
    with pytest.raises(ConfigError, match="server.key_secret"):
        validate_config(DaemonConfig(bind="tcp://0.0.0.0:5557", curve_keys=tmp_path))


def _client(endpoint, keys, name, timeout_ms):
    return DaemonClient(endpoint, timeout_ms=timeout_ms, retries=0, server_key=keys / "server" / "server.key",
                        client_keys=keys / "server" / "clients" / f"{name}.key_secret")


def test_a_deleted_client_key_is_refused_without_a_restart(curve_daemon, keys):
    """keys.py: delete authorized_clients/NAME.key to revoke NAME; the daemon notices within a second."""
    authorized = keys / "server" / "authorized_clients" / "bob.key"
    saved = keys / "bob.key.saved"
    shutil.copyfile(authorized, saved)
    bob = _client(curve_daemon, keys, "bob", 30000)
    try:
        assert bob.hello().protocol == "1.4"  # allowed, connected
        authorized.unlink()
        time.sleep(2.5)  # the allow-list is checked every second
        fresh = _client(curve_daemon, keys, "bob", 1500)
        try:
            with pytest.raises(DaemonTimeout):  # a new connection is refused
                fresh.hello()
        finally:
            fresh.disconnect()
        bob.timeout_ms = 1500
        with pytest.raises(DaemonTimeout):  # and the connection it had gets nothing more
            bob.hello()
        alice = _client(curve_daemon, keys, "alice", 30000)
        try:
            assert alice.hello().protocol == "1.4"  # the others are not affected
        finally:
            alice.disconnect()
    finally:
        bob.disconnect()
        shutil.copyfile(saved, authorized)  # allowed again: answered again, still without a restart
    time.sleep(2.5)
    again = _client(curve_daemon, keys, "bob", 30000)
    try:
        assert again.hello().protocol == "1.4"
    finally:
        again.disconnect()


def test_hello_shows_the_model_name_and_digest_not_server_paths(curve_daemon, keys):
    import hashlib

    from clickmatte.model import DEFAULT_CHECKPOINT

    c = _client(curve_daemon, keys, "alice", 30000)
    try:
        info = c.hello()
    finally:
        c.disconnect()
    assert info.model["name"].startswith("clickmatte")
    digest = "sha256:" + hashlib.sha256(Path(DEFAULT_CHECKPOINT).read_bytes()).hexdigest()
    assert info.model["digest"] == digest
    texts = [str(v) for v in list(info.model.values()) + list(info.limits.values())]
    assert not any("/" in t or "\\" in t for t in texts), info.model
    assert str(Path(DEFAULT_CHECKPOINT).parent) not in str(info.header)
