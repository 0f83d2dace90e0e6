"""Library: installed models, their verification state, re-verify, remove, chat, and
"Import bundle…" for sites with no network (`Vetted.import_bundle`: every model or none).

An import first tries the signers already trusted here (the catalogs' pinned signers and
the organisation's); when none fits and the policy lets a person name one, it asks for
the public key of the catalog's signer and tries again with it.

The list is read through the runner whenever the core says a model was installed,
removed or re-checked (wherever that happened), and when the page is shown; Re-verify
and Remove are `Vetted.check` / `Vetted.remove` on the runner, and the table follows
from their events, not from this page refreshing itself after them.

Each model's trust state is said in words, with an icon and the theme's colour for it
("Verified: every byte matches its signature" / "Will not run: the file changed since it
was verified"), the signer in full, and when it was last checked; a failed step offers
its remedy as a button (Re-verify, Open Discover…).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox, QProgressBar, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from vetted.gui import theme
from vetted.gui.bridge import Job, Runner, error_text, plain_tooltip
from vetted.gui.remedies import RemedyButton, remedy_of
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line
from vetted.units import human_size as human

if TYPE_CHECKING:
    from vetted.store.installed import InstalledModel  # a type only


COLUMNS = ["Model", "Size", "Trust", "Signed by", "Last checked"]


def trust_words(m: InstalledModel) -> tuple[str, str]:
    """(what the Trust cell says, why: its tooltip) for an installed model."""
    if m.state == "verified":
        return ("✔ Verified: every byte matches its signature",
                f"Checked against the publisher's signature by {one_line(m.signer)}; Vetted checks the file "
                "again before every run.")
    reason = one_line(m.state_reason or "it no longer matches its signature")
    return ("✖ Will not run: the file changed since it was verified",
            f"{reason}\nVetted refuses to load it. Re-verify re-hashes it in full; if it still does not match, "
            "remove it and download it again.")


class LibraryPage(QWidget):
    chat_requested = Signal(str)
    refreshed = Signal()  # the table shows what the store holds now
    go_requested = Signal(str)  # a remedy's button opens another page

    def __init__(self, runner: Runner, events: CoreEvents) -> None:
        super().__init__()
        self.runner = runner
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Installed models")
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().hide()
        # fits the page down to the window's minimum: the signer (a long key) takes what is
        # left and is elided in its middle (in full in its tooltip); no cell wraps
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Signed by"), QHeaderView.Stretch)
        header.setStretchLastSection(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self._models: list[InstalledModel] = []
        # model id → (can chat, why not), asked once per installed version of the model
        self._can_chat: dict[str, tuple[bool, str]] = {}
        self._installed_at: dict[str, str] = {}
        self.verify_btn = QPushButton("Re-verify", accessibleName="Re-verify the selected model (full re-hash)")
        self.remove_btn = QPushButton("Remove", accessibleName="Remove the selected model")
        self.chat_btn = QPushButton("Chat", accessibleName="Start a chat with the selected model")
        self.import_btn = QPushButton("Import bundle…", accessibleName="Import the models of an air-gapped bundle")
        self.import_btn.setToolTip("Install every model of a bundle file made by vetted-admin bundle, "
                                   "verified as a download would be (all of them or none)")
        self.import_btn.clicked.connect(self.choose_bundle)
        self.import_bar = QProgressBar(accessibleName="Import progress")
        self.import_bar.hide()
        self.import_job: Job | None = None
        self.verify_btn.clicked.connect(self.reverify)
        self.remove_btn.clicked.connect(self.remove)
        self.chat_btn.clicked.connect(lambda: self.current() and self.chat_requested.emit(self.current()))
        self.status = QLabel()
        self.status.setTextFormat(Qt.PlainText)  # quotes refusal reasons
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Library status")
        self.next_btn = RemedyButton({"reverify": self.reverify, "remove": self.remove},
                                     self.go_requested.emit)
        if not self.next_btn.accessibleName():
            self.next_btn.setAccessibleName("Next step for the selected model")
        buttons = QHBoxLayout()
        for b in (self.verify_btn, self.remove_btn, self.chat_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.import_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.import_bar)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.next_btn, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(status_row)
        for a, b in ((self.table, self.verify_btn), (self.verify_btn, self.remove_btn), (self.remove_btn, self.chat_btn),
                     (self.chat_btn, self.import_btn), (self.import_btn, self.next_btn)):
            QWidget.setTabOrder(a, b)
        for b in (self.verify_btn, self.remove_btn, self.chat_btn):
            b.setEnabled(False)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        events.models_changed.connect(lambda _model_id: self.refresh())
        theme.notifier().changed.connect(self._tone)  # a bound slot: dropped with the page
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
        self._models = list(models)
        stamps = {m.model_id: m.installed_at for m in models}
        for mid in list(self._can_chat):  # a model removed or installed again is asked again
            if stamps.get(mid) != self._installed_at.get(mid):
                del self._can_chat[mid]
        self._installed_at = stamps
        self.table.setRowCount(len(models))
        for i, m in enumerate(models):
            state, why = trust_words(m)
            name = one_line(m.name or m.model_id)
            for j, text in enumerate([name, human(m.size), state, m.signer, when(m.verified_at)]):
                item = QTableWidgetItem(one_line(text))
                tip = {0: f"{name} (ID: {one_line(m.model_id)})", 2: why}.get(j, one_line(text))
                item.setToolTip(plain_tooltip(tip))
                self.table.setItem(i, j, item)
            self.table.item(i, 0).setData(Qt.ItemDataRole.UserRole, m.model_id)
        self._tone()
        if not models:
            self.status.setText("No models installed yet. Discover lists what your catalogs offer.")
        for b in (self.verify_btn, self.remove_btn):
            b.setEnabled(bool(models))
        if keep:
            self.select(keep)
        self._selection_changed()
        self.refreshed.emit()

    def _tone(self, _mode: str = "") -> None:
        """The Trust cells in the theme's colours (again when the theme changes)."""
        for i, m in enumerate(self._models[:self.table.rowCount()]):
            tone = theme.success(self) if m.state == "verified" else theme.danger(self)
            item = self.table.item(i, 2)
            if item is not None:
                item.setForeground(QColor(tone))

    # -- whether the selected model can chat (a base model has no chat template) ----------

    def _selection_changed(self) -> None:
        mid = self.current()
        if not mid:
            self._show_chat(False, "Select a model to chat with it.")
            return
        if mid in self._can_chat:
            self._show_chat(*self._can_chat[mid])
            return
        self._show_chat(False, "Checking whether this model can chat…")
        app = self.runner.app

        def known(cap: Any) -> None:
            self._can_chat[mid] = (bool(cap.can_chat), one_line(cap.reason or ""))
            if self.current() == mid:
                self._show_chat(*self._can_chat[mid])

        self.runner.run(lambda _job: app.chat_capability(mid), key="library.chat_capability", on_done=known,
                        on_failed=lambda e: self.current() == mid and self._show_chat(False, error_text(e)))

    def _show_chat(self, can: bool, why: str) -> None:
        self.chat_btn.setEnabled(can)
        self.chat_btn.setToolTip(plain_tooltip("Start a chat with the selected model" if can
                                               else (why or "This model cannot chat.")))

    def current(self) -> str | None:
        """The selected model's id (the table shows its name)."""
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return str(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def model_ids(self) -> list[str]:
        """The ids of the models listed, top to bottom (the table shows their names)."""
        return [str(self.table.item(i, 0).data(Qt.ItemDataRole.UserRole)) for i in range(self.table.rowCount())]

    def select(self, model_id: str) -> None:
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).data(Qt.ItemDataRole.UserRole) == model_id:
                self.table.selectRow(i)

    def reverify(self) -> None:
        mid = self.current()
        if not mid:
            return
        app = self.runner.app
        self.status.setText(f"Re-hashing {mid} and re-checking its signature…")
        self.next_btn.clear()
        self.runner.run(lambda _job: app.check(mid, full=True), on_done=self._checked, on_failed=self._check_failed)

    def _checked(self, r: Any) -> None:
        self.status.setText(f"✔ {r.model_id}: every byte matches its signature by {one_line(r.signer)}.")

    def _check_failed(self, exc: BaseException) -> None:
        self.status.setText("✖ " + error_text(exc))
        self.next_btn.offer(remedy_of(exc))

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

    # -- air-gapped bundles ----------------------------------------------------------------

    def choose_bundle(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Import a model bundle", "",
                                                    "Vetted bundles (*.vbundle *.tar);;All files (*)")
        if path:
            self.import_bundle(path)

    def import_bundle(self, path: str, key_pem: str | None = None) -> Job:
        """Runs the import off the UI thread; `key_pem`: a public key file naming the signer."""
        from pathlib import Path

        app = self.runner.app
        name = Path(path).name

        def job(j: Job) -> Any:
            signer = None
            if key_pem:
                from vetted.trust.identity import PublicKey

                signer = PublicKey(Path(key_pem).read_bytes())
            return app.import_bundle(Path(path), signer, cancel=j.cancel,
                                     progress=lambda f, done, total: j.progress.emit((f, done, total)))

        self.import_btn.setEnabled(False)
        self.import_bar.setValue(0)
        self.import_bar.show()
        self.status.setText(f"Importing {one_line(name)}: checking the catalog's signature, then every model…")
        self.import_job = self.runner.run(job, lane="download", on_progress=self._import_progress,
                                          on_done=self._imported,
                                          on_failed=lambda e: self._import_failed(e, path, key_pem))
        return self.import_job

    def _import_progress(self, p: tuple[str, int, int]) -> None:
        name, done, total = p
        self.import_bar.setValue(int(done * 100 / total) if total else 100)
        self.import_bar.setFormat(f"{one_line(name)}: %p%")

    def _import_done(self) -> None:
        self.import_btn.setEnabled(True)
        self.import_bar.hide()
        self.import_job = None

    def _imported(self, result: Any) -> None:
        self._import_done()
        c = result.catalog
        got = [m.model_id for m in result.installed]
        parts = [f"✔ Imported {len(got)} model(s) from catalog {one_line(c.catalog.id)} v{c.catalog.version}, "
                 f"signed by {one_line(c.signer)}: {', '.join(got) or 'none new'}."]
        if result.already:
            parts.append(f"Already installed: {', '.join(result.already)}.")
        self.status.setText(" ".join(parts))

    def _import_failed(self, exc: BaseException, path: str, key_pem: str | None) -> None:
        from vetted.errors import InputError

        self._import_done()
        if isinstance(exc, InputError) and "no signer" in exc.found and key_pem is None:
            self.status.setText("No signer trusted here signs this bundle's catalog. Choose the public key of "
                                "the catalog's signer (from your organisation) to check it against.")
            key, _f = QFileDialog.getOpenFileName(self, "Public key of the catalog's signer", "",
                                                  "PEM public keys (*.pem *.pub);;All files (*)")
            if key:
                self.import_bundle(path, key)
            return
        self.status.setText("✖ Not imported; nothing was installed.\n\n" + error_text(exc))
        self.next_btn.offer(remedy_of(exc))


def when(stamp: str | None) -> str:
    """A stored ISO time, as a person reads it (local time, to the minute)."""
    from datetime import datetime

    if not stamp:
        return ""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return one_line(stamp)
