"""Compare: two or more models side by side (trust, provenance, safety metrics)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)


class ComparePage(QWidget):
    def __init__(self, db) -> None:
        super().__init__()
        self.db = db
        self.entries: dict[str, object] = {}
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
        self.pick.clear()
        for r in rows:
            item = QListWidgetItem(r.entry.name)
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
        rows = compare_rows([self.entries[i] for i in ids], self.db)
        names = metric_names(rows)
        labels = FIELDS + names
        self.table.setColumnCount(len(rows))
        self.table.setRowCount(len(labels))
        self.table.setHorizontalHeaderLabels([r["name"] for r in rows])
        self.table.setVerticalHeaderLabels(labels)
        for j, r in enumerate(rows):
            for i, f in enumerate(labels):
                value = str(r[f]) if f in FIELDS else (r["metrics"].get(f) or "not evaluated")
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                self.table.setItem(i, j, item)
        return rows
