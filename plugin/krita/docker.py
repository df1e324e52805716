"""The "ClickMatte" docker: buttons, status line, and the canvas point tool (runs inside Krita).

Point tool: with *Pick points* on, a left click (or Shift-click: Shift means "add") on the canvas
adds a foreground point, Alt-click a background point, and a click on an existing point removes it.
Clicks are caught by an event filter on the canvas widget and mapped to image pixels through the active
view's ``flakeToCanvasTransform()`` / ``flakeToImageTransform()`` (zoom, pan, rotation, mirror).
Everything slow happens in the daemon; a 50 ms ``QTimer`` drives ``Controller.tick()``.

Connecting: the first time the docker is visible it connects by itself; when no daemon answers at a
local endpoint the controller starts the installed one (``launcher.py``) and the status line counts
"starting the model ... N s". *Connect* reconnects after the endpoint was edited; *Settings...*
(``settings_dialog.py``) edits everything else.
"""
from __future__ import annotations

from typing import Any, Optional

from krita import DockWidget, Krita
from PyQt5.QtCore import QEvent, QObject, Qt, QTimer
from PyQt5.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMdiArea,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .. import settings as settings_mod
from ..host import BG, FG, HostError
from . import geometry
from .adapter import KritaHost

DOCKER_ID = "clickmatte_docker"
TICK_MS = 50
PICK_RADIUS_WIDGET_PX = 8.0
_LEVEL_COLORS = {"error": "#d03030", "warning": "#c08000", "busy": "#3070c0", "info": ""}


def find_canvas_widget() -> Optional[QWidget]:
    """The canvas widget of the active view (OpenGL or QPainter canvas), or None."""
    win = Krita.instance().activeWindow()
    if win is None:
        return None
    mdi = win.qwindow().findChild(QMdiArea)
    if mdi is None or mdi.currentSubWindow() is None:
        return None
    view_widget = mdi.currentSubWindow().widget()
    for w in view_widget.findChildren(QWidget):
        name = w.metaObject().className()
        if "Canvas" in name and ("OpenGL" in name or "QPainter" in name):
            return w
    return None


class CanvasClickFilter(QObject):
    """Turns canvas clicks into ``docker.on_canvas_click(x, y, label, radius)`` while picking."""

    def __init__(self, docker: "ClickMatteDocker") -> None:
        super().__init__()
        self.docker = docker

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        try:
            return self._filter(event)
        except Exception as exc:  # noqa: BLE001 - an exception here would open Krita's error dialog
            self.docker.show_status(f"ClickMatte point tool: {type(exc).__name__}: {exc}", "error")
            return False

    def _filter(self, event: QEvent) -> bool:
        if not self.docker.picking():
            return False
        et = event.type()
        if et in (QEvent.MouseButtonPress, QEvent.TabletPress):
            if event.button() != Qt.LeftButton:
                return False
            mods = event.modifiers()
            label = BG if mods & Qt.AltModifier else FG
            pos = event.posF() if et == QEvent.TabletPress else event.localPos()
            self.docker.on_canvas_click(pos.x(), pos.y(), label)
            return True
        if et in (QEvent.MouseButtonRelease, QEvent.MouseButtonDblClick, QEvent.TabletRelease):
            return event.button() == Qt.LeftButton
        if et in (QEvent.MouseMove, QEvent.TabletMove):
            return bool(event.buttons() & Qt.LeftButton)
        return False


