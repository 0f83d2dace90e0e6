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

    qt = QApplication.instance() or QApplication(argv or sys.argv)
    app = Vetted()  # the one application object; the window and its pages call only it
    win = start(qt, app)
    if os.environ.get("VETTED_GUI_SMOKE") == "1":
        _quit_after_first_paint(qt, win)
    win.show()
    try:
        return qt.exec()
    finally:
        app.close()


def start(qt, app):
    """The window over `app`, in the theme this person chose (Fusion, light or dark); not
    yet shown. Everything `main` does before the event loop, so tests run it in-process."""
    from vetted.gui.main_window import MainWindow
    from vetted.gui.theme import apply_theme, prefs, saved_mode

    qt.setApplicationName("Vetted")
    qt.setOrganizationName("Vetted")
    app.loc.ensure()
    apply_theme(qt, saved_mode(prefs(app.loc.config)))
    return MainWindow(app)


def _quit_after_first_paint(qt, win) -> None:
    """VETTED_GUI_SMOKE=1 (packaging/*/smoke-test): quit once the main window has painted,
    printing one line a test can check; exit 1 if it has not painted within 60 s."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.Paint and not getattr(self, "seen", False):
                self.seen = True
                size = win.size()
                print(f"gui-smoke: painted '{win.windowTitle()}' {size.width()}x{size.height()} "
                      f"on {qt.platformName()}", flush=True)
                deadline.stop()
                QTimer.singleShot(0, qt.quit)
            return False

    watcher = FirstPaint(win)
    win.installEventFilter(watcher)

    def too_slow() -> None:
        print("gui-smoke: no paint within 60 s", file=sys.stderr, flush=True)
        qt.exit(1)

    deadline = QTimer(win, singleShot=True, interval=60_000)  # stopped on the first paint
    deadline.timeout.connect(too_slow)
    deadline.start()
