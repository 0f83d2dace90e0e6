"""Settings: what a person can settle here, and what their organisation settled for them.

- Catalogs (gui/settings_catalogs.py): add one and pin its signer, change its signer,
  remove it, refresh; local catalog files are re-read when they change.
- Appearance and chat: the theme (system / light / dark) and which key sends a message.
  Both are this person's preferences on this machine (`gui.ini`, with the window's size).
- Chat defaults (gui/chat_defaults.py, the chat's own panel): default parameters, threads
  and presets.
- The local API (gui/settings_api.py): the switch, off by default, that starts the
  OpenAI-compatible server as a separate process, with its address and token.
- Transfer limits and the engine's defaults in force; the trust root; where the data is.

Read through the runner (settings file, the organisation's policy, memory available now)
when the page is built, shown, or the pinned catalogs change. What an organisation's
policy sets is never a silently dead control: a locked setting is disabled and shows a
lock, "Managed by your organisation", and the rule with its source (on hover and for
screen readers).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QRadioButton,
    QScrollArea, QVBoxLayout, QWidget,
)

from vetted.gui import theme
from vetted.gui.bridge import MANAGED, Job, Runner, error_text, plain_tooltip
from vetted.gui.catalogs import CatalogRows
from vetted.gui.events import CoreEvents
from vetted.gui.settings_api import ApiPanel
from vetted.gui.settings_catalogs import CatalogsPanel
from vetted.textsafe import one_line

MiB = 1024 * 1024
# The transfer limits, as the settings file and a policy name them (`transfers.NAME`).
TRANSFERS = (("stall_timeout", "Stall timeout", lambda v: f"{v:g} s without a byte"),
             ("window", "Slow-transfer window", lambda v: f"{v:g} s"),
             ("min_rate", "Minimum rate", lambda v: f"{v / 1024:g} KiB/s averaged over the window"),
             ("connections", "Connections per download",
              lambda v: "1 (one connection per file)" if v == 1 else f"up to {v} at once for files of 16 MiB or more"))


def _plain(text: str = "", name: str = "") -> QLabel:
    label = QLabel(text, textFormat=Qt.TextFormat.PlainText, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setAccessibleName(name)
    return label


def enter_sends(settings: QSettings) -> bool:
    """The send-key preference (`chat/enter_sends`, default True: Enter sends)."""
    return bool(settings.value(theme.ENTER_SENDS_KEY, True, type=bool))


class SettingsPage(QWidget):
    reload_requested = Signal()  # verify the catalogs again now
    shown = Signal()             # the page shows the settings as read now

    def __init__(self, runner: Runner, events: CoreEvents, catalogs: CatalogRows, prefs: QSettings) -> None:
        super().__init__()
        self.runner, self.prefs = runner, prefs
        self.managed = _plain(name="Organisation policy")
        self.managed.hide()

        self.catalogs = CatalogsPanel(runner, catalogs)
        self.catalogs.reload_requested.connect(self.reload_requested.emit)

        # appearance and chat: this person's preferences
        look = QGroupBox("Appearance and chat")
        self.theme = QComboBox(accessibleName="Theme")
        for mode, label in theme.MODES:
            self.theme.addItem(label, mode)
        self.theme.setCurrentIndex(max(0, self.theme.findData(theme.saved_mode(prefs))))
        self.theme.currentIndexChanged.connect(lambda _i: theme.set_theme(self.prefs, self.theme.currentData()))
        theme.notifier().changed.connect(self._theme_changed)
        self.theme.setMaximumWidth(220)  # a short choice: not the page's width
        self.enter_btn = QRadioButton("Enter sends; Shift+Enter starts a new line")
        self.ctrl_enter_btn = QRadioButton("Ctrl+Enter sends; Enter starts a new line")
        self.enter_btn.setAccessibleName("Enter sends the message")
        self.ctrl_enter_btn.setAccessibleName("Ctrl+Enter sends the message")
        self.send_keys = QButtonGroup(self)
        for b in (self.enter_btn, self.ctrl_enter_btn):
            self.send_keys.addButton(b)
        (self.enter_btn if enter_sends(prefs) else self.ctrl_enter_btn).setChecked(True)
        self.enter_btn.toggled.connect(self._send_key_changed)
        keys = QWidget()
        kv = QVBoxLayout(keys)
        kv.setContentsMargins(0, 0, 0, 0)
        kv.addWidget(self.enter_btn)
        kv.addWidget(self.ctrl_enter_btn)
        lf = QFormLayout(look)
        lf.addRow("Theme", self.theme)
        lf.addRow("Sending a message", keys)

        # chat defaults: the chat's own panel (parameters, threads, presets per model)
        self.chat_defaults = self._chat_defaults()

        # the local API: a switch, off by default, for a server beside the app
        self.api = ApiPanel(runner)

        # transfer limits: (value label, lock label) per limit, filled when the settings arrive
        box = QGroupBox("Transfer limits (every download and catalog fetch)")
        grid = QGridLayout(box)
        self.transfers: dict[str, tuple[QLabel, QLabel]] = {}
        for i, (name, label, _fmt) in enumerate(TRANSFERS):
            value = QLabel("…", textFormat=Qt.TextFormat.PlainText, accessibleName=label)
            lock = QLabel(textFormat=Qt.TextFormat.PlainText, accessibleName=f"{label}: who sets it")
            grid.addWidget(QLabel(label), i, 0)
            grid.addWidget(value, i, 1)
            grid.addWidget(lock, i, 2)
            self.transfers[name] = (value, lock)
        grid.setColumnStretch(2, 1)

        # the engine, the trust root, where the data is
        about = QGroupBox("Engine, trust root and data")
        self.engine = _plain("…", "Engine defaults")
        self.trust_root = _plain("…", "Sigstore trusted root")
        self.data_path = _plain(str(runner.app.loc.data), "Data folder")
        self.open_data = QPushButton("Open folder", accessibleName="Open the data folder")
        self.open_data.clicked.connect(self.open_data_folder)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_path, 1)
        data_row.addWidget(self.open_data)
        af = QFormLayout(about)
        af.addRow("Engine", self.engine)
        af.addRow("Trust root", self.trust_root)
        af.addRow("Data", data_row)

        inner = QWidget()
        v = QVBoxLayout(inner)
        v.addWidget(self.managed)
        v.addWidget(self.catalogs)
        v.addWidget(look)
        v.addWidget(self.chat_defaults)
        v.addWidget(self.api)
        v.addWidget(box)
        v.addWidget(about)
        v.addStretch(1)
        for group in inner.findChildren(QGroupBox):  # outer boxes first: a nested title stays bold
            theme.bold_title(group)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        # tab order: top to bottom, as the page reads
        order = [self.catalogs.table, self.catalogs.remove_btn, self.catalogs.repin_btn, self.catalogs.refresh_btn,
                 self.catalogs.location, self.catalogs.signer.mode, self.catalogs.add_btn, self.theme,
                 self.enter_btn, self.ctrl_enter_btn, *self.api.focus_order(), self.open_data]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)
        events.catalogs_changed.connect(self.refresh)
        self.refresh()

    def _chat_defaults(self) -> QWidget:
        """The chat's defaults panel (gui/chat_defaults.py, the chat's own), in a box."""
        from vetted.gui.chat_defaults import ChatDefaultsPanel

        self.chat_defaults_panel = ChatDefaultsPanel(self.runner, self.prefs)
        box = QGroupBox("Chat defaults (new chats start from these)")
        QVBoxLayout(box).addWidget(self.chat_defaults_panel)
        return box

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> Job:
        app = self.runner.app
        self.api.refresh()

        def job(_job: Job) -> tuple[Any, Any, int, Any, Any]:
            return app.settings(), app.engine_defaults(), app.available_memory(), app.policy(), app.catalog_uses()

        return self.runner.run(job, key="settings.read", on_done=self._show,
                               on_failed=lambda e: self.catalogs.status.setText("✖ " + error_text(e)))

    def _show(self, result: tuple[Any, Any, int, Any, Any]) -> None:
        from vetted.paths import pinned_trusted_root
        from vetted.trust.roots import PUBLIC_GOOD_SHA256

        s, engine, available, policy, uses = result
        self._show_policy(policy)
        self._show_transfers(s.transfers, policy)
        self.catalogs.show_settings(s, policy, uses)
        self.engine.setText(f"Threads: {engine.n_threads} (physical cores). Context: {engine.n_ctx} tokens. "
                            f"Memory available now: {available / MiB:.0f} MiB.")
        self.trust_root.setText(f"Sigstore's, shipped with Vetted and pinned by sha256 {PUBLIC_GOOD_SHA256[:16]}…: "
                                f"{one_line(pinned_trusted_root())}")
        self.shown.emit()

    def text(self) -> str:
        """What the page says, as plain text (tests read the page through this)."""
        t = self.catalogs.table
        rows = [f"{t.item(i, 0).text()}: must be signed by {t.item(i, 1).text()}; {t.item(i, 2).text()}"
                for i in range(t.rowCount())]
        return "\n".join([self.managed.text(), *rows, self.api.text(), self.engine.text(),
                          self.trust_root.text(), self.data_path.text()])

    def _show_policy(self, policy: Any) -> None:
        if policy.broken is not None:
            self.managed.setText("✖ Your organisation's policy is broken: nothing can be downloaded, imported or "
                                 "run until an administrator fixes it. See the Policy page.")
            self.managed.setStyleSheet(f"color: {theme.danger(self)}; font-weight: 600")
        elif policy.managed:
            self.managed.setText(f"{MANAGED}: settings marked 🔒 are set by its policy and cannot be changed "
                                 "here. See the Policy page.")
            self.managed.setStyleSheet("font-weight: 600")
        self.managed.setVisible(policy.managed)

    def _show_transfers(self, limits: Any, policy: Any) -> None:
        """Each limit in force; one the policy locks says so, with its rule and source on hover."""
        for name, _label, fmt in TRANSFERS:
            value, lock = self.transfers[name]
            value.setText(fmt(getattr(limits, name)))
            rule = policy.settings.get(f"transfers.{name}")
            if rule is None:
                why = ""
                lock.setText("not locked by the policy" if policy.managed else "")
            else:
                why = (f"Locked to {one_line(rule.value)} by rule settings.transfers.{name}, from "
                       f"{one_line(rule.source)}. Nothing you set (settings, command-line options) changes it.")
                lock.setText(MANAGED)
            for w in (value, lock):
                w.setToolTip(plain_tooltip(why) if why else "")
            lock.setAccessibleDescription(why)

    # -- preferences

    def _theme_changed(self, mode: str) -> None:
        i = self.theme.findData(mode)
        if i >= 0 and i != self.theme.currentIndex():
            self.theme.blockSignals(True)
            self.theme.setCurrentIndex(i)
            self.theme.blockSignals(False)

    def _send_key_changed(self, _checked: bool) -> None:
        self.prefs.setValue(theme.ENTER_SENDS_KEY, self.enter_btn.isChecked())
        self.prefs.sync()

    def open_data_folder(self) -> bool:
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.runner.app.loc.data)))
