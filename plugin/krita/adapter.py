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
- Undo: a Matte or Refine (``begin_undo_step`` .. ``end_undo_step``, in a view) becomes one step of
  Krita's undo through an invisible *matte mark* on the points layer; ``matte_undo`` says how.
- 8- and 16-bit integer RGBA layers are supported; other colour models raise ``HostError``.
  Linear-light 16-bit layers (Krita's default ``*-g10`` profiles) are converted to 8-bit sRGB
  before sending, so the network sees the picture as it looks.
"""
from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence

from krita import Krita  # noqa: F401 - only importable inside Krita
from PyQt5.QtCore import QByteArray

from .. import raster
from ..point_editing import same_points
from ..host import Box, HostAdapter, HostError, ImageData, Point
from . import pixels, points_layer
from .matte_undo import MatteUndo
from .nodes import GUIDE_NAME, MASK_NAME, OUR_LAYERS, find_child, has_view, keep_active, walk
from .pixels import SRGB_PROFILE, linear_u16_bgra_to_srgb_u8  # noqa: F401 - imported from here by the Krita tests

PENDING_S = 2.0


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
        self._undo = MatteUndo(self)  # Krita's undo of mattes

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
        candidates = [n for n in walk(doc.rootNode()) if n.type() == "paintlayer" and n.name() not in OUR_LAYERS]
        masked = [n for n in candidates if find_child(n, MASK_NAME, "transparencymask") is not None]
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
            return ImageData(w, h, 4, "uint8", "BGRA", pixels.as_srgb8(layer, data, w, h))
        return ImageData(w, h, 4, "uint16", "BGRA", data)

    def points_node(self, create: bool = False) -> Optional[object]:
        doc = self.document()
        node = find_child(doc.rootNode(), points_layer.LAYER_NAME, "vectorlayer")
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
        if has_view(doc):
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

    def mask_node(self, create: bool = False) -> Optional[object]:
        layer = self.target_layer()
        mask = find_child(layer, MASK_NAME, "transparencymask")
        if mask is not None and create and self._undo.unhide(mask):
            mask.setVisible(True)  # hidden by an undo: a new Matte shows it again
        if mask is None and create:
            doc = self.document()
            mask = doc.createTransparencyMask(MASK_NAME)
            if mask is None:
                raise HostError("this Krita cannot create transparency masks from Python (Krita 5.2 or newer needed)")
            layer.addChildNode(mask, None)
            self._keep_active(layer)
        return mask

    def _keep_active(self, layer: object) -> None:
        """Make ``layer`` Krita's active node again after we added a node (``nodes.keep_active``)."""
        keep_active(self.document(), layer)

    def write_mask(self, alpha: bytes, width: int, height: int, boxes: Optional[Sequence[Box]] = None,
                   points: Optional[Sequence[Point]] = None) -> None:
        doc = self.document()
        if boxes is None:
            self.remember_mask_points(self.document_key(), list(points) if points is not None else None)
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
        node.setPixelData(QByteArray(pixels.rgb_to_opaque_bgra(rgb, width, height)), 0, 0, width, height)
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
        node = find_child(doc.rootNode(), GUIDE_NAME, "paintlayer")
        if node is not None and create:
            self._undo.unhide(node)  # (stays hidden, like a new guide)
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
        rgba = raster.guide_rgba(uncertainty, "BGRA")
        if node.colorDepth() == "U16":
            rgba = raster.u8_to_u16(rgba)
        elif node.colorDepth() != "U8":
            return  # float documents never reach here (read_image refuses them)
        node.setPixelData(QByteArray(rgba), 0, 0, width, height)
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

    def remember_mask_points(self, key: str, points: Optional[List[Point]]) -> None:
        """Note ``points`` as those of the full matte the mask of layer ``key`` (``document_key``) holds."""
        self._mask_points[key] = points

    # -- Krita's undo of mattes (``matte_undo``) ----------------------------------------------
    def _present(self, node: Optional[object]) -> Optional[object]:
        """``node`` unless it is None or hidden by an undo (then it counts as absent)."""
        return self._undo.present(node)

    def begin_undo_step(self, name: str) -> None:
        self._undo.begin()

    def end_undo_step(self) -> None:
        self._undo.end()

    def sync_outputs(self) -> str:
        """Krita's undo/redo took a matte mark away or brought it back: put the outputs from before /
        after that Matte back. ``"latest"`` when they are now those of the newest Matte, ``"other"`` for any
        other restored state, ``""`` when no mark came or went."""
        return self._undo.sync()

    def clear_outputs(self) -> None:
        self._undo.clear()

    def notify(self, message: str, level: str = "info") -> None:
        if self._status is not None:
            self._status(message, level)

    def progress(self, busy: bool) -> None:
        if self._busy is not None:
            self._busy(busy)

    def resize_plane(self, plane: bytes, width: int, height: int, new_width: int, new_height: int) -> bytes:
        """Smooth scaling through QImage (C++), for live previews."""
        return pixels.resize_plane(plane, width, height, new_width, new_height)
