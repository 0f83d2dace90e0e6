"""The main window: a sidebar of pages over the one application object the CLI uses.

It builds the shared pieces — the `Runner` (all core work off the UI thread), the
`CoreEvents` adapter (what changed, as Qt signals) and `CatalogRows` (the verified
catalogs Discover and Compare show) — hands them to the pages, and routes navigation
between pages (download this, chat with that). It refreshes no page: each page follows
the core events it cares about, and owns its own widgets. On a first run (no catalog, no
model: a freshly installed app) a Welcome page comes first (`Vetted.setup_state`).

The shell (gui/shell.py) adds the menu bar and its shortcuts — every one also reachable
from a menu, so a person can discover it — and the minimum size below which the pages'
labels would be cut. `CatalogWatcher` verifies the catalogs again when a local catalog
file changes (a publisher re-signed it), so a new issue shows without a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QMainWindow, QStackedWidget, QWidget

from vetted.gui.audit_view import AuditPage
from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.catalogs import CatalogRows
from vetted.gui.chat_view import ChatPage
from vetted.gui.compare_view import ComparePage
from vetted.gui.discover import DiscoverPage
from vetted.gui.downloads import DownloadsPage
from vetted.gui.events import CoreEvents
from vetted.gui.library import LibraryPage
from vetted.gui.policy_view import PolicyPage
from vetted.gui.settings_catalogs import CatalogWatcher
from vetted.gui.settings_view import SettingsPage
from vetted.gui.shell import MIN_SIZE, build_menus
from vetted.gui.theme import notifier, prefs, set_theme
from vetted.gui.welcome import WelcomePage

if TYPE_CHECKING:
    from vetted.core.app import Vetted
    from vetted.core.results import ModelRow

PAGES = ["Discover", "Compare", "Downloads", "Library", "Chat", "Audit", "Settings", "Policy"]


class MainWindow(QMainWindow):
    def __init__(self, app: Vetted) -> None:
        super().__init__()
        self.app = app
        self.setWindowTitle("Vetted")
        self.runner = Runner(app, parent=self)
        self.events = CoreEvents(app.events, parent=self)
        self.catalogs = CatalogRows(self.runner, self.events, parent=self)
        self.nav = QListWidget(accessibleName="Sections")
        self.nav.addItems(PAGES)
        self.nav.setFixedWidth(130)
        self.stack = QStackedWidget()
        self.discover = DiscoverPage(self.runner, self.events, self.catalogs)
        self.compare = ComparePage(self.runner, self.catalogs)
        self.downloads = DownloadsPage(self.runner)
        self.library = LibraryPage(self.runner, self.events)
        self.chat = ChatPage(self.runner, self.events)
        self.audit = AuditPage(self.runner)
        self.qsettings = prefs(app.loc.config)
        self.settings_page = SettingsPage(self.runner, self.events, self.catalogs, self.qsettings)
        self.policy = PolicyPage(self.runner)
        self.welcome = WelcomePage(self.runner)
        self.pages: dict[str, QWidget] = dict(zip(PAGES + ["Welcome"], (
            self.discover, self.compare, self.downloads, self.library, self.chat, self.audit, self.settings_page,
            self.policy, self.welcome)))
        for w in self.pages.values():
            self.stack.addWidget(w)
        self.nav.currentRowChanged.connect(self._on_nav_row)
        self.welcome.catalog_added.connect(self._catalog_added)
        self.welcome.import_requested.connect(self._import_from_welcome)
        self.welcome.done.connect(self.close_welcome)
        self.discover.download_requested.connect(self.start_download)
        self.library.chat_requested.connect(self.chat_with)
        self.library.go_requested.connect(self.go)
        self.downloads.go_requested.connect(self.go)
        self.runner.unhandled.connect(lambda exc: self.statusBar().showMessage("✖ " + error_text(exc), 15_000))
        central = QWidget()
        h = QHBoxLayout(central)
        h.addWidget(self.nav)
        h.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.setMinimumSize(*MIN_SIZE)
        self.menus = build_menus(self)
        self._name_qt_buttons()
        notifier().changed.connect(self._theme_changed)
        self.watcher = CatalogWatcher(self.catalogs, parent=self)
        self.settings_page.reload_requested.connect(self.reload_catalogs)
        geo = self.qsettings.value("geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1200, 760)
        page = str(self.qsettings.value("page", PAGES[0]))
        self.go(page if page in PAGES else PAGES[0])
        self._closed = False
        # verify catalogs once the window has painted: the first frame waits for nothing
        QTimer.singleShot(0, self.reload_catalogs)
        self.runner.run(lambda _job: app.setup_state(), key="setup.state", on_done=self._first_run)

    def set_theme(self, mode: str) -> str:
        """System, light or dark, now and at the next start (View ▸ Theme, Settings)."""
        return set_theme(self.qsettings, mode)

    def _theme_changed(self, mode: str) -> None:
        act = self.menus.get(f"theme_{mode}")
        if act is not None:
            act.setChecked(True)

    def go(self, name: str) -> None:
        for row in range(self.nav.count()):
            if self.nav.item(row).text() == name:
                self.nav.setCurrentRow(row)
                return

    def current_page(self) -> str:
        item = self.nav.currentItem()
        return item.text() if item is not None else PAGES[0]

    def _on_nav_row(self, row: int) -> None:
        if row >= 0:
            self.stack.setCurrentWidget(self.pages[self.nav.item(row).text()])

    # -- first run ---------------------------------------------------------------------

    def _first_run(self, state: object) -> None:
        self.welcome.show_state(state)
        if getattr(state, "needs_setup", False) and self.nav.item(0).text() != "Welcome":
            self.nav.insertItem(0, "Welcome")
            self.go("Welcome")

    def close_welcome(self) -> None:
        if self.nav.count() and self.nav.item(0).text() == "Welcome":
            self.go("Discover")
            self.nav.takeItem(0)

    def _catalog_added(self, _location: str) -> None:
        self.reload_catalogs()
        self.close_welcome()

    def _import_from_welcome(self) -> None:
        self.go("Library")
        self.library.choose_bundle()

    def reload_catalogs(self) -> Job:
        """Verifies the pinned catalogs again (off the UI thread); Discover and Compare follow."""
        return self.catalogs.reload()

    def start_download(self, row: ModelRow) -> None:
        self.downloads.add(row.catalog.location, row.entry.id, row.entry.name)
        self.go("Downloads")

    def chat_with(self, model_id: str) -> None:
        self.chat.new_chat(model_id)
        self.go("Chat")

    def _name_qt_buttons(self) -> None:
        """Buttons Qt makes itself (a field's clear button, the menu bar's overflow arrow)
        come without a name a screen reader can say; give them one."""
        from PySide6.QtWidgets import QAbstractButton, QLineEdit, QMenuBar

        for b in self.findChildren(QAbstractButton):
            if b.accessibleName():
                continue
            if isinstance(b.parent(), QLineEdit) and b.metaObject().className() == "QLineEditIconButton":
                b.setAccessibleName("Clear")
            elif isinstance(b.parent(), QMenuBar):
                b.setAccessibleName("More menus")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._closed:
            self._closed = True
            self.qsettings.setValue("geometry", self.saveGeometry())
            self.qsettings.setValue("page", self.current_page() if self.current_page() in PAGES else PAGES[0])
            self.qsettings.sync()
            self.watcher.stop()
            self.events.close()
            self.discover.shutdown()
            self.chat.shutdown()
            self.settings_page.api.shutdown()  # the local API server, if switched on, stops with the window
            self.runner.shutdown()
        super().closeEvent(event)
