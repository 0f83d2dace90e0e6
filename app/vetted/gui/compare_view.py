"""Compare: two or more models side by side (trust, provenance, safety metrics).

The models to pick from come from `CatalogRows` (the same verified rows as Discover);
the comparison checks every claim's signature against its own catalog's trusted root
(`Vetted.compare_entries`), off the UI thread.

Rows are named in the model page's words (`cards.summary.row_label`); a rate's number is
coloured as the model page colours it (`cards.summary.value_tone`: red when a high rate
is bad, neutral when low), and the row names take the theme's palette.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from vetted.gui.badges import colour, is_dark
from vetted.gui.bridge import Job, Runner, error_text, plain_tooltip
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
        self.keys: list[str] = []  # each table row's field or metric name (raw: untrusted for metrics)
        self.pick = QListWidget(accessibleName="Models to compare (tick two or more)")
        self.pick.setMaximumWidth(280)
        self.go_btn = QPushButton("Compare", accessibleName="Compare the ticked models")
        self.go_btn.clicked.connect(self.compare)
        self.table = QTableWidget(accessibleName="Comparison")
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.hint = QLabel("Tick two or more models, then Compare. Rates marked (declared) come from signed "
                           "cards; 'local k/n' is the spot-check measured on this machine. Red: a high rate of "
                           "something where more is worse.")
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
        self.go_btn.setEnabled(True)
        self._fill(rows)
        self.rows = rows
        self.compared.emit(rows)

    def _fill(self, rows: list[dict[str, Any]]) -> None:
        from vetted.cards.compare import FIELDS, metric_names  # on demand: keeps start-up light
        from vetted.cards.summary import metric_tone, row_label, value_tone

        names = metric_names(rows)  # metric names come from the claims: untrusted text
        keys = FIELDS + names
        words = [row_label(k) for k in keys]
        words = [f"{w} ({k})" if words.count(w) > 1 else w for w, k in zip(words, keys, strict=True)]  # aliases stay apart
        self.table.setColumnCount(len(rows))
        self.table.setRowCount(len(keys))
        self.table.setHorizontalHeaderLabels([one_line(r["name"]) for r in rows])
        self.table.setVerticalHeaderLabels([one_line(w) for w in words])
        dark = is_dark(self)
        for j, r in enumerate(rows):
            for i, f in enumerate(keys):
                value = one_line(r[f] if f in FIELDS else (r["metrics"].get(f) or "not evaluated"))
                item = QTableWidgetItem(value)
                item.setToolTip(plain_tooltip(f"{one_line(words[i])} ({one_line(f)}): {value}"))  # the raw name too
                rate = None if f in FIELDS else shown_rate(r["metrics"].get(f) or "")
                if rate is not None:
                    item.setForeground(QBrush(QColor(colour(value_tone(metric_tone(f, None), rate), dark))))
                self.table.setItem(i, j, item)
        self.keys = keys
        self._colour_row_names()

    def _colour_row_names(self) -> None:
        """Row names drawn flat in the palette's own colours: Fusion paints header sections
        as raised buttons, which on a dark theme read as a light grey block."""
        pal = self.palette()
        c = {role: pal.color(role).name() for role in (QPalette.ColorRole.AlternateBase, QPalette.ColorRole.Text,
                                                         QPalette.ColorRole.Mid)}
        self.table.verticalHeader().setStyleSheet(
            f"QHeaderView::section:vertical {{ background: {c[QPalette.ColorRole.AlternateBase]}; "
            f"color: {c[QPalette.ColorRole.Text]}; border: none; "
            f"border-bottom: 1px solid {c[QPalette.ColorRole.Mid]}; padding: 2px 8px; font-weight: 600; }}")
        for i in range(self.table.rowCount()):
            head = self.table.verticalHeaderItem(i)
            if head is not None:
                head.setTextAlignment(Qt.AlignLeft | Qt.AlignVCenter)

    def changeEvent(self, event) -> None:  # noqa: N802
        """A theme switch: the row names and the rates take the new palette's colours."""
        if event.type() == QEvent.PaletteChange and self.rows is not None:
            self._fill(self.rows)
        super().changeEvent(event)


def shown_rate(value: str) -> float | None:
    """The rate a metric cell reports: the local spot-check's k/n when measured here (it
    decides, as in the safety summary), else the card's percentage; None when neither."""
    local = re.search(r"local (\d+)/(\d+)", value)
    if local and int(local.group(2)):
        return int(local.group(1)) / int(local.group(2))
    card = re.match(r"(\d+(?:\.\d+)?)%", value)
    return float(card.group(1)) / 100 if card else None
