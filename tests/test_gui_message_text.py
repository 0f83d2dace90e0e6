"""gui/message_text.py: a model's reply shown safely (no resource loads, links only after a
confirmation, code copied exactly), streamed cheaply, sized to its content."""

from __future__ import annotations

import base64
import re
import http.server
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextDocument
from PySide6.QtWidgets import QApplication, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from vetted.gui import markdown, message_text
from vetted.gui.message_text import MessageText

# a 1x1 PNG: a plain QTextBrowser loads it from disk, which is what MessageText must never do
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

REPLY = """Here:

```python
def f(x):
    return x * 2
```

and

```bash
echo "two"   # keep the spaces
```

See [the docs](https://example.com/docs?a=1&b=2).
"""


class Hits(http.server.BaseHTTPRequestHandler):
    count = 0

    def do_GET(self) -> None:  # noqa: N802
        Hits.count += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def server():
    Hits.count = 0
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hits)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()


def make(qtbot, text: str = "", width: int = 600) -> MessageText:
    w = MessageText(text, dark=False)
    qtbot.addWidget(w)
    w.resize(width, 100)
    w.show()
    qtbot.waitExposed(w)
    return w


def click_text(qtbot, w: MessageText, needle: str, nth: int = 0) -> None:
    """A real mouse click in the middle of the `nth` occurrence of `needle`."""
    doc = w.document()
    cur = doc.find(needle)
    for _ in range(nth):
        cur = doc.find(needle, cur)
    assert not cur.isNull(), needle
    c = w.textCursor()
    c.setPosition(cur.selectionStart() + len(needle) // 2)
    rect = w.cursorRect(c)
    pos = QPoint(rect.center().x(), rect.center().y())
    qtbot.mouseClick(w.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_images_and_raw_html_never_load_anything(qtbot, server, tmp_path: Path) -> None:
    port = server
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    text = (f"![x](file:///etc/passwd) ![y]({secret.as_uri()}) ![z](http://127.0.0.1:{port}/md.png)\n\n"
            f"<img src=http://127.0.0.1:{port}/raw.png> <img src={secret.as_uri()}>")
    w = make(qtbot, text)
    shown = w.toPlainText()
    assert "<img src=http://127.0.0.1" in shown  # raw HTML is text
    assert f"[image: z] (http://127.0.0.1:{port}/md.png)" in shown
    assert "file:///etc/passwd" in shown

    # Even HTML that does ask for images (never produced by the renderer) loads nothing.
    calls: list[tuple[str, object]] = []
    real = MessageText.loadResource

    def spy(self, kind, url):
        result = real(self, kind, url)
        calls.append((url.toString(), result))
        return result

    MessageText.loadResource = spy
    try:
        w.setHtml(f'<img src="{secret.as_uri()}"><img src="http://127.0.0.1:{port}/direct.png">'
                  '<img src="file:///etc/passwd">')
        w.document().adjustSize()
        qtbot.wait(300)  # time for a request to arrive, if anything were to make one
    finally:
        MessageText.loadResource = real
    assert calls and all(result is not None and result.isNull() for _, result in calls)
    for url in (secret.as_uri(), "file:///etc/passwd"):
        got = w.document().resource(QTextDocument.ResourceType.ImageResource, QUrl(url))
        assert got is None or got.isNull(), url
    assert Hits.count == 0

    # The control: a plain QTextBrowser does read the local file, so the check above can fail.
    plain = QTextBrowser()
    qtbot.addWidget(plain)
    plain.setHtml(f'<img src="{secret.as_uri()}">')
    plain.document().adjustSize()
    assert plain.document().resource(QTextDocument.ResourceType.ImageResource, QUrl(secret.as_uri())) is not None


def test_copy_link_puts_exactly_that_block_on_the_clipboard(qtbot) -> None:
    w = make(qtbot, REPLY)
    QGuiApplication.clipboard().setText("before")
    with qtbot.waitSignal(w.code_copied) as sig:
        click_text(qtbot, w, "Copy", nth=1)
    assert sig.args == [1]
    assert QGuiApplication.clipboard().text() == 'echo "two"   # keep the spaces'
    click_text(qtbot, w, "Copy", nth=0)
    assert QGuiApplication.clipboard().text() == "def f(x):\n    return x * 2"
    assert not w.copy_code(7) and not w.copy_code("x")


def test_link_opens_only_after_confirmation_showing_the_target(qtbot, monkeypatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()) or True)
    w = make(qtbot, REPLY)
    answers: list[bool] = [False, True]
    asked: list[str] = []

    def confirm(target: str) -> bool:
        asked.append(target)
        return answers.pop(0)

    monkeypatch.setattr(w, "confirm_open", confirm)
    with qtbot.waitSignal(w.link_refused):
        click_text(qtbot, w, "the docs")
    assert opened == [] and asked == ["https://example.com/docs?a=1&b=2"]
    with qtbot.waitSignal(w.link_opened):
        click_text(qtbot, w, "the docs")
    assert opened == ["https://example.com/docs?a=1&b=2"]


def test_confirmation_dialog_shows_the_full_target_and_defaults_to_cancel(qtbot) -> None:
    w = make(qtbot, "x")
    target = "https://example.com/a/very/long/path?token=" + "z" * 80
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append(box.informativeText())
        seen.append(box.defaultButton().text())
        box.reject()

    QTimer.singleShot(0, answer)
    assert w.confirm_open(target) is False
    assert seen[0] == target and "Cancel" in seen[1]


@pytest.mark.parametrize("target", ["file:///etc/passwd", "javascript:alert(1)", "data:text/html,x",
                                    "mailto:a@b.c", "ftp://example.com/x", "http:relative"])
def test_other_schemes_are_refused_without_asking(qtbot, monkeypatch, target: str) -> None:
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()) or True)
    w = make(qtbot, f"[go]({target})")
    monkeypatch.setattr(w, "confirm_open", lambda t: pytest.fail("must not ask for " + t))
    assert w.document().toHtml().count("<a ") == 0  # the renderer made no anchor of it
    with qtbot.waitSignal(w.link_refused):
        w.anchorClicked.emit(QUrl(target))  # and one forged into the HTML is refused too
    assert opened == []


