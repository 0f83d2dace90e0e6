"""Renders the main screens into PNGs (run under Xvfb by `make screenshots`).

Everything is real: the demo catalog, a verified download of SmolLM2, a chat whose reply
comes from the model, and a refusal from a tampered copy.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def main(out_dir: str) -> int:
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["VETTED_HOME"] = tempfile.mkdtemp(prefix="vetted-shots-")
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from vetted.authoring.demo import build_demo
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    app = QApplication(sys.argv)
    app.setStyle("Fusion")
    build_demo()  # first run: includes the spot-check that the demo safety cards report
    win = MainWindow(Vetted())
    win.resize(1280, 800)
    win.show()

    def wait(cond, ms: int = 120_000) -> None:
        loop_deadline = ms
        while not cond() and loop_deadline > 0:
            loop = QEventLoop()
            QTimer.singleShot(50, loop.quit)
            loop.exec()
            loop_deadline -= 50

    def shot(name: str) -> None:
        wait(lambda: False, 300)
        win.grab().save(str(out / f"{name}.png"))
        print("wrote", out / f"{name}.png")

    page = win.discover.page
    wait(lambda: win.discover.model.rowCount() > 0)
    win.discover.select_id("gemma-3-270m-q4_k_m")  # SmolLM2 is installed by the demo build
    wait(lambda: not page.pending)  # the card is read off the UI thread
    shot("discover")
    win.discover.page.download.click()
    item = win.downloads.items["gemma-3-270m-q4_k_m"]
    wait(lambda: item.state != "running")
    shot("downloads")
    win.go("Library")
    wait(lambda: win.library.table.rowCount() == 2)  # refreshed by the core's "installed" event
    win.library.table.selectRow(0)
    shot("library")
    win.chat_with("smollm2-135m-instruct-q4_1")
    chat = win.chat
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(120)
    chat.input.setPlainText("Write a Python function that checks a file's SHA-256 against an expected value.")
    chat.send()
    wait(lambda: not chat.busy)
    shot("chat")
    win.go("Audit")
    wait(lambda: not win.runner.busy())
    shot("audit")
    win.go("Discover")
    win.reload_catalogs()
    wait(lambda: win.discover.model.rowCount() > 0 and win.discover.model.rows[0].installed_state is not None)
    win.discover.select_id("smollm2-135m-instruct-q4_1")
    wait(lambda: not page.pending)
    page.view.scrollToAnchor("safety")
    shot("model-page")
    win.go("Compare")
    for i in range(win.compare.pick.count()):
        win.compare.pick.item(i).setCheckState(Qt.Checked)
    win.compare.rows = None
    win.compare.compare()
    wait(lambda: win.compare.rows is not None)
    shot("compare")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
