"""The main window: a sidebar of pages over the same core the CLI uses."""

from __future__ import annotations

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QMainWindow, QStackedWidget, QWidget

from vetted.gui.audit_view import AuditPage
from vetted.gui.bridge import Runner, error_text
from vetted.gui.chat_view import ChatPage
from vetted.gui.compare_view import ComparePage
from vetted.gui.discover import DiscoverPage
from vetted.gui.downloads import DownloadsPage
from vetted.gui.library import LibraryPage
from vetted.gui.settings_view import SettingsPage
from vetted.paths import Locations

PAGES = ["Discover", "Compare", "Downloads", "Library", "Chat", "Audit", "Settings"]


class MainWindow(QMainWindow):
    def __init__(self, loc: Locations, db) -> None:
        super().__init__()
        self.loc, self.db = loc, db
        self.setWindowTitle("Vetted")
        self.runner = Runner(workers=2)
        self.nav = QListWidget(accessibleName="Sections")
        self.nav.addItems(PAGES)
        self.nav.setFixedWidth(130)
        self.stack = QStackedWidget()
        self.discover = DiscoverPage(db)
        self.compare = ComparePage(db)
        self.downloads = DownloadsPage(self.runner, loc)
        self.library = LibraryPage(self.runner, loc, db)
        self.chat = ChatPage(loc, db)
        self.audit = AuditPage(db)
        self.settings_page = SettingsPage(loc)
        for w in (self.discover, self.compare, self.downloads, self.library, self.chat, self.audit,
                  self.settings_page):
            self.stack.addWidget(w)
        self.nav.currentRowChanged.connect(self.show_page)
        self.discover.download_requested.connect(self.start_download)
        self.discover.page.spotcheck_requested.connect(self.start_spotcheck)
        self.discover.page.spot_cancel.clicked.connect(self.cancel_spotcheck)
        self.spot_runner = Runner(workers=1, name="vetted-spotcheck")
        self.spot_cancel = None
        self.downloads.installed.connect(self.on_installed)
        self.library.changed.connect(self.reload_catalogs)
        self.library.chat_requested.connect(self.chat_with)
        central = QWidget()
        h = QHBoxLayout(central)
        h.addWidget(self.nav)
        h.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.qsettings = QSettings(str(loc.config / "gui.ini"), QSettings.IniFormat)
        geo = self.qsettings.value("geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1200, 760)
        self.nav.setCurrentRow(int(self.qsettings.value("page", 0)))
        self.states = []
        # verify catalogs once the window has painted: the first frame waits for nothing
        QTimer.singleShot(0, self.reload_catalogs)

    def show_page(self, i: int) -> None:
        self.stack.setCurrentIndex(i)
        page = self.stack.currentWidget()
        if page is self.audit:
            self.audit.refresh()
        elif page is self.library:
            self.library.refresh()
        elif page is self.chat:
            self.chat.refresh_models()

    def go(self, name: str) -> None:
        self.nav.setCurrentRow(PAGES.index(name))

    def reload_catalogs(self) -> None:
        """Catalog verification runs off the UI thread; the table fills when it is done."""
        from vetted.services import open_catalogs

        def job(_call, loc):
            from vetted.store.db import open_db

            db = open_db(loc.database)
            try:
                return open_catalogs(loc, db)
            finally:
                db.conn.close()

        self.discover.status.setText("Verifying catalogs…")
        self.runner.run(job, self.loc, on_done=self._catalogs_loaded,
                        on_failed=lambda e: self.discover.status.setText("✖ " + error_text(e)))

    def _catalogs_loaded(self, states) -> None:
        from vetted.services import model_rows

        self.states = states
        rows = model_rows(states, self.db)
        notes = []
        from vetted.textsafe import one_line

        for s in states:  # each note one line of escaped text: catalogs and refusals are untrusted
            if s.error:
                notes.append(f"✖ Catalog {one_line(s.location)} refused: {one_line(s.error)}")
            elif s.loaded and s.loaded.expired:
                notes.append(f"⚠ {one_line(s.label)}: expired; new downloads are frozen, installed models keep working.")
        if not states:
            notes.append("No catalog is configured. Pin one with `vetted catalog add LOCATION --key PEM`.")
        elif not rows and not notes:
            notes.append("The catalogs list no models.")
        self.discover.set_rows(rows, "\n".join(notes))
        self.compare.set_entries(rows)

    def start_download(self, row) -> None:
        self.downloads.add(row.catalog.location, row.entry.id, row.entry.name)
        self.go("Downloads")

    def start_spotcheck(self, row) -> None:
        """The probe suite runs in its own engine worker, off the UI thread, with progress."""
        import threading

        from vetted.cards import spotcheck
        from vetted.runtime.chat import ChatSession
        from vetted.store.db import open_db

        page = self.discover.page
        self.spot_cancel = threading.Event()
        cancel = self.spot_cancel
        holder: dict = {}

        def job(call, loc, model_id):
            db = open_db(loc.database)
            holder["session"] = session = ChatSession(db)
            try:
                return spotcheck.run(db, model_id, session=session, cancel=cancel,
                                     progress=lambda i, n, pid: call.progress.emit((i, n, pid)))
            finally:
                session.close()
                db.conn.close()

        def progress(p) -> None:
            i, n, pid = p
            page.spot_bar.setMaximum(n)
            page.spot_bar.setValue(i)
            page.spot_bar.setFormat(f"spot-check %v/%m ({pid})")

        def finish(result=None, error=None) -> None:
            page.spot_bar.hide()
            page.spot_cancel.hide()
            if page.row is not None:
                page.show_row(page.row)
            if error is not None:
                page.note.setText("✖ Spot-check failed: " + error_text(error))
            elif result.status == "cancelled":
                page.note.setText("Spot-check cancelled; nothing was recorded.")
            else:
                page.note.setText(f"Spot-check done: {len(result.results)} probes in {result.seconds:.0f} s.")

        def cancel_now() -> None:
            cancel.set()
            if "session" in holder:
                holder["session"].stop()

        self._cancel_spot = cancel_now
        page.spot_bar.setValue(0)
        page.spot_bar.show()
        page.spot_cancel.show()
        page.spot.setEnabled(False)
        page.note.setText("Running the spot-check on the exact installed file…")
        self.spot_runner.run(job, self.loc, row.entry.id, on_progress=progress,
                             on_done=lambda r: finish(result=r), on_failed=lambda e: finish(error=e))

    def cancel_spotcheck(self) -> None:
        if getattr(self, "_cancel_spot", None):
            self._cancel_spot()

    def on_installed(self, model_id: str) -> None:
        self.library.refresh()
        self.chat.refresh_models()
        self.reload_catalogs()

    def chat_with(self, model_id: str) -> None:
        self.chat.refresh_models()
        self.chat.new_chat(model_id)
        self.go("Chat")

    def closeEvent(self, event) -> None:  # noqa: N802
        self.qsettings.setValue("geometry", self.saveGeometry())
        self.qsettings.setValue("page", self.nav.currentRow())
        self.qsettings.sync()
        self.cancel_spotcheck()
        self.chat.shutdown()
        self.runner.shutdown()
        self.spot_runner.shutdown()
        super().closeEvent(event)
