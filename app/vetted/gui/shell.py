"""The main window's menu bar and shortcuts.

Every shortcut sits on a menu item, so a person finds it by looking (and the menu shows
the keys): File (new chat, export, import a bundle, quit), View (theme, one page per
Ctrl+1…8), Chat (stop generating: Esc or Ctrl+.), Go (search, settings) and Help (About,
with the licences of what the app carries; the documentation). A menu item calls a
page's own method; the window only shows the page first.

Stop generating is enabled only while a reply is being written, so Esc keeps its usual
meaning (close a popup, leave a field) the rest of the time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence

from vetted.gui import theme

if TYPE_CHECKING:
    from vetted.gui.main_window import MainWindow

MIN_SIZE = (960, 600)  # below this the pages' labels and the Discover columns are cut


def _call(obj: object, name: str, *args: Any) -> Any:
    """A page's method, when the page has it (pages grow their methods independently)."""
    fn = getattr(obj, name, None)
    return fn(*args) if callable(fn) else None


def build_menus(w: MainWindow) -> dict[str, QAction]:
    """Adds the menu bar to `w`; returns its actions by name (tests, the Settings page)."""
    bar = w.menuBar()
    acts: dict[str, QAction] = {}

    def add(menu: Any, name: str, text: str, slot: Callable[[], object],
            keys: list[str] | QKeySequence.StandardKey | None = None) -> QAction:
        act = QAction(text, w)
        if isinstance(keys, list):
            act.setShortcuts([QKeySequence(k) for k in keys])
        elif keys is not None:
            act.setShortcuts(keys)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        acts[name] = act
        return act

    file = bar.addMenu("&File")
    add(file, "new_chat", "&New chat", lambda: new_chat(w), ["Ctrl+N"])
    add(file, "export_chat", "&Export chat…", lambda: export_chat(w), ["Ctrl+Shift+E"])
    add(file, "import_bundle", "&Import bundle…", lambda: import_bundle(w), ["Ctrl+I"])
    file.addSeparator()
    add(file, "quit", "&Quit", w.close, ["Ctrl+Q"])

    view = bar.addMenu("&View")
    themes = view.addMenu("&Theme")
    group = QActionGroup(w)
    for mode, label in theme.MODES:
        act = add(themes, f"theme_{mode}", label, lambda m=mode: w.set_theme(m))
        act.setCheckable(True)
        act.setChecked(mode == theme.saved_mode(w.qsettings))
        group.addAction(act)
    view.addSeparator()
    from vetted.gui.main_window import PAGES

    for i, page in enumerate(PAGES, start=1):
        add(view, f"page_{page.lower()}", page, lambda p=page: w.go(p), [f"Ctrl+{i}"])

    chat = bar.addMenu("&Chat")
    stop = add(chat, "stop", "&Stop generating", lambda: _call(w.chat, "stop"), ["Esc", "Ctrl+."])
    stop.setEnabled(bool(getattr(w.chat, "busy", False)))
    busy = getattr(w.chat, "busy_changed", None)
    if busy is not None:
        busy.connect(stop.setEnabled)

    go = bar.addMenu("&Go")
    add(go, "search", "&Search models", lambda: search(w), ["Ctrl+F"])
    add(go, "settings", "Se&ttings", lambda: w.go("Settings"), ["Ctrl+,"])

    help_ = bar.addMenu("&Help")
    add(help_, "about", "&About Vetted", lambda: about(w))
    add(help_, "docs", "&Documentation", lambda: open_docs(), [QKeySequence(QKeySequence.StandardKey.HelpContents)
                                                             .toString() or "F1"])
    return acts


def new_chat(w: MainWindow) -> None:
    w.go("Chat")
    w.chat.new_chat()
    _call(w.chat, "focus_input")


def export_chat(w: MainWindow) -> None:
    w.go("Chat")
    _call(w.chat, "export_chat")


def import_bundle(w: MainWindow) -> None:
    w.go("Library")
    w.library.choose_bundle()


def search(w: MainWindow) -> None:
    w.go("Discover")
    if _call(w.discover, "focus_search") is None and not hasattr(w.discover, "focus_search"):
        w.discover.search.setFocus()
        w.discover.search.selectAll()


def about(w: MainWindow) -> Any:
    from vetted.gui.about import AboutDialog

    dialog = AboutDialog(w)
    w.about_dialog = dialog  # tests and screenshots find it
    dialog.open()
    return dialog


def open_docs() -> None:
    from vetted.gui.about import DOCS_URL

    QDesktopServices.openUrl(QUrl(DOCS_URL))
