"""Compare: two or more models side by side (trust, provenance, safety metrics)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from vetted.textsafe import one_line


class ComparePage(QWidget):
    def __init__(self, db) -> None:
        super().__init__()
        self.db = db
        self.entries: dict[str, object] = {}
        self.roots: dict[str, object] = {}  # each entry's catalog trusted root (a private Sigstore's)
        self.pick = QListWidget(accessibleName="Models to compare (tick two or more)")
        self.pick.setMaximumWidth(280)
        self.go_btn = QPushButton("Compare", accessibleName="Compare the ticked models")
        self.go_btn.clicked.connect(self.compare)
        self.table = QTableWidget(accessibleName="Comparison")
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.hint = QLabel("Tick two or more models, then Compare. Metrics marked (declared) come from signed "
                           "cards; 'local k/n' is the spot-check measured on this machine.")
        self.hint.setWordWrap(True)
        left = QVBoxLayout()
        left.addWidget(self.pick)
        left.addWidget(self.go_btn)
        right = QVBoxLayout()
        right.addWidget(self.hint)
        right.addWidget(self.table)
        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addLayout(right, 1)

    def set_entries(self, rows) -> None:
        ticked = self.ticked()
        self.entries = {r.entry.id: r.entry for r in rows}
        self.roots = {r.entry.id: r.catalog.trusted_root for r in rows}
        self.pick.clear()
        for r in rows:
            item = QListWidgetItem(one_line(r.entry.name))
            item.setData(Qt.UserRole, r.entry.id)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if r.entry.id in ticked else Qt.Unchecked)
            self.pick.addItem(item)

    def ticked(self) -> list[str]:
        return [self.pick.item(i).data(Qt.UserRole) for i in range(self.pick.count())
                if self.pick.item(i).checkState() == Qt.Checked]

    def compare(self, ids: list[str] | None = None) -> list[dict]:
        from vetted.cards.compare import FIELDS, compare_rows, metric_names  # on demand: keeps start-up light

        ids = ids or self.ticked()
        if len(ids) < 2:
            self.hint.setText("Tick at least two models to compare.")
            return []
        rows = compare_rows([self.entries[i] for i in ids], self.db, roots=[self.roots.get(i) for i in ids])
        names = metric_names(rows)  # metric names come from the claims: untrusted text
        labels = FIELDS + names
        self.table.setColumnCount(len(rows))
        self.table.setRowCount(len(labels))
        self.table.setHorizontalHeaderLabels([one_line(r["name"]) for r in rows])
        self.table.setVerticalHeaderLabels([one_line(label) for label in labels])
        for j, r in enumerate(rows):
            for i, f in enumerate(labels):
                value = one_line(r[f] if f in FIELDS else (r["metrics"].get(f) or "not evaluated"))
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                self.table.setItem(i, j, item)
        return rows
