"""Audit: every trust decision, filterable and exportable."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from vetted.store import audit
from vetted.textsafe import one_line


class AuditPage(QWidget):
    def __init__(self, db) -> None:
        super().__init__()
        self.db = db
        self.rows: list[dict] = []
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

    def refresh(self) -> None:
        self.status = audit.verify_chain(self.db)  # shown, not enforced: the rows are what a person needs
        self.rows = audit.entries(self.db)
        self.apply()

    def visible_rows(self) -> list[dict]:
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

    def apply(self, *_a) -> None:
        rows = self.visible_rows()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, key in enumerate(["at", "result", "action", "subject", "identity", "reason"]):
                text = one_line(r[key] or "")  # rows quote catalogs, servers and libraries
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(i, j, item)
        head = self.status.head
        chain = (f"hash chain intact (head: row {head.id}, sha256 {head.hash[:16]}…)" if self.status.ok else
                 f"BROKEN hash chain: {one_line(self.status.summary())}; trust decisions are refused until it is "
                 "acknowledged (vetted audit --acknowledge)")
        self.count.setText(f"{len(rows)} of {len(self.rows)} decisions — {chain}")

    def export(self, path: str) -> int:
        rows = self.visible_rows()
        document = audit.export_document(self.db, rows=rows)  # with the chain head, for --verify-against
        with open(path, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
        return len(rows)

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export audit log", "vetted-audit.json", "JSON (*.json)")
        if path:
            self.count.setText(f"Exported {self.export(path)} decisions to {path}")
