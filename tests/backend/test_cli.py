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
    assert info["protocol"] == "1.4" and info["device"] == "cpu" and info["limits"]["max_sessions"] == 6


# -- all or nothing: each bad input exits 1 with one line and leaves the output folder as it was ----------
def snapshot(folder: Path) -> dict:
    """Every file and folder below ``folder`` with its bytes (None for folders); {} if it does not exist."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def run_cli(argv, capsys) -> tuple:
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err.strip().splitlines()


def nobody_args() -> list:
    # no daemon there and none started: an error about the inputs proves it came before any model work
    return ["--fg", "60,45", "--endpoint", free_tcp_endpoint(), "--probe-ms", "200", "--no-spawn", "--quiet"]


def assert_refused(argv, capsys, folder: Path, words: str) -> None:
    before = snapshot(folder)
    rc, lines = run_cli(argv, capsys)
    assert rc == 1
    assert len(lines) == 1 and lines[0].startswith("clickmatte: error:"), lines
    assert words in lines[0], lines
    assert "no daemon answered" not in lines[0]
    assert snapshot(folder) == before


def test_an_input_inside_out_is_never_overwritten(tmp_path, make_image, capsys):
    out = tmp_path / "out"
    out.mkdir()
    img = out / "alpha.png"  # the input is named like an output, in the output folder
    Image.fromarray(make_image(120, 90, seed=7)).save(img)
    (out / "notes.txt").write_text("keep me")
    assert_refused(["matte", str(img), *nobody_args(), "--out", str(out)], capsys, out, "would overwrite the input")
    # spelt another way (relative, with ..), still the same file
    spelt = out / ".." / "out"
    assert_refused(["matte", str(img), *nobody_args(), "--out", str(spelt)], capsys, out, "would overwrite")


def test_a_clicks_file_inside_out_is_never_overwritten(tmp_path, picture, capsys):
    out = tmp_path / "out"
    out.mkdir()
    clicks = out / "preview.png"
    clicks.write_text(json.dumps([{"x": 60, "y": 45, "label": "fg"}]))
    argv = ["matte", str(picture), "--clicks", str(clicks), "--endpoint", free_tcp_endpoint(), "--probe-ms", "200",
            "--no-spawn", "--out", str(out)]
    assert_refused(argv, capsys, out, "would overwrite the input")


def test_out_that_is_a_file_or_unwritable_is_refused_before_model_work(tmp_path, picture, capsys):
    f = tmp_path / "results.png"
    f.write_bytes(b"not a folder")
    assert_refused(["matte", str(picture), *nobody_args(), "--out", str(f)], capsys, tmp_path, "is a file, not a folder")
    assert_refused(["matte", str(picture), *nobody_args(), "--out", str(f / "sub")], capsys, tmp_path,
                   "is not a folder")
    assert_refused(["matte", str(picture), *nobody_args(), "--out", "/proc/clickmatte-out"], capsys, tmp_path,
                   "cannot write into /proc")
    out = tmp_path / "out"
    (out / "cutout.png").mkdir(parents=True)  # an output name taken by a folder
    assert_refused(["matte", str(picture), *nobody_args(), "--out", str(out)], capsys, out, "is a folder")


def test_write_outputs_is_all_or_nothing(tmp_path):
    from clickmatte.backend.cli import write_outputs

    out = tmp_path / "out"
    out.mkdir()
    (out / "alpha.png").write_bytes(b"old alpha")
    before = snapshot(out)
    good = Image.fromarray(np.zeros((4, 4), np.uint8))
    unsavable = Image.new("F", (4, 4))  # PNG cannot hold 32-bit float: the third save fails
    with pytest.raises(OSError):
        write_outputs(out, {"alpha.png": good, "uncertainty.png": good, "cutout.png": unsavable, "preview.png": good})
    assert snapshot(out) == before  # no new file, no temporary left, the old alpha kept
    fresh = tmp_path / "fresh"
    with pytest.raises(OSError):
        write_outputs(fresh, {"alpha.png": good, "cutout.png": unsavable})
    assert not fresh.exists()  # a folder made for the call goes again
    write_outputs(out, {"alpha.png": good, "preview.png": good})
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "preview.png"]
    assert np.array_equal(np.asarray(Image.open(out / "alpha.png")), np.zeros((4, 4), np.uint8))


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path, tcp_daemon, capsys):
    from clickmatte.backend.cli import read_rgb

    ramp = np.tile(np.linspace(0, 65535, 120).round().astype(np.uint16), (90, 1))
    p = tmp_path / "gray16.png"
    Image.fromarray(ramp).save(p)
    assert Image.open(p).mode.startswith("I;16")
    rgb = read_rgb(p)
    assert rgb.shape == (90, 120, 3) and rgb.dtype == np.uint8
    expect = np.rint(ramp.astype(np.float64) * 255 / 65535)
    assert np.abs(rgb[..., 0].astype(np.float64) - expect).max() <= 0.5 + 1e-9
    assert rgb[:, 0].max() == 0 and rgb[:, -1].min() == 255 and 100 < rgb[0, 60, 0] < 155  # not white everywhere
    out = tmp_path / "out"
    rc = main(["matte", str(p), "--fg", "60,45", "--refine-top-n", "0", "--endpoint", tcp_daemon.endpoint,
               "--no-spawn", "--quiet", "--out", str(out)])
    assert rc == 0
    check_outputs(out, 120, 90)


def test_other_modes_are_converted_or_refused(tmp_path, capsys):
    from clickmatte.backend.cli import read_rgb

    rgb = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for mode in ("L", "P", "RGBA", "LA", "CMYK", "1"):
        p = tmp_path / f"m_{mode}.{'tif' if mode == 'CMYK' else 'png'}"
        Image.fromarray(rgb).convert(mode).save(p)
        got = read_rgb(p)
        assert got.shape == (40, 50, 3) and got.dtype == np.uint8, mode
        assert np.array_equal(got, np.asarray(Image.open(p).convert("RGB"))), mode
    f32 = tmp_path / "float.tif"
    Image.fromarray(np.full((40, 50), 0.5, np.float32)).save(f32)
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(["matte", str(f32), *nobody_args(), "--out", str(out)], capsys, out, "mode F")


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` (8-bit gray) but holds one compressed empty row: what a
    decompression bomb looks like to a reader of the header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("width,height", [(20000, 10000), (10000, 10000), (9000, 8000)])
def test_a_decompression_bomb_is_one_line_naming_the_limit(tmp_path, capsys, width, height):
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, width, height)  # 200 MP (Pillow's error), 100 MP (its warning), 72 MP (ours)
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(["matte", str(bomb), *nobody_args(), "--out", str(out)], capsys, out, "limit of 64 MP")
