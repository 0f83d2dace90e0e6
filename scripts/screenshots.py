"""Renders every page into PNGs, light and dark, at 1400x900 and 1024x640 (run under Xvfb by
`make screenshots`).

Everything is real: the demo catalog, a verified download, the model page's signed card
and local spot-check, a refusal, audit entries. The one stand-in is the chat's reply: a
fixed Markdown answer with a code block (a FakeEngine behind the same chat session and
template checks as the real engine), because a 135M-parameter model writes no reliable
code block and the screenshot is there to show how a reply is rendered.

Files: `<page>-<theme>-<width>.png` for page in welcome, discover, model-page, compare,
downloads, library, chat, audit, settings, policy; and `<page>.png` (light, 1400 px), the
names the README has always used.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshots.py docs/screenshots
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # fake_engine

THEMES = ("light", "dark")
SIZES = ((1400, 900), (1024, 640))
CHAT_MODEL = "smollm2-135m-instruct-q4_1"
REPLY = """Here is a function that checks a file against the SHA-256 your catalog lists:

```python
import hashlib

def matches(path: str, expected: str) -> bool:
    \"\"\"True when the file's digest is the expected one.\"\"\"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == expected.lower()
```

- It reads the file in **1 MiB** chunks, so large models do not fill memory.
- Compare with the digest from a *signed* catalog, not from a download page.
"""


def main(out_dir: str) -> int:
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["VETTED_HOME"] = tempfile.mkdtemp(prefix="vetted-shots-")
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from fake_engine import FakeEngine
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    app = QApplication(sys.argv)
    app.setStyle("Fusion")

    def wait(cond: Callable[[], object], ms: int = 120_000) -> None:
        left = ms
        while not cond() and left > 0:
            loop = QEventLoop()
            QTimer.singleShot(50, loop.quit)
            loop.exec()
            left -= 50

    def set_theme(mode: str) -> None:
        try:
            from vetted.gui.theme import apply_theme
        except ImportError:  # before gui/theme.py existed: light only
            return
        apply_theme(app, mode)

    def shots(win: MainWindow, name: str, before: Callable[[], None] | None = None) -> None:
        """The current page in every theme and size; `before` runs after each resize (to
        scroll to what the shot is about)."""
        for theme in THEMES:
            set_theme(theme)
            for w, h in SIZES:
                win.resize(w, h)
                wait(lambda: False, 250)
                if before is not None:
                    before()
                    wait(lambda: False, 150)
                path = out / f"{name}-{theme}-{w}.png"
                win.grab().save(str(path))
                print("wrote", path)
        shutil.copyfile(out / f"{name}-light-{SIZES[0][0]}.png", out / f"{name}.png")
        set_theme("light")

    # -- a fresh install: the Welcome page
    set_theme("light")
    win = MainWindow(Vetted())
    win.show()
    wait(lambda: win.current_page() == "Welcome", 20_000)
    shots(win, "welcome")
    win.close()

    from vetted.authoring.demo import build_demo

    build_demo()  # the demo catalog, SmolLM2 installed, and the spot-check its safety card reports
    win = MainWindow(Vetted(engine_factory=lambda: FakeEngine(reply=REPLY)))
    win.show()
    page = win.discover.page
    wait(lambda: win.discover.model.rowCount() > 0)
    win.discover.select_id("gemma-3-270m-q4_k_m")
    wait(lambda: not page.pending)  # the card is read off the UI thread
    shots(win, "discover")

    win.discover.page.download.click()
    item = win.downloads.items["gemma-3-270m-q4_k_m"]
    wait(lambda: item.state != "running")
    shots(win, "downloads")

    win.go("Library")
    wait(lambda: win.library.table.rowCount() == 2)  # refreshed by the core's "installed" event
    win.library.table.selectRow(0)
    shots(win, "library")

    win.chat_with(CHAT_MODEL)
    chat = win.chat
    wait(lambda: not chat.busy, 10_000)
    chat.input.setPlainText("Write a Python function that checks a file's SHA-256 against an expected value.")
    chat.send()
    wait(lambda: not chat.busy, 60_000)
    shots(win, "chat")

    win.go("Audit")
    wait(lambda: not win.runner.busy())
    shots(win, "audit")

    win.go("Discover")
    win.reload_catalogs()
    wait(lambda: win.discover.model.rowCount() > 0 and win.discover.model.rows[0].installed_state is not None)
    win.discover.select_id(CHAT_MODEL)
    wait(lambda: not page.pending)
    shots(win, "model-page", before=lambda: page.view.scrollToAnchor("safety"))

    win.go("Compare")
    for i in range(win.compare.pick.count()):
        win.compare.pick.item(i).setCheckState(Qt.CheckState.Checked)
    win.compare.rows = None
    win.compare.compare()
    wait(lambda: win.compare.rows is not None)
    shots(win, "compare")

    win.go("Settings")
    wait(lambda: not win.runner.busy(), 10_000)
    shots(win, "settings")

    win.go("Policy")
    wait(lambda: not win.runner.busy(), 10_000)
    shots(win, "policy")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
