"""Downloads: progress (bytes, speed, time left), cancel and resume, and the verdict.

Each pull is `Vetted.pull` on the runner's download lane (the core re-verifies the
catalog, enforces the memory fit, and announces the installed model; Library, Chat and
Discover refresh themselves on that event). Pause sets the job's cancel flag and keeps
the partial file; Cancel also discards it (`Vetted.discard_partial`).

A download that did not finish never looks like one that did: a refused or failed one
empties its bar, draws it and its verdict in the theme's danger colour, says why in words,
and offers the next step as a button where there is one (Retry, Open Settings…).
"""

from __future__ import annotations

import html
import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget,
)

from vetted.errors import Fix
from vetted.gui import theme
from vetted.gui.bridge import Job, Runner, error_text, plain_tooltip
from vetted.gui.remedies import RemedyButton, remedy_of
from vetted.textsafe import one_line


class DownloadItem(QFrame):
    finished = Signal(str, bool)  # model id, installed?
    go_requested = Signal(str)    # a remedy's button opens another page

    def __init__(self, runner: Runner, location: str, model_id: str, name: str) -> None:
        super().__init__()
        self.runner, self.location, self.model_id = runner, location, model_id
        self.call: Job | None = None
        self.setFrameShape(QFrame.StyledPanel)
        name = one_line(name)  # the catalog's model name: shown, never interpreted
        self.title = QLabel(f"<b>{html.escape(name)}</b>")
        self.bar = QProgressBar()
        self.bar.setAccessibleName(f"Download progress of {name}")
        self.info = QLabel("starting…")
        self.info.setTextFormat(Qt.PlainText)  # quotes servers, catalogs and refusal reasons
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.pause_btn = QPushButton("Pause", accessibleName=f"Pause download of {name}")
        self.resume_btn = QPushButton("Resume", accessibleName=f"Resume download of {name}")
        self.cancel_btn = QPushButton("Cancel", accessibleName=f"Cancel download of {name} and discard it")
        self.pause_btn.clicked.connect(self.pause)
        self.resume_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.library_btn = QPushButton("Open in Library", accessibleName=f"Show {name} in the Library")
        self.library_btn.clicked.connect(lambda: self.go_requested.emit("Library"))
        self.library_btn.hide()
        self.next_btn = RemedyButton({}, self.go_requested.emit)
        self.name = name
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        for b in (self.pause_btn, self.resume_btn, self.cancel_btn, self.library_btn):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(row)
        layout.addWidget(self.info)
        next_row = QHBoxLayout()
        next_row.addWidget(self.next_btn)
        next_row.addStretch(1)
        layout.addLayout(next_row)
        self.state = "idle"
        self.start()

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.first_done: int | None = None
        self.state = "running"
        self.discard = False
        if self.bar.format() != "%p%":  # after a refusal: the bar counts bytes again
            self.bar.setFormat("%p%")
            self.bar.setValue(0)
        self._mark(None)
        self.next_btn.clear()
        self.resume_btn.setText("Resume")
        self._controls(pause=True, cancel=True)
        self.info.setToolTip("")
        self.info.setText("checking the catalog and the publisher's signature…")

        app, location, model_id = self.runner.app, self.location, self.model_id

        def job(job: Job) -> Any:
            return app.pull(model_id, location, cancel=job.cancel,
                            progress=lambda name, done, total: job.progress.emit((name, done, total)))

        self.call = self.runner.run(job, lane="download", on_progress=self._progress, on_done=self._done,
                                    on_failed=self._failed)

    def pause(self) -> None:
        """Stops the transfer; the partial file stays in quarantine and Resume continues it."""
        if self.call is not None:
            self.call.cancel.set()

    def cancel(self) -> None:
        """Stops the transfer (if running) and throws the partial download away."""
        self.discard = True
        if self.state == "running":
            self.pause()  # _failed discards once the transfer has stopped
        else:
            self._discard()

    def _discard(self) -> None:
        app, location, model_id = self.runner.app, self.location, self.model_id
        self.runner.run(lambda _job: app.discard_partial(model_id, location),
                        on_done=lambda _n: self._discarded(), on_failed=lambda e: self.info.setText(error_text(e)))

    def _discarded(self) -> None:
        self.state = "cancelled"
        self.bar.setValue(0)
        self.info.setText("Cancelled. The partial download was discarded.")
        self.resume_btn.setText("Start again")
        self._controls(resume=True)

    def _progress(self, p) -> None:
        name, done, total = p
        now = time.monotonic()
        if self.first_done is None:
            self.first_done, self.t0 = done, now
        self.bar.setMaximum(1000)
        self.bar.setValue(int(1000 * done / total) if total else 1000)
        elapsed = max(now - self.t0, 1e-3)
        speed = (done - self.first_done) / elapsed
        left = (total - done) / speed if speed > 0 else 0
        self.info.setText(f"{one_line(name)}: {done / 1e6:.1f} of {total / 1e6:.1f} MB, {speed / 1e6:.1f} MB/s, "
                          f"about {left:.0f} s left — hashed as it arrives")

    def _done(self, result: Any) -> None:
        self.state = "done"
        self.bar.setMaximum(1)
        self.bar.setValue(1)
        self._controls()  # nothing left to pause, resume or cancel: the model is in the Library
        self.library_btn.show()
        m = result.model
        source = one_line(str(result.source))
        self.info.setText(f"✔ Verified and installed. sha256 matches catalog {m.catalog_id} v{m.catalog_version}; "
                          f"publisher signature by {one_line(m.signer)}. Source: {short_source(source)}.")
        self.info.setToolTip(plain_tooltip(f"Source: {source}"))
        self.finished.emit(self.model_id, True)

    def _failed(self, exc: BaseException) -> None:
        from vetted.net.http import Cancelled

        self._controls(resume=True, cancel=True)
        if isinstance(exc, Cancelled) and self.discard:
            self._discard()
            return
        if isinstance(exc, Cancelled):
            self.state = "paused"
            self.info.setText("Paused. The partial download is kept; Resume continues where it stopped.")
        else:
            from vetted.errors import Refused

            # Not a finished download: a full bar would read as success. The bar empties
            # and says what happened; the reason follows in words.
            self.state = "refused"
            refused = isinstance(exc, Refused)
            verdict = "refused" if refused else "failed"
            self.bar.setMaximum(1)
            self.bar.setValue(0)
            self.bar.setFormat(f"✖ {verdict.capitalize()}: not installed")
            self.resume_btn.setText("Try again")
            self._controls(resume=True)  # nothing to pause; "Try again" starts afresh
            self._mark(theme.danger(self))
            self.info.setText(f"✖ Download {verdict}. Not installed.\n" + error_text(exc))
            # the next step as a button; trying again is the row's own "Try again"
            remedy = remedy_of(exc)
            self.next_btn.offer(None if remedy is None or remedy.fix == Fix.RETRY else remedy,
                                f"download of {self.name}")
        self.finished.emit(self.model_id, False)

    def _controls(self, *, pause: bool = False, resume: bool = False, cancel: bool = False) -> None:
        """Shows only the buttons that apply to the row's state (hidden, not greyed out)."""
        self.library_btn.hide()
        for b, on in ((self.pause_btn, pause), (self.resume_btn, resume), (self.cancel_btn, cancel)):
            b.setEnabled(on)
            b.setVisible(on)

    def _mark(self, colour: str | None) -> None:
        """The bar's and the verdict's text in `colour` (None: the theme's own)."""
        if colour is None:
            self.bar.setPalette(QPalette())
            self.info.setStyleSheet("")
            return
        p = self.bar.palette()
        for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.HighlightedText):
            p.setColor(role, QColor(colour))
        self.bar.setPalette(p)
        self.info.setStyleSheet(f"color: {colour}")


