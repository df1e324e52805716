"""Krita adapter pieces that need no Krita: canvas -> image mapping and the points layer's shapes."""
from __future__ import annotations

import math
import re

import pytest

from clickmatte.plugin.host import Point
from clickmatte.plugin.krita import geometry as G
from clickmatte.plugin.krita import points_layer as PL


def view(zoom: float, angle_deg: float, mirror: bool, pan: tuple, dpi: float = 72.0) -> tuple:
    """A Krita-like view: flake (pt) -> image (px) is the resolution; flake -> widget is the image
    in pixels, mirrored, rotated, zoomed and panned."""
    s = dpi / 72.0
    f2i = G.affine(s, 0, 0, s, 0, 0)
    a = math.radians(angle_deg)
    m = G.affine(-1 if mirror else 1, 0, 0, 1, 0, 0)
    r = G.affine(math.cos(a), math.sin(a), -math.sin(a), math.cos(a), 0, 0)
    z = G.affine(zoom, 0, 0, zoom, pan[0], pan[1])
    f2c = G.multiply(G.multiply(G.multiply(f2i, m), r), z)
    return f2c, f2i


@pytest.mark.parametrize("zoom,angle,mirror,dpi", [(1, 0, False, 72), (2.5, 0, False, 300), (0.33, 30, False, 72),
                                                   (1.7, -75, True, 150), (4, 180, True, 72)])
def test_widget_to_image_inverts_the_view(zoom, angle, mirror, dpi) -> None:
    f2c, f2i = view(zoom, angle, mirror, (123.0, -45.0), dpi)
    f2w_img = G.multiply(G.invert(f2i), f2c)  # image px -> widget px
    for ix, iy in [(0, 0), (10.5, 20.25), (640, 480)]:
        wx, wy = G.map_point(f2w_img, ix, iy)
        x, y = G.widget_to_image(f2c, f2i, wx, wy)
        assert x == pytest.approx(ix, abs=1e-6) and y == pytest.approx(iy, abs=1e-6)
    r = G.widget_radius_to_image(f2c, f2i, 50, 60, 8.0)
    assert r == pytest.approx(8.0 / zoom, rel=1e-6)


def test_qtransform_order_and_singular() -> None:
    class QT:  # duck-typed QTransform
        def __getattr__(self, name):
            vals = dict(m11=2, m12=0, m13=0, m21=0, m22=3, m23=0, m31=5, m32=7, m33=1)
            return lambda: vals[name]

    m = G.from_qtransform(QT())
    assert G.map_point(m, 1, 1) == (7.0, 10.0)
    with pytest.raises(ValueError):
        G.invert(G.affine(0, 0, 0, 0, 1, 1))


def test_points_svg_round_trip() -> None:
    pts = [Point(10.0, 20.0, "fg"), Point(99.0, 5.0, "bg")]
    for dpi in (72.0, 300.0):
        svg = PL.points_svg(pts, 128, 96, dpi, dpi)
        assert svg.count("<path") == 2 and 'id="fg-1"' in svg and 'id="bg-2"' in svg
        assert "A " in svg.split('id="fg-1"')[1].split("/>")[0]  # circle arcs for fg
        r = PL.marker_radius(128, 96) * 72.0 / dpi
        for p in pts:  # a marker's bounding box centre (pt) maps back to the point
            cx, cy = (p.x + 0.5) * 72.0 / dpi, (p.y + 0.5) * 72.0 / dpi
            back = PL.shape_point((cx - r, cy - r, 2 * r, 2 * r), f"{p.label}-1", "KoPathShape", dpi, dpi)
            assert back == Point(pytest.approx(p.x), pytest.approx(p.y), p.label)
        m = re.search(r'width="([\d.]+)pt"', svg)
        assert float(m.group(1)) == pytest.approx(128 * 72.0 / dpi, abs=1e-3)


def test_shape_labels_for_user_drawn_shapes() -> None:
    assert PL.shape_label("bg-3", "KoPathShape") == "bg"
    assert PL.shape_label("Foreground", "RectangleShape") == "fg"
    assert PL.shape_label("", "RectangleShape") == "bg"
    assert PL.shape_label("ellipse1", "EllipseShape") == "fg"
    assert PL.shape_label("", "KoPathShape", '<rect id="shape0" fill="#00ff00" d="M0 0"/>') == "bg"
    assert PL.shape_label("", "KoPathShape", '<path fill="#e02020" stroke="#000000"/>') == "bg"
    assert PL.shape_label("", "KoPathShape", '<path fill="#20e020" stroke="#ff0000"/>') == "fg"
    assert PL.shape_label("", "KoPathShape", '<path stroke="#ff0000"/>') == "bg"
    assert PL.shape_label("fg-2", "KoPathShape", '<rect fill="#ff0000"/>') == "fg"
    assert PL.inside([Point(-3, 4, "fg"), Point(5, 5, "bg")], 10, 10) == [Point(5, 5, "bg")]
