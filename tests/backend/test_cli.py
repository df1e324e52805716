"""``clickmatte matte`` against a running daemon and with a daemon started for the call."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clickmatte.backend.cli import load_clicks_file, main, parse_point
from clickmatte.backend.embedded import free_tcp_endpoint


@pytest.fixture
def picture(tmp_path, make_image) -> Path:
    p = tmp_path / "pic.png"
    Image.fromarray(make_image(120, 90, seed=7)).save(p)
    return p


def check_outputs(out: Path, w: int, h: int) -> None:
    alpha = np.asarray(Image.open(out / "alpha.png"))
    assert alpha.shape == (h, w) and alpha.dtype == np.uint8
    unc = Image.open(out / "uncertainty.png")
    assert unc.mode == "RGB" and unc.size == (w, h)
    cut = Image.open(out / "cutout.png")
    assert cut.mode == "RGBA" and cut.size == (w, h)
    assert np.array_equal(np.asarray(cut)[:, :, 3], alpha)  # the cut-out carries the same alpha
    prev = Image.open(out / "preview.png")
    assert prev.size[1] == h and prev.size[0] == 4 * w + 3 * 4


def test_matte_with_points_through_a_running_daemon(tcp_daemon, picture, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["matte", str(picture), "--fg", "60,45", "--bg", "2,2", "--bg", "117,87",
               "--refine-top-n", "2", "--endpoint", tcp_daemon.endpoint, "--no-spawn", "--out", str(out)])
    assert rc == 0
    check_outputs(out, 120, 90)
    assert "3 clicks" in capsys.readouterr().out


def test_matte_with_a_clicks_file_starts_its_own_daemon(picture, tmp_path, capsys):
    clicks = tmp_path / "clicks.json"
    clicks.write_text(json.dumps({"pic.png": [{"x": 60, "y": 45, "label": "fg"}, {"x": 3, "y": 3, "label": "bg"}]}))
    out = tmp_path / "out2"
    nobody = free_tcp_endpoint()  # nothing listens there
    rc = main(["matte", str(picture), "--clicks", str(clicks), "--refine-top-n", "0", "--endpoint", nobody,
               "--probe-ms", "300", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    check_outputs(out, 120, 90)
    assert "starting one for this call" in capsys.readouterr().err


def test_cutout_has_no_background_halo():
    from clickmatte.backend.cli import cutout_rgba

    # red foreground square on a green background, soft edge: estimated colours stay red, not brown
    h = w = 48
    alpha = np.zeros((h, w), np.float32)
    alpha[12:36, 12:36] = 1.0
    alpha[10:12, 12:36] = 0.5
    fg = np.zeros((h, w, 3)); fg[..., 0] = 1.0
    bg = np.zeros((h, w, 3)); bg[..., 1] = 1.0
    rgb = np.rint((fg * alpha[..., None] + bg * (1 - alpha[..., None])) * 255).astype(np.uint8)
    rgba, est = cutout_rgba(rgb, alpha)
    edge = rgba[10:12, 14:34]
    assert edge[..., 0].min() > 200 and edge[..., 1].max() < 60  # naive rgb would be (128, 128, 0)
    assert np.all(edge[..., 3] == 128)


def test_errors_are_one_line_and_exit_1(tcp_daemon, picture, tmp_path, capsys):
    clicks = tmp_path / "c.json"
    clicks.write_text(json.dumps({"other.png": []}))
    args = ["--endpoint", tcp_daemon.endpoint, "--no-spawn", "--out", str(tmp_path / "o")]
    assert main(["matte", str(picture), "--clicks", str(clicks), *args]) == 1
    assert "no clicks for 'pic.png'" in capsys.readouterr().err
    assert main(["matte", str(picture), *args]) == 1
    assert "no clicks" in capsys.readouterr().err
    assert main(["matte", str(picture), "--fg", "500,5", *args]) == 1
    assert "outside" in capsys.readouterr().err
    assert main(["matte", str(tmp_path / "missing.png"), "--fg", "1,1", *args]) == 1
    assert "cannot read image" in capsys.readouterr().err
    assert main(["matte", str(picture), "--fg", "1,1", "--endpoint", free_tcp_endpoint(), "--probe-ms", "200",
                 "--no-spawn", "--out", str(tmp_path / "o")]) == 1
    assert "no daemon answered" in capsys.readouterr().err


def test_click_parsing(tmp_path):
    assert parse_point("3,4.5", "bg") == {"x": 3.0, "y": 4.5, "label": "bg"}
    for bad in ["3", "a,b", "1,2,3"]:
        with pytest.raises(ValueError):
            parse_point(bad, "fg")
    f = tmp_path / "c.json"
    f.write_text(json.dumps([{"x": 1, "y": 2, "label": "fg"}]))  # a bare list works for any image
    assert load_clicks_file(f, "anything.png") == [{"x": 1, "y": 2, "label": "fg"}]
    f.write_text(json.dumps([{"x": 1, "y": 2, "label": "maybe"}]))
    with pytest.raises(ValueError):
        load_clicks_file(f, "a.png")
    f.write_text("{not json")
    with pytest.raises(ValueError):
        load_clicks_file(f, "a.png")


def test_status_shows_what_the_daemon_reports(tcp_daemon, capsys):
    assert main(["status", "--endpoint", tcp_daemon.endpoint]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["protocol"] == "1.2" and info["device"] == "cpu" and info["limits"]["max_sessions"] == 6
