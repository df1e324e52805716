"""``GimpHost``: the host-agnostic core's ``HostAdapter`` for GIMP 3 (runs inside GIMP only).

All coordinates and planes are relative to the *active layer* (its own pixel grid, offsets
removed), so layers smaller or larger than the canvas work. GIMP paths (image coordinates) are
shifted by the layer's offsets; the selection is read over the layer's rectangle.

Outputs:

- the layer mask, linear ``"Y u8"``, tagged with the parasite ``clickmatte-mask`` (holding the points
  of the matte: ``points_tag``) so a later run replaces it (a mask without the tag was made by someone else: it is left alone and the user is
  told). A full matte removes the old ClickMatte mask and adds a new one; a refine writes through
  GIMP's shadow buffer and ``merge_shadow``, so GIMP itself confines the change to the current
  selection (soft selections blend) and records it for undo. The layer's own pixels are never
  written.
- Parasites are persistent *and undoable*: for a persistent parasite that is not undoable, GIMP
  pushes a "can't undo" step when it is attached to an item already in the image, and Edit > Undo
  then warns "Can't undo Attach Parasite to Item". The mask's and guide's tags are attached before
  the item joins the image (no undo step at all); the layer's key is attached undoably.
- the guide layer "ClickMatte uncertainty" (colour-mapped, semi-transparent RGBA), above the
  active layer, tagged with the parasite ``clickmatte-guide`` holding the key that the layer
  carries in its parasite ``clickmatte-layer``; replaced on each run. A new guide is hidden (so a
  flattened export holds only the layer and its mask); a replaced one keeps the visibility the user
  gave the old one (its eye in the Layers dialog).
- The user's layer stays the selected one. When the guide is selected (GIMP selects a layer whose
  addition is redone, e.g. after Edit > Redo of a matte), ``resolve_layer`` works on the layer the
  guide belongs to.

The caller wraps a whole action in ``image.undo_group_start()`` / ``undo_group_end()``.
"""
from __future__ import annotations

import json
import uuid
from typing import List, Optional, Sequence, Tuple

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

from ..host import Box, HostAdapter, HostError, ImageData, Point  # noqa: E402
from ..raster import crop, guide_rgba, paste  # noqa: E402
from .formats import GUIDE_FORMAT, MASK_FORMAT, SELECTION_FORMAT, pixel_format  # noqa: E402
from .points import bezier_anchors, points_from_paths  # noqa: E402

MASK_PARASITE = "clickmatte-mask"
GUIDE_PARASITE = "clickmatte-guide"  # on the guide layer: the key of the layer it belongs to
LAYER_PARASITE = "clickmatte-layer"  # on the matted layer: its key
GUIDE_NAME = "ClickMatte uncertainty"
_FLAGS = 1 | 2  # GIMP_PARASITE_PERSISTENT (saved in .xcf) | GIMP_PARASITE_UNDOABLE


def points_tag(points: Optional[Sequence[Point]]) -> str:
    """The mask parasite's text: JSON ``{"points": [[x, y, label], ...]}`` of the full matte's points, or
    ``"1"`` when they are not known (a preview)."""
    if points is None:
        return "1"
    return json.dumps({"points": [[p.x, p.y, p.label] for p in points]}, separators=(",", ":"))


def points_from_tag(text: str) -> Optional[List[Point]]:
    """The points :func:`points_tag` wrote, or None for any other text."""
    try:
        data = json.loads(text)
        return [Point.make(x, y, label) for x, y, label in data["points"]]
    except (ValueError, TypeError, KeyError):
        return None


def _rect(x: int, y: int, w: int, h: int) -> "Gegl.Rectangle":
    return Gegl.Rectangle.new(int(x), int(y), int(w), int(h))


def _parasite(name: str, value: str) -> "Gimp.Parasite":
    return Gimp.Parasite.new(name, _FLAGS, value.encode("utf-8"))


def _parasite_text(item: "Gimp.Item", name: str) -> Optional[str]:
    par = item.get_parasite(name)
    if par is None:
        return None
    return bytes(par.get_data()).decode("utf-8", "replace")