class ClickMatteDocker(DockWidget):
    """The docker. ``controller`` is created on first use (pyzmq problems become a status line)."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("ClickMatte")
        self.settings = settings_mod.load()
        self.host = KritaHost(status=self.show_status, busy=self.show_busy,
                              guide_opacity=self.settings.guide_opacity)
        self.controller: Any = None
        self._filter = CanvasClickFilter(self)
        self._canvas_widget: Optional[QWidget] = None
        self._build_ui()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self._auto_connected = False
        self.visibilityChanged.connect(self.on_visibility_changed)
        if self.settings.problem:
            self.show_status(self.settings.problem, "warning")

    # -- UI ---------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        root = QWidget(self)
        lay = QVBoxLayout(root)
        row = QHBoxLayout()
        self.endpoint_edit = QLineEdit(self.settings.endpoint)
        self.endpoint_edit.setToolTip(f"Daemon endpoint, e.g. {settings_mod.DEFAULT_ENDPOINT} "
                                      "(start it with clickmatte-daemon)")
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.on_connect)
        self.settings_button = QPushButton("Settings...")
        self.settings_button.setToolTip("Endpoint, keys for a remote daemon, timeout, preview size, auto-start")
        self.settings_button.clicked.connect(self.on_settings)
        row.addWidget(self.endpoint_edit, 1)
        row.addWidget(self.connect_button)
        row.addWidget(self.settings_button)
        lay.addLayout(row)
        self.connection_label = QLabel("not connected")
        lay.addWidget(self.connection_label)

        grid = QGridLayout()
        self.pick_button = QPushButton("Pick points")
        self.pick_button.setCheckable(True)
        self.pick_button.setToolTip("Click (or Shift-click): foreground point; Alt-click: background point; "
                                    "click a point again to remove it")
        self.pick_button.toggled.connect(self.on_pick_toggled)
        self.matte_button = QPushButton("Matte")
        self.matte_button.setToolTip("Full-size matte for the current points, then refine the top-N patches")
        self.matte_button.clicked.connect(lambda: self._with_controller(lambda c: c.matte()))
        self.live_check = QCheckBox("Live")
        self.live_check.setChecked(self.settings.live)
        self.live_check.setToolTip("Preview the matte after every point change")
        self.live_check.toggled.connect(self.on_live_toggled)
        grid.addWidget(self.pick_button, 0, 0)
        grid.addWidget(self.matte_button, 0, 1)
        grid.addWidget(self.live_check, 0, 2)

        self.topn_slider = QSlider(Qt.Horizontal)
        self.topn_slider.setRange(0, 64)
        self.topn_slider.setValue(self.settings.top_n)
        self.topn_label = QLabel()
        self.topn_slider.valueChanged.connect(self.on_topn_changed)
        self.refine_button = QPushButton("Refine top-N")
        self.refine_button.clicked.connect(
            lambda: self._with_controller(lambda c: c.refine_top(self.topn_slider.value())))
        grid.addWidget(self.topn_label, 1, 0)
        grid.addWidget(self.topn_slider, 1, 1)
        grid.addWidget(self.refine_button, 1, 2)

        self.refine_sel_button = QPushButton("Refine selection")
        self.refine_sel_button.clicked.connect(lambda: self._with_controller(lambda c: c.refine_selection()))
        self.undo_button = QPushButton("Undo point")
        self.undo_button.clicked.connect(lambda: self._with_controller(lambda c: c.undo()))
        self.redo_button = QPushButton("Redo point")
        self.redo_button.clicked.connect(lambda: self._with_controller(lambda c: c.redo()))
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(lambda: self._with_controller(lambda c: c.reset()))
        grid.addWidget(self.refine_sel_button, 2, 0)
        grid.addWidget(self.undo_button, 2, 1)
        grid.addWidget(self.redo_button, 2, 2)
        grid.addWidget(self.reset_button, 3, 0)
        self.decontaminate_button = QPushButton("Decontaminate colours")
        self.decontaminate_button.setToolTip("Add a layer with the subject's colours estimated without the old "
                                             "background's spill, under a copy of the mask (the layer is unchanged)")
        self.decontaminate_button.clicked.connect(lambda: self._with_controller(lambda c: c.decontaminate()))
        grid.addWidget(self.decontaminate_button, 4, 0, 1, 3)

        self.opacity_slider = QSlider(Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(self.settings.guide_opacity)
        self.opacity_slider.valueChanged.connect(self.on_opacity_changed)
        grid.addWidget(QLabel("Guide opacity"), 3, 1)
        grid.addWidget(self.opacity_slider, 3, 2)
        lay.addLayout(grid)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        lay.addWidget(self.progress)
        self.status_label = QLabel("ClickMatte: turn on Pick points, click the subject, press Matte")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        lay.addStretch(1)
        self.setWidget(root)
        self.on_topn_changed(self.topn_slider.value())

    def show_status(self, text: str, level: str = "info") -> None:
        color = _LEVEL_COLORS.get(level, "")
        self.status_label.setStyleSheet(f"color: {color}" if color else "")
        self.status_label.setText(text)
        if text.startswith("connected to"):
            self.connection_label.setText(text)
        elif level == "error" and ("no answer" in text or "cannot connect" in text):
            self.connection_label.setText(f"not connected ({self.settings.endpoint})")

    def show_busy(self, busy: bool) -> None:
        self.progress.setRange(0, 0 if busy else 1)

    # -- controller ---------------------------------------------------------------------------
    def get_controller(self) -> Any:
        if self.controller is None:
            from ..controller import Controller

            self.controller = Controller(self.host, self.settings)
            self.controller.connect()
        return self.controller

    def _with_controller(self, action: Any) -> None:
        try:
            action(self.get_controller())
        except (HostError, ValueError) as exc:
            self.show_status(str(exc), "error")
        except Exception as exc:  # noqa: BLE001 - never let an exception escape into Krita's event loop
            self.show_status(f"ClickMatte: {type(exc).__name__}: {exc}", "error")

    def tick(self) -> None:
        if self.controller is None:
            return
        try:
            self.controller.tick()
            self.undo_button.setEnabled(self.controller.can_undo)
            self.redo_button.setEnabled(self.controller.can_redo)
            connection = getattr(self.controller, "connection", "")
            if connection and connection != self.connection_label.text():
                self.connection_label.setText(connection)  # the last exchange: connected / working / not answering
        except Exception as exc:  # noqa: BLE001
            self.show_status(f"ClickMatte: {type(exc).__name__}: {exc}", "error")

    def on_visibility_changed(self, visible: bool) -> None:
        """Connect (starting a local daemon if needed) the first time the docker is shown."""
        if visible and not self._auto_connected:
            self._auto_connected = True
            QTimer.singleShot(0, lambda: self._with_controller(lambda c: None))

    def _save_settings(self) -> None:
        try:
            settings_mod.save(self.settings)
        except (OSError, ValueError) as exc:
            self.show_status(f"cannot save settings: {exc}", "warning")

    def on_connect(self) -> None:
        self.settings.endpoint = self.endpoint_edit.text().strip()
        try:
            self.settings.validate()
        except ValueError as exc:
            self.show_status(str(exc), "error")
            return
        self._save_settings()
        if self.controller is None:
            self._with_controller(lambda c: None)
        else:
            self._with_controller(lambda c: (c.disconnect(), c.connect()))

    def on_settings(self) -> None:
        """The settings dialog; OK saves, and a changed endpoint or key reconnects."""
        from .. import launcher
        from .settings_dialog import edit_settings

        try:
            recorded = " ".join(launcher.installed_command() or [])
        except launcher.LaunchError as exc:
            recorded = str(exc)
        new = edit_settings(self.settings, self, recorded)
        if new is None:
            return
        self.apply_settings(new)

    def apply_settings(self, new: Any) -> None:
        """Use ``new`` settings (saved; the widgets follow; the controller reconnects if the endpoint or a key changed)."""
        self.settings = new
        self._save_settings()
        self.endpoint_edit.setText(new.endpoint)
        self.topn_slider.setMaximum(max(self.topn_slider.maximum(), new.top_n))
        self.topn_slider.setValue(new.top_n)
        self.opacity_slider.setValue(new.guide_opacity)
        self.live_check.setChecked(new.live)
        if self.controller is not None:
            self._with_controller(lambda c: c.apply_settings(new))

    def on_live_toggled(self, on: bool) -> None:
        self.settings.live = bool(on)
        self._save_settings()
        if self.controller is not None:
            self.controller.set_live(on)

    def on_topn_changed(self, value: int) -> None:
        self.settings.top_n = int(value)
        self.topn_label.setText(f"top-N: {value}")
        self._save_settings()

    def on_opacity_changed(self, value: int) -> None:
        self.settings.guide_opacity = int(value)
        self.host.set_guide_opacity(value)
        self._save_settings()

    # -- point tool -----------------------------------------------------------------------------
    def picking(self) -> bool:
        return self.pick_button.isChecked()

    def on_pick_toggled(self, on: bool) -> None:
        if on:
            self._install_filter()
            if self._canvas_widget is None:
                self.show_status("no canvas found: open an image first", "warning")
                self.pick_button.setChecked(False)
            else:
                self.show_status("Pick: click = foreground, Alt-click = background, click a point to remove it")

    def _install_filter(self) -> None:
        w = find_canvas_widget()
        if w is self._canvas_widget:
            return
        if self._canvas_widget is not None:
            try:
                self._canvas_widget.removeEventFilter(self._filter)
            except RuntimeError:
                pass  # the old canvas was deleted
        self._canvas_widget = w
        if w is not None:
            w.installEventFilter(self._filter)

    def canvasChanged(self, canvas: Any) -> None:  # noqa: N802 - Krita API
        self._canvas_widget = None
        if self.picking():
            QTimer.singleShot(0, self._install_filter)

    def on_canvas_click(self, wx: float, wy: float, label: str) -> None:
        win = Krita.instance().activeWindow()
        view = win.activeView() if win is not None else None
        if view is None:
            return
        try:
            f2c = geometry.from_qtransform(view.flakeToCanvasTransform())
            f2i = geometry.from_qtransform(view.flakeToImageTransform())
            ix, iy = geometry.widget_to_image(f2c, f2i, wx, wy)
            radius = geometry.widget_radius_to_image(f2c, f2i, wx, wy, PICK_RADIUS_WIDGET_PX)
        except ValueError as exc:
            self.show_status(f"cannot map the click: {exc}", "error")
            return
        doc = view.document()
        x, y = ix - 0.5, iy - 0.5
        if not (-0.5 <= x < doc.width() - 0.5 and -0.5 <= y < doc.height() - 0.5):
            return
        self._with_controller(lambda c: c.click(x, y, label, radius=max(radius, 1.0)))
