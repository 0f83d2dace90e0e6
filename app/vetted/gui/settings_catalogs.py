"""Settings ▸ Catalogs: the catalogs in use, whose signature each must carry, and what
each holds now; add one and pin its signer, change its signer, remove it, refresh.

Adding runs the same checks as `vetted catalog add` (`Vetted.pin_catalog`, through the
Welcome page's signer form): one signer mode, the key or chain read and parsed by the
core, the organisation's policy first. Pinning a location already pinned to another
signer is refused by the core, as on the command line; here the person is shown both
signers and asked to confirm, which is the `--replace-signer` of the CLI. A catalog the
organisation's policy provides shows a lock: it cannot be removed or re-pinned here.

`CatalogWatcher` watches each local catalog file, its signature and its folder; when one
changes (a publisher re-signed it, an editor replaced it), the catalogs are verified
again after a short pause, so a new issue shows without restarting the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox,
    QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from vetted.gui.bridge import MANAGED, Job, Runner, error_text, plain_tooltip
from vetted.gui.catalogs import CatalogRows
from vetted.gui.signer_form import SignerForm, file_row, read_signer
from vetted.textsafe import one_line

COLUMNS = ["Catalog", "Must be signed by", "Now"]
DEBOUNCE_MS = 400  # a re-sign writes the catalog, then its signature: verify once both are there


def _local(location: str) -> Path | None:
    if location.startswith(("http://", "https://")):
        return None
    return Path(location.removeprefix("file://"))


class CatalogWatcher(QObject):
    """Verifies the catalogs again when a local catalog file or its signature changes."""

    changed = Signal(str)  # the path that changed (before the pause)

    def __init__(self, catalogs: CatalogRows, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.catalogs = catalogs
        self.fs = QFileSystemWatcher(self)
        self.timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.timer.timeout.connect(catalogs.reload)
        self.fs.fileChanged.connect(self._changed)
        self.fs.directoryChanged.connect(self._changed)
        catalogs.loaded.connect(lambda *_a: self.watch())
        self.wanted: set[str] = set()

    def watch(self) -> None:
        """Watches what the catalogs now in use are read from (after every verification)."""
        wanted: set[str] = set()
        for s in self.catalogs.states or []:
            p = _local(s.location)
            if p is not None:
                wanted |= {str(p), f"{p}.sig", str(p.parent)}
        self.wanted = wanted
        gone = [x for x in self.fs.files() + self.fs.directories() if x not in wanted]
        if gone:
            self.fs.removePaths(gone)
        self._add_existing()

    def _add_existing(self) -> None:
        have = set(self.fs.files()) | set(self.fs.directories())
        new = [x for x in self.wanted if x not in have and Path(x).exists()]
        if new:
            self.fs.addPaths(new)

    def _changed(self, path: str) -> None:
        self._add_existing()  # a file replaced by a rename is no longer watched: watch the new one
        self.changed.emit(path)
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        paths = self.fs.files() + self.fs.directories()
        if paths:
            self.fs.removePaths(paths)


class CatalogsPanel(QGroupBox):
    reload_requested = Signal()

    def __init__(self, runner: Runner, catalogs: CatalogRows) -> None:
        super().__init__("Catalogs")
        self.runner, self.catalogs = runner, catalogs
        self.rows: list[dict[str, Any]] = []  # what each table row is: location, managed source, …
        self.table = QTableWidget(0, len(COLUMNS), accessibleName="Catalogs in use")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the location takes what is left
        header.setStretchLastSection(False)
        self.table.itemSelectionChanged.connect(self._selection)
        self.refresh_btn = QPushButton("Refresh catalogs", accessibleName="Verify every catalog again now")
        self.refresh_btn.setToolTip("Fetch and verify every catalog again (local files are also re-read "
                                    "by themselves when they change)")
        self.remove_btn = QPushButton("Remove", accessibleName="Remove the selected catalog")
        self.repin_btn = QPushButton("Change signer…", accessibleName="Pin another signer for the selected catalog")
        self.refresh_btn.clicked.connect(self.reload_requested.emit)
        self.remove_btn.clicked.connect(self.remove)
        self.repin_btn.clicked.connect(self.start_repin)
        self.row_note = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.row_note.setAccessibleName("About the selected catalog")
        buttons = QHBoxLayout()
        for b in (self.remove_btn, self.repin_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_btn)

        # add a catalog
        self.location = QLineEdit(placeholderText="https://models.example.org/catalog.json or a file",
                                  accessibleName="Catalog location to add")
        self.signer = SignerForm("for the catalog to add")
        self.add_btn = QPushButton("Add catalog", accessibleName="Add the catalog and pin its signer")
        self.add_btn.clicked.connect(lambda: self.add())
        self.add_lock = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.add_lock.setAccessibleName("Why catalogs cannot be added")
        self.add_lock.hide()
        self.status = QLabel(textFormat=Qt.TextFormat.PlainText, wordWrap=True)
        self.status.setAccessibleName("Catalog result")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.add_box = QWidget()
        form = QFormLayout(self.add_box)
        form.setContentsMargins(0, 6, 0, 0)
        form.addRow(QLabel("<b>Add a catalog</b> — it is used only when it carries the signature you name."))
        form.addRow("Location", file_row(self.location, "Catalog file", "Catalogs (*.json);;All (*)"))
        form.addRow(self.signer)
        add_row = QHBoxLayout()
        add_row.addWidget(self.add_btn)
        add_row.addStretch(1)
        form.addRow(add_row)

        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.row_note)
        layout.addWidget(self.add_lock)
        layout.addWidget(self.add_box)
        layout.addWidget(self.status)
        catalogs.loading.connect(lambda _what: self._states_loading())
        catalogs.loaded.connect(lambda *_a: self._fill_states())
        catalogs.failed.connect(self.status.setText)
        self._selection()

    # -- what is pinned (from the settings read) and what each catalog holds (from CatalogRows)

    def show_settings(self, settings: Any, policy: Any, uses: list[Any]) -> None:
        from vetted.paths import normalise_location

        rows = []
        for u in uses:
            rows.append({"location": u.location, "signer": " or ".join(one_line(x.describe()) for x in u.signers),
                         "managed": u.managed_by, "blocked": None})
        in_use = {normalise_location(u.location) for u in uses}
        for c in settings.catalogs:  # the person's own pins the policy keeps out
            if normalise_location(c.location) not in in_use:
                rule = policy.users_may_add
                why = ("your organisation does not allow catalogs of your own"
                       + (f" (rule catalogs.users_may_add, from {one_line(rule.source)})" if rule else ""))
                rows.append({"location": c.location, "signer": one_line(c.signer.describe()), "managed": None,
                             "blocked": why})
        keep = self.selected()
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, text in enumerate((one_line(r["location"]), r["signer"], "")):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tooltip(text))
                self.table.setItem(i, j, item)
        self._fill_states()
        self._fit()
        if not rows:
            self.status.setText("No catalog is configured yet: add one below.")
        if keep is not None:
            self.select(keep)
        self._show_add_lock(policy)
        self._selection()

    def _fit(self) -> None:
        """As tall as its rows (two to six), columns shared by what they say: the signer and
        the state at their width up to a cap, the location gets the rest; what does not fit
        is cut in the middle (whole on hover)."""
        rows = max(2, min(6, self.table.rowCount()))
        height = self.table.horizontalHeader().sizeHint().height() + rows * self.table.verticalHeader()\
            .defaultSectionSize() + 2 * self.table.frameWidth()
        self.table.setFixedHeight(height)
        self.table.resizeColumnToContents(1)
        self.table.resizeColumnToContents(2)
        self.table.setColumnWidth(1, min(self.table.columnWidth(1), 280))
        self.table.setColumnWidth(2, min(self.table.columnWidth(2), 420))

    def _show_add_lock(self, policy: Any) -> None:
        blocked = None
        if policy.broken is not None:
            blocked = "🔒 Your organisation's policy is broken: no catalog can be added until it is fixed."
        elif not policy.may_use_users_catalog():
            rule = policy.users_may_add
            src = f", from {one_line(rule.source)}" if rule is not None else ""
            blocked = f"🔒 Your organisation does not allow adding catalogs (rule catalogs.users_may_add{src})."
        self.add_box.setEnabled(blocked is None)
        self.add_lock.setText(blocked or "")
        self.add_lock.setVisible(blocked is not None)
        self.add_btn.setToolTip(plain_tooltip(blocked) if blocked else "")

    def _states_loading(self) -> None:
        for i in range(self.table.rowCount()):
            item = self.table.item(i, 2)
            if item is not None and not item.text():
                item.setText("verifying…")

    def _fill_states(self) -> None:
        from vetted.paths import normalise_location

        states = {normalise_location(s.location): s for s in self.catalogs.states or []}
        for i, r in enumerate(self.rows):
            s = states.get(normalise_location(r["location"]))
            text = self.state_text(r, s)
            item = self.table.item(i, 2)
            if item is not None:
                item.setText(text)
                item.setToolTip(plain_tooltip(text))

    @staticmethod
    def state_text(row: dict[str, Any], s: Any) -> str:
        lock = f"{MANAGED}. " if row["managed"] else ""
        if row["blocked"]:
            return f"🔒 Not used: {row['blocked']}"
        if s is None:
            return lock + "verifying…"
        if s.error:
            return lock + f"✖ Refused: {one_line(s.error)}"
        c = s.loaded.catalog
        n = len(c.models)
        expired = " — expired: new downloads are frozen" if s.loaded.expired else ""
        return (lock + f"✔ {one_line(c.name)} version {c.version}, {n} model{'s' if n != 1 else ''}, "
                f"signature verified{expired}")

    def states_shown(self) -> list[str]:
        return [self.table.item(i, 2).text() for i in range(self.table.rowCount())]

    # -- selection, remove, change signer

    def selected(self) -> str | None:
        row = self.table.currentRow()
        return self.rows[row]["location"] if 0 <= row < len(self.rows) and self.table.selectedItems() else None

    def select(self, location: str) -> bool:
        for i, r in enumerate(self.rows):
            if r["location"] == location:
                self.table.selectRow(i)
                return True
        return False

    def _selection(self) -> None:
        row = self.table.currentRow() if self.table.selectedItems() else -1
        r = self.rows[row] if 0 <= row < len(self.rows) else None
        managed = r is not None and r["managed"] is not None
        for b in (self.remove_btn, self.repin_btn):
            b.setEnabled(r is not None and not managed)
        self.repin_btn.setEnabled(r is not None and not managed and r["blocked"] is None)
        why = (f"🔒 Provided by your organisation's policy ({one_line(r['managed'])}): only its administrator can "
               "remove it or change its signer." if managed and r is not None else "")
        self.row_note.setText(why)
        self.row_note.setVisible(bool(why))
        for b in (self.remove_btn, self.repin_btn):
            b.setToolTip(plain_tooltip(why) if why else "")

    def remove(self) -> Job | None:
        location = self.selected()
        if location is None:
            return None
        answer = QMessageBox.question(
            self, "Remove catalog",
            f"Stop using the catalog {one_line(location)}?\n\nIts models stay installed and keep working; "
            "you can add the catalog again later.")
        if answer != QMessageBox.StandardButton.Yes:
            return None
        return self.remove_now(location)

    def remove_now(self, location: str) -> Job:
        app = self.runner.app
        self.status.setText(f"Removing {one_line(location)}…")
        return self.runner.run(lambda _job: app.unpin_catalog(location),
                               on_done=lambda signer: self.status.setText(
                                   f"✔ Removed {one_line(location)} (it had to be signed by {one_line(signer)})."),
                               on_failed=lambda e: self.status.setText("✖ " + error_text(e)))

    def start_repin(self) -> None:
        """Puts the selected catalog in the add form: the person names the new signer."""
        location = self.selected()
        if location is None:
            return
        self.location.setText(location)
        self.status.setText("Name the new signer below and press Add catalog; you will be asked to confirm "
                            "replacing the old one.")
        self.signer.mode.setFocus()

    # -- add (or re-pin)

    def add(self, replace: bool = False) -> Job:
        app = self.runner.app
        location = self.location.text().strip()
        form = self.signer.collect()

        def job(_job: Job) -> Any:
            from vetted.errors import InputError

            if not location:
                raise InputError("catalog", "enter its address or choose its file")
            return app.pin_catalog(location, read_signer(app, form), replace_signer=replace)

        self.add_btn.setEnabled(False)
        self.status.setText("Checking the signer and pinning it…")
        return self.runner.run(job, on_done=self._added, on_failed=lambda e: self._add_failed(e, location))

    def _added(self, pinned: Any) -> None:
        self.add_btn.setEnabled(True)
        was = f" (was {one_line(pinned.replaced)})" if pinned.replaced else ""
        self.status.setText(f"✔ Pinned {one_line(pinned.location)}: it must be signed by {one_line(pinned.signer)}"
                            f"{was}. Its models are being checked now; see Discover.")
        self.location.clear()

    def _add_failed(self, exc: BaseException, location: str) -> None:
        from vetted.core.settings import SignerConflict

        self.add_btn.setEnabled(True)
        if isinstance(exc, SignerConflict):
            answer = QMessageBox.question(
                self, "Replace the catalog's signer?",
                f"{one_line(location)} {one_line(exc.found)}.\n\nReplace the signer? Every later update of this "
                "catalog will then have to carry the new signature. Do this only if its publisher told you the "
                "signer changed.")
            if answer == QMessageBox.StandardButton.Yes:
                self.add(replace=True)
                return
            self.status.setText("Not changed: the catalog keeps its signer.")
            return
        self.status.setText("✖ " + error_text(exc))
