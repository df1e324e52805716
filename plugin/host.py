"""The editor side of a matting session, as seen by the host-agnostic core.

A ``HostAdapter`` is the only thing the session controller (``controller.py``) knows about the
editor. Krita (``plugin/krita/``) and GIMP (``plugin/gimp/``) each implement one; tests use an
in-memory one (``tests/plugin/fake_host.py``). Standard library only.

Conventions shared by every method:

- Coordinates are full-image pixels of the active layer's image: x right, y down, 0-based,
  pixel centres at integer coordinates (the same convention as the wire protocol).
- Planes (``mask``, ``guide``, ``selection``) are ``bytes`` of length ``width * height``,
  one unsigned byte per pixel, rows top to bottom, no padding (0 = none, 255 = full).
- Adapters may raise ``HostError`` with a message for the user (e.g. an unsupported colour
  model); the controller shows it as the status line and does not crash the editor.
"""
from __future__ import annotations

import abc
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Tuple

FG = "fg"
BG = "bg"
LABELS = (FG, BG)

#: dtype names used in ``ImageData.dtype`` (the wire protocol uses the same names)
DTYPE_SIZES = {"uint8": 1, "uint16": 2}

Box = Tuple[int, int, int, int]  # (x, y, w, h) in full-image pixels


class HostError(Exception):
    """A problem the user must fix in the editor (message is shown as-is in the status line)."""


class Point(NamedTuple):
    """One user point: full-image pixel coordinates and ``"fg"`` / ``"bg"``."""

    x: float
    y: float
    label: str

    @classmethod
    def make(cls, x: float, y: float, label: str) -> "Point":
        """Validated constructor: finite coordinates, ``label`` in ``("fg", "bg")``; else ``ValueError``."""
        xf, yf = float(x), float(y)
        if xf != xf or yf != yf or xf in (float("inf"), float("-inf")) or yf in (float("inf"), float("-inf")):
            raise ValueError(f"point coordinates must be finite, got ({x!r}, {y!r})")
        if label not in LABELS:
            raise ValueError(f"point label must be 'fg' or 'bg', got {label!r}")
        return cls(xf, yf, label)

    def as_click(self) -> dict:
        """The wire form ``{"x", "y", "label"}``."""
        return {"x": self.x, "y": self.y, "label": self.label}


def points_extend(base: Sequence[Point], points: Sequence[Point]) -> bool:
    """Whether ``points`` holds every point of ``base`` (exactly; in any order) and at least one more: the
    daemon's rule for feeding the previous alpha back (so the editor's mask of ``base`` may go with it)."""
    left = Counter((float(p.x), float(p.y), p.label) for p in points)
    left.subtract(Counter((float(p.x), float(p.y), p.label) for p in base))
    return len(points) > len(base) and all(v >= 0 for v in left.values())


@dataclass(frozen=True)
class ImageData:
    """Pixels of the active layer.

    ``data`` holds ``width * height * channels`` samples of ``dtype`` (``"uint8"`` or ``"uint16"``,
    little-endian), interleaved in ``order`` (e.g. ``"RGBA"``, ``"BGRA"``, ``"RGB"``),
    rows top to bottom, no padding. ``channels == len(order)``.
    """

    width: int
    height: int
    channels: int
    dtype: str
    order: str
    data: bytes

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if self.dtype not in DTYPE_SIZES:
            raise ValueError(f"dtype must be one of {sorted(DTYPE_SIZES)}, got {self.dtype!r}")
        if len(self.order) != self.channels or sorted(set(self.order)) != sorted(self.order):
            raise ValueError(f"order {self.order!r} does not describe {self.channels} distinct channels")
        if self.order not in ("RGB", "BGR", "RGBA", "BGRA"):
            raise ValueError(f"order must be RGB, BGR, RGBA or BGRA, got {self.order!r}")
        need = self.width * self.height * self.channels * DTYPE_SIZES[self.dtype]
        if len(self.data) != need:
            raise ValueError(
                f"{self.width}x{self.height}x{self.channels} {self.dtype} needs {need} bytes, got {len(self.data)}"
            )


