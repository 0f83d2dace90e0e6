"""Untrusted text never reaches a terminal or a one-line widget raw.

A signed catalog (signed is not the same as well-meaning) whose model names, description,
publisher, licence, claims and mirror folder carry terminal escapes, carriage returns,
newlines followed by a forged "refused: …" line and bidi overrides; a GGUF whose metadata
does too; a server whose HTTP reason phrase does. The real `vetted` command and the real
desktop window must show all of it escaped (`\\x1b`, `\\r`, `\\n`, `\\u202e`), never obeyed,
and never as a line of its own.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import unicodedata
from pathlib import Path

import pytest

from catalog_kit import build
from tiny_gguf import write_gguf
from vetted.core.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

FORGED = "refused: forged line"
NAME = "Evil\x1b[2J model\r\n" + FORGED
DESCRIPTION = "Looks fine\u202e txt.exe\x1b]0;owned\x07\n" + FORGED
PUBLISHER = "Pub\r" + FORGED + "\u202e"
LICENSE = "MIT\x1b[5m"
CATALOG_NAME = "Evil catalog\x1b[31m\n" + FORGED
TRAP_FOLDER = "trap\x1b[2J\r\n" + FORGED  # a local source folder: its name ends up in errors
PROVENANCE = {"publisher": "Prov\x1b[8m\n" + FORGED, "model_name": "m\u202eodel", "license": "Apache-2.0",
              "architecture": "llama"}
CARD = {"evaluator": "Lab\r" + FORGED, "evaluated_at": "2026-11-01", "assurance": "third-party",
        "results": [{"benchmark": "Harm\x1b[2JBench", "metric": "attack_success_rate\n" + FORGED, "value": 0.05,
                     "direction": "lower_is_better", "sample_size": 400}],
        "not_evaluated": ["X\u2066STest"], "flags": ["un\x9bcensored"]}
GGUF_EXTRA = {"general.license": "mit\x1b]0;pwned\x07\n" + FORGED, "general.size_label": "1B\u202e"}


def raw_controls(text: str, allowed: str = "\n") -> list[str]:
    """Every character a terminal or widget would obey rather than show (written without
    the module under test): controls, format/bidi characters, line separators."""
    return [repr(ch) for ch in text
            if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")]


def assert_shown_not_obeyed(text: str, allowed: str = "\n") -> None:
    assert raw_controls(text, allowed) == [], text
    assert not [line for line in text.splitlines() if line.lstrip().startswith(FORGED)], text


@pytest.fixture
def evil(tmp_path: Path, signing_key, loc):
    src = tmp_path / "src"
    src.mkdir()
    gguf = write_gguf(src / "evil.gguf", extra=GGUF_EXTRA)
    trap_src = src / "trap.gguf"
    trap_src.write_bytes(b"GGUF" + bytes(range(256)) * 500)
    models = [
        {"id": "evil", "name": NAME, "description": DESCRIPTION, "publisher": PUBLISHER, "license": LICENSE,
         "path": str(gguf), "attest": {"provenance": PROVENANCE, "safety_card": CARD}},
        {"id": "trap", "name": NAME, "publisher": PUBLISHER, "license": "MIT", "path": str(trap_src),
         "sources": {"local": [TRAP_FOLDER]}},
    ]
    cat = build(tmp_path / "cat", signing_key[0], models=models, name=CATALOG_NAME)
    # the trap folder serves the right signature and an altered file: the pull is refused
    # with an error naming the folder
    trap = cat.parent / TRAP_FOLDER
    trap.mkdir()
    shutil.copyfile(cat.parent / "mirror" / "trap.model.sig", trap / "trap.model.sig")
    data = bytearray(trap_src.read_bytes())
    data[100] ^= 0xFF
    (trap / "trap.gguf").write_bytes(bytes(data))
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    return cat


# -- the function itself, per class of character --------------------------------------

@pytest.mark.parametrize("raw, shown", [
    ("\x00", "\\x00"), ("\x07", "\\x07"), ("\x1b[2J", "\\x1b[2J"), ("\x08", "\\x08"),  # C0
    ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"),  # C0 with short escapes
    ("\x7f", "\\x7f"),  # DEL
    ("\x85", "\\x85"), ("\x9b31m", "\\x9b31m"),  # C1 (NEL, CSI)
    ("\u200b", "\\u200b"), ("\u200c", "\\u200c"), ("\u200d", "\\u200d"), ("\u200e", "\\u200e"),
    ("\u200f", "\\u200f"),  # zero-width characters and marks
    ("\u202a", "\\u202a"), ("\u202b", "\\u202b"), ("\u202c", "\\u202c"), ("\u202d", "\\u202d"),
    ("\u202e", "\\u202e"),  # bidi embeddings and overrides
    ("\u2066", "\\u2066"), ("\u2067", "\\u2067"), ("\u2068", "\\u2068"), ("\u2069", "\\u2069"),  # isolates
    ("\ufeff", "\\ufeff"),  # BOM / zero-width no-break space
    ("\u00ad", "\\xad"), ("\u2060", "\\u2060"), ("\u061c", "\\u061c"),  # the rest of Cf
    ("\U000e0041", "\\U000e0041"),  # tag characters (invisible ASCII look-alikes)
    ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),  # line and paragraph separators
    ("\udc80", "\\udc80"),  # a lone surrogate (cannot even be encoded)
])
def test_each_unsafe_class_becomes_a_visible_escape(raw, shown) -> None:
    from vetted.textsafe import one_line

    assert one_line(f"a{raw}b") == f"a{shown}b"


@pytest.mark.parametrize("text", [
    "plain ASCII, with punctuation: []{}()<>&;'\"\\ ~",
    "café naïve Ångström Straße", "中文模型 日本語 한국어", "emoji 😀🚀 👍🏽 ❤️", "العربية עברית",
    "non-breaking\u00a0space", "combining e\u0301",
])
def test_everything_else_stays(text) -> None:
    from vetted.textsafe import one_line

    assert one_line(text) == text


def test_one_line_always_gives_one_printable_line() -> None:
    from vetted.textsafe import one_line

    every = "".join(chr(c) for c in range(0x3000)) + "\ufeff\U000e0001\U000e007f"
    out = one_line(every)
    assert raw_controls(out, allowed="") == []
    assert len(out.splitlines()) == 1
    assert one_line(None) == "" and one_line(42) == "42" and one_line(ValueError("x\ny")) == "x\\ny"


# -- the command line ---------------------------------------------------------------

def test_cli_catalog_shows_escapes(evil, cli) -> None:
    r = cli("catalog")
    assert r.returncode == 0, r.stderr
    assert_shown_not_obeyed(r.stdout)
    assert_shown_not_obeyed(r.stderr)
    assert "Evil catalog\\x1b[31m\\nrefused: forged line" in r.stdout
    assert "Evil\\x1b[2J model\\r\\nrefused: forged line" in r.stdout
    assert "Pub\\rrefused: forged line\\u202e" in r.stdout
    assert "MIT\\x1b[5m" in r.stdout
    s = cli("catalog", "search", "evil")
    assert s.returncode == 0 and "Evil\\x1b[2J model" in s.stdout
    assert_shown_not_obeyed(s.stdout)


def test_cli_card_and_compare_show_claims_and_gguf_metadata_escaped(evil, cli, loc, db, signing_key) -> None:
    from vetted.catalog.signed import load
    from vetted.install.pull import pull

    pull(loc, db, load(str(evil), PublicKey(signing_key[1].read_bytes()), db), "evil")
    r = cli("card", "evil")
    assert r.returncode == 0, r.stderr
    assert_shown_not_obeyed(r.stdout)
    assert "Evil\\x1b[2J model\\r\\nrefused: forged line (evil)" in r.stdout
    assert "publisher: Prov\\x1b[8m\\nrefused: forged line" in r.stdout
    assert "evaluator: Lab\\rrefused: forged line" in r.stdout
    assert "Harm\\x1b[2JBench attack_success_rate\\nrefused: forged line: 5%" in r.stdout
    assert "X\\u2066STest: not evaluated" in r.stdout and "un\\x9bcensored" in r.stdout
    assert "file's licence: mit\\x1b]0;pwned\\x07\\nrefused: forged line" in r.stdout  # GGUF metadata
    c = cli("compare", "evil", "trap")
    assert c.returncode == 0, c.stderr
    assert_shown_not_obeyed(c.stdout)
    assert "attack_success_rate\\nrefused" in c.stdout
    m = cli("models")
    assert m.returncode == 0 and "evil" in m.stdout
    assert_shown_not_obeyed(m.stdout)


def test_cli_error_and_audit_show_escapes(evil, cli) -> None:
    r = cli("pull", "trap")
    assert r.returncode == 1, r.stdout + r.stderr
    assert_shown_not_obeyed(r.stdout)
    assert_shown_not_obeyed(r.stderr)
    assert r.stdout.startswith("refused: ") and len(r.stdout.splitlines()) == 1, r.stdout
    assert "trap\\x1b[2J\\r\\nrefused: forged line" in r.stdout
    a = cli("audit")
    assert a.returncode == 0, a.stderr
    assert_shown_not_obeyed(a.stdout)
    assert "trap\\x1b[2J\\r\\nrefused: forged line" in a.stdout  # the refusal, as audited


def test_cli_chat_titles_escaped_messages_as_written(cli, db) -> None:
    from vetted.store.chats import Chats

    chats = Chats(db)
    conv = chats.create("evil", "title\r\n" + FORGED + "\u202e", "", {})
    chats.add_user(conv, "line one\nline two")
    listed = cli("chats", "list")
    assert listed.returncode == 0, listed.stderr
    assert_shown_not_obeyed(listed.stdout)
    assert "title\\r\\nrefused: forged line\\u202e" in listed.stdout
    shown = cli("chats", "show", str(conv))
    assert shown.returncode == 0, shown.stderr
    assert_shown_not_obeyed(shown.stdout)
    assert shown.stdout.startswith("# title\\r\\nrefused: forged line\\u202e\n")
    assert "line one\nline two" in shown.stdout  # what was typed keeps its newlines


class _EvilReason(http.server.BaseHTTPRequestHandler):
    """Answers every request with a reason phrase carrying ESC and a C1 CSI."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(410, "Gone\x1b[2J\x9b31m away")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a) -> None:
        pass


@pytest.fixture
def evil_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EvilReason)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cli_server_reason_phrase_is_escaped(tmp_path, signing_key, loc, cli, evil_server) -> None:
    gguf = write_gguf(tmp_path / "m.gguf")
    cat = build(tmp_path / "cat", signing_key[0], models=[
        {"id": "served", "name": "Served", "publisher": "P", "license": "MIT", "path": str(gguf),
         "sources": {"mirrors": [f"{evil_server}/files"]}}])
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    r = cli("pull", "served", "--timeout", "10")
    assert r.returncode == 1, r.stdout + r.stderr
    assert_shown_not_obeyed(r.stdout + r.stderr)
    assert "Gone\\x1b[2J\\x9b31m away" in r.stdout + r.stderr


