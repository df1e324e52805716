"""``KritaHost``: the ``HostAdapter`` for Krita 5.2 (runs inside Krita: ``krita`` + PyQt5).

- Image: the *target layer*'s own pixels (``Node.pixelData`` over the image bounds, BGRA, u8 or
  u16), never the projection, so masks and guides we add never feed back. The target layer is the
  active paint layer (or the layer our mask sits on when the mask or guide is active).
- Points: shapes on the vector layer "ClickMatte points" (see ``points_layer``).
- Mask: a transparency mask "ClickMatte alpha" on the target layer, reused and overwritten on each
  update (``setPixelData``; only the refined boxes after a refine). The layer's pixels are never written.
- Guide: a paint layer "ClickMatte uncertainty" at the top, colour-mapped and semi-transparent. It is
  created hidden (so a flattened export holds only the photo and its mask); its eye in the Layers docker
  shows it, and later updates keep the visibility the user chose.
- Creating the mask or the guide would make it Krita's active node: the target layer is made active
  again, so the next brush stroke or Refine lands on the photo layer.
- Undo. What Krita 5.2's Python API offers: ``setPixelData`` writes the paint device directly (no
  undo step), adding or removing a node is a step of its own ("Add Layer" / "Remove Layer"), shapes
  added to a vector layer are a step ("Create shape"), and there is no undo macro. So a Matte or Refine
  (``begin_undo_step`` .. ``end_undo_step``, in a view) ends by adding one invisible *matte mark* to the
  points layer, its undo step, and the adapter keeps the mask and guide pixels from before and after it.
  When Ctrl+Z takes a mark away, ``sync_outputs`` puts the "before" pixels back; a mask or guide that did
  not exist before is hidden instead of removed (removing would be a new undo step and clear Krita's
  redo), and counts as absent (``read_mask`` gives None) until the next Matte shows it again. When
  Ctrl+Shift+Z brings the mark back, the "after" pixels (and visibility) return. Point edits stay
  their own steps. The first Matte on a layer also adds the mask and the guide nodes ("Add Layer" twice,
  before its mark): after its Ctrl+Z, two more Ctrl+Z remove those hidden nodes (nothing visible changes)
  before the next one takes a point. At most :data:`UNDO_BYTES` of pixel states are kept (the oldest
  go first: undoing that far back leaves the mask as it is).
- 8- and 16-bit integer RGBA layers are supported; other colour models raise ``HostError``.
  Linear-light 16-bit layers (Krita's default ``*-g10`` profiles) are converted to 8-bit sRGB
  before sending, so the network sees the picture as it looks.
"""
from __future__ import annotations

import time
from array import array
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from krita import Krita  # noqa: F401 - only importable inside Krita
from PyQt5.QtCore import QByteArray, Qt, QTimer
from PyQt5.QtGui import QImage

from .. import raster
from ..point_editing import same_points
from ..host import Box, HostAdapter, HostError, ImageData, Point
from . import points_layer

MASK_NAME = "ClickMatte alpha"
GUIDE_NAME = "ClickMatte uncertainty"
OUR_LAYERS = (points_layer.LAYER_NAME, GUIDE_NAME)
PENDING_S = 2.0
UNDO_BYTES = 256 * 2 ** 20  # mask + guide states kept for Krita's undo of mattes
SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"  # ships with Krita

_LINEAR_TO_SRGB_U8: Optional[bytes] = None


def _linear_lut() -> bytes:
    """65536-entry linear-u16 -> sRGB-u8 table (built once, ~40 ms)."""
    global _LINEAR_TO_SRGB_U8
    if _LINEAR_TO_SRGB_U8 is None:
        out = bytearray(65536)
        for v in range(65536):
            c = v / 65535.0
            s = 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
            out[v] = max(0, min(255, int(s * 255.0 + 0.5)))
        _LINEAR_TO_SRGB_U8 = bytes(out)
    return _LINEAR_TO_SRGB_U8


