"""Discover: the catalog as a sortable, filterable table, and the selected model's page.

Its rows come from `CatalogRows` (verified off the UI thread, refreshed on core events);
filtering and sorting work on those rows in memory, so typing never waits for the core.
When an organisation's policy is in force a small note says so (read once through the
runner); when that policy is broken the note carries the fail-closed message, and the
model page's Download stays disabled with the reason beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from vetted.gui.badges import Badge, fit_badge, is_dark, safety_badge, trust_badge
from vetted.gui.bridge import MANAGED, Runner, error_text, plain_tooltip
from vetted.gui.catalogs import CatalogRows
from vetted.gui.events import CoreEvents
from vetted.gui.model_page import ModelPage
from vetted.textsafe import one_line
from vetted.units import human_size as human

# The columns that decide (trust, safety, fits this machine) come right after the name and
# stay visible at any window width; size, publisher and licence give way first (they are
# on the model page and in the filters).
COLUMNS = ["Name", "Trust", "Safety", "Memory", "Size", "Publisher", "Licence"]
NAME, TRUST, SAFETY, FIT, SIZE, PUBLISHER, LICENCE = range(len(COLUMNS))
OPTIONAL = (LICENCE, PUBLISHER, SIZE)  # hidden in this order when the table is too narrow
HEADER_TIPS = {TRUST: "Can this file be trusted: who signed it, and is the installed copy intact",
               SAFETY: "How the model behaved on safety probes: its signed card and the spot-check on this machine",
               FIT: "Does it fit this machine's memory"}
TRUST_ORDER = ("tampered", "blocked", "unreadable", "expired", "signed", "verified")

if TYPE_CHECKING:
    from vetted.core.results import ModelRow


SORT_KEYS = {
    NAME: lambda m, r: r.entry.name.lower(),
    TRUST: lambda m, r: TRUST_ORDER.index(m.badges(r)[0].kind),
    SAFETY: lambda m, r: r.safety.sort_key,
    FIT: lambda m, r: ["ok", "tight", "too_big"].index(r.fit),
    SIZE: lambda m, r: r.entry.size,
    PUBLISHER: lambda m, r: r.entry.publisher.lower(),
    LICENCE: lambda m, r: r.entry.license.lower(),
}


class CatalogModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ModelRow] = []
        self.texts: list[str] = []  # each row's searchable text, lower-cased once (CatalogFilter)
        self._badges: dict[int, tuple[Badge, Badge, Badge]] = {}
        self._texts_shown: dict[tuple[int, int], str] = {}
        self.dark = False

    def set_rows(self, rows: list[ModelRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.texts = [r.search_text() for r in rows]
        self._badges = {}
        self._texts_shown = {}
        self.endResetModel()

    def badges(self, r: ModelRow) -> tuple[Badge, Badge, Badge]:
        """(trust, safety, fit) for a row, worded once per set of rows (not per repaint)."""
        got = self._badges.get(id(r))
        if got is None:
            got = self._badges[id(r)] = (trust_badge(r), safety_badge(r.safety), fit_badge(r))
        return got

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Horizontal and role == Qt.ToolTipRole:
            return HEADER_TIPS.get(section)
        return None

    def data(self, index, role=Qt.DisplayRole):
        # A view asks ~10 roles per cell on every paint and layout: answer the unused ones
        # first and word each cell once per set of rows (a 10,000-entry search stays smooth).
        if role not in ROLES:
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == Qt.UserRole:  # sort keys: only the sorted column's (a sort asks for it ~n·log n times)
            return SORT_KEYS[col](self, r)
        badge = self.badges(r)[col - 1] if col in (TRUST, SAFETY, FIT) else None
        if role == Qt.DisplayRole:  # catalog text: shown escaped (textsafe), kept raw in the row
            return badge.words if badge is not None else self._text(r, col)
        if badge is not None:
            if role == Qt.DecorationRole:
                return badge.icon(self.dark)
            if role == Qt.ForegroundRole:
                return QColor(badge.colour(self.dark))
            if role == Qt.ToolTipRole:
                return plain_tooltip(badge.tooltip)
        elif role == Qt.ToolTipRole and col == NAME:
            return plain_tooltip(self._text(r, NAME))
        if role == Qt.AccessibleTextRole:
            return f"{COLUMNS[col]}: {self.data(index)}"
        return None

    def _text(self, r: ModelRow, col: int) -> str:
        key = (id(r), col)
        got = self._texts_shown.get(key)
        if got is None:
            e = r.entry
            raw = e.name if col == NAME else human(e.size) if col == SIZE else e.publisher if col == PUBLISHER \
                else e.license
            got = self._texts_shown[key] = one_line(raw)
        return got


ROLES = frozenset({Qt.DisplayRole, Qt.UserRole, Qt.DecorationRole, Qt.ForegroundRole, Qt.ToolTipRole,
                   Qt.AccessibleTextRole})


class CatalogFilter(QSortFilterProxyModel):
    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self._terms: list[str] = []
        self._model: CatalogModel | None = None
        self.licence = ""
        self.publisher = ""
        self.only_fit = False
        self.only_installed = False
        self.setSortRole(Qt.UserRole)

    def setSourceModel(self, model) -> None:  # noqa: N802
        self._model = model
        super().setSourceModel(model)

    def filterAcceptsRow(self, source_row: int, parent) -> bool:  # noqa: N802
        r: ModelRow = self._model.rows[source_row]
        if self._terms:
            text = self._model.texts[source_row]
            for t in self._terms:
                if t not in text:
                    return False
        if self.licence and r.entry.license != self.licence:
            return False
        if self.publisher and r.entry.publisher != self.publisher:
            return False
        if self.only_fit and r.fit == "too_big":
            return False
        if self.only_installed and r.installed_state != "verified":
            return False
        return True

    def refresh(self) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10
            self.beginFilterChange()
            self.endFilterChange()
        else:
            self.invalidateFilter()


class DiscoverPage(QWidget):
    download_requested = Signal(object)  # ModelRow

    def __init__(self, runner: Runner, events: CoreEvents, catalogs: CatalogRows) -> None:
        super().__init__()
        self.model = CatalogModel()
        self.proxy = CatalogFilter()
        self.proxy.setSourceModel(self.model)

        self.search = QLineEdit(placeholderText="Search models (name, publisher, licence…)")
        self.search.setAccessibleName("Search the catalog")
        self.search.textChanged.connect(self._on_search)
        self.licence = QComboBox(accessibleName="Filter by licence")
        self.publisher = QComboBox(accessibleName="Filter by publisher")
        self.fit = QCheckBox("Fits this machine", accessibleName="Only models that fit in memory")
        self.inst = QCheckBox("Installed", accessibleName="Only installed models")
        for w in (self.licence, self.publisher):
            w.currentTextChanged.connect(self._on_filters)
        for w in (self.fit, self.inst):
            w.toggled.connect(self._on_filters)

        self.policy_note = QLabel()
        self.policy_note.setTextFormat(Qt.PlainText)  # quotes the policy's file and its problem
        self.policy_note.setWordWrap(True)
        self.policy_note.setAccessibleName("Organisation policy")
        self.policy_note.hide()

        self.status = QLabel()
        self.status.setTextFormat(Qt.PlainText)  # notes quote catalog names and refusal reasons
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Catalog status")

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        # fit_columns asks the widest cell of a column: only the rows in view, not the first
        # 1000 (Qt's default), so a 10,000-entry catalog filters without stalling the window
        self.table.verticalHeader().setResizeContentsPrecision(0)
        self.table.setSelectionBehavior(QTableView.SelectRows)
        self.table.setSelectionMode(QTableView.SingleSelection)
        self.table.setAccessibleName("Catalog models")
        self.table.verticalHeader().hide()
        self.table.selectionModel().currentRowChanged.connect(self._on_select)

        self.page = ModelPage(runner, events)
        self.page.download_requested.connect(self.download_requested)
        catalogs.loading.connect(self._show_status)
        catalogs.failed.connect(self._show_status)
        catalogs.loaded.connect(self.set_rows)

        # the check boxes beside the search box, the two lists under it: both rows keep their
        # words whole down to a 1024 px window
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.fit)
        top.addWidget(self.inst)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Licence:"))
        filters.addWidget(self.licence, 1)
        filters.addWidget(QLabel("Publisher:"))
        filters.addWidget(self.publisher, 1)
        for combo in (self.licence, self.publisher):
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(13)  # "All publishers" whole
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(top)
        lv.addLayout(filters)
        lv.addWidget(self.policy_note)
        lv.addWidget(self.status)
        lv.addWidget(self.table)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.page)
        self.page.setMinimumWidth(340)  # its fact tables and buttons stay readable in a 1024 px window
        # the page gets over 40%: its facts are what a person reads; the table keeps
        # room for name, trust, safety and fit (fit_columns drops the rest first)
        split.setStretchFactor(0, 29)
        split.setStretchFactor(1, 21)
        split.setSizes([725, 525])
        split.setChildrenCollapsible(False)
        self.split = split
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.ElideRight)  # a badge's first words carry its state
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setSectionResizeMode(NAME, QHeaderView.Stretch)  # the name elides; the badges keep their room
        header.setMinimumSectionSize(48)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # columns fit the width instead
        self.table.viewport().installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        app = runner.app
        runner.run(lambda _job: app.policy(), key="discover.policy", on_done=self._show_policy,
                   on_failed=lambda e: self._show_status("✖ " + error_text(e)))

    def _show_policy(self, policy) -> None:
        """The policy is read once per application object: it changes when the app restarts."""
        if policy.broken is not None:
            self.policy_note.setText("✖ Your organisation's policy is broken: nothing can be downloaded, imported "
                                     "or run until an administrator fixes it.\n" + error_text(policy.broken))
            self.policy_note.setStyleSheet("color: #b00020; font-weight: 600")
            self.page.set_policy_broken(policy.broken.line())
        elif policy.managed:
            self.policy_note.setText(f"{MANAGED}: what you can download and run follows its policy "
                                     "(see the Policy page).")
            self.policy_note.setToolTip(plain_tooltip("Policy documents in force: "
                                                      + ", ".join(one_line(d) for d in policy.documents)))
        self.policy_note.setVisible(policy.managed)

    def shutdown(self) -> None:
        self.page.shutdown()

    def set_rows(self, rows: list[ModelRow], status: str) -> None:
        current = self.selected()
        self.model.set_rows(rows)
        for combo, values, everything in ((self.licence, {r.entry.license for r in rows}, "All licences"),
                                          (self.publisher, {r.entry.publisher for r in rows}, "All publishers")):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(everything, "")  # no filter: its data is "", never a value to match
            for v in sorted(values):  # shown escaped; the raw value is what filters
                combo.addItem(one_line(v), v)
            combo.setCurrentIndex(max(combo.findData(keep if keep in values else ""), 0))
            combo.blockSignals(False)
        self.status.setText(status)
        self.status.setVisible(bool(status))
        self.model.dark = is_dark(self)
        self.fit_columns()
        if current:
            self.select_id(current.entry.id)
        elif rows and self.proxy.rowCount():
            self.table.selectRow(0)

    def focus_search(self) -> None:
        """Puts the cursor in the search box (the window's search shortcut)."""
        self.search.setFocus(Qt.ShortcutFocusReason)
        self.search.selectAll()

    def changeEvent(self, event) -> None:  # noqa: N802
        """A theme switch: the badges take the new theme's colours (readable on its base)."""
        if event.type() == QEvent.PaletteChange:
            self.model.dark = is_dark(self)
            self.table.viewport().update()
            if self.page.row is not None:
                self.page.show_row(self.page.row)
        super().changeEvent(event)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.table.viewport() and event.type() == QEvent.Resize:
            self.fit_columns()
        return super().eventFilter(obj, event)

    def fit_columns(self) -> None:
        """Fits the columns to the table's width without a horizontal scroll bar: trust,
        safety and memory fit always show (their text elides, the tooltip has it all), the
        name takes what is left, and licence, publisher, then size step aside when there
        is no room for them."""
        header = self.table.horizontalHeader()
        avail = self.table.viewport().width()
        if avail <= 0:
            return
        pad = 10  # breathing room beyond the widest visible cell

        def want(col: int, cap: int) -> int:
            return min(cap, max(self.table.sizeHintForColumn(col), header.sectionSizeFromContents(col).width()) + pad)

        name_min, name_more = 110, 70  # the name keeps 180 px before size, publisher or licence show
        essential = {TRUST: want(TRUST, 300), SAFETY: want(SAFETY, 300), FIT: want(FIT, 120)}
        optional = {SIZE: want(SIZE, 110), PUBLISHER: want(PUBLISHER, 170), LICENCE: want(LICENCE, 150)}
        room = avail - name_min - sum(essential.values())
        if room < 0:  # even the badges must squeeze: trust and safety share it, never below a readable width
            both = essential[TRUST] + essential[SAFETY]
            target = max(260, both + room)
            for col in (TRUST, SAFETY):
                essential[col] = max(130, round(target * essential[col] / both))
            room = avail - name_min - sum(essential.values())
        shown = set()
        for col in (SIZE, PUBLISHER, LICENCE):  # most useful first
            if optional[col] + name_more <= room:
                shown.add(col)
                room -= optional[col]
        for col in OPTIONAL:
            self.table.setColumnHidden(col, col not in shown)
        for col, width in {**essential, **{c: optional[c] for c in shown}}.items():
            header.resizeSection(col, width)

    def _show_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def _on_search(self, text: str) -> None:
        self.proxy.text = text
        self.proxy._terms = text.lower().split()
        self.proxy.refresh()

    def _on_filters(self, *_a) -> None:
        self.proxy.licence = self.licence.currentData() or ""
        self.proxy.publisher = self.publisher.currentData() or ""
        self.proxy.only_fit = self.fit.isChecked()
        self.proxy.only_installed = self.inst.isChecked()
        self.proxy.refresh()

    def _on_select(self, current: QModelIndex, _prev=None) -> None:
        row = self.row_at(current)
        self.page.show_row(row)

    def row_at(self, index: QModelIndex) -> ModelRow | None:
        if not index.isValid():
            return None
        return self.model.rows[self.proxy.mapToSource(index).row()]

    def selected(self) -> ModelRow | None:
        return self.row_at(self.table.currentIndex())

    def select_id(self, model_id: str) -> bool:
        for i in range(self.proxy.rowCount()):
            idx = self.proxy.index(i, 0)
            r = self.row_at(idx)
            if r and r.entry.id == model_id:
                self.table.setCurrentIndex(idx)
                self.table.selectRow(i)
                if self.page.row is not r:
                    self.page.show_row(r)
                return True
        return False
