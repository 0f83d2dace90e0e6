"""Library: installed models, their verification state, re-verify, remove, chat."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QMessageBox, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
    QWidget,
)

from vetted.gui.bridge import Runner, error_text
from vetted.units import human_size as human
from vetted.paths import Locations
from vetted.store import installed
from vetted.textsafe import one_line


class LibraryPage(QWidget):
    chat_requested = Signal(str)
    changed = Signal()

    def __init__(self, runner: Runner, loc: Locations, db) -> None:
        super().__init__()
        self.runner, self.loc, self.db = runner, loc, db
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
        self.refresh()

    def refresh(self) -> None:
        models = installed.all_models(self.db)
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

    def current(self) -> str | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return item.text() if item else None

    def select(self, model_id: str) -> None:
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).text() == model_id:
                self.table.selectRow(i)

    def reverify(self) -> None:
        from vetted.services import check_model

        mid = self.current()
        if not mid:
            return
        self.status.setText(f"Re-hashing {mid} and re-checking its signature…")
        self.runner.run(lambda _c: check_model(self.loc, mid, True), on_done=self._checked,
                        on_failed=self._check_failed)

    def _checked(self, r) -> None:
        self.status.setText(f"✔ {r.model_id}: every byte matches its signature by {one_line(r.signer)}.")
        self.refresh()
        self.changed.emit()

    def _check_failed(self, exc) -> None:
        self.status.setText("✖ " + error_text(exc))
        self.refresh()
        self.changed.emit()

    def remove(self) -> None:
        mid = self.current()
        if not mid:
            return
        if QMessageBox.question(self, "Remove model", f"Remove {mid} from this computer? Chats are kept.") \
                != QMessageBox.Yes:
            return
        self.remove_now(mid)

    def remove_now(self, mid: str) -> None:
        installed.purge(self.db, mid)
        self.status.setText(f"Removed {mid}.")
        self.refresh()
        self.changed.emit()
