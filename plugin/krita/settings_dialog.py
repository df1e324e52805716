"""The Krita docker's *Settings...* dialog (PyQt5 only): the same settings as GIMP's Settings procedure.

Fields: daemon endpoint; the CURVE keys for a daemon on another machine (the Z85 text of the
server's public key and this machine's key pair, from ``clickmatte-keys``; the secret key is
shown as dots); the timeout (seconds a heartbeat may go unanswered before "no answer"); patches
refined after a Matte; the live-preview size; the guide opacity; whether to start a local daemon
when none answers, and which program (empty: the one ``clickmatte-install`` recorded). Ranges
come from ``settings.RANGES``; *OK* validates (``Settings.validate``) and keeps the dialog open
with the reason when a value is refused.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from PyQt5.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..settings import DEFAULT_ENDPOINT, RANGES, Settings


def _spin(name: str, value: int, suffix: str = "") -> QSpinBox:
    lo, hi = RANGES[name]
    box = QSpinBox()
    box.setRange(int(lo), int(hi))
    box.setValue(int(value))
    if suffix:
        box.setSuffix(suffix)
    return box


class SettingsDialog(QDialog):
    """Edits a copy of ``settings``; after ``exec_()`` returns Accepted, ``result_settings`` holds it."""

    def __init__(self, settings: Settings, parent: Optional[QWidget] = None, recorded_daemon: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("ClickMatte settings")
        self._base = settings
        self.result_settings: Optional[Settings] = None
        form = QFormLayout()
        self.endpoint = QLineEdit(settings.endpoint)
        self.endpoint.setToolTip(f"{DEFAULT_ENDPOINT} (this machine), tcp://HOST:PORT (another one), ipc://PATH")
        self.server_key = QLineEdit(settings.server_public_key)
        self.client_public = QLineEdit(settings.client_public_key)
        self.client_secret = QLineEdit(settings.client_secret_key)
        self.client_secret.setEchoMode(QLineEdit.Password)
        self.timeout = QDoubleSpinBox()
        lo, hi = RANGES["timeout_s"]
        self.timeout.setRange(lo, hi)
        self.timeout.setDecimals(1)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(float(settings.timeout_s))
        self.top_n = _spin("top_n", settings.top_n)
        self.preview_size = _spin("preview_size", settings.preview_size, " px")
        self.guide_opacity = _spin("guide_opacity", settings.guide_opacity, " %")
        self.auto_start = QCheckBox("Start clickmatte-daemon when none answers (this machine only)")
        self.auto_start.setChecked(settings.auto_start)
        self.daemon_path = QLineEdit(settings.daemon_path)
        self.daemon_path.setPlaceholderText(recorded_daemon or "the program clickmatte-install recorded")
        form.addRow("Daemon endpoint", self.endpoint)
        form.addRow("Server public key (Z85)", self.server_key)
        form.addRow("Client public key (Z85)", self.client_public)
        form.addRow("Client secret key (Z85)", self.client_secret)
        form.addRow("Timeout", self.timeout)
        form.addRow("Patches refined after Matte", self.top_n)
        form.addRow("Live preview size (0 = full)", self.preview_size)
        form.addRow("Guide opacity", self.guide_opacity)
        form.addRow(self.auto_start)
        form.addRow("Daemon program", self.daemon_path)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #d03030")
        self.problem.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.problem)
        lay.addWidget(buttons)

    def values(self) -> Settings:
        """The settings as the fields show them (``ValueError`` for a value ``validate`` refuses)."""
        s = replace(self._base, endpoint=self.endpoint.text().strip(),
                    server_public_key=self.server_key.text().strip(),
                    client_public_key=self.client_public.text().strip(),
                    client_secret_key=self.client_secret.text().strip(),
                    timeout_s=float(self.timeout.value()), top_n=int(self.top_n.value()),
                    preview_size=int(self.preview_size.value()), guide_opacity=int(self.guide_opacity.value()),
                    auto_start=self.auto_start.isChecked(), daemon_path=self.daemon_path.text().strip())
        if s.server_public_key and not (s.client_public_key and s.client_secret_key):
            raise ValueError("a server key needs this machine's key pair too (both client keys, made by clickmatte-keys)")
        return s.validate()

    def accept(self) -> None:  # noqa: D401 - Qt API
        try:
            self.result_settings = self.values()
        except ValueError as exc:
            self.problem.setText(str(exc))
            return
        super().accept()


def edit_settings(settings: Settings, parent: Optional[QWidget] = None, recorded_daemon: str = "") -> Optional[Settings]:
    """Show the dialog (modal); the new settings, or None when cancelled."""
    dialog = SettingsDialog(settings, parent, recorded_daemon)
    return dialog.result_settings if dialog.exec_() == QDialog.Accepted else None
