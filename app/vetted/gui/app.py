"""`vetted` with no arguments: the desktop app."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from vetted.gui.main_window import MainWindow
    from vetted.paths import locations
    from vetted.store.db import open_db

    app = QApplication.instance() or QApplication(argv or sys.argv)
    app.setApplicationName("Vetted")
    app.setOrganizationName("Vetted")
    loc = locations().ensure()
    win = MainWindow(loc, open_db(loc.database))
    win.show()
    return app.exec()
