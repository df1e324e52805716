"""The controller's point list: add, remove, click, undo/redo, reset, and adopting the points the user
edited in the document (:class:`PointEditing`, a part of ``controller.Controller``; it uses the controller's
``host``, ``settings``, status line and job queue)."""
from __future__ import annotations

from typing import List, Optional, Sequence

from .host import BG, FG, HostError, Point
from .jobs import Job

#: how close (image pixels) a host point must be to ours to count as the same point
POINT_TOLERANCE = 0.75


def same_points(a: Sequence[Point], b: Sequence[Point], tol: float = POINT_TOLERANCE) -> bool:
    """Same labels in the same order and coordinates within ``tol`` pixels."""
    return len(a) == len(b) and all(
        p.label == q.label and abs(p.x - q.x) <= tol and abs(p.y - q.y) <= tol for p, q in zip(a, b)
    )


class PointEditing:
    """The point-list half of ``Controller``: every change is one undo step and bumps ``generation``
    (replies for an older generation are dropped)."""

    def set_points(self, points: Sequence[Point], write_host: bool = True) -> None:
        """Replace the point list (one undo step) and react (live preview, status)."""
        pts = [Point.make(p[0], p[1], p[2]) for p in points]
        if same_points(pts, self.points, tol=0.0):
            return
        self._undo.append(list(self.points))
        self._redo.clear()
        self._change_points(pts, write_host)

    def _change_points(self, pts: List[Point], write_host: bool) -> None:
        if self._points_doc is None:
            try:
                self._points_doc = self.host.document_key()
            except HostError:
                pass
        self.points = pts
        self.generation += 1
        if write_host:
            self._writing_points = True  # hosts may run their event loop (and tick()) inside
            try:
                self.host.write_points(self.points)
            except HostError as exc:
                self._notify(str(exc), "error")
            finally:
                self._writing_points = False
        self._points_changed()

    def _points_changed(self) -> None:
        if self.settings.live and self.points:
            self._enqueue(Job("preview"))
        elif self._starting is not None:
            if not self.points:
                self._queue.clear()
            self._notify(self._starting_text(), "busy")  # the model still loads: keep saying so
        elif not self.points:
            self._queue.clear()
            self._notify("no points: click on the image to add some", "info")
        else:
            n_fg = sum(p.label == FG for p in self.points)
            self._notify(f"{n_fg} foreground, {len(self.points) - n_fg} background point(s): press Matte", "info")

    def add_point(self, x: float, y: float, label: str = FG) -> None:
        self.set_points(self.points + [Point.make(x, y, label)])

    def remove_point(self, index: int) -> None:
        if not 0 <= index < len(self.points):
            raise ValueError(f"no point {index} (have {len(self.points)})")
        self.set_points(self.points[:index] + self.points[index + 1:])

    def point_near(self, x: float, y: float, radius: float) -> Optional[int]:
        """Index of the nearest point within ``radius`` image pixels of (x, y), or None."""
        best, best_d = None, radius * radius
        for i, p in enumerate(self.points):
            d = (p.x - x) ** 2 + (p.y - y) ** 2
            if d <= best_d:
                best, best_d = i, d
        return best

    def click(self, x: float, y: float, label: str = FG, radius: float = 6.0) -> None:
        """A click of the point tool: remove the point within ``radius`` pixels, else add one with ``label``."""
        if label not in (FG, BG):
            raise ValueError(f"label must be 'fg' or 'bg', got {label!r}")
        i = self.point_near(x, y, radius)
        if i is not None:
            self.remove_point(i)
        else:
            self.add_point(x, y, label)

    def undo(self) -> bool:
        """Go back to the previous point list; False if there is none."""
        if not self._undo:
            return False
        self._redo.append(list(self.points))
        self._change_points(self._undo.pop(), True)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(list(self.points))
        self._change_points(self._redo.pop(), True)
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def reset(self) -> None:
        """Clear the points (undoable), drop queued work and remove the mask and the guide."""
        self._queue.clear()
        self._end_undo_step()
        if self._job is not None:
            self._job = None
            self._progress(False)
        if self.points:
            self._undo.append(list(self.points))
            self._redo.clear()
        self.points = []
        self.generation += 1
        self.forget_matte()
        self._writing_points = True
        try:
            self.host.write_points([])
            self.host.clear_outputs()
        except HostError as exc:
            self._notify(str(exc), "error")
            return
        finally:
            self._writing_points = False
        self._notify("reset: no points", "info")

    def sync_points(self) -> bool:
        """Adopt the host's points if the user edited them in the document; True if they changed.

        When the host's ``document_key()`` changed (another document or layer), its points are
        taken over without an undo step and the undo history starts afresh.
        """
        if self._writing_points:
            return False
        try:
            doc = self.host.document_key()
            pts = self.host.read_points()
        except HostError:
            return False
        if doc != self._points_doc:
            self._points_doc = doc
            self._undo.clear()
            self._redo.clear()
            self.points = [Point.make(*p) for p in pts]
            self.generation += 1
            self.forget_matte()
            return True
        if same_points(pts, self.points):
            return False
        self._undo.append(list(self.points))
        self._redo.clear()
        self._change_points([Point.make(*p) for p in pts], write_host=False)
        return True

    def set_live(self, live: bool) -> None:
        self.settings.live = bool(live)
        if live and self.points and self._full_generation != self.generation:
            self._enqueue(Job("preview"))