def test_streaming_is_throttled_incremental_and_ends_identical(qtbot, monkeypatch) -> None:
    for lang in ("python", "bash"):
        markdown._lexer(lang, wait=True)  # loaded: no retry render for colours
    w = make(qtbot)
    parsed: list[int] = []
    real = message_text.render
    monkeypatch.setattr(message_text, "render", lambda text, **kw: (parsed.append(len(text)), real(text, **kw))[1])
    reply = REPLY * 4
    tokens = [reply[i:i + 3] for i in range(0, len(reply), 3)]
    for t in tokens[:40]:
        w.append_stream(t)  # all within one event-loop turn: nothing rendered yet
    assert parsed == []
    qtbot.waitUntil(lambda: bool(parsed), timeout=2_000)
    assert len(parsed) <= 2  # forty tokens, one render (of the finished blocks and of the tail)
    for t in tokens[40:]:
        w.append_stream(t)
        if len(w.markdown()) % 30 == 0:
            w.flush()  # as if the timer had fired: a render every few tokens
    w.flush()
    assert w.markdown() == reply
    assert max(parsed) < len(REPLY)  # never the whole reply again: finished blocks are kept
    assert w.toPlainText().count("See the docs.") == 4
    assert len(w.code_blocks) == 8 and w.code_blocks[5] == "echo \"two\"   # keep the spaces"

    whole = make(qtbot, reply)
    def lines(m: MessageText) -> list[str]:  # Qt may leave an empty paragraph after a table
        return [x.rstrip() for x in m.toPlainText().splitlines() if x.strip()]

    assert lines(whole) == lines(w)
    assert whole.code_blocks == w.code_blocks
    QGuiApplication.clipboard().setText("")
    click_text(qtbot, w, "Copy", nth=5)
    assert QGuiApplication.clipboard().text() == "echo \"two\"   # keep the spaces"
    n, renders = len(parsed), w.renders
    w.set_markdown(reply)  # the final text of the streamed reply, as shown: nothing rendered again
    w.finish_stream()
    assert len(parsed) == n and w.renders == renders and w.code_blocks == whole.code_blocks
    w.set_markdown(reply + "\n\nOne more line.")  # a stored text that goes on: only its end is parsed
    assert n < len(parsed) <= n + 2 and max(parsed[n:]) < len(REPLY) and "One more line." in w.toPlainText()


def test_code_is_shown_plain_until_its_lexer_loads_then_coloured(qtbot) -> None:
    lang = "haskell"
    with markdown._LOCK:
        markdown._LEXERS.pop(lang, None)
    w = make(qtbot, f"```{lang}\nmain = putStrLn \"hi\"\n```\n")
    assert "main" in w.toPlainText() and w.code_blocks == ['main = putStrLn "hi"']
    qtbot.waitUntil(lambda: lang in markdown._LEXERS, timeout=10_000)
    coloured = markdown.highlight('main = putStrLn "hi"', lang, markdown.LIGHT)[0]
    colour = re.search(r"color:(#[0-9A-Fa-f]{6})", coloured).group(1).lower()
    qtbot.waitUntil(lambda: colour in w.document().toHtml().lower(), timeout=5_000)


def test_stream_renders_within_interval_while_tokens_keep_coming(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(message_text, "RENDER_INTERVAL_MS", 80)
    w = make(qtbot)
    w.append_stream("Hello")
    qtbot.waitUntil(lambda: "Hello" in w.toPlainText(), timeout=2_000)
    w.append_stream(" world")
    w.flush()
    assert "Hello world" in w.toPlainText()


def test_height_follows_content_without_scroll_bars(qtbot) -> None:
    host = QWidget()
    lay = QVBoxLayout(host)
    w = MessageText(REPLY + "\nA longer paragraph that has to wrap onto more lines when the bubble is narrow.",
                    dark=False)
    lay.addWidget(w)
    lay.addStretch()
    qtbot.addWidget(host)
    host.resize(700, 1200)
    host.show()
    qtbot.waitExposed(host)
    doc_h = w.document().size().height()
    qtbot.waitUntil(lambda: abs(w.height() - doc_h) <= 4)
    assert w.verticalScrollBar().maximum() == 0
    tall = w.height()
    host.resize(260, 1200)  # narrower: lines wrap, so the message grows
    qtbot.waitUntil(lambda: w.height() > tall and w.verticalScrollBar().maximum() == 0)
    assert abs(w.height() - w.document().size().height()) <= 4
    short = MessageText("one line", dark=False)
    lay.insertWidget(0, short)
    qtbot.waitUntil(lambda: 0 < short.height() < 60)


def test_dark_rendering_and_theme_switch(qtbot) -> None:
    w = make(qtbot, REPLY)
    assert "#f6f8fa" in w.document().toHtml() and not w.dark
    w.set_dark(True)
    assert "#161b22" in w.document().toHtml() and "#f6f8fa" not in w.document().toHtml()
    assert w.code_blocks[0] == "def f(x):\n    return x * 2"