# -- the desktop app ----------------------------------------------------------------

def _widget_texts(w) -> list[str]:
    """The text of every label, button, list, combo box, table cell, header and tooltip."""
    from PySide6.QtCore import QModelIndex, Qt
    from PySide6.QtWidgets import (
        QAbstractButton, QAbstractItemView, QComboBox, QLabel, QListWidget, QTableWidget, QTextBrowser,
    )

    texts = []
    for lab in w.findChildren(QLabel):
        texts += [lab.text(), lab.toolTip(), lab.accessibleName()]
    for b in w.findChildren(QAbstractButton):
        texts += [b.text(), b.toolTip(), b.accessibleName()]
    for c in w.findChildren(QComboBox):
        texts += [c.itemText(i) for i in range(c.count())]
    for lst in w.findChildren(QListWidget):
        texts += [lst.item(i).text() for i in range(lst.count())] + [lst.item(i).toolTip() for i in range(lst.count())]
    for view in w.findChildren(QAbstractItemView):
        model = view.model()
        if model is None:
            continue
        try:
            cols = model.columnCount(QModelIndex())
        except TypeError:  # a list model (combo boxes, list widgets): one column
            cols = 1
        rows = model.rowCount(QModelIndex())
        for i in range(rows):
            for j in range(cols):
                idx = model.index(i, j)
                texts += [str(model.data(idx, role) or "") for role in
                          (Qt.DisplayRole, Qt.ToolTipRole, Qt.AccessibleTextRole)]
        texts += [str(model.headerData(j, Qt.Horizontal) or "") for j in range(cols)]
        texts += [str(model.headerData(i, Qt.Vertical) or "") for i in range(rows)]
    for t in w.findChildren(QTableWidget):
        texts += [t.item(i, j).toolTip() for i in range(t.rowCount()) for j in range(t.columnCount())
                  if t.item(i, j)]
    for tb in w.findChildren(QTextBrowser):
        texts.append(tb.toPlainText())
    return texts


