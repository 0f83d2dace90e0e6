"""Settings ▸ Local API (OpenAI-compatible): the switch that starts `vetted serve` beside the app.

- **Off by default, every time.** The switch starts unchecked at each start of the app and
  its state is never stored: the server runs only while a person has just asked for it.
- **A process of its own.** On, it starts the core's `ServerProcess` (`Vetted.api_server`),
  which runs `vetted serve` as a child — never inside the UI process — and waits for its
  "listening on" line; that wait runs on the runner's "api" lane, off the UI thread. The
  child also exits when this process ends, however it ends.
- **What it shows.** The URL (selectable), "Copy token" (the bearer token every request
  needs, to the clipboard), the port (0: any free port), and errors in words a person can
  act on (the port is in use, the organisation forbids it).
- **Locked by the organisation.** When the policy forbids the server (`api.allowed: false`)
  or is broken, the switch is disabled with a lock and the rule and its source, as every
  other locked setting on the Settings page.
- **Off again** when the switch goes off, and when the main window closes (`shutdown`). A
  server that exits on its own turns the switch off and says why.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QApplication, QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget,
)

from vetted.gui.bridge import MANAGED, Job, Runner, error_text, plain_tooltip
from vetted.textsafe import one_line

LANE = "api"  # one thread: starts and stops happen in the order they were asked for
POLL_MS = 2000  # how often the panel notices a server that exited on its own


def _label(name: str) -> QLabel:
    label = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True, accessibleName=name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                  | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    return label


def start_error(exc: BaseException, port: int) -> str:
    """What a person reads when the server would not start."""
    text = error_text(exc)
    if "address already in use" in text.lower() or "only one usage of each socket" in text.lower():
        return (f"✖ Port {port} is already used by another program. Choose another port, or 0 to let the "
                "system pick a free one.")
    if "permission denied" in text.lower():
        return f"✖ This system does not allow Vetted to listen on port {port}. Choose a port above 1024."
    return "✖ The local API did not start: " + text


class ApiPanel(QGroupBox):
    """The switch, the URL, Copy token, the port; see the module docstring."""

    def __init__(self, runner: Runner) -> None:
        super().__init__("Local API (OpenAI-compatible)")
        self.runner = runner
        self.server: Any = None  # the ServerProcess while on (or starting)
        self._started_all: list[Any] = []  # every one started here: all stop when the window closes
        self._closing = False
        self._lock = threading.Lock()
        self._port_read = False
        self.locked_by: str | None = None  # why the organisation's policy forbids the server

        self.switch = QCheckBox("Serve the local API on this computer (loopback only)",
                                accessibleName="Local API switch")
        self.switch.setChecked(False)
        self.switch.toggled.connect(self._toggled)
        self.lock = _label("Local API: who sets it")
        self.lock.hide()
        self.port = QSpinBox(accessibleName="Local API port")
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("0 (any free port)")
        from vetted.core.api_access import DEFAULT_PORT

        self.port.setValue(DEFAULT_PORT)
        self.url = _label("Local API address")
        self.url.setText("Off")
        self.copy_btn = QPushButton("Copy token", accessibleName="Copy the local API token")
        self.copy_btn.setToolTip(plain_tooltip("Copies the bearer token every request needs (Authorization: "
                                               "Bearer …). Treat it like a password."))
        self.copy_btn.setEnabled(False)
        self.copy_btn.clicked.connect(self.copy_token)
        self.status = _label("Local API status")
        self.status.setText("Tools that speak the OpenAI API can use your verified models through it; every "
                            "request needs the token. Off until you switch it on.")

        url_row = QHBoxLayout()
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy_btn)
        form = QFormLayout(self)
        form.addRow(self.switch)
        form.addRow(self.lock)
        form.addRow("Port", self.port)
        form.addRow("Address", url_row)
        form.addRow(self.status)

        self._watch = QTimer(self, interval=POLL_MS)
        self._watch.timeout.connect(self._check_alive)

    def focus_order(self) -> list[QWidget]:
        return [self.switch, self.port, self.copy_btn]

    # -- what the policy and the settings say

    def refresh(self) -> Job:
        app = self.runner.app
        return self.runner.run(lambda _job: (app.policy(), app.api_settings()), key="settings.api",
                               on_done=self._show, on_failed=lambda e: self.status.setText("✖ " + error_text(e)))

    def _show(self, result: tuple[Any, Any]) -> None:
        policy, settings = result
        if not self._port_read:  # the person's configured port, once; their edits here win after that
            self._port_read = True
            self.port.setValue(settings.port)
        self.show_policy(policy)

    def show_policy(self, policy: Any) -> None:
        rule = getattr(policy, "api_allowed", None)
        if policy.broken is not None:
            self.locked_by = ("Your organisation's policy is broken, so the local API cannot start until an "
                              "administrator fixes it. See the Policy page.")
        elif rule is not None:
            self.locked_by = (f"Forbidden by rule {rule.name}, from {one_line(rule.source)}: your organisation "
                              "does not allow the local API server on this computer.")
        else:
            self.locked_by = None
        locked = self.locked_by is not None
        self.lock.setText(f"{MANAGED}. {self.locked_by}" if locked else "")
        self.lock.setVisible(locked)
        for w in (self.switch, self.lock):
            w.setToolTip(plain_tooltip(self.locked_by) if locked else "")
        self.switch.setAccessibleDescription(self.locked_by or "")
        if locked and not self.switch.isChecked():
            self.switch.setEnabled(False)
            self.port.setEnabled(False)
        elif not locked and self.server is None:
            self.switch.setEnabled(True)
            self.port.setEnabled(True)

    def text(self) -> str:
        return "\n".join(t for t in (self.lock.text(), self.url.text(), self.status.text()) if t)

    # -- on and off

    def _toggled(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    def start(self) -> Job | None:
        if self._closing or self.locked_by is not None:
            self._set_switch(False)
            return None
        port = self.port.value()
        server = self.runner.app.api_server(port)
        with self._lock:
            self.server = server
            self._started_all.append(server)
        self.switch.setEnabled(False)  # until it answers: one start at a time
        self.port.setEnabled(False)
        self.status.setText(f"Starting the local API on port {port}…" if port else "Starting the local API…")

        def job(_job: Job) -> str:
            url = server.start()
            with self._lock:
                closing = self._closing or self.server is not server
            if closing:  # the window closed (or the switch went off) while it started
                server.stop()
            return str(url)

        return self.runner.run(job, lane=LANE, on_done=lambda url: self._started(server, url),
                               on_failed=lambda exc: self._start_failed(server, exc, port))

    def _started(self, server: Any, url: str) -> None:
        if server is not self.server:
            return
        self.switch.setEnabled(True)
        self.url.setText(url)
        self.copy_btn.setEnabled(True)
        self.status.setText("✔ Running, as a separate process, on this computer only (loopback). Point a tool at "
                            "the address above with the token as its API key. It stops when you switch it off "
                            "or close Vetted.")
        self._watch.start()

    def _start_failed(self, server: Any, exc: BaseException, port: int) -> None:
        if server is not self.server:
            return
        with self._lock:
            self.server = None
        self._off_widgets()
        self.status.setText(start_error(exc, port))

    def stop(self) -> Job | None:
        with self._lock:
            server, self.server = self.server, None
        self._watch.stop()
        self._off_widgets()
        if server is None:
            return None
        self.status.setText("Stopping the local API…")
        self.switch.setEnabled(False)
        return self.runner.run(lambda _job: server.stop(), lane=LANE, on_done=lambda _r: self._stopped(),
                               on_failed=lambda e: self.status.setText("✖ " + error_text(e)))

    def _stopped(self) -> None:
        if self.server is None:
            self.switch.setEnabled(self.locked_by is None)
            self.status.setText("Off. Nothing listens until you switch it on again.")

    def _off_widgets(self) -> None:
        self._set_switch(False)
        self.switch.setEnabled(self.locked_by is None)
        self.port.setEnabled(self.locked_by is None)
        self.url.setText("Off")
        self.copy_btn.setEnabled(False)

    def _set_switch(self, on: bool) -> None:
        self.switch.blockSignals(True)
        self.switch.setChecked(on)
        self.switch.blockSignals(False)

    def _check_alive(self) -> None:
        server = self.server
        if server is None or server.proc is None or server.running:
            return
        last = next((ln for ln in reversed(server.output) if ln.strip()), "")
        with self._lock:
            self.server = None
        self._watch.stop()
        server.stop()  # reaps it (it has already exited)
        self._off_widgets()
        self.status.setText("✖ The local API server stopped on its own" + (f": {one_line(last)}" if last else "."))

    def copy_token(self) -> Job:
        server = self.server
        app = self.runner.app

        def job(_job: Job) -> str:
            return str(server.token() if server is not None else app.api_token())

        def done(token: str) -> None:
            QApplication.clipboard().setText(token)
            self.status.setText("Token copied. Paste it where the tool asks for an API key; anyone with it can "
                                "use your models through this API.")

        return self.runner.run(job, lane="core", on_done=done,
                               on_failed=lambda e: self.status.setText("✖ " + error_text(e)))

    def shutdown(self) -> None:
        """The window is closing: the server stops now (on this thread; it takes a moment)."""
        with self._lock:
            self._closing = True
            self.server = None
            servers, self._started_all = self._started_all, []
        self._watch.stop()
        for server in servers:  # a stop still queued on the runner would be dropped at its shutdown
            server.stop()