def all_layers(image: "Gimp.Image") -> List["Gimp.Layer"]:
    """Every layer of ``image``, inside layer groups too (top first)."""
    out: List["Gimp.Layer"] = []
    stack = list(image.get_layers())
    while stack:
        lyr = stack.pop(0)
        out.append(lyr)
        if lyr.is_group():
            stack[0:0] = list(lyr.get_children())
    return out


def resolve_layer(drawables: Sequence["Gimp.Drawable"]) -> "Gimp.Layer":
    """The one layer ClickMatte works on: the selected layer (or the layer of a selected layer mask).

    Raises ``HostError`` for no drawable, several, or a channel.
    """
    if not drawables:
        raise HostError("ClickMatte needs an active layer: select the layer to cut out in the Layers dialog.")
    if len(drawables) > 1:
        raise HostError("ClickMatte works on one layer at a time: select a single layer.")
    d = drawables[0]
    if d.is_layer_mask():
        return Gimp.Layer.from_mask(d)
    if not d.is_layer():
        raise HostError("ClickMatte works on layers, not channels: select a layer.")
    key = _parasite_text(d, GUIDE_PARASITE)
    if key is not None:
        owners = [lyr for lyr in all_layers(d.get_image())
                  if lyr.get_id() != d.get_id() and _parasite_text(lyr, LAYER_PARASITE) == key]
        if len(owners) == 1:
            d.get_image().set_selected_layers(owners)
            return owners[0]
        raise HostError(f"\"{GUIDE_NAME}\" is ClickMatte's guide layer: select the layer to cut out instead.")
    return d


POINT_PATHS_HINT = ("ClickMatte: paths \"fg\" and \"bg\" are ready and \"fg\" is selected. Choose the Paths "
                    "tool (B) and click on the subject: each click is a foreground point. Select \"bg\" in the "
                    "Paths dialog and click the background. Then Layer > ClickMatte > Matte from points.")


def ensure_point_paths(image: "Gimp.Image") -> List[str]:
    """Add the paths "fg" and "bg" unless paths with those labels exist; select the foreground one.

    Returns the names of the paths it added (none when both were there). GIMP 3.0's API cannot
    choose a tool for the user, so the caller tells them to press B (the Paths tool)."""
    from .points import label_for_path_name

    by_label = {}
    for path in image.get_paths():
        label = label_for_path_name(path.get_name())
        if label is not None:
            by_label.setdefault(label, path)
    added = []
    for label in ("bg", "fg"):  # fg last, so it ends up on top of the Paths dialog
        if label not in by_label:
            path = Gimp.Path.new(image, label)
            image.insert_path(path, None, 0)
            by_label[label] = path
            added.append(label)
    image.set_selected_paths([by_label["fg"]])
    return added