def linear_u16_bgra_to_srgb_u8(data: bytes) -> bytes:
    """Linear-light u16 BGRA -> sRGB u8 BGRA (alpha: high byte)."""
    samples = array("H")
    samples.frombytes(data)
    lut = _linear_lut()
    out = bytearray(bytes(map(lut.__getitem__, samples)))
    out[3::4] = raster.u16_to_u8(data)[3::4]
    return bytes(out)


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


def _find_child(parent: object, name: str, node_type: str) -> Optional[object]:
    for n in parent.childNodes():  # type: ignore[attr-defined]
        if n.name() == name and n.type() == node_type:
            return n
    return None


def _walk(node: object) -> List[object]:
    out = []
    for n in node.childNodes():  # type: ignore[attr-defined]
        out.append(n)
        out.extend(_walk(n))
    return out


def _activate(doc: object, layer: object) -> None:
    """Make ``layer`` the active node of ``doc`` unless it already is, or is no longer in ``doc``."""
    if doc.nodeByUniqueID(layer.uniqueId()) is None:
        return
    active = doc.activeNode()
    if active is None or active.uniqueId() != layer.uniqueId():
        doc.setActiveNode(layer)


class KritaHost(HostAdapter):
    """Adapter over the document returned by ``get_document()`` (default: the active document).

    ``status(text, level)`` receives status lines (the docker shows them); ``busy(flag)`` progress.
    """

    def __init__(self, get_document: Optional[Callable[[], object]] = None,
                 status: Optional[Callable[[str, str], None]] = None,
                 busy: Optional[Callable[[bool], None]] = None,
                 guide_opacity: int = 60) -> None:
        self._get_document = get_document or (lambda: Krita.instance().activeDocument())
        self._status = status
        self._busy = busy
        self.guide_opacity = guide_opacity
        self._target_id = None  # uniqueId of the layer the mask goes on
        # shapes added/removed through the API show up asynchronously in the GUI: until the layer
        # shows what write_points wrote (or PENDING_S passed), read_points reports the written list
        self._pending: Optional[List[Point]] = None
        self._pending_until = 0.0
        self._mask_points: dict = {}  # layer key -> points of the full matte its mask holds
        self._steps: List[MatteStep] = []  # mattes on Krita's undo stack, oldest first
        self._open: Optional[MatteStep] = None  # begin_undo_step .. end_undo_step
        self._marks_seen: set = set()  # marks of self._steps present at the last sync_outputs()
        self._next_mark = 1
        self._absent: set = set()  # uniqueIds of our mask/guide nodes hidden by an undo: they count as absent

    # -- document access --------------------------------------------------------------------
    def document(self) -> object:
        doc = self._get_document()
        if doc is None:
            raise HostError("open an image first")
        return doc

    def target_layer(self) -> object:
        """The paint layer to matte (see the module docstring); ``HostError`` if there is none."""
        doc = self.document()
        node = doc.activeNode()
        if node is not None and node.type() == "transparencymask" and node.name() == MASK_NAME:
            node = node.parentNode()
        if node is not None and node.type() == "paintlayer" and node.name() not in OUR_LAYERS:
            self._target_id = node.uniqueId()
            return node
        if self._target_id is not None:
            prev = doc.nodeByUniqueID(self._target_id)
            if prev is not None:
                return prev
        # no usable active layer (e.g. the points layer is active, or no view): the layer that
        # already carries our mask, else the only paint layer there is
        candidates = [n for n in _walk(doc.rootNode()) if n.type() == "paintlayer" and n.name() not in OUR_LAYERS]
        masked = [n for n in candidates if _find_child(n, MASK_NAME, "transparencymask") is not None]
        pick = masked[:1] or (candidates if len(candidates) == 1 else [])
        if pick:
            self._target_id = pick[0].uniqueId()
            return pick[0]
        raise HostError("select the paint layer to cut out (a paint layer, not a group or vector layer)")

    def document_key(self) -> str:
        """Stable per document and target layer (the Python wrappers Krita returns are not: each
        ``activeDocument()`` call gives a new object, so ``id(doc)`` would change every time)."""
        doc = self.document()
        layer = self.target_layer()
        return f"{doc.rootNode().uniqueId().toString()}|{layer.uniqueId().toString()}"

    # -- reading ----------------------------------------------------------------------------
    def read_image(self) -> ImageData:
        doc = self.document()
        layer = self.target_layer()
        model, depth = layer.colorModel(), layer.colorDepth()
        if model != "RGBA" or depth not in ("U8", "U16"):
            raise HostError(f"ClickMatte works on 8- or 16-bit RGB layers; '{layer.name()}' is {model}/{depth}. "
                            "Convert it with Image > Convert Image Color Space (RGB/Alpha, 8 or 16 bit integer).")
        w, h = doc.width(), doc.height()
        data = bytes(layer.pixelData(0, 0, w, h))
        if depth == "U8":
            return ImageData(w, h, 4, "uint8", "BGRA", data)
        profile = (layer.colorProfile() or "").lower()
        if "g10" in profile or "linear" in profile:
            return ImageData(w, h, 4, "uint8", "BGRA", self._as_srgb8(layer, data, w, h))
        return ImageData(w, h, 4, "uint16", "BGRA", data)

    @staticmethod
    def _as_srgb8(layer: object, data: bytes, w: int, h: int) -> bytes:
        """Linear 16-bit -> 8-bit sRGB BGRA: Krita converts a detached copy of the layer (C++, ~20 ms
        per megapixel); if that fails, a pure-Python table lookup (~150 ms per megapixel)."""
        try:
            dup = layer.duplicate()
            if dup is not None and dup.setColorSpace("RGBA", "U8", SRGB_PROFILE):
                out = bytes(dup.pixelData(0, 0, w, h))
                if len(out) == w * h * 4:
                    return out
        except Exception:  # noqa: BLE001 - fall back below
            pass
        return linear_u16_bgra_to_srgb_u8(data)

    def points_node(self, create: bool = False) -> Optional[object]:
        doc = self.document()
        node = _find_child(doc.rootNode(), points_layer.LAYER_NAME, "vectorlayer")
        if node is None and create:
            node = doc.createVectorLayer(points_layer.LAYER_NAME)
            doc.rootNode().addChildNode(node, None)
        return node

    def read_points(self) -> List[Point]:
        actual = self._read_shapes()
        if self._pending is not None:
            if same_points(actual, self._pending) or time.monotonic() > self._pending_until:
                self._pending = None
            else:
                return list(self._pending)
        return actual

    def _read_shapes(self) -> List[Point]:
        node = self.points_node()
        if node is None:
            return []
        doc = self.document()
        pts = [p for _, p in self._shape_points(node, doc.xRes() or 72.0, doc.yRes() or 72.0)]
        return points_layer.inside(pts, doc.width(), doc.height())

    @staticmethod
    def _shape_points(node: object, xres: float, yres: float) -> List[tuple]:
        """``[(shape, Point)]`` for the shapes of the points layer that stand for a point, in layer order."""
        out = []
        for s in node.shapes():  # type: ignore[attr-defined]
            name = s.name()
            if points_layer.is_matte_mark(name):
                continue
            r = s.boundingBox()
            svg = "" if points_layer.named_label(name) else s.toSvg()  # only user-drawn shapes need a look
            p = points_layer.shape_point((r.x(), r.y(), r.width(), r.height()), name, s.type(), xres, yres, svg)
            if p is not None:
                out.append((s, p))
        return out

    def read_selection(self) -> Optional[bytes]:
        doc = self.document()
        sel = doc.selection()
        if sel is None:
            return None
        w, h = doc.width(), doc.height()
        data = bytes(sel.pixelData(0, 0, w, h))
        if len(data) != w * h:
            raise HostError(f"unexpected selection data ({len(data)} bytes for {w}x{h})")
        return data

    # -- writing ----------------------------------------------------------------------------
    def write_points(self, points: Sequence[Point]) -> None:
        doc = self.document()
        # first: Krita may run the event loop (and so our timer) inside the calls below
        self._pending = list(points)
        self._pending_until = time.monotonic() + PENDING_S
        node = self.points_node(create=bool(points))
        if node is None:
            return
        xres, yres = doc.xRes() or 72.0, doc.yRes() or 72.0
        if self._has_view(doc):
            # the fewest shape edits, so that one point added or removed is one step of Krita's undo
            shapes = self._shape_points(node, xres, yres)
            kind, k = points_layer.edit_plan([p for _, p in shapes], list(points), same_points)
            if kind == "same":
                return
            if kind == "remove":
                shapes[k][0].remove()
                self._pending_until = time.monotonic() + PENDING_S
                doc.refreshProjection()
                return
            if kind == "add":
                svg = points_layer.points_svg(points[k:], doc.width(), doc.height(), xres, yres, start=k + 1)
                node.addShapesFromSvg(svg)
                self._pending_until = time.monotonic() + PENDING_S
                doc.refreshProjection()
                return
            for s, _ in shapes:
                s.remove()
        elif node.shapes():
            # without a view (kritarunner, batch scripts) Shape.remove() crashes Krita 5.2: replace
            # the layer instead, at the same place and with the same visibility and opacity
            fresh = doc.createVectorLayer(points_layer.LAYER_NAME)
            parent = node.parentNode()
            parent.addChildNode(fresh, node)
            fresh.setVisible(node.visible())
            fresh.setOpacity(node.opacity())
            node.remove()
            node = fresh
        if points:
            node.addShapesFromSvg(points_layer.points_svg(points, doc.width(), doc.height(), xres, yres))
        self._pending_until = time.monotonic() + PENDING_S
        doc.refreshProjection()

    @staticmethod
    def _has_view(doc: object) -> bool:
        """Whether ``doc`` is shown in a view (GUI) - some shape operations need one."""
        try:
            key = doc.rootNode().uniqueId()
            return any(v.document() is not None and v.document().rootNode().uniqueId() == key
                       for v in Krita.instance().views())
        except Exception:  # noqa: BLE001
            return False

    def mask_node(self, create: bool = False) -> Optional[object]:
        layer = self.target_layer()
        mask = _find_child(layer, MASK_NAME, "transparencymask")
        if mask is not None and create and mask.uniqueId().toString() in self._absent:
            self._absent.discard(mask.uniqueId().toString())  # hidden by an undo: a new Matte shows it again
            mask.setVisible(True)
        if mask is None and create:
            doc = self.document()
            mask = doc.createTransparencyMask(MASK_NAME)
            if mask is None:
                raise HostError("this Krita cannot create transparency masks from Python (Krita 5.2 or newer needed)")
            layer.addChildNode(mask, None)
            self._keep_active(layer)
        return mask

    def _keep_active(self, layer: object) -> None:
        """Make ``layer`` Krita's active node again after we added a node.

        Krita activates an added node only once its layer model takes the node in, from an event that
        runs after the current Qt handler returns; a ``setActiveNode`` made now would be overridden.
        So the image's pending work is waited for (the node is then added and that event posted), the
        layer is activated now, and once more from a 0 ms timer, which runs after that event."""
        doc = self.document()
        doc.waitForDone()
        _activate(doc, layer)
        QTimer.singleShot(0, lambda: _activate(doc, layer))

    def write_mask(self, alpha: bytes, width: int, height: int, boxes: Optional[Sequence[Box]] = None,
                   points: Optional[Sequence[Point]] = None) -> None:
        doc = self.document()
        if boxes is None:
            self._mask_points[self.document_key()] = list(points) if points is not None else None
        if (width, height) != (doc.width(), doc.height()):
            raise HostError(f"mask is {width}x{height} but the image is {doc.width()}x{doc.height()}")
        mask = self.mask_node(create=True)
        wide = mask.colorDepth() == "U16"
        for (x, y, w, h) in (boxes if boxes is not None else [(0, 0, width, height)]):
            part = alpha if (x, y, w, h) == (0, 0, width, height) else raster.crop(alpha, width, (x, y, w, h))
            if wide:
                part = raster.u8_to_u16(part)
            mask.setPixelData(QByteArray(part), x, y, w, h)
        doc.refreshProjection()

    def read_mask(self) -> Optional[bytes]:
        """The target layer's "ClickMatte alpha" mask as a u8 plane, or None when it has none (or an undo
        hid it)."""
        mask = self._present(self.mask_node())
        if mask is None:
            return None
        doc = self.document()
        w, h = doc.width(), doc.height()
        data = bytes(mask.pixelData(0, 0, w, h))
        if mask.colorDepth() == "U16":
            data = raster.u16_to_u8(data)
        if len(data) != w * h:
            raise HostError(f"unexpected mask data ({len(data)} bytes for {w}x{h})")
        return data

    def write_foreground(self, rgb: bytes, alpha: bytes, width: int, height: int) -> str:
        """A paint layer "<layer> (decontaminated)" above the target layer: ``rgb`` as 8-bit sRGB, under a
        transparency mask holding ``alpha``; the target layer stays active and unchanged."""
        doc = self.document()
        layer = self.target_layer()
        if (width, height) != (doc.width(), doc.height()) or len(rgb) != width * height * 3:
            raise HostError(f"colours of {width}x{height} do not fit the {doc.width()}x{doc.height()} image")
        name = f"{layer.name()} (decontaminated)"
        node = doc.createNode(name, "paintlayer")
        layer.parentNode().addChildNode(node, layer)
        if (node.colorModel(), node.colorDepth(), node.colorProfile()) != ("RGBA", "U8", SRGB_PROFILE):
            node.setColorSpace("RGBA", "U8", SRGB_PROFILE)
        bgra = bytearray(width * height * 4)
        bgra[0::4], bgra[1::4], bgra[2::4] = rgb[2::3], rgb[1::3], rgb[0::3]
        bgra[3::4] = b"\xff" * (width * height)
        node.setPixelData(QByteArray(bytes(bgra)), 0, 0, width, height)
        mask = doc.createTransparencyMask(f"{name} alpha")
        if mask is None:
            raise HostError("this Krita cannot create transparency masks from Python (Krita 5.2 or newer needed)")
        node.addChildNode(mask, None)
        part = raster.u8_to_u16(alpha) if mask.colorDepth() == "U16" else alpha
        mask.setPixelData(QByteArray(part), 0, 0, width, height)
        self._keep_active(layer)
        doc.refreshProjection()
        return name

    def guide_node(self, create: bool = False) -> Optional[object]:
        doc = self.document()
        node = _find_child(doc.rootNode(), GUIDE_NAME, "paintlayer")
        if node is not None and create:
            self._absent.discard(node.uniqueId().toString())  # (hidden, like a new guide)
        if node is None and create:
            node = doc.createNode(GUIDE_NAME, "paintlayer")
            target = self.target_layer()
            doc.rootNode().addChildNode(node, None)
            node.setOpacity(int(round(self.guide_opacity * 2.55)))
            node.setVisible(False)
            self._keep_active(target)
        return node

    def write_guide(self, uncertainty: bytes, width: int, height: int) -> None:
        doc = self.document()
        node = self.guide_node(create=True)
        pixels = raster.guide_rgba(uncertainty, "BGRA")
        if node.colorDepth() == "U16":
            pixels = raster.u8_to_u16(pixels)
        elif node.colorDepth() != "U8":
            return  # float documents never reach here (read_image refuses them)
        node.setPixelData(QByteArray(pixels), 0, 0, width, height)
        doc.refreshProjection()

    def set_guide_opacity(self, percent: int) -> None:
        self.guide_opacity = max(0, min(100, int(percent)))
        try:
            node = self.guide_node()
        except HostError:
            return
        if node is not None:
            node.setOpacity(int(round(self.guide_opacity * 2.55)))
            self.document().refreshProjection()

    def read_mask_points(self) -> Optional[List[Point]]:
        """The points of the full matte this session wrote into the layer's mask (also after Krita's undo
        or redo of a Matte put another one back), or None."""
        try:
            pts = self._mask_points.get(self.document_key())
        except HostError:
            return None
        return list(pts) if pts is not None else None

    # -- Krita's undo of mattes (see the module docstring) ------------------------------------
    def _present(self, node: Optional[object]) -> Optional[object]:
        """``node`` unless it is None or hidden by an undo (then it counts as absent)."""
        return None if node is None or node.uniqueId().toString() in self._absent else node

    def _outputs(self) -> OutputState:
        doc = self.document()
        w, h = doc.width(), doc.height()
        mask, guide = self._present(self._mask_or_none()), self._present(self.guide_node())
        return OutputState(bytes(mask.pixelData(0, 0, w, h)) if mask is not None else None,
                           bytes(guide.pixelData(0, 0, w, h)) if guide is not None else None,
                           self.read_mask_points(), bool(guide is not None and guide.visible()))

    def begin_undo_step(self, name: str) -> None:
        self._open = None
        doc = self.document()
        if not self._has_view(doc):
            return  # no view, no undo history to take part in (batch scripts)
        layer = self.target_layer()
        before = self._outputs()
        self._open = MatteStep(0, doc.rootNode().uniqueId().toString(), layer.uniqueId().toString(), before, before)

    def end_undo_step(self) -> None:
        step, self._open = self._open, None
        if step is None:
            return
        after = self._outputs()
        if (after.mask, after.guide) == (step.before.mask, step.before.guide):
            return  # nothing changed: no undo step
        doc = self.document()
        node = self.points_node(create=True)
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

    def sync_outputs(self) -> str:
        """Krita's undo/redo took a matte mark away or brought it back: put the outputs from before /
        after that Matte back. ``"latest"`` when they are now those of the newest Matte, ``"other"`` for any
        other restored state, ``""`` when no mark came or went."""
        if not self._steps or self._open is not None:
            return ""
        doc = self.document()
        node = self.points_node()
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
        doc = self.document()
        layer = next((n for n in _walk(doc.rootNode()) if n.uniqueId().toString() == layer_id), None)
        if layer is None:
            return  # the layer is gone
        w, h = doc.width(), doc.height()
        mask = _find_child(layer, MASK_NAME, "transparencymask")
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
        guide = _find_child(doc.rootNode(), GUIDE_NAME, "paintlayer")
        if state.guide is None:
            if guide is not None:
                guide.setVisible(False)
                self._absent.add(guide.uniqueId().toString())
        else:
            if guide is None:
                guide = doc.createNode(GUIDE_NAME, "paintlayer")
                doc.rootNode().addChildNode(guide, None)
                guide.setOpacity(int(round(self.guide_opacity * 2.55)))
            self._absent.discard(guide.uniqueId().toString())
            guide.setVisible(state.guide_visible)
            guide.setPixelData(QByteArray(state.guide), 0, 0, w, h)
        self._mask_points[f"{doc.rootNode().uniqueId().toString()}|{layer_id}"] = state.points
        self._keep_active(layer)
        doc.refreshProjection()

    def clear_outputs(self) -> None:
        self._steps.clear()
        self._marks_seen.clear()
        try:
            doc = self.document()
        except HostError:
            return
        for node in (self.guide_node(), self._mask_or_none()):
            if node is not None:
                node.remove()
        doc.refreshProjection()

    def _mask_or_none(self) -> Optional[object]:
        try:
            return self.mask_node()
        except HostError:
            return None

    def notify(self, message: str, level: str = "info") -> None:
        if self._status is not None:
            self._status(message, level)

    def progress(self, busy: bool) -> None:
        if self._busy is not None:
            self._busy(busy)

    def resize_plane(self, plane: bytes, width: int, height: int, new_width: int, new_height: int) -> bytes:
        """Smooth scaling through QImage (C++), for live previews."""
        if (width, height) == (new_width, new_height):
            return bytes(plane)
        img = QImage(plane, width, height, width, QImage.Format_Grayscale8)
        big = img.scaled(new_width, new_height, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
        # Qt 5.15 returns a smoothly scaled Grayscale8 image as RGB32: back to one byte per pixel
        if big.format() != QImage.Format_Grayscale8:
            big = big.convertToFormat(QImage.Format_Grayscale8)
        bpl = big.bytesPerLine()
        ptr = big.constBits()
        ptr.setsize(bpl * new_height)
        raw = bytes(ptr)
        if bpl == new_width:
            return raw
        return b"".join(raw[r * bpl : r * bpl + new_width] for r in range(new_height))
