"""Registers the ClickMatte docker with Krita (called by the installed package's ``__init__``)."""
from __future__ import annotations

_registered = False


def register() -> bool:
    """Add the "ClickMatte" docker factory once; returns False outside Krita or when already done."""
    global _registered
    if _registered:
        return False
    try:
        from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita
    except ImportError:
        return False
    from .docker import DOCKER_ID, ClickMatteDocker

    app = Krita.instance()
    app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, ClickMatteDocker))
    _registered = True
    return True