class HostAdapter(abc.ABC):
    """What the controller needs from an editor. Implementations must not block for long.

    Required: ``read_image``, ``read_points``, ``write_points``, ``write_mask``, ``write_guide``,
    ``notify``. The rest have sensible defaults.
    """

    # -- reading --------------------------------------------------------------------------
    @abc.abstractmethod
    def read_image(self) -> ImageData:
        """Pixels of the active layer (the layer the mask goes on), at full size.

        Raise ``HostError`` when there is no suitable layer or its colour model is unsupported.
        """

    @abc.abstractmethod
    def read_points(self) -> list[Point]:
        """The points currently stored in the document (e.g. shapes on a points layer).

        The controller polls this from ``tick()``; when it differs from the controller's list the
        user edited the points in the editor and the controller adopts them (one undo step).
        """

    def read_selection(self) -> Optional[bytes]:
        """The current selection as a ``width * height`` plane (0 = outside), or ``None`` if none."""
        return None

    def read_mask(self) -> Optional[bytes]:
        """The layer's ClickMatte mask as a ``width * height`` plane, or ``None`` when it has none.
        Default: none (hosts that can read their mask back override it)."""
        return None

    def read_mask_points(self) -> Optional[list]:
        """The points (a list of ``Point``) of the full matte the layer's mask holds, when the document
        records them with the mask (GIMP: the mask's parasite), else None. Default: None."""
        return None

    def document_key(self) -> str:
        """An identifier of the current document + layer (a new one starts a new session)."""
        return "default"

    # -- writing --------------------------------------------------------------------------
    @abc.abstractmethod
    def write_points(self, points: Sequence[Point]) -> None:
        """Show ``points`` in the document (replacing what the previous call showed)."""

    @abc.abstractmethod
    def write_mask(self, alpha: bytes, width: int, height: int, boxes: Optional[Sequence[Box]] = None,
                   points: Optional[Sequence[Point]] = None) -> None:
        """Set the layer's mask to ``alpha`` (``width * height`` u8 plane, full image size).

        ``boxes`` (``[(x, y, w, h)]``) lists the only rectangles whose values changed since the
        previous call, when known (after a refine); ``None`` means "anything may have changed".
        Adapters may use it to touch only those areas. Never modify the layer's own pixels.
        ``points``: given for a full-size matte (not a preview, not a refine): the points it was
        computed from; hosts that can keep them with the mask (``read_mask_points``).
        """

    @abc.abstractmethod
    def write_guide(self, uncertainty: bytes, width: int, height: int) -> None:
        """Show the uncertainty (``width * height`` u8 plane: 0 = sure, 255 = very unsure) as a guide.

        255 means a Laplace scale sigma >= 0.25 (in alpha units), linear below.

        ``raster.guide_rgba()`` turns it into colour-mapped, semi-transparent RGBA.
        """

    def write_foreground(self, rgb: bytes, alpha: bytes, width: int, height: int) -> str:
        """Add a new layer holding ``rgb`` (``width * height * 3`` bytes, RGB u8: the decontaminated
        foreground colours) with ``alpha`` as its mask, above the matted layer, which stays unchanged
        and selected. Returns the new layer's name. Default: ``HostError`` (not supported)."""
        raise HostError("this editor cannot add a decontaminated layer")

    def begin_undo_step(self, name: str) -> None:
        """The mask and guide writes that follow, up to ``end_undo_step()``, are one user action (a Matte
        or a Refine, named ``name``): hosts that can make them one step of the editor's undo. Previews
        are never inside a step. Default: nothing."""

    def end_undo_step(self) -> None:
        """Closes the step ``begin_undo_step()`` opened (called once per step, also after an error)."""

    def sync_outputs(self) -> str:
        """Polled by the controller while idle, after the editor's own undo/redo may have changed the
        outputs: ``"other"`` when it put back another mask than the last one written (the controller then
        sets its matte aside), ``"latest"`` when the last one written is back (a redo: the controller takes
        its matte up again), ``""`` when nothing changed. Default: ``""``."""
        return ""

    def clear_outputs(self) -> None:
        """Remove the mask and the guide (after a reset). Default: nothing."""

    @abc.abstractmethod
    def notify(self, message: str, level: str = "info") -> None:
        """Show a status line. ``level`` is ``"info"``, ``"busy"``, ``"warning"`` or ``"error"``."""

    def progress(self, busy: bool) -> None:
        """A request is (``True``) or is no longer (``False``) in flight. Default: nothing."""

    def resize_plane(self, plane: bytes, width: int, height: int, new_width: int, new_height: int) -> bytes:
        """Scale a u8 plane (previews come back smaller than the image). Default: nearest neighbour
        in pure Python (``raster.resize_nearest``); hosts with a fast scaler (Qt, GEGL) may override."""
        from .raster import resize_nearest

        return resize_nearest(plane, width, height, new_width, new_height)
