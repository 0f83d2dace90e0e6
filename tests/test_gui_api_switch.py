"""Settings ▸ Local API: the desktop app's switch for the OpenAI-compatible server, driven
through real widgets (pytest-qt, offscreen) over a real `vetted serve` child process.

- The switch is off when the window opens: nothing listens, no token is copied.
- Switched on, a real server process (not the UI process) starts; the URL the panel shows
  answers GET /v1/models with the token "Copy token" put on the clipboard, and 401 without it.
- Switched off, the process ends. Closing the window ends it too.
- A port another program holds is a plain sentence, and the switch goes back off.
- The organisation's policy `api.allowed: false` disables the switch with a lock, the rule and
  its source named, and a click starts nothing.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from test_gui import fake_app, open_window, tiny  # noqa: F401 (fixtures)
from test_gui_policy import policy_file
from vetted.policy import sources

pytestmark = pytest.mark.usefixtures("no_machine_policy")  # conftest: policies come only from the tests


def get_models(url: str, token: str | None) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/models")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def switch_on(qtbot, panel, port: int = 0):
    """Sets the port (0: any free one) and clicks the switch; returns the server once it answers."""
    panel.port.setValue(port)
    panel.switch.click()
    assert panel.switch.isChecked()
    qtbot.waitUntil(lambda: panel.url.text().startswith("http://") or panel.status.text().startswith("✖"),
                    timeout=60_000)
    return panel.server


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_off_by_default_and_on_serves_with_the_copied_token_and_off_stops_it(qtbot, loc, tiny) -> None:  # noqa: F811
    w = open_window(qtbot, fake_app(loc, install=()))
    w.go("Settings")
    panel = w.settings_page.api
    assert not panel.switch.isChecked() and panel.switch.isEnabled()
    assert panel.server is None and panel.url.text() == "Off" and not panel.copy_btn.isEnabled()
    assert not panel.lock.isVisible()

    server = switch_on(qtbot, panel)
    assert server is not None and server.running, panel.status.text()
    assert server.proc.pid != os.getpid()  # a process of its own, beside the app
    url = panel.url.text()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert panel.url.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse

    QApplication.clipboard().clear()
    qtbot.mouseClick(panel.copy_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: QApplication.clipboard().text().startswith("vetted-"), timeout=10_000)
    token = QApplication.clipboard().text()
    assert token == (loc.data / "api-token").read_text().strip()

    status, body = get_models(url, token)
    assert status == 200 and body["object"] == "list"
    status, body = get_models(url, None)
    assert status == 401 and "error" in body
    assert get_models(url, token + "x")[0] == 401

    panel.switch.click()  # off
    assert not panel.switch.isChecked()
    qtbot.waitUntil(lambda: server.proc is None and panel.switch.isEnabled(), timeout=20_000)
    assert panel.url.text() == "Off" and not panel.copy_btn.isEnabled()
    assert not answers(port_of(url))
    w.close()


def test_closing_the_window_stops_the_server_and_the_switch_is_not_remembered(qtbot, loc, tiny) -> None:  # noqa: F811
    w = open_window(qtbot, fake_app(loc, install=()))
    w.go("Settings")
    server = switch_on(qtbot, w.settings_page.api)
    assert server is not None and server.running
    proc, port = server.proc, port_of(w.settings_page.api.url.text())
    w.close()
    assert proc.poll() is not None and not server.running
    assert not answers(port)

    again = open_window(qtbot, fake_app(loc, install=()))  # the next start: off again
    assert not again.settings_page.api.switch.isChecked() and again.settings_page.api.server is None
    again.close()


def test_a_busy_port_is_said_plainly_and_the_switch_goes_back_off(qtbot, loc, tiny) -> None:  # noqa: F811
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy = holder.getsockname()[1]
    try:
        w = open_window(qtbot, fake_app(loc, install=()))
        panel = w.settings_page.api
        switch_on(qtbot, panel, busy)
        qtbot.waitUntil(lambda: not panel.switch.isChecked(), timeout=10_000)
        assert f"Port {busy} is already used by another program" in panel.status.text()
        assert panel.server is None and panel.switch.isEnabled() and panel.url.text() == "Off"
        w.close()
    finally:
        holder.close()


def test_policy_forbidding_the_server_disables_the_switch_naming_the_rule(qtbot, loc, tiny, tmp_path,  # noqa: F811
                                                                         monkeypatch) -> None:
    path = policy_file(tmp_path, {"api": {"allowed": False}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    w = open_window(qtbot, fake_app(loc, install=()))
    w.go("Settings")
    panel = w.settings_page.api
    qtbot.waitUntil(lambda: panel.locked_by is not None, timeout=10_000)
    assert not panel.switch.isEnabled() and not panel.port.isEnabled()
    assert panel.lock.isVisible()
    assert "Managed by your organisation" in panel.lock.text() and "api.allowed" in panel.lock.text()
    assert str(path) in panel.lock.text() and "api.allowed" in panel.switch.toolTip()
    assert "api.allowed" in w.settings_page.text()
    panel.switch.click()
    assert not panel.switch.isChecked() and panel.server is None
    assert panel.start() is None and panel.server is None  # even asked directly, nothing starts
    w.close()