class GimpHost(HostAdapter):
    """``HostAdapter`` over one GIMP image and one of its layers (see the module docstring)."""

    def __init__(self, image: "Gimp.Image", layer: "Gimp.Layer", guide_opacity: float = 60.0) -> None:
        self.image = image
        self.layer = layer
        self.guide_opacity = float(guide_opacity)
        self.warnings: List[str] = []
        self.width = layer.get_width()
        self.height = layer.get_height()
        ok, ox, oy = layer.get_offsets()
        self.offset = (int(ox), int(oy))

    # -- reading ----------------------------------------------------------------------------
    def read_image(self) -> ImageData:
        fmt, dtype = pixel_format(self.image.get_base_type().value_nick, self.image.get_precision().value_nick)
        data = self.layer.get_buffer().get(_rect(0, 0, self.width, self.height), 1.0, fmt, Gegl.AbyssPolicy.NONE)
        return ImageData(self.width, self.height, 3, dtype, "RGB", bytes(data))

    def path_anchors(self) -> List[Tuple[str, List[Tuple[float, float]]]]:
        """``[(path name, [(x, y) anchors in image pixels])]`` for every path of the image."""
        out = []
        for path in self.image.get_paths():
            anchors: List[Tuple[float, float]] = []
            for sid in path.get_strokes():
                kind, ctrl, _closed = path.stroke_get_points(sid)
                if kind == Gimp.PathStrokeType.BEZIER:
                    anchors.extend(bezier_anchors(ctrl))
            out.append((path.get_name(), anchors))
        return out

    def read_points(self) -> List[Point]:
        points, warnings = points_from_paths(self.path_anchors(), self.offset, (self.width, self.height))
        self.warnings.extend(warnings)
        return points

    def read_selection(self) -> Optional[bytes]:
        if Gimp.Selection.is_empty(self.image):
            return None
        sel = self.image.get_selection().get_buffer()
        ox, oy = self.offset
        data = sel.get(_rect(ox, oy, self.width, self.height), 1.0, SELECTION_FORMAT, Gegl.AbyssPolicy.NONE)
        return bytes(data)

    def document_key(self) -> str:
        return f"gimp:{self.image.get_id()}:{self.layer.get_id()}"

    # -- writing ----------------------------------------------------------------------------
    def write_points(self, points: Sequence[Point]) -> None:
        """Points live in the user's own paths; ClickMatte never rewrites them."""

    def _own_mask(self) -> Optional["Gimp.LayerMask"]:
        mask = self.layer.get_mask()
        if mask is None:
            return None
        if _parasite_text(mask, MASK_PARASITE) is None:
            raise HostError(
                f"Layer \"{self.layer.get_name()}\" already has a layer mask that ClickMatte did not make. "
                "Apply or delete it (Layer > Mask), then run ClickMatte again; nothing was changed."
            )
        return mask

    def read_mask(self) -> Optional[bytes]:
        """The layer's ClickMatte mask (``HostError`` for a mask someone else made), or None."""
        mask = self._own_mask()
        if mask is None:
            return None
        full = _rect(0, 0, self.width, self.height)
        return bytes(mask.get_buffer().get(full, 1.0, MASK_FORMAT, Gegl.AbyssPolicy.NONE))

    def write_foreground(self, rgb: bytes, alpha: bytes, width: int, height: int) -> str:
        """A new layer "<layer> (decontaminated)" above the layer: ``rgb`` (sRGB u8) under a copy of
        ``alpha`` as its layer mask (untagged: it is the user's to edit); the layer stays selected."""
        if (width, height) != (self.width, self.height) or len(rgb) != width * height * 3 \
                or len(alpha) != width * height:
            raise HostError(f"internal: colours of {width}x{height} do not fit the {self.width}x{self.height} layer")
        name = f"{self.layer.get_name()} (decontaminated)"
        new = Gimp.Layer.new(self.image, name, width, height, Gimp.ImageType.RGB_IMAGE, 100.0,
                             Gimp.LayerMode.NORMAL)
        buf = new.get_buffer()
        buf.set(_rect(0, 0, width, height), "R'G'B' u8", bytes(rgb))
        buf.flush()
        mask = new.create_mask(Gimp.AddMaskType.WHITE)
        mbuf = mask.get_buffer()
        mbuf.set(_rect(0, 0, width, height), MASK_FORMAT, bytes(alpha))
        mbuf.flush()
        new.add_mask(mask)
        self.image.insert_layer(new, self.layer.get_parent(), self.image.get_item_position(self.layer))
        new.set_offsets(*self.offset)
        new.update(0, 0, width, height)
        self.image.set_selected_layers([self.layer])
        return name

    def check_outputs(self) -> None:
        """Raise ``HostError`` now (before any daemon work) if the mask could not be written."""
        self._own_mask()

    def read_mask_points(self) -> Optional[List[Point]]:
        """The points of the full matte the ClickMatte mask holds (its parasite), or None (no mask, or a
        mask tagged by an older plug-in without points)."""
        mask = self.layer.get_mask()
        text = _parasite_text(mask, MASK_PARASITE) if mask is not None else None
        return points_from_tag(text) if text is not None else None

    def write_mask(self, alpha: bytes, width: int, height: int, boxes: Optional[Sequence[Box]] = None,
                   points: Optional[Sequence[Point]] = None) -> None:
        if (width, height) != (self.width, self.height) or len(alpha) != width * height:
            raise HostError(f"internal: alpha of {width}x{height} does not fit the {self.width}x{self.height} layer")
        mask = self._own_mask()
        full = _rect(0, 0, width, height)
        if mask is None or boxes is None:
            if mask is not None:
                self.layer.remove_mask(Gimp.MaskApplyMode.DISCARD)
            mask = self.layer.create_mask(Gimp.AddMaskType.WHITE)
            buf = mask.get_buffer()
            buf.set(full, MASK_FORMAT, bytes(alpha))
            buf.flush()
            # before add_mask: no undo step of its own; the points of this matte, when known
            mask.attach_parasite(_parasite(MASK_PARASITE, points_tag(points)))
            self.layer.add_mask(mask)
        else:
            # Refine: only ``boxes`` changed. Splice them into the current mask and merge through the
            # shadow buffer (undoable; GIMP confines the merge to the selection, if any).
            current = bytes(mask.get_buffer().get(full, 1.0, MASK_FORMAT, Gegl.AbyssPolicy.NONE))
            for box in boxes:
                current = paste(current, width, box, crop(alpha, width, box))
            shadow = mask.get_shadow_buffer()
            shadow.set(full, MASK_FORMAT, current)
            shadow.flush()
            mask.merge_shadow(True)
        mask.update(0, 0, width, height)

    def _layer_key(self, create: bool) -> Optional[str]:
        """The id pairing this layer with its guide (a parasite on both; tattoos change when an image is
        duplicated, parasites travel). A key shared with another layer (Layer > Duplicate) is replaced."""
        key = _parasite_text(self.layer, LAYER_PARASITE)
        if key is not None and any(lyr.get_id() != self.layer.get_id() and _parasite_text(lyr, LAYER_PARASITE) == key
                                   for lyr in all_layers(self.image)):
            key = None
        if key is None and create:
            key = uuid.uuid4().hex
            self.layer.attach_parasite(_parasite(LAYER_PARASITE, key))
        return key

    def _old_guides(self) -> List["Gimp.Layer"]:
        key = self._layer_key(create=False)
        if key is None:
            return []
        return [lyr for lyr in all_layers(self.image) if _parasite_text(lyr, GUIDE_PARASITE) == key]

    def write_guide(self, uncertainty: bytes, width: int, height: int) -> None:
        if len(uncertainty) != width * height or (width, height) != (self.width, self.height):
            raise HostError(f"internal: uncertainty of {width}x{height} does not fit the layer")
        old_guides = self._old_guides()
        visible = any(old.get_visible() for old in old_guides)
        for old in old_guides:
            self.image.remove_layer(old)
        guide = Gimp.Layer.new(self.image, GUIDE_NAME, width, height, Gimp.ImageType.RGBA_IMAGE,
                               self.guide_opacity, Gimp.LayerMode.NORMAL)
        buf = guide.get_buffer()
        buf.set(_rect(0, 0, width, height), GUIDE_FORMAT, guide_rgba(uncertainty, "RGBA"))
        buf.flush()
        guide.attach_parasite(_parasite(GUIDE_PARASITE, self._layer_key(create=True)))  # before insert_layer
        guide.set_visible(visible)
        parent = self.layer.get_parent()
        position = self.image.get_item_position(self.layer)
        self.image.insert_layer(guide, parent, position)
        guide.set_offsets(*self.offset)
        guide.update(0, 0, width, height)
        self.image.set_selected_layers([self.layer])  # keep the user's layer active

    def clear_outputs(self) -> None:
        for old in self._old_guides():
            self.image.remove_layer(old)
        if self._own_mask() is not None:
            self.layer.remove_mask(Gimp.MaskApplyMode.DISCARD)

    def notify(self, message: str, level: str = "info") -> None:
        if level in ("warning", "error"):
            Gimp.message(f"ClickMatte: {message}")
        else:
            Gimp.progress_set_text(f"ClickMatte: {message}")

    def progress(self, busy: bool) -> None:
        if busy:
            Gimp.progress_pulse()
        else:
            Gimp.progress_end()

    def set_fraction(self, fraction: float, text: str = "") -> None:
        """Move GIMP's progress bar to ``fraction`` (0..1), optionally with a new text."""
        if text:
            Gimp.progress_set_text(f"ClickMatte: {text}")
        Gimp.progress_update(max(0.0, min(1.0, float(fraction))))
