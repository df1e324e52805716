"""Krita's undo and redo of a Matte or Refine: :class:`MatteUndo`, held by ``KritaHost``.

What Krita 5.2's Python API offers: ``setPixelData`` writes the paint device directly (no undo step),
adding or removing a node is a step of its own ("Add Layer" / "Remove Layer"), shapes added to a vector
layer are a step ("Create shape"), and there is no undo macro. So a Matte or Refine (``begin`` .. ``end``,
in a view) ends by adding one invisible *matte mark* shape to the points layer (``points_layer.
matte_mark_svg``), which is its undo step, and the mask and guide pixels from before and after it are kept
here (a :class:`MatteStep`). When Ctrl+Z takes a mark away, :meth:`MatteUndo.sync` puts the "before"
pixels back; a mask or guide that did not exist before is hidden instead of removed (removing would be a
new undo step and clear Krita's redo), and counts as absent (:meth:`MatteUndo.present` gives None, so
``read_mask`` gives None) until the next Matte shows it again. When Ctrl+Shift+Z brings the mark back, the
"after" pixels (and visibility) return. Point edits stay their own steps. The first Matte on a layer also
adds the mask and the guide nodes ("Add Layer" twice, before its mark): after its Ctrl+Z, two more Ctrl+Z
remove those hidden nodes (nothing visible changes) before the next one takes a point. At most
:data:`UNDO_BYTES` of pixel states are kept (the oldest go first: undoing that far back leaves the mask
as it is).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional

from PyQt5.QtCore import QByteArray

from ..host import HostError, Point
from . import points_layer
from .nodes import GUIDE_NAME, MASK_NAME, find_child, has_view, keep_active, walk

if TYPE_CHECKING:
    from .adapter import KritaHost

UNDO_BYTES = 256 * 2 ** 20  # mask + guide states kept for Krita's undo of mattes


@dataclass
class OutputState:
    """The mask and guide of one layer at one moment: raw pixel bytes as ``pixelData`` gives them, or None
    when the node does not exist; ``points``: the points of the full matte the mask holds, if known."""

    mask: Optional[bytes]
    guide: Optional[bytes]
    points: Optional[List[Point]]
    guide_visible: bool = False

    @property
    def nbytes(self) -> int:
        return len(self.mask or b"") + len(self.guide or b"")


@dataclass
class MatteStep:
    """One Matte/Refine on Krita's undo stack: its mark's number and the outputs before and after it."""

    mark: int
    doc: str
    layer: str
    before: OutputState
    after: OutputState


class MatteUndo:
    """The mattes of ``host`` on Krita's undo stack (see the module docstring) and the mask/guide nodes an
    undo hid. Uses the host's ``document``, ``target_layer``, ``points_node``, ``mask_node``, ``guide_node``,
    ``read_mask_points``, ``remember_mask_points`` and ``guide_opacity``."""

    def __init__(self, host: "KritaHost") -> None:
        self._host = host
        self._steps: List[MatteStep] = []  # mattes on Krita's undo stack, oldest first
        self._open: Optional[MatteStep] = None  # begin .. end
        self._marks_seen: set = set()  # marks of self._steps present at the last sync()
        self._next_mark = 1
        self._absent: set = set()  # uniqueIds of our mask/guide nodes hidden by an undo: they count as absent

    def present(self, node: Optional[object]) -> Optional[object]:
        """``node`` unless it is None or hidden by an undo (then it counts as absent)."""
        return None if node is None or node.uniqueId().toString() in self._absent else node

    def unhide(self, node: object) -> bool:
        """``node`` counts as present again (a new Matte writes it); whether an undo had hidden it."""
        key = node.uniqueId().toString()  # type: ignore[attr-defined]
        if key not in self._absent:
            return False
        self._absent.discard(key)
        return True

    def _outputs(self) -> OutputState:
        doc = self._host.document()
        w, h = doc.width(), doc.height()
        mask, guide = self.present(self._mask_or_none()), self.present(self._host.guide_node())
        return OutputState(bytes(mask.pixelData(0, 0, w, h)) if mask is not None else None,
                           bytes(guide.pixelData(0, 0, w, h)) if guide is not None else None,
                           self._host.read_mask_points(), bool(guide is not None and guide.visible()))

    def begin(self) -> None:
        """A Matte or Refine starts: note the outputs before it (only in a view: batch scripts have no
        undo history to take part in)."""
        self._open = None
        doc = self._host.document()
        if not has_view(doc):
            return
        layer = self._host.target_layer()
        before = self._outputs()
        self._open = MatteStep(0, doc.rootNode().uniqueId().toString(), layer.uniqueId().toString(), before, before)

    def end(self) -> None:
        """The Matte or Refine is done: if it changed the mask or guide, add its matte mark (its undo step)
        and keep the outputs before and after it, the newest within :data:`UNDO_BYTES`."""
        step, self._open = self._open, None
        if step is None:
            return
        after = self._outputs()
        if (after.mask, after.guide) == (step.before.mask, step.before.guide):
            return  # nothing changed: no undo step
        doc = self._host.document()
        node = self._host.points_node(create=True)
        step.mark, step.after = self._next_mark, after
        self._next_mark += 1
        node.addShapesFromSvg(points_layer.matte_mark_svg(step.mark, doc.width(), doc.height(),
                                                          doc.xRes() or 72.0, doc.yRes() or 72.0))
        self._steps.append(step)
        self._marks_seen.add(step.mark)
        total = 0
        for i in range(len(self._steps) - 1, -1, -1):  # keep the newest within UNDO_BYTES
            total += self._steps[i].before.nbytes + self._steps[i].after.nbytes
            if total > UNDO_BYTES and i < len(self._steps) - 1:
                del self._steps[: i + 1]
                break
        self._marks_seen &= {s.mark for s in self._steps}

    def sync(self) -> str:
        """Krita's undo/redo took a matte mark away or brought it back: put the outputs from before /
        after that Matte back. ``"latest"`` when they are now those of the newest Matte, ``"other"`` for any
        other restored state, ``""`` when no mark came or went."""
        if not self._steps or self._open is not None:
            return ""
        doc = self._host.document()
        node = self._host.points_node()
        names = {s.name() for s in node.shapes()} if node is not None else set()
        key = doc.rootNode().uniqueId().toString()
        mine = [s for s in self._steps if s.doc == key]
        present = {s.mark for s in mine if f"{points_layer.MATTE_MARK_PREFIX}{s.mark}" in names}
        seen = self._marks_seen & {s.mark for s in mine}
        added, removed = present - seen, seen - present
        if not added and not removed:
            return ""
        self._marks_seen = (self._marks_seen - seen) | present
        if added:  # redo: the newest Matte brought back
            step = max((s for s in mine if s.mark in added), key=lambda s: s.mark)
            state = step.after
        else:  # undo: back to before the oldest Matte taken away
            step = min((s for s in mine if s.mark in removed), key=lambda s: s.mark)
            state = step.before
        self._apply(step.layer, state)
        return "latest" if added and step is self._steps[-1] else "other"

    def _apply(self, layer_id: str, state: OutputState) -> None:
        doc = self._host.document()
        layer = next((n for n in walk(doc.rootNode()) if n.uniqueId().toString() == layer_id), None)
        if layer is None:
            return  # the layer is gone
        w, h = doc.width(), doc.height()
        mask = find_child(layer, MASK_NAME, "transparencymask")
        if state.mask is None:
            if mask is not None:
                mask.setVisible(False)  # not remove(): that would be an undo step and clear Krita's redo
                self._absent.add(mask.uniqueId().toString())
        else:
            if mask is None:  # deleted by hand meanwhile
                mask = doc.createTransparencyMask(MASK_NAME)
                layer.addChildNode(mask, None)
            self._absent.discard(mask.uniqueId().toString())
            mask.setVisible(True)
            mask.setPixelData(QByteArray(state.mask), 0, 0, w, h)
        guide = find_child(doc.rootNode(), GUIDE_NAME, "paintlayer")
        if state.guide is None:
            if guide is not None:
                guide.setVisible(False)
                self._absent.add(guide.uniqueId().toString())
        else:
            if guide is None:
                guide = doc.createNode(GUIDE_NAME, "paintlayer")
                doc.rootNode().addChildNode(guide, None)
                guide.setOpacity(int(round(self._host.guide_opacity * 2.55)))
            self._absent.discard(guide.uniqueId().toString())
            guide.setVisible(state.guide_visible)
            guide.setPixelData(QByteArray(state.guide), 0, 0, w, h)
        self._host.remember_mask_points(f"{doc.rootNode().uniqueId().toString()}|{layer_id}", state.points)
        keep_active(self._host.document(), layer)
        doc.refreshProjection()

    def clear(self) -> None:
        """Forget the mattes kept for undo and remove the guide and the target layer's mask."""
        self._steps.clear()
        self._marks_seen.clear()
        try:
            doc = self._host.document()
        except HostError:
            return
        for node in (self._host.guide_node(), self._mask_or_none()):
            if node is not None:
                node.remove()
        doc.refreshProjection()

    def _mask_or_none(self) -> Optional[object]:
        try:
            return self._host.mask_node()
        except HostError:
            return None
