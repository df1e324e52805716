"""Exercise the Krita docker's settings dialog with Krita's PyQt5 (offscreen, no Krita needed).

Run inside the editor root: ``python3 settings_dialog_check.py PLUGIN_DIR OUT.json``; ``PLUGIN_DIR`` is
the repository's ``plugin/`` folder, imported as the package ``clickmatte`` (as the install lays it out).
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
plugin_dir, out_path = sys.argv[1], sys.argv[2]
pkgs = tempfile.mkdtemp(prefix="cm-pkg-")
os.symlink(plugin_dir, os.path.join(pkgs, "clickmatte"))
sys.path.insert(0, pkgs)

from PyQt5.QtWidgets import QApplication  # noqa: E402

from clickmatte import settings as S  # noqa: E402
from clickmatte.krita.settings_dialog import SettingsDialog  # noqa: E402

app = QApplication([])
out = {}
start = S.Settings(endpoint="tcp://127.0.0.1:5557", top_n=5, timeout_s=20.0, guide_opacity=40)
d = SettingsDialog(start, recorded_daemon="/opt/cm/bin/clickmatte-daemon")
out["shown"] = [d.endpoint.text(), d.top_n.value(), d.timeout.value(), d.guide_opacity.value(),
                d.auto_start.isChecked(), d.daemon_path.placeholderText(), d.client_secret.echoMode() == d.client_secret.Password]
out["ranges"] = {"top_n": [d.top_n.minimum(), d.top_n.maximum()], "timeout_s": [d.timeout.minimum(), d.timeout.maximum()],
                 "preview_size": [d.preview_size.minimum(), d.preview_size.maximum()]}
d.endpoint.setText(" tcp://10.0.0.2:6000 ")
d.server_key.setText("S" * 40)
d.client_public.setText("P" * 40)
d.client_secret.setText("X" * 40)
d.timeout.setValue(45.0)
d.top_n.setValue(999)  # beyond the range: the spin box holds the highest allowed
d.auto_start.setChecked(False)
d.daemon_path.setText("/usr/local/bin/clickmatte-daemon")
d.accept()
out["accepted"] = d.result() == d.Accepted
out["result"] = d.result_settings.to_json() if d.result_settings else None
# a server key without the client pair is refused, and the dialog stays open with the reason
d2 = SettingsDialog(start)
d2.server_key.setText("S" * 40)
d2.accept()
out["refused"] = [d2.result_settings is None, d2.result() == d2.Accepted, d2.problem.text()]
d3 = SettingsDialog(start)
d3.endpoint.setText("nonsense")
d3.accept()
out["bad_endpoint"] = [d3.result_settings is None, d3.problem.text()]
with open(out_path, "w") as f:
    json.dump(out, f)