def _window(qtbot, loc):
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    w = MainWindow(Vetted(loc))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.discover.model.rowCount() == 2, timeout=30_000)
    return w


def test_gui_discover_model_page_compare_and_audit_show_escapes(evil, loc, db, signing_key, qtbot) -> None:
    from vetted.catalog.signed import load
    from vetted.install.pull import pull
    from vetted.store.chats import Chats

    pull(loc, db, load(str(evil), PublicKey(signing_key[1].read_bytes()), db), "evil")
    Chats(db).create("evil", "first line\r\n" + FORGED + "\x1b[2J", "", {})
    w = _window(qtbot, loc)
    d = w.discover
    assert d.select_id("evil")
    qtbot.waitUntil(lambda: not d.page.pending, timeout=10_000)  # the card is read off the UI thread
    page = d.page.view.toPlainText()
    assert "Evil\\x1b[2J model\\r\\nrefused: forged line" in page
    assert "Looks fine\\u202e txt.exe\\x1b]0;owned\\x07\\nrefused: forged line" in page
    assert "file's licence: mit\\x1b]0;pwned\\x07" in page  # GGUF metadata, as the consistency check saw it
    w.compare.compare(["evil", "trap"])
    w.library.refresh()
    w.chat.refresh_models()
    w.chat.refresh_list()
    w.audit.refresh()
    qtbot.waitUntil(lambda: not w.runner.busy(), timeout=10_000)  # each read runs off the UI thread
    texts = _widget_texts(w)
    for text in texts:
        assert_shown_not_obeyed(text)
    shown = "\n".join(texts)
    for escaped in ("Evil\\x1b[2J model", "Pub\\rrefused: forged line\\u202e", "MIT\\x1b[5m",  # Discover, Compare
                    "attack_success_rate\\nrefused: forged line",  # a metric name in Compare's header
                    "first line\\r\\nrefused: forged line\\x1b[2J",  # a chat title in the list
                    "Evil catalog\\x1b[31m\\nrefused: forged line"):  # the model page: catalog signed by
        assert escaped in shown, escaped
    # the licence filter still filters on the raw value behind the escaped item
    d.licence.setCurrentIndex(d.licence.findText("MIT\\x1b[5m"))
    assert d.proxy.rowCount() == 1 and d.row_at(d.proxy.index(0, 0)).entry.id == "evil"
    w.close()


