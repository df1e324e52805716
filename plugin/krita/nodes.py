"""The nodes ClickMatte adds to a Krita document (their names) and small helpers over Krita's node tree:
finding a child, walking the tree, whether a document has a view, making a layer active again."""
from __future__ import annotations

from typing import List, Optional

from krita import Krita  # noqa: F401 - only importable inside Krita
from PyQt5.QtCore import QTimer

from . import points_layer

MASK_NAME = "ClickMatte alpha"  # the transparency mask on the target layer
GUIDE_NAME = "ClickMatte uncertainty"  # the colour-mapped paint layer at the top
OUR_LAYERS = (points_layer.LAYER_NAME, GUIDE_NAME)


def find_child(parent: object, name: str, node_type: str) -> Optional[object]:
    """The first child of ``parent`` called ``name`` of Krita node type ``node_type``, or None."""
    for n in parent.childNodes():  # type: ignore[attr-defined]
        if n.name() == name and n.type() == node_type:
            return n
    return None


def walk(node: object) -> List[object]:
    """All nodes below ``node``, depth first."""
    out = []
    for n in node.childNodes():  # type: ignore[attr-defined]
        out.append(n)
        out.extend(walk(n))
    return out


def has_view(doc: object) -> bool:
    """Whether ``doc`` is shown in a view (GUI) - some shape operations need one."""
    try:
        key = doc.rootNode().uniqueId()  # type: ignore[attr-defined]
        return any(v.document() is not None and v.document().rootNode().uniqueId() == key
                   for v in Krita.instance().views())
    except Exception:  # noqa: BLE001
        return False


def _activate(doc: object, layer: object) -> None:
    """Make ``layer`` the active node of ``doc`` unless it already is, or is no longer in ``doc``."""
    if doc.nodeByUniqueID(layer.uniqueId()) is None:  # type: ignore[attr-defined]
        return
    active = doc.activeNode()  # type: ignore[attr-defined]
    if active is None or active.uniqueId() != layer.uniqueId():  # type: ignore[attr-defined]
        doc.setActiveNode(layer)  # type: ignore[attr-defined]


def keep_active(doc: object, layer: object) -> None:
    """Make ``layer`` Krita's active node of ``doc`` again after we added a node.

    Krita activates an added node only once its layer model takes the node in, from an event that
    runs after the current Qt handler returns; a ``setActiveNode`` made now would be overridden.
    So the image's pending work is waited for (the node is then added and that event posted), the
    layer is activated now, and once more from a 0 ms timer, which runs after that event."""
    doc.waitForDone()  # type: ignore[attr-defined]
    _activate(doc, layer)
    QTimer.singleShot(0, lambda: _activate(doc, layer))