class DownloadsPage(QWidget):
    go_requested = Signal(str)  # a remedy's button opens another page

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.items: dict[str, DownloadItem] = {}
        self.empty = QLabel("No downloads yet. Choose a model in Discover and press Download.")
        inner = QWidget()
        self.list = QVBoxLayout(inner)
        self.list.addWidget(self.empty)
        self.list.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)

    def add(self, location: str, model_id: str, name: str) -> DownloadItem:
        item = self.items.get(model_id)
        if item is not None and item.state == "running":
            return item
        if item is not None:
            item.start()
            return item
        self.empty.hide()
        item = DownloadItem(self.runner, location, model_id, name)
        item.go_requested.connect(self.go_requested.emit)
        self.items[model_id] = item
        self.list.insertWidget(0, item)
        return item


def short_source(source: str) -> str:
    """Where a download came from, short: a server's host, else the folder's (or file's)
    name; a source's kind before it stays ("mirror http://h/x/" → "mirror h")."""
    from pathlib import PurePath
    from urllib.parse import urlsplit

    kind, _sp, where = source.partition(" ")
    if where and kind.isalpha():
        return f"{kind} {short_source(where)}"
    parts = urlsplit(source)
    if parts.scheme in ("http", "https") and parts.hostname:
        return parts.hostname
    path = PurePath(parts.path if parts.scheme == "file" else source)
    name = path.parent.name if path.suffix and path.parent.name else path.name
    return name or source
