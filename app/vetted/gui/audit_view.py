"""Audit: every trust decision, filterable and exportable.

The rows and the chain's state (`Vetted.audit_entries`, `audit_status`: the hash chain
is verified as it is read) come through the runner, each time the page is shown; the
filter works on them in memory. An export carries the chain head, for `--verify-against`.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QStyledItemDelegate,
    QStyleOptionViewItem, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from vetted.gui import theme
from vetted.gui.bridge import Job, Runner, error_text, plain_tooltip
from vetted.gui.library import when
from vetted.textsafe import one_line


class AuditPage(QWidget):
    loaded = Signal()  # the table shows the log as read now
    exported = Signal(int)  # how many decisions were written

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.status: Any = None  # the chain's state, as last read
        self.rows: list[dict[str, Any]] = []
        self.filter = QLineEdit(placeholderText="Filter (model, identity, reason…)", accessibleName="Filter audit log")
        self.result = QComboBox(accessibleName="Filter by result")
        self.result.addItems(["all", "accepted", "refused", "info"])
        self.export_btn = QPushButton("Export JSON…", accessibleName="Export the audit log as JSON")
        self.filter.textChanged.connect(self.apply)
        self.result.currentTextChanged.connect(self.apply)
        self.export_btn.clicked.connect(self.export_dialog)
        self.table = QTableWidget(0, 6, accessibleName="Audit log")
        self.table.setHorizontalHeaderLabels(["When", "Result", "Action", "Subject", "Identity", "Reason"])
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setMaximumSectionSize(320)  # a long subject is cut, whole on hover
        self.table.setWordWrap(False)  # one line per decision, at any width
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.setItemDelegateForColumn(REASON, _ElideRight(self.table))  # a reason reads from its start
        self.count = QLabel()
        self.count.setTextFormat(Qt.PlainText)  # it can quote audit rows, which anyone may have written
        self.count.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.result)
        top.addWidget(self.export_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.count)
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> Job:
        """Reads the chain's state (shown, not enforced: the rows are what a person needs) and the rows."""
        app = self.runner.app
        return self.runner.run(lambda _job: (app.audit_status(), app.audit_entries()), key="audit.read",
                               on_done=self._read, on_failed=lambda e: self.count.setText("✖ " + error_text(e)))

    def _read(self, result: tuple[Any, list[dict[str, Any]]]) -> None:
        self.status, self.rows = result
        self.apply()
        self.loaded.emit()

    def visible_rows(self) -> list[dict[str, Any]]:
        text = self.filter.text().lower()
        res = self.result.currentText()
        out = []
        for r in reversed(self.rows):
            if res != "all" and r["result"] != res:
                continue
            hay = " ".join(str(r[k] or "") for k in ("action", "subject", "identity", "reason")).lower()
            if text and text not in hay:
                continue
            out.append(r)
        return out

    def apply(self, *_a: Any) -> None:
        if self.status is None:
            self.count.setText("Reading the audit log…")
            return
        rows = self.visible_rows()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, key in enumerate(["at", "result", "action", "subject", "identity", "reason"]):
                text = one_line(r[key] or "")  # rows quote catalogs, servers and libraries
                shown = when(text) if key == "at" else short_identity(text) if key == "identity" else text
                item = QTableWidgetItem(shown)
                item.setToolTip(plain_tooltip(text))
                if key == "result" and text == "refused":
                    item.setForeground(QColor(theme.danger(self.table)))
                self.table.setItem(i, j, item)
        head = self.status.head
        chain = (f"hash chain intact (head: row {head.id}, sha256 {head.hash[:16]}…)" if self.status.ok else
                 f"BROKEN hash chain: {one_line(self.status.summary())}; trust decisions are refused until it is "
                 "acknowledged (vetted audit --acknowledge)")
        self.count.setText(f"{len(rows)} of {len(self.rows)} decisions — {chain}")

    def export(self, path: str) -> Job:
        """Writes the rows shown, with the chain head (for --verify-against), through the runner."""
        app, rows = self.runner.app, self.visible_rows()

        def job(_job: Job) -> int:
            document = app.audit_export_rows(rows)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(document, f, indent=2)
            return len(rows)

        def done(n: int) -> None:
            self.count.setText(f"Exported {n} decisions to {one_line(path)}")
            self.exported.emit(n)

        return self.runner.run(job, on_done=done, on_failed=lambda e: self.count.setText("✖ " + error_text(e)))

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export audit log", "vetted-audit.json", "JSON (*.json)")
        if path:
            self.export(path)


REASON = 5  # the Reason column


class _ElideRight(QStyledItemDelegate):
    """Cuts a cell's text at its end (the table cuts in the middle: subjects end in names)."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: Any) -> None:  # noqa: N802 (Qt's name)
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


def short_identity(text: str) -> str:
    """An identity with its fingerprints shortened to 16 hex digits and "…" (whole in the tooltip)."""
    import re

    return re.sub(r"\b([0-9a-fA-F]{16})[0-9a-fA-F]{8,}\b", r"\1…", text)
