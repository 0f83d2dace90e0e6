"""The desktop app driven through real widgets (pytest-qt, offscreen) over the real core:
browse → filter → model page → download from a loopback mirror → verified → chat with
streaming → stop → restart the app → the chat is still there; a tampered mirror shows
the refusal and its reason; killing the engine shows the banner and the app keeps working."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import threading
from pathlib import Path

import pytest

from catalog_kit import build
from vetted.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

pytestmark = pytest.mark.slow


@pytest.fixture
def mirror(tmp_path, loc, signing_key):
    """A signed catalog whose models are served by a loopback HTTP mirror."""
    from vetted.demo import smollm2_path

    src = tmp_path / "src"
    src.mkdir()
    bad = src / "tampered.gguf"
    bad.write_bytes(os.urandom(300_000))
    out = tmp_path / "cat" / "out" / "mirror"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    models = [
        {"id": "smol", "name": "SmolLM2 135M Instruct", "publisher": "HuggingFaceTB", "license": "Apache-2.0",
         "path": str(smollm2_path()), "sources": {"mirrors": [base]}},
        {"id": "tampered", "name": "Tampered Model", "publisher": "Mallory", "license": "MIT",
         "path": str(bad), "sources": {"mirrors": [base]}},
    ]
    cat = build(tmp_path / "cat", signing_key[0], models=models)
    served = out / "tampered.gguf"
    data = bytearray(served.read_bytes())
    served.unlink()  # may be a hard link to the source
    data[1234] ^= 0xFF
    served.write_bytes(bytes(data))
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    yield cat
    server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a) -> None:
        pass


def open_window(qtbot, loc):
    from vetted.gui.main_window import MainWindow
    from vetted.store.db import open_db

    w = MainWindow(loc, open_db(loc.database))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.discover.model.rowCount() > 0, timeout=30_000)
    return w


def test_browse_download_chat_stop_restart(qtbot, loc, mirror) -> None:
    w = open_window(qtbot, loc)
    d = w.discover
    assert d.proxy.rowCount() == 2
    qtbot.keyClicks(d.search, "smol")
    assert d.proxy.rowCount() == 1
    d.search.clear()
    qtbot.keyClicks(d.search, "no such model")
    assert d.proxy.rowCount() == 0
    d.search.clear()
    d.licence.setCurrentText("MIT")
    assert d.proxy.rowCount() == 1 and d.row_at(d.proxy.index(0, 0)).entry.id == "tampered"
    d.licence.setCurrentText("")
    d.table.sortByColumn(2, d.table.horizontalHeader().sortIndicatorOrder())  # by size

    assert d.select_id("smol")
    page = d.page.view.toPlainText()
    assert "Trust" in page and "[declared]" in page and "not evaluated" in page and "[missing]" in page
    assert d.page.download.isEnabled()

    qtbot.mouseClick(d.page.download, qtbot_left())
    item = w.downloads.items["smol"]
    qtbot.waitUntil(lambda: item.state in ("done", "refused"), timeout=60_000)
    assert item.state == "done", item.info.text()
    assert "Verified and installed" in item.info.text()
    qtbot.waitUntil(lambda: w.library.table.rowCount() == 1, timeout=5_000)
    assert "verified" in w.library.table.item(0, 2).text()

    w.chat_with("smol")
    chat = w.chat
    chat.max_tokens.setValue(400)
    chat.temperature.setValue(0.0)
    chat.n_ctx.setValue(1024)
    qtbot.keyClicks(chat.input, "Tell me a long story about a brave knight.")
    qtbot.mouseClick(chat.send_btn, qtbot_left())
    qtbot.waitUntil(lambda: bool(chat.streaming) and len(chat.streaming) > 20, timeout=60_000)
    assert chat.stop_btn.isEnabled()
    qtbot.mouseClick(chat.stop_btn, qtbot_left())
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    conv_id = chat.conv_id
    msgs = chat.chats.get(conv_id).messages
    assert msgs[-1].status == "stopped" and len(msgs[-1].content) > 20
    assert "brave knight" in chat.view.toPlainText()
    w.close()

    w2 = open_window(qtbot, loc)
    titles = [w2.chat.list.item(i).text() for i in range(w2.chat.list.count())]
    assert any("brave knight" in t for t in titles)
    w2.chat.open(conv_id)
    assert "brave knight" in w2.chat.view.toPlainText()
    w2.close()


def test_tampered_mirror_shows_refusal_with_reason(qtbot, loc, mirror) -> None:
    w = open_window(qtbot, loc)
    assert w.discover.select_id("tampered")
    qtbot.mouseClick(w.discover.page.download, qtbot_left())
    item = w.downloads.items["tampered"]
    qtbot.waitUntil(lambda: item.state in ("done", "refused"), timeout=60_000)
    text = item.info.text()
    assert item.state == "refused"
    assert "Not installed" in text and "sha256" in text and "What you can do" in text
    assert w.library.table.rowCount() == 0
    w.audit.refresh()
    w.audit.result.setCurrentText("refused")
    assert w.audit.table.rowCount() >= 1
    w.close()


def test_engine_crash_shows_banner_and_app_recovers(qtbot, loc, mirror, db, signing_key) -> None:
    from vetted.catalog.signed import load
    from vetted.install.pull import pull

    pull(loc, db, load(str(mirror), PublicKey(signing_key[1].read_bytes()), db), "smol")
    w = open_window(qtbot, loc)
    w.chat_with("smol")
    chat = w.chat
    chat.max_tokens.setValue(300)
    chat.n_ctx.setValue(1024)
    qtbot.keyClicks(chat.input, "Describe the ocean in detail.")
    qtbot.mouseClick(chat.send_btn, qtbot_left())
    qtbot.waitUntil(lambda: bool(chat.streaming), timeout=60_000)
    os.kill(chat.engine_pid(), signal.SIGKILL)
    qtbot.waitUntil(lambda: not chat.busy, timeout=20_000)
    assert chat.banner.isVisible() and "SIGKILL" in chat.banner_text.text()
    assert chat.chats.get(chat.conv_id).messages[0].content == "Describe the ocean in detail."
    qtbot.mouseClick(chat.banner.findChildren(type(chat.send_btn))[0], qtbot_left())
    assert not chat.banner.isVisible()
    chat.max_tokens.setValue(8)
    qtbot.keyClicks(chat.input, "Hello again.")
    qtbot.mouseClick(chat.send_btn, qtbot_left())
    qtbot.waitUntil(lambda: not chat.busy and chat.chats.get(chat.conv_id).messages[-1].status == "complete",
                    timeout=60_000)
    w.close()


def test_keyboard_and_accessible_names(qtbot, loc, mirror) -> None:
    from PySide6.QtWidgets import QAbstractButton, QLineEdit

    w = open_window(qtbot, loc)
    unnamed = [b.text() for b in w.findChildren(QAbstractButton)
               if not b.accessibleName() and b.metaObject().className() != "QTableCornerButton"]
    assert unnamed == []
    assert all(e.accessibleName() for e in w.findChildren(QLineEdit) if e.isVisibleTo(w) and e.placeholderText())
    from vetted.gui.main_window import PAGES

    for i, name in enumerate(PAGES):
        w.nav.setCurrentRow(i)
        assert w.stack.currentIndex() == i and w.nav.item(i).text() == name
    w.close()


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.LeftButton


def test_spotcheck_button_and_compare(qtbot, loc, mirror, db, signing_key, monkeypatch) -> None:
    from vetted.cards import spotcheck
    from vetted.catalog.signed import load
    from vetted.install.pull import pull

    full = spotcheck.load_suite()
    small = {**full, "probes": [p for p in full["probes"] if p["id"] in ("harmful-01", "benign-01", "code-07")]}
    monkeypatch.setattr(spotcheck, "load_suite", lambda path=None: small)
    pull(loc, db, load(str(mirror), PublicKey(signing_key[1].read_bytes()), db), "smol")
    w = open_window(qtbot, loc)
    page = w.discover.page
    assert w.discover.select_id("smol")
    assert "Not run yet" in page.view.toPlainText() and page.spot.isEnabled()
    qtbot.mouseClick(page.spot, qtbot_left())
    assert page.spot_bar.isVisible()
    qtbot.waitUntil(lambda: page.spot_bar.isHidden(), timeout=120_000)
    text = page.view.toPlainText()
    assert "measured here" in text and "harmful requests answered" in text, page.note.text()
    assert "Spot-check done: 3 probes" in page.note.text()

    w.go("Compare")
    for i in range(w.compare.pick.count()):
        w.compare.pick.item(i).setCheckState(Qt_Checked())
    rows = w.compare.compare()
    assert [r["model"] for r in rows] == ["smol", "tampered"]
    labels = [w.compare.table.verticalHeaderItem(i).text() for i in range(w.compare.table.rowCount())]
    assert "harmful_compliance_rate" in labels and "provenance" in labels
    assert w.compare.table.item(labels.index("state"), 0).text() == "verified"
    w.close()


def Qt_Checked():
    from PySide6.QtCore import Qt

    return Qt.Checked


def test_pause_resume_and_cancel_discards(qtbot, loc, signing_key, tmp_path) -> None:
    from catalog_kit import make_model
    from hub_server import HubServer

    models = [{"id": name, "name": name.title(), "publisher": "P", "license": "MIT",
               "path": str(make_model(tmp_path / "src", f"{name}.gguf", 12 * 1024 * 1024)),
               "sources": {"mirrors": ["http://127.0.0.1:9"]}} for name in ("paused", "cancelled")]
    cat = build(tmp_path / "cat", signing_key[0], models=models)
    hub = HubServer(cat.parent / "mirror", "0" * 40)
    try:
        import json

        from vetted.publish import sign_file_or_folder

        doc = json.loads(cat.read_text())
        for m in doc["models"]:
            m["sources"]["mirrors"] = [hub.url]
        cat.write_text(json.dumps(doc))
        sign_file_or_folder(cat, signing_key[0], cat.with_name("catalog.json.sig"))
        s = Settings.load(loc)
        s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
        s.save(loc)
        hub.bad.throttle_bps = 4 * 1024 * 1024
        w = open_window(qtbot, loc)

        def started(mid):
            assert w.discover.select_id(mid)
            qtbot.mouseClick(w.discover.page.download, qtbot_left())
            item = w.downloads.items[mid]
            qtbot.waitUntil(lambda: any(p.stat().st_size > 2 * 1024 * 1024 for p in loc.quarantine.glob("*.part")),
                            timeout=30_000)
            return item

        item = started("paused")
        qtbot.mouseClick(item.pause_btn, qtbot_left())
        qtbot.waitUntil(lambda: item.state == "paused", timeout=10_000)
        assert "Paused" in item.info.text() and list(loc.quarantine.glob("*.part"))
        hub.bad.throttle_bps = None
        qtbot.mouseClick(item.resume_btn, qtbot_left())
        qtbot.waitUntil(lambda: item.state == "done", timeout=30_000)
        assert any(r.range for r in hub.requests if r.path.endswith("paused.gguf"))

        hub.bad.throttle_bps = 4 * 1024 * 1024
        item2 = started("cancelled")
        qtbot.mouseClick(item2.cancel_btn, qtbot_left())
        qtbot.waitUntil(lambda: item2.state == "cancelled", timeout=10_000)
        assert "discarded" in item2.info.text() and not list(loc.quarantine.glob("*.part"))
        w.close()
    finally:
        hub.close()
