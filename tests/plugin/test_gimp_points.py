"""The GIMP adapter's pure parts: path names -> labels, bezier anchors, layer offsets, image types."""
from __future__ import annotations

import pytest

from clickmatte.plugin.gimp.formats import pixel_format
from clickmatte.plugin.gimp.points import NO_POINTS_MESSAGE, bezier_anchors, label_for_path_name, points_from_paths
from clickmatte.plugin.host import HostError, Point


@pytest.mark.parametrize("name,label", [
    ("fg", "fg"), ("FG", "fg"), ("fg hair", "fg"), ("Foreground", "fg"), ("  fg-2", "fg"),
    ("bg", "bg"), ("BG 3", "bg"), ("background", "bg"), ("Background copy", "bg"),
    ("outline", None), ("Path", None), ("", None), ("f g", None), ("my fg", None),
])
def test_label_for_path_name(name: str, label: str) -> None:
    assert label_for_path_name(name) == label


def test_label_for_path_name_rejects_non_strings() -> None:
    with pytest.raises(ValueError):
        label_for_path_name(None)  # type: ignore[arg-type]


def test_bezier_anchors_take_the_middle_of_each_triplet() -> None:
    # (in-handle, anchor, out-handle) per anchor, as Gimp.Path.stroke_get_points returns them
    ctrl = [0, 0, 10, 20, 1, 1, 5, 5, 30.5, 40.25, 6, 6]
    assert bezier_anchors(ctrl) == [(10.0, 20.0), (30.5, 40.25)]
    assert bezier_anchors([]) == []
    with pytest.raises(ValueError, match="groups of 6"):
        bezier_anchors([1, 2, 3, 4])


def test_points_from_paths_labels_shifts_and_ignores_other_paths() -> None:
    paths = [("Background", [(5, 5)]), ("outline", [(50, 50)]), ("fg", [(40, 30), (42, 31)])]
    points, warnings = points_from_paths(paths, offset=(2, 3), size=(100, 80))
    assert points == [Point(3.0, 2.0, "bg"), Point(38.0, 27.0, "fg"), Point(40.0, 28.0, "fg")]
    assert warnings == []


def test_points_outside_the_layer_are_dropped_with_a_warning() -> None:
    points, warnings = points_from_paths([("fg", [(10, 10), (500, 10)]), ("bg", [(-1, 0)])], size=(64, 48))
    assert points == [Point(10.0, 10.0, "fg")]
    assert warnings == ["2 point(s) outside the active layer were ignored"]


def test_no_points_is_a_clear_host_error() -> None:
    with pytest.raises(HostError) as info:
        points_from_paths([("outline", [(1, 1)]), ("fg", [])])
    assert str(info.value) == NO_POINTS_MESSAGE
    assert '"fg"' in NO_POINTS_MESSAGE and '"bg"' in NO_POINTS_MESSAGE
    with pytest.raises(HostError, match="outside the active layer"):
        points_from_paths([("fg", [(100, 100)])], size=(10, 10))


def test_background_only_warns_that_the_matte_will_be_empty() -> None:
    points, warnings = points_from_paths([("bg", [(1, 1)])])
    assert [p.label for p in points] == ["bg"]
    assert any("no foreground" in w for w in warnings)


@pytest.mark.parametrize("precision,expected", [
    ("u8-non-linear", ("R'G'B' u8", "uint8")), ("u8-linear", ("R'G'B' u8", "uint8")),
    ("u16-linear", ("R'G'B' u16", "uint16")), ("u32-perceptual", ("R'G'B' u16", "uint16")),
    ("half-linear", ("R'G'B' u16", "uint16")), ("float-non-linear", ("R'G'B' u16", "uint16")),
    ("double-linear", ("R'G'B' u16", "uint16")),
])
def test_pixel_format_for_rgb_precisions(precision: str, expected: tuple) -> None:
    assert pixel_format("rgb", precision) == expected


@pytest.mark.parametrize("base,word", [("gray", "grayscale"), ("indexed", "indexed")])
def test_other_image_types_get_a_clear_message(base: str, word: str) -> None:
    with pytest.raises(HostError) as info:
        pixel_format(base, "u8-non-linear")
    assert word in str(info.value) and "Image > Mode > RGB" in str(info.value)


def test_unknown_precision_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="precision"):
        pixel_format("rgb", "u12-linear")
