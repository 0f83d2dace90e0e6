"""`vetted` with no arguments: the desktop app, over one `Vetted` application object."""

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

    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    qt = QApplication.instance() or QApplication(argv or sys.argv)
    qt.setApplicationName("Vetted")
    qt.setOrganizationName("Vetted")
    app = Vetted()  # the one application object; the window and its pages call only it
    app.loc.ensure()
    win = MainWindow(app)
    win.show()
    try:
        return qt.exec()
    finally:
        app.close()
