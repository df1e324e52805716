"""Which GIMP images ClickMatte accepts and how their pixels are read (pure Python).

GIMP describes an image by a base type (``Gimp.ImageBaseType``: RGB, GRAY, INDEXED) and a
precision (``Gimp.Precision``: u8/u16/u32/half/float/double, linear/non-linear/perceptual). The
GIMP adapter passes their ``value_nick`` strings here (e.g. ``"rgb"``, ``"u16-non-linear"``).

Pixels always travel as perceptual (gamma-encoded) RGB, the way the network was trained: 8-bit
images as ``"R'G'B' u8"``, every deeper precision as ``"R'G'B' u16"`` (GEGL converts, so 32-bit
float images work too). Masks are written as linear ``"Y u8"`` (a layer mask is linear coverage).
"""
from __future__ import annotations

from typing import Tuple

from ..host import HostError

MASK_FORMAT = "Y u8"
GUIDE_FORMAT = "R'G'B'A u8"
SELECTION_FORMAT = "Y u8"

_TYPE_NAMES = {"gray": "grayscale", "indexed": "indexed"}


def pixel_format(base_type: str, precision: str) -> Tuple[str, str]:
    """``(babl format, dtype)`` used to read an image's pixels: ``("R'G'B' u8", "uint8")`` or ``("R'G'B' u16", "uint16")``.

    ``base_type`` is ``"rgb"``, ``"gray"`` or ``"indexed"``; ``precision`` a ``Gimp.Precision``
    nick such as ``"u8-non-linear"``. Grayscale and indexed images raise ``HostError`` with a
    message telling the user how to convert; an unknown precision raises ``ValueError``.
    """
    bt = str(base_type).lower()
    if bt in _TYPE_NAMES:
        raise HostError(
            f"ClickMatte works on RGB images; this image is {_TYPE_NAMES[bt]}. "
            "Convert it with Image > Mode > RGB, then run ClickMatte again."
        )
    if bt != "rgb":
        raise HostError(f"ClickMatte works on RGB images; this image's type is {base_type!r}.")
    prec = str(precision).lower()
    depth = prec.split("-", 1)[0]
    if depth == "u8":
        return "R'G'B' u8", "uint8"
    if depth in ("u16", "u32", "half", "float", "double"):
        return "R'G'B' u16", "uint16"
    raise ValueError(f"unknown GIMP precision {precision!r}")
