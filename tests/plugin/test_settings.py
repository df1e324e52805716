"""Plugin settings: JSON in a config folder, validated, never crashing the editor on a bad file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from clickmatte.plugin import settings as S


def test_defaults_save_load(tmp_path: Path) -> None:
    s = S.Settings(endpoint="tcp://10.0.0.5:6000", top_n=4, live=True)
    path = S.save(s, tmp_path / "cfg" / "plugin.json")
    loaded = S.load(path, env={})
    assert loaded == s and loaded.problem == ""
    assert S.load(tmp_path / "missing.json", env={}) == S.Settings()


def test_env_overrides_endpoint(tmp_path: Path) -> None:
    s = S.load(tmp_path / "none.json", env={"CLICKMATTE_ENDPOINT": "tcp://127.0.0.1:7000"})
    assert s.endpoint == "tcp://127.0.0.1:7000"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"top_n": -3}', '{"live": "yes"}', '{"timeout_s": "x"}'])
def test_bad_file_gives_defaults_and_a_problem(tmp_path: Path, content: str) -> None:
    p = tmp_path / "plugin.json"
    p.write_text(content)
    s = S.load(p, env={})
    assert s == S.Settings() and "ignored" in s.problem
    assert p.read_text() == content  # left untouched


def test_validate_refuses_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        S.save(S.Settings(endpoint="localhost"), tmp_path / "x.json")
    with pytest.raises(ValueError):
        S.Settings(guide_opacity=101).validate()
    assert not (tmp_path / "x.json").exists()


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    p = tmp_path / "plugin.json"
    p.write_text(json.dumps({"top_n": 3, "future_option": 1}))
    assert S.load(p, env={}).top_n == 3


def test_config_dir_per_platform(tmp_path: Path) -> None:
    assert S.config_dir({}, "linux", tmp_path) == tmp_path / ".config" / "clickmatte"
    assert S.config_dir({"XDG_CONFIG_HOME": "/x"}, "linux", tmp_path) == Path("/x/clickmatte")
    assert S.config_dir({"APPDATA": "C:/R"}, "win32", tmp_path) == Path("C:/R/clickmatte")
    assert S.config_dir({}, "darwin", tmp_path) == tmp_path / "Library/Application Support/clickmatte"
    assert S.config_dir({"CLICKMATTE_CONFIG_DIR": "/c"}, "linux", tmp_path) == Path("/c")
