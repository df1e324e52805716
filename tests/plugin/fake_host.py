"""An in-memory editor for controller tests: an image, a point list, a selection, and what was written."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from clickmatte.plugin.host import Box, HostAdapter, HostError, ImageData, Point
from clickmatte.plugin.raster import paste, crop


class FakeHost(HostAdapter):
    """Holds one RGBA u8 image; records every mask/guide write and status line.

    ``doc_points`` plays the part of the document's points layer: tests may edit it directly to
    simulate the user moving shapes. ``mask`` is the current mask plane (None until written).
    """

    def __init__(self, image: ImageData) -> None:
        self.image = image
        self.doc_points: List[Point] = []
        self.selection: Optional[bytes] = None
        self.mask: Optional[bytes] = None
        self.guide: Optional[bytes] = None
        self.mask_writes: List[Optional[List[Box]]] = []
        self.guide_writes = 0
        self.messages: List[Tuple[str, str]] = []
        self.busy_changes: List[bool] = []
        self.cleared = 0
        self.fail_read: Optional[str] = None
        self.mask_points: Optional[List[Point]] = None  # the points given with the last full-matte write
        self.keeps_mask_points = False  # True: read_mask_points() answers (like GIMP's mask parasite)
        self.undo_steps: List[Tuple[str, int, int]] = []  # (name, mask writes, guide writes) in each step
        self._step: Optional[Tuple[str, int, int]] = None
        self.undo_events: List[str] = []  # what sync_outputs() answers next ("other" / "latest"), in turn

    def read_image(self) -> ImageData:
        if self.fail_read:
            raise HostError(self.fail_read)
        return self.image

    def read_points(self) -> List[Point]:
        return list(self.doc_points)

    def read_selection(self) -> Optional[bytes]:
        return self.selection

    def write_points(self, points: Sequence[Point]) -> None:
        self.doc_points = list(points)

    def read_mask(self) -> Optional[bytes]:
        return self.mask

    def read_mask_points(self) -> Optional[List[Point]]:
        return list(self.mask_points) if self.keeps_mask_points and self.mask_points is not None else None

    def begin_undo_step(self, name: str) -> None:
        assert self._step is None, "undo steps do not nest"
        self._step = (name, len(self.mask_writes), self.guide_writes)

    def end_undo_step(self) -> None:
        assert self._step is not None, "end_undo_step without begin"
        name, m0, g0 = self._step
        self.undo_steps.append((name, len(self.mask_writes) - m0, self.guide_writes - g0))
        self._step = None

    def sync_outputs(self) -> str:
        return self.undo_events.pop(0) if self.undo_events else ""

    def write_mask(self, alpha: bytes, width: int, height: int, boxes: Optional[Sequence[Box]] = None,
                   points: Optional[Sequence[Point]] = None) -> None:
        assert (width, height) == (self.image.width, self.image.height)
        assert len(alpha) == width * height
        if boxes is None or self.mask is None:
            self.mask = bytes(alpha)
        else:
            m = self.mask
            for b in boxes:  # like a real adapter: touch only the given boxes
                m = paste(m, width, b, crop(alpha, width, b))
            self.mask = m
        self.mask_writes.append(None if boxes is None else list(boxes))
        if boxes is None:
            self.mask_points = list(points) if points is not None else None

    def write_guide(self, uncertainty: bytes, width: int, height: int) -> None:
        assert len(uncertainty) == width * height
        self.guide = bytes(uncertainty)
        self.guide_writes += 1

    def clear_outputs(self) -> None:
        self.mask = self.guide = self.mask_points = None
        self.cleared += 1

    def notify(self, message: str, level: str = "info") -> None:
        self.messages.append((level, message))

    def progress(self, busy: bool) -> None:
        self.busy_changes.append(busy)

    # helpers for tests
    def mask_at(self, x: int, y: int) -> int:
        assert self.mask is not None
        return self.mask[y * self.image.width + x]

    @property
    def last_message(self) -> str:
        return self.messages[-1][1] if self.messages else ""
