"""Registers the ClickMatte docker with Krita (called by the installed package's ``__init__``).

Besides the docker factory it wires two application events:

- a window is created: on the first start with the plugin (kritarc ``[clickmatte]``
  ``docker_shown`` not yet ``true``) the docker is shown in it, once; afterwards Krita's saved
  window state (the user's choice) rules;
- Krita quits (``Notifier.applicationClosing`` / ``QApplication.aboutToQuit``): the daemon the
  plugin started (``launcher.default_launcher()``) is stopped. A daemon the user started is not.
"""
from __future__ import annotations

from typing import Any

SETTINGS_GROUP = "clickmatte"
SHOWN_KEY = "docker_shown"
#: after a window is created Krita restores its saved dock state; show the docker after that
SHOW_DELAY_MS = 500

_registered = False


def show_docker_once(app: Any, docker_id: str) -> bool:
    """Show the ClickMatte docker in every window unless it was shown on an earlier start; True if shown."""
    if app.readSetting(SETTINGS_GROUP, SHOWN_KEY, "false") == "true":
        return False
    shown = False
    for win in app.windows():
        for dock in win.dockers():
            if dock.objectName() == docker_id:
                dock.setVisible(True)
                dock.raise_()
                shown = True
    if shown:
        app.writeSetting(SETTINGS_GROUP, SHOWN_KEY, "true")
    return shown


def stop_started_daemons() -> None:
    """Stop the daemon(s) this Krita started (idempotent)."""
    from .. import launcher

    launcher.default_launcher().shutdown()


def register() -> bool:
    """Add the "ClickMatte" docker factory once; returns False outside Krita or when already done."""
    global _registered
    if _registered:
        return False
    try:
        from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita
    except ImportError:
        return False
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    from .docker import DOCKER_ID, ClickMatteDocker

    app = Krita.instance()
    app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, ClickMatteDocker))
    notifier = app.notifier()
    notifier.setActive(True)
    notifier.windowCreated.connect(lambda: QTimer.singleShot(SHOW_DELAY_MS, lambda: show_docker_once(app, DOCKER_ID)))
    notifier.applicationClosing.connect(stop_started_daemons)
    qapp = QApplication.instance()
    if qapp is not None:
        qapp.aboutToQuit.connect(stop_started_daemons)
    _registered = True
    return True