def test_gui_refused_download_says_refused_with_reason_and_no_full_bar(evil, loc, qtbot) -> None:
    w = _window(qtbot, loc)
    assert w.discover.select_id("trap")
    qtbot.mouseClick(w.discover.page.download, _left())
    item = w.downloads.items["trap"]
    qtbot.waitUntil(lambda: item.state in ("done", "refused"), timeout=60_000)
    assert item.state == "refused"
    assert item.bar.value() < item.bar.maximum()  # a full bar reads as a finished download
    assert item.bar.format() == "✖ Refused: not installed" and item.bar.text() == "✖ Refused: not installed"
    info = item.info.text()
    assert info.startswith("✖ Download refused. Not installed.\n"), info
    assert "sha256" in info and "What you can do" in info
    assert "trap\\x1b[2J\\r\\nrefused: forged line" in info
    assert_shown_not_obeyed(info)
    assert_shown_not_obeyed(item.title.text()) and "Evil\\x1b[2J model" in item.title.text()
    w.audit.refresh()
    qtbot.waitUntil(lambda: not w.runner.busy(), timeout=10_000)
    texts = _widget_texts(w)
    for text in texts:
        assert_shown_not_obeyed(text)
    assert any("trap\\x1b[2J\\r\\nrefused: forged line" in t for t in texts)  # the audited refusal
    w.close()


def _left():
    from PySide6.QtCore import Qt

    return Qt.LeftButton


def test_chats_show_keeps_line_breaks_but_never_a_control_sequence(db, cli) -> None:
    """A model's reply is untrusted output: shown with its lines, never obeyed."""
    from vetted.store.chats import Chats

    chats = Chats(db)
    conv = chats.create("some-model", "t")
    chats.add_user(conv, "hello")
    writer = chats.start_reply(conv)
    writer.append("line one\n\x1b]0;owned\x07\x1b[2Jline two\rrefused: forged\u202e")
    writer.close("complete")
    r = cli("chats", "show", str(conv))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\r" not in r.stdout and "\u202e" not in r.stdout
    assert "line one\n\\x1b]0;owned\\x07\\x1b[2Jline two\\rrefused: forged\\u202e" in r.stdout


def test_chats_export_escapes_on_a_terminal_and_stays_exact_in_a_pipe(db) -> None:
    import os
    import pty
    import subprocess
    import sys

    from vetted.store.chats import Chats

    chats = Chats(db)
    conv = chats.create("some-model", "t")
    chats.add_user(conv, "hello")
    writer = chats.start_reply(conv)
    writer.append("fine\x1b]0;PWNED\x07\x1b[2J\rrefused: nothing")
    writer.close("complete")
    vetted = str(Path(sys.executable).parent / "vetted")
    piped = subprocess.run([vetted, "chats", "export", str(conv)], capture_output=True)
    assert b"fine\x1b]0;PWNED\x07\x1b[2J\rrefused: nothing" in piped.stdout  # data, byte-exact
    master, slave = pty.openpty()
    proc = subprocess.Popen([vetted, "chats", "export", str(conv)], stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(master)
    shown = out.decode()
    assert "\x1b" not in shown and "\x07" not in shown, shown
    assert "fine\\x1b]0;PWNED\\x07\\x1b[2J\\rrefused: nothing" in shown
