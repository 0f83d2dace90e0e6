"""Compare: two or more models side by side (trust, provenance, safety metrics).

The models to pick from come from `CatalogRows` (the same verified rows as Discover);
the comparison checks every claim's signature against its own catalog's trusted root
(`Vetted.compare_entries`), off the UI thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.catalogs import CatalogRows
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from pathlib import Path

    from vetted.catalog.schema import ModelEntry
    from vetted.core.results import ModelRow


class ComparePage(QWidget):
    compared = Signal(object)  # the rows shown (a list of dicts)

    def __init__(self, runner: Runner, catalogs: CatalogRows) -> None:
        super().__init__()
        self.runner = runner
        self.entries: dict[str, ModelEntry] = {}
        self.roots: dict[str, Path | None] = {}  # each entry's catalog trusted root (a private Sigstore's)
        self.rows: list[dict[str, Any]] | None = None  # the last comparison shown
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
        catalogs.loaded.connect(lambda rows, _notes: self.set_entries(rows))

    def set_entries(self, rows: list[ModelRow]) -> None:
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

    def compare(self, ids: list[str] | None = None) -> Job | None:
        """Compares the ticked models (or `ids`) through the runner; the table fills, and
        `compared` is emitted, when the claims are checked."""
        ids = ids or self.ticked()
        if len(ids) < 2:
            self.hint.setText("Tick at least two models to compare.")
            return None
        app = self.runner.app
        entries, roots = [self.entries[i] for i in ids], [self.roots.get(i) for i in ids]
        self.go_btn.setEnabled(False)
        return self.runner.run(lambda _job: app.compare_entries(entries, roots), key="compare",
                               on_done=self._show, on_failed=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.go_btn.setEnabled(True)
        self.hint.setText("✖ " + error_text(exc))

    def _show(self, rows: list[dict[str, Any]]) -> None:
        from vetted.cards.compare import FIELDS, metric_names  # on demand: keeps start-up light

        self.go_btn.setEnabled(True)
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
        self.rows = rows
        self.compared.emit(rows)
