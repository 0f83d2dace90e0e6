"""Library: installed models, their verification state, re-verify, remove, chat.

The list is read through the runner whenever the core says a model was installed,
removed or re-checked (wherever that happened), and when the page is shown; Re-verify
and Remove are `Vetted.check` / `Vetted.remove` on the runner, and the table follows
from their events, not from this page refreshing itself after them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QMessageBox, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
    QWidget,
)

from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line
from vetted.units import human_size as human

if TYPE_CHECKING:
    from vetted.store.installed import InstalledModel  # a type only


class LibraryPage(QWidget):
    chat_requested = Signal(str)
    refreshed = Signal()  # the table shows what the store holds now

    def __init__(self, runner: Runner, events: CoreEvents) -> None:
        super().__init__()
        self.runner = runner
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Model", "Size", "State", "Signed by"])
        self.table.setAccessibleName("Installed models")
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.verify_btn = QPushButton("Re-verify", accessibleName="Re-verify the selected model (full re-hash)")
        self.remove_btn = QPushButton("Remove", accessibleName="Remove the selected model")
        self.chat_btn = QPushButton("Chat", accessibleName="Start a chat with the selected model")
        self.verify_btn.clicked.connect(self.reverify)
        self.remove_btn.clicked.connect(self.remove)
        self.chat_btn.clicked.connect(lambda: self.current() and self.chat_requested.emit(self.current()))
        self.status = QLabel()
        self.status.setTextFormat(Qt.PlainText)  # quotes refusal reasons
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Library status")
        buttons = QHBoxLayout()
        for b in (self.verify_btn, self.remove_btn, self.chat_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        for b in (self.verify_btn, self.remove_btn, self.chat_btn):
            b.setEnabled(False)
        events.models_changed.connect(lambda _model_id: self.refresh())
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        """Another program (the command line) may have changed the store meanwhile."""
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> Job:
        app = self.runner.app
        return self.runner.run(lambda _job: app.models(), key="library.models", on_done=self._fill,
                               on_failed=lambda e: self.status.setText("✖ " + error_text(e)))

    def _fill(self, models: list[InstalledModel]) -> None:
        keep = self.current()
        self.table.setRowCount(len(models))
        for i, m in enumerate(models):
            state = "✔ verified" if m.state == "verified" else f"✖ refused: {m.state_reason}"
            for j, text in enumerate([m.model_id, human(m.size), state, m.signer]):
                item = QTableWidgetItem(one_line(text))
                item.setToolTip(text)
                self.table.setItem(i, j, item)
        if not models:
            self.status.setText("No models installed yet. Discover lists what your catalogs offer.")
        for b in (self.verify_btn, self.remove_btn, self.chat_btn):
            b.setEnabled(bool(models))
        if keep:
            self.select(keep)
        self.refreshed.emit()

    def current(self) -> str | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return item.text() if item else None

    def select(self, model_id: str) -> None:
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).text() == model_id:
                self.table.selectRow(i)

    def reverify(self) -> None:
        mid = self.current()
        if not mid:
            return
        app = self.runner.app
        self.status.setText(f"Re-hashing {mid} and re-checking its signature…")
        self.runner.run(lambda _job: app.check(mid, full=True), on_done=self._checked, on_failed=self._check_failed)

    def _checked(self, r: Any) -> None:
        self.status.setText(f"✔ {r.model_id}: every byte matches its signature by {one_line(r.signer)}.")

    def _check_failed(self, exc: BaseException) -> None:
        self.status.setText("✖ " + error_text(exc))

    def remove(self) -> None:
        mid = self.current()
        if not mid:
            return
        if QMessageBox.question(self, "Remove model", f"Remove {mid} from this computer? Chats are kept.") \
                != QMessageBox.Yes:
            return
        self.remove_now(mid)

    def remove_now(self, mid: str) -> Job:
        app = self.runner.app
        self.status.setText(f"Removing {mid}…")
        return self.runner.run(lambda _job: app.remove(mid), on_done=lambda _r: self.status.setText(f"Removed {mid}."),
                               on_failed=lambda e: self.status.setText("✖ " + error_text(e)))
