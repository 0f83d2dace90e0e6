"""`vetted` with no arguments: the desktop app."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import os

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        print("error: no display found for the desktop app (DISPLAY and WAYLAND_DISPLAY are unset); "
              "everything also works from the command line: see `vetted --help`", file=sys.stderr)
        return 2
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
