"""One chat message's text: rendered Markdown that sizes itself to its content.

Made to sit inside a chat bubble in a scroll area: no scroll bars of its own, word wrap,
and a height that follows the text as the bubble's width changes. The text is a model's
reply, so the widget is locked down beyond what `markdown.render` already guarantees:

- `loadResource` answers every URL with an empty image or text: no image, style sheet or
  file is ever read or fetched, whatever the HTML would ask for;
- links never navigate the widget (`setOpenLinks(False)`); an http(s) link opens in the
  system browser only on an explicit click and after a dialog that shows its full target;
  every other scheme is refused;
- `vetted-copy:<n>` anchors put exactly code block n on the clipboard.

Streaming: `append_stream` only buffers; a single-shot timer re-renders at most every
`RENDER_INTERVAL_MS`, and only the unfinished tail of the reply is parsed and replaced in the
document: the finished blocks before it are rendered once and kept (`markdown.split_stable`),
so the cost of a render does not grow with the length of the reply. Lexers load on a thread
(`markdown._lexer`); a block is shown plain until its colours are ready.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices, QGuiApplication, QImage, QTextBlockFormat, QTextCharFormat, QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QFrame, QMessageBox, QSizePolicy, QTextBrowser, QToolTip, QWidget

from ..textsafe import one_line
from .markdown import COPY_SCHEME, OPENABLE_SCHEMES, render, split_stable, warm_up
from .theme import is_dark

__all__ = ["MessageText", "RENDER_INTERVAL_MS"]

RENDER_INTERVAL_MS = 80
LEXER_RETRY_MS = 60


class MessageText(QTextBrowser):
    """Rendered Markdown for one message; see the module docstring."""

    code_copied = Signal(int)  # the block number, after its code went to the clipboard
    link_refused = Signal(str)  # a target that was not opened (scheme not allowed, or declined)
    link_opened = Signal(str)
    _warmed = False

    def __init__(self, text: str = "", *, dark: bool | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setLineWrapMode(QTextBrowser.LineWrapMode.WidgetWidth)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.viewport().setAutoFillBackground(False)  # the bubble's colour shows through
        self.setAutoFillBackground(False)
        self.document().setDocumentMargin(2)
        self.setAccessibleName("Message")
        self.anchorClicked.connect(self._on_anchor)
        self.highlighted.connect(self._on_hover)
        self.document().contentsChanged.connect(self._fit)

        self._text = ""
        self._dark = is_dark(self) if dark is None else dark
        self._codes: list[str] = []
        # The document holds the finished blocks of `_stable_src` (rendered once, never
        # again) followed, from `_tail_pos`, by the rendered rest, which each render replaces.
        self._stable_src = ""
        self._stable_codes: list[str] = []
        self._tail_pos = 0
        self._shown: tuple[str, bool] | None = None  # (text, dark) the document shows, all colours in
        self.renders = 0  # how many times the document was rendered (for tests and benchmarks)
        self.document().setUndoRedoEnabled(False)
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._render)
        self._height = -1
        if not MessageText._warmed:
            MessageText._warmed = True
            warm_up()
        if text:
            self.set_markdown(text, self._dark)

    # -- content --------------------------------------------------------------------------

    def markdown(self) -> str:
        """The Markdown source shown (including streamed text not yet rendered)."""
        return self._text

    @property
    def code_blocks(self) -> list[str]:
        """The code of each block as rendered, in order: what `vetted-copy:<n>` copies."""
        return list(self._codes)

    @property
    def dark(self) -> bool:
        return self._dark

    def set_markdown(self, text: str, dark: bool | None = None) -> None:
        """Shows `text` now. Cheap when `text` continues what is shown (the final text of a
        streamed reply): only what follows the finished blocks is rendered again."""
        self._timer.stop()
        if dark is not None and dark != self._dark:
            self._dark = dark
            self._reset()
        self._text = text
        self._render()

    def append_stream(self, text: str) -> None:
        """Adds streamed text; it appears within `RENDER_INTERVAL_MS` (cheap to call per token)."""
        if not text:
            return
        self._text += text
        if not self._timer.isActive():
            self._timer.start(RENDER_INTERVAL_MS)

    def flush(self) -> None:
        """Renders buffered streamed text now (e.g. when the reply ends); nothing when the
        document already shows all of it."""
        if self._timer.isActive():
            self._timer.stop()
            self._render()

    finish_stream = flush

    def set_dark(self, dark: bool) -> None:
        if dark != self._dark:
            self._dark = dark
            self._reset()
            self._render()

    def _reset(self) -> None:
        self._shown = None
        self.document().clear()
        self._stable_src, self._stable_codes, self._tail_pos = "", [], 0

    def _render(self) -> None:
        text = self._text
        if self._shown == (text, self._dark):
            return  # the document shows exactly this (e.g. a streamed reply's final text)
        self.renders += 1
        cut = split_stable(text)
        if cut < len(self._stable_src) or not text.startswith(self._stable_src):
            self._reset()
        doc = self.document()
        cur = QTextCursor(doc)
        cur.beginEditBlock()
        cur.setPosition(self._tail_pos)
        cur.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cur.removeSelectedText()
        pending = False
        start = len(self._stable_src)
        if cut > start:  # blocks finished since the last render: rendered once, then kept
            done = render(text[start:cut], dark=self._dark, first_block=len(self._stable_codes), wait=False)
            if done.pending:  # a lexer is loading: keep them in the tail until it is ready
                pending = True
            else:
                self._insert(cur, done.html)
                self._tail_pos = cur.position()
                self._stable_src = text[:cut]
                self._stable_codes = self._stable_codes + done.codes
        tail = render(text[len(self._stable_src):], dark=self._dark, first_block=len(self._stable_codes),
                      wait=False)
        self._insert(cur, tail.html)
        cur.endEditBlock()
        self._codes = self._stable_codes + tail.codes
        self.verticalScrollBar().setValue(0)
        self._fit()
        if pending or tail.pending:
            self._shown = None
            if not self._timer.isActive():
                self._timer.start(LEXER_RETRY_MS)  # shown plain for now, coloured when the lexer is in
        else:
            self._shown = (text, self._dark)

    @staticmethod
    def _insert(cur: QTextCursor, html: str) -> None:
        """Appends rendered blocks as new blocks. A paragraph would otherwise merge into the
        block before it; a table always starts a frame of its own (and leaves an empty
        block after it, which the next paragraph fills)."""
        html = html.strip()
        if not html:
            return
        if cur.block().length() > 1 and not html.startswith("<table"):
            cur.insertBlock(QTextBlockFormat(), QTextCharFormat())
        cur.insertHtml(html)

    # -- safety -------------------------------------------------------------------------

    def loadResource(self, type: int, name: QUrl) -> object:  # noqa: A002 (Qt's name)
        """Nothing is ever loaded: no image, style sheet or file, local or remote.

        The answer must not be *null*: for a null answer QTextDocument falls back to
        reading a `file:` URL itself (and decodes `data:` URLs). An empty image (or empty
        text for a style sheet) is a real answer that carries nothing."""
        if type == QTextDocument.ResourceType.ImageResource:
            return QImage()
        return ""

    def setSource(self, name: QUrl, type: object = None) -> None:  # noqa: A002
        """Never navigates (a link click is handled by `_on_anchor`)."""
        return None

    def _on_hover(self, url: QUrl) -> None:
        target = url.toString() if not url.isEmpty() else ""
        if target.startswith(COPY_SCHEME + ":"):
            self.setToolTip("Copy this code")
        else:
            self.setToolTip(one_line(target))

    def _on_anchor(self, url: QUrl) -> None:
        target = url.toString()
        scheme = url.scheme().lower()
        if scheme == COPY_SCHEME:
            self.copy_code(url.path())
            return
        if scheme not in OPENABLE_SCHEMES or not url.host():
            self.link_refused.emit(target)
            return
        if self.confirm_open(target):
            QDesktopServices.openUrl(url)
            self.link_opened.emit(target)
        else:
            self.link_refused.emit(target)

    def confirm_open(self, target: str) -> bool:
        """Asks before a link leaves the app; the dialog shows the full target."""
        box = QMessageBox(QMessageBox.Icon.Question, "Open link?",
                          "This link is in a model's reply. Open it in your web browser?", parent=self)
        box.setInformativeText(one_line(target))
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setStandardButtons(QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Open

    def copy_code(self, n: object) -> bool:
        """Puts code block `n` (as rendered) on the clipboard; False if there is no such block."""
        try:
            i = int(str(n))
        except ValueError:
            return False
        if not 0 <= i < len(self._codes):
            return False
        QGuiApplication.clipboard().setText(self._codes[i])
        QToolTip.showText(self.cursor().pos(), "Copied", self)
        self.code_copied.emit(i)
        return True

    # -- size ---------------------------------------------------------------------------

    def _content_height(self, width: int) -> int:
        doc = self.document()
        if width > 0 and doc.textWidth() != width:
            doc.setTextWidth(width)
        m = self.contentsMargins()
        return math.ceil(doc.size().height()) + m.top() + m.bottom() + 2 * self.frameWidth()

    def _fit(self) -> None:
        h = self._content_height(self.viewport().width())
        if h != self._height:
            self._height = h
            self.setFixedHeight(h)
            self.updateGeometry()

    def sizeHint(self) -> QSize:
        doc = self.document()
        ideal = math.ceil(doc.idealWidth()) + 2 * self.frameWidth() + 4
        return QSize(min(ideal, 640), self._height if self._height > 0 else super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(80, self._height if self._height > 0 else 20)

    def resizeEvent(self, event: object) -> None:  # type: ignore[override]
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._fit()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            dark = is_dark(self)
            if dark != self._dark:  # the theme changed: code colours follow
                self.set_dark(dark)
