"""The desktop app driven through real widgets (pytest-qt, offscreen) over the real core.

End to end, on the real llama.cpp worker and SmolLM2 (marked slow): browse → filter →
model page → download from a loopback mirror → verified → chat with streaming → stop →
restart the app → the chat is still there; a tampered mirror shows the refusal and its
reason; killing the engine shows the banner and the app keeps working; the spot-check.

Fast, on a fake engine (tests/fake_engine.py, as Dangerzone's GUI tests run on a dummy
isolation provider) and a tiny signed GGUF: how the window runs the core — every card
read off the UI thread, pages refreshed by core events (not by each other), streamed
tokens appended without re-rendering the conversation — and the chat, crash banner and
spot-check flows again, in well under a second each.
"""

from __future__ import annotations

import ast
import functools
import http.server
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from catalog_kit import build
from fake_engine import FakeEngine, FakeEngines
from tiny_gguf import write_gguf
from vetted.core.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

slow = pytest.mark.slow


@pytest.fixture
def mirror(tmp_path, loc, signing_key):
    """A signed catalog whose models are served by a loopback HTTP mirror."""
    from vetted.authoring.demo import smollm2_path

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


def open_window(qtbot, loc_or_app, real_engine: bool = False):
    """The window over a `Vetted` (given, or made for `loc`: on the fake engine unless
    `real_engine`, the llama.cpp worker), once Discover has rows."""
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    app = loc_or_app if isinstance(loc_or_app, Vetted) else \
        Vetted(loc_or_app, engine_factory=None if real_engine else FakeEngine)
    w = MainWindow(app)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.discover.model.rowCount() > 0, timeout=30_000)
    return w


@slow
def test_browse_download_chat_stop_restart(qtbot, loc, mirror) -> None:
    w = open_window(qtbot, loc, real_engine=True)
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
    d.licence.setCurrentText("All licences")  # the first item: no filter
    d.table.sortByColumn(4, d.table.horizontalHeader().sortIndicatorOrder())  # by size

    assert d.select_id("smol")
    qtbot.waitUntil(lambda: not d.page.pending, timeout=10_000)  # the card is read off the UI thread
    page = d.page.view.toPlainText()
    assert "Trust" in page and "[declared]" in page and "not evaluated" in page and "[missing]" in page
    assert d.page.download.isEnabled()

    qtbot.mouseClick(d.page.download, qtbot_left())
    item = w.downloads.items["smol"]
    qtbot.waitUntil(lambda: item.state in ("done", "refused"), timeout=60_000)
    assert item.state == "done", item.info.text()
    assert "Verified and installed" in item.info.text()
    qtbot.waitUntil(lambda: w.library.table.rowCount() == 1, timeout=5_000)
    assert "Verified" in w.library.table.item(0, 2).text()

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

    w2 = open_window(qtbot, loc, real_engine=True)
    titles = [w2.chat.list.item(i).text() for i in range(w2.chat.list.count())]
    assert any("brave knight" in t for t in titles)
    w2.chat.open(conv_id)
    assert "brave knight" in w2.chat.view.toPlainText()
    w2.close()


@slow
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
    with qtbot.waitSignal(w.audit.loaded, timeout=10_000):  # read off the UI thread
        w.audit.refresh()
    w.audit.result.setCurrentText("refused")
    assert w.audit.table.rowCount() >= 1
    w.close()


@slow
def test_engine_crash_shows_banner_and_app_recovers(qtbot, loc, mirror, db, signing_key) -> None:
    from vetted.catalog.signed import load
    from vetted.install.pull import pull

    pull(loc, db, load(str(mirror), PublicKey(signing_key[1].read_bytes()), db), "smol")
    w = open_window(qtbot, loc, real_engine=True)
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


@slow
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


@slow
def test_spotcheck_button_and_compare(qtbot, loc, mirror, db, signing_key, small_quick) -> None:
    from vetted.catalog.signed import load
    from vetted.install.pull import pull

    pull(loc, db, load(str(mirror), PublicKey(signing_key[1].read_bytes()), db), "smol")
    w = open_window(qtbot, loc, real_engine=True)
    page = w.discover.page
    assert w.discover.select_id("smol")
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    assert "Not run yet" in page.view.toPlainText() and page.spot.isEnabled()
    qtbot.mouseClick(page.spot, qtbot_left())
    assert page.spot_bar.isVisible()
    qtbot.waitUntil(lambda: page.spot_bar.isHidden(), timeout=120_000)
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)  # the card, read again after the run
    text = page.view.toPlainText()
    assert "measured here" in text and "HarmBench harmful requests answered" in text, page.note.text()
    assert f"Spot-check done: quick {small_quick.version}, 3 probes" in page.note.text()

    w.go("Compare")
    for i in range(w.compare.pick.count()):
        w.compare.pick.item(i).setCheckState(Qt_Checked())
    with qtbot.waitSignal(w.compare.compared, timeout=30_000) as compared:  # compared off the UI thread
        w.compare.compare()
    rows = compared.args[0]
    assert [r["model"] for r in rows] == ["smol", "tampered"]
    labels = w.compare.keys  # the rows' raw names (their headers are in words)
    assert "harmbench_attack_success_rate" in labels and "provenance" in labels
    assert w.compare.table.item(labels.index("state"), 0).text() == "verified"
    w.close()


def Qt_Checked():
    from PySide6.QtCore import Qt

    return Qt.Checked


@slow
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

        from vetted.authoring.publish import sign_file_or_folder

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


# -- fast: the window over the core, on the fake engine -------------------------------------

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
STORY = "Once upon a time a **lighthouse** keeper counted the ships that passed in the night. " * 4


@pytest.fixture
def tiny(tmp_path, loc, signing_key):
    """A pinned, signed catalog of two tiny GGUF chat models (a template each, no weights to speak of)."""
    src = tmp_path / "src"
    src.mkdir()
    models = [{"id": mid, "name": name, "publisher": "Test Pub", "license": "MIT",
               "path": str(write_gguf(src / f"{mid}.gguf", chat_template=TEMPLATE, extra={"test.model": mid}))}
              for mid, name in (("tiny", "Tiny Chat"), ("other", "Other Tiny"))]
    cat = build(tmp_path / "cat", signing_key[0], models=models)
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    return cat


def fake_app(loc, engines=None, install=("tiny",)):
    """The application object on a fake engine, with `install` pulled through it."""
    from vetted.core import Vetted

    app = Vetted(loc, engine_factory=engines or FakeEngine)
    for model_id in install:
        app.pull(model_id)
    return app


def pieces(text: str, n: int) -> str:
    """The first `n` streamed pieces of `text`, as the fake engine sends them."""
    import re

    return "".join(re.findall(r"\S+\s*|\s+", text)[:n])


def test_selecting_a_model_reads_its_card_off_the_ui_thread(qtbot, loc, tiny) -> None:
    app = fake_app(loc)
    callers: list[threading.Thread] = []
    card_for = app.card_for

    def spy(entry, trusted_root):
        callers.append(threading.current_thread())
        time.sleep(0.05)  # a signature check and a GGUF read take a while: the UI must not wait
        return card_for(entry, trusted_root)

    app.card_for = spy
    w = open_window(qtbot, app)
    page = w.discover.page
    for model_id in ("other", "tiny", "other"):
        assert w.discover.select_id(model_id)
        assert page.pending and page.card is None  # shown at once: the catalog's facts, the card to come
        qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
        assert page.card["model"] == model_id and "Safety card" in page.view.toPlainText()
    assert w.discover.select_id("tiny") and w.discover.select_id("other")  # quickly: only the last one shows
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    assert page.card["model"] == "other" and page.row.entry.id == "other"
    assert callers and threading.main_thread() not in callers, callers


def test_a_model_removed_through_the_core_refreshes_library_chat_and_discover(qtbot, loc, tiny) -> None:
    app = fake_app(loc)
    w = open_window(qtbot, app)

    def shown():
        return (w.library.model_ids(),
                [w.chat.model.itemData(i) for i in range(w.chat.model.count())],
                {r.entry.id: r.installed_state for r in w.discover.model.rows})

    qtbot.waitUntil(lambda: shown() == (["tiny"], ["tiny"], {"tiny": "verified", "other": None}), timeout=10_000)
    delivered_on: list[threading.Thread] = []
    w.events.models_changed.connect(lambda _model_id: delivered_on.append(threading.current_thread()))

    def in_the_core(op):  # not through the Library page, and not on the UI thread
        t = threading.Thread(target=lambda: (op(), app.close_thread()))
        t.start()
        t.join()

    in_the_core(lambda: app.remove("tiny"))
    qtbot.waitUntil(lambda: shown() == ([], [], {"tiny": None, "other": None}), timeout=10_000)
    in_the_core(lambda: app.pull("other"))
    qtbot.waitUntil(lambda: shown() == (["other"], ["other"], {"tiny": None, "other": "verified"}), timeout=10_000)
    assert delivered_on == [threading.main_thread()] * 2


def test_settings_and_audit_pages_read_through_the_core(qtbot, loc, tiny) -> None:
    w = open_window(qtbot, fake_app(loc))
    qtbot.waitUntil(lambda: "Threads:" in w.settings_page.text(), timeout=10_000)
    text = w.settings_page.text()
    assert str(tiny) in text and "must be signed by public key sha256:" in text and "Context: 4096 tokens" in text
    qtbot.waitUntil(lambda: w.audit.status is not None, timeout=10_000)
    assert "hash chain intact" in w.audit.count.text()
    assert {"catalog.load", "model.install"} <= {r["action"] for r in w.audit.rows}


def test_the_main_window_refreshes_no_page_and_pages_touch_no_other_page() -> None:
    source = (gui_folder() / "main_window.py").read_text()
    for call in (".refresh(", "refresh_models(", "set_rows(", "set_entries(", "show_row(", "spot_bar", ".page."):
        assert call not in source, call


def test_streamed_tokens_are_appended_without_re_rendering_the_conversation(qtbot, loc, tiny) -> None:
    """One live reply while it streams (issue 13: it showed twice), in its own bubble: the
    bubbles before it are built once per turn and never touched by a token."""
    engines = FakeEngines(reply=STORY, hold_after=20)
    app = fake_app(loc, engines)
    w = open_window(qtbot, app)
    w.chat_with("tiny")
    chat = w.chat
    chat.input.setPlainText("Hello")  # a finished exchange first: messages that must stay as they are
    chat.send()
    qtbot.waitUntil(lambda: bool(engines.made) and engines.last.holding.is_set(), timeout=10_000)
    engines.last.release()
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)

    full_renders: list[tuple] = []
    render = chat.render
    chat.render = lambda *a, **k: (full_renders.append(a), render(*a, **k))[1]
    chat.input.setPlainText("Tell me a story.")
    chat.send()
    assert len(full_renders) == 1  # the turn starts: the conversation and your message, once
    before = list(chat.view.bubbles[:-1])
    qtbot.waitUntil(lambda: engines.last.holding.is_set() and chat.streaming == pieces(STORY, 20), timeout=10_000)
    live = chat.view.live
    qtbot.waitUntil(lambda: live.body.toPlainText().startswith("Once upon a time"), timeout=5_000)
    text = chat.view.toPlainText()
    assert "Tell me a story." in text and text.count("Assistant (writing…)") == 1
    assert text.count("Assistant") == 2 and text.endswith("night. Once upon a time a")  # one live reply, not two
    assert live.body.markdown() == pieces(STORY, 20)
    assert [b.role for b in chat.view.bubbles] == ["user", "assistant", "user", "assistant"]
    chat.open(chat.conv_id)  # opening the chat again mid-stream still shows it once
    assert chat.view.toPlainText().count("Assistant (writing…)") == 1 and len(chat.view.bubbles) == 4
    before, live = list(chat.view.bubbles[:-1]), chat.view.live
    engines.last.release()
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    assert len(full_renders) == 2 and chat.view.bubbles[:-1] == before and chat.view.bubbles[-1] is live
    text = live.text()
    assert "**" not in text and "a lighthouse keeper" in text and "writing" not in text  # as Markdown, complete
    stored = chat.chats.get(chat.conv_id).messages
    assert [b.message.id for b in chat.view.bubbles] == [m.id for m in stored]


def test_chat_runs_on_the_fake_engine_in_a_blink(qtbot, loc, tiny, monkeypatch) -> None:
    from fake_engine import DEFAULT_REPLY
    from vetted.runtime import engine as real

    def no_worker(*_a, **_k):
        raise AssertionError("a llama.cpp worker was started")

    monkeypatch.setattr(real.Worker, "__init__", no_worker)
    engines = FakeEngines()
    app = fake_app(loc, engines)
    w = open_window(qtbot, app)
    t0 = time.monotonic()
    w.chat_with("tiny")
    chat = w.chat

    def turn(action) -> list:
        action()
        qtbot.waitUntil(lambda: not chat.busy, timeout=5_000)
        return chat.chats.get(chat.conv_id).messages

    chat.input.setPlainText("Hello")
    msgs = turn(chat.send)
    assert [(m.role, m.status) for m in msgs] == [("user", "complete"), ("assistant", "complete")]
    assert msgs[-1].content == DEFAULT_REPLY and "fake engine" in chat.view.toPlainText()
    msgs = turn(chat.regenerate)
    assert len(msgs) == 2 and msgs[-1].content == DEFAULT_REPLY
    chat.edit_last()
    assert chat.input.toPlainText() == "Hello"
    chat.input.setPlainText("Hello again")
    msgs = turn(chat.send)
    assert [m.content for m in msgs] == ["Hello again", DEFAULT_REPLY]
    chat.copy_last()
    assert chat.status.text() == "Reply copied."
    assert time.monotonic() - t0 < 5  # three turns; the real engine takes seconds to load alone
    assert len(engines.made) == 1 and engines.last.loads == 1  # one session, its model kept loaded across turns
    assert engines.last.generations == 3


def test_stop_keeps_what_streamed_on_the_fake_engine(qtbot, loc, tiny) -> None:
    engines = FakeEngines(reply=STORY, hold_after=7)
    w = open_window(qtbot, fake_app(loc, engines))
    w.chat_with("tiny")
    chat = w.chat
    chat.input.setPlainText("A story, please.")
    chat.send()
    qtbot.waitUntil(lambda: engines.made and engines.last.holding.is_set() and chat.streaming == pieces(STORY, 7),
                    timeout=10_000)
    assert chat.stop_btn.isEnabled()
    qtbot.mouseClick(chat.stop_btn, qtbot_left())
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    last = chat.chats.get(chat.conv_id).messages[-1]
    assert last.status == "stopped" and last.content == pieces(STORY, 7)
    assert chat.status.text().startswith("Stopped: 7 tokens")
    assert "Assistant (stopped)" in chat.view.toPlainText()


def test_engine_crash_shows_the_banner_and_the_next_message_starts_a_fresh_engine(qtbot, loc, tiny) -> None:
    engines = FakeEngines(reply=STORY, hold_after=3)
    w = open_window(qtbot, fake_app(loc, engines))
    w.chat_with("tiny")
    chat = w.chat
    chat.input.setPlainText("Describe the ocean.")
    chat.send()
    qtbot.waitUntil(lambda: engines.made and engines.last.holding.is_set(), timeout=10_000)
    engines.last.crash()
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    assert chat.banner.isVisible() and "SIGKILL" in chat.banner_text.text()
    msgs = chat.chats.get(chat.conv_id).messages
    assert msgs[0].content == "Describe the ocean." and msgs[-1].status == "failed"
    assert chat.status.text() == "Your chat is saved."
    qtbot.mouseClick(chat.banner.findChildren(type(chat.send_btn))[0], qtbot_left())
    assert not chat.banner.isVisible()
    chat.input.setPlainText("Hello again.")
    chat.send()
    qtbot.waitUntil(lambda: engines.last.holding.is_set(), timeout=10_000)
    engines.last.release()
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    assert chat.chats.get(chat.conv_id).messages[-1].status == "complete"
    assert engines.last.loads == 2  # the crashed engine was replaced by a fresh load of the checked file


def test_spotcheck_on_the_fake_engine_is_run_and_shown_by_the_model_page(qtbot, loc, tiny) -> None:
    from vetted.cards.suites import load

    w = open_window(qtbot, fake_app(loc, FakeEngines()))
    page = w.discover.page
    assert w.discover.select_id("tiny")
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    assert "Not run yet" in page.view.toPlainText() and page.spot.isEnabled()
    qtbot.mouseClick(page.spot, qtbot_left())
    assert page.spot_bar.isVisible() and not page.spot.isEnabled()
    qtbot.waitUntil(lambda: page.spot_bar.isHidden(), timeout=30_000)
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)  # the core said it is done: the card is read again
    quick = load("quick")  # the default choice
    assert page.suite_pick.currentData() == "quick" and page.suite_pick.isEnabled()
    assert f"Spot-check done: quick {quick.version}, {len(quick.probes)} probes" in page.note.text()
    assert "measured here" in page.view.toPlainText() and page.spot.isEnabled()


def test_a_person_picks_the_suite_and_the_page_names_it(qtbot, loc, tiny) -> None:
    from vetted.cards.suites import load

    w = open_window(qtbot, fake_app(loc, FakeEngines()))
    page = w.discover.page
    assert w.discover.select_id("tiny")
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    assert [page.suite_pick.itemData(i) for i in range(page.suite_pick.count())] == [
        "quick", "harmbench-standard", "donotanswer", "vetted-overrefusal", "vetted-political", "vetted-code", "all"]
    page.suite_pick.setCurrentIndex(page.suite_pick.findData("vetted-political"))
    qtbot.mouseClick(page.spot, qtbot_left())
    assert not page.suite_pick.isEnabled()  # the choice is fixed while the run goes
    qtbot.waitUntil(lambda: page.spot_bar.isHidden(), timeout=30_000)
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    political = load("vetted-political")
    assert f"Spot-check done: vetted-political 1.0.0, {len(political.probes)} probes" in page.note.text()
    measured = page.card["spotcheck"]["metrics"]
    assert list(measured) == ["political_refusal_rate"]  # that suite measures one thing
    assert measured["political_refusal_rate"]["n"] == len(political.probes)
    assert "vetted-political 1.0.0" in page.view.toPlainText() and page.suite_pick.isEnabled()


def test_spotcheck_cancel_on_the_fake_engine(qtbot, loc, tiny) -> None:
    engines = FakeEngines(hold_after=2)
    w = open_window(qtbot, fake_app(loc, engines))
    page = w.discover.page
    assert w.discover.select_id("tiny")
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    qtbot.mouseClick(page.spot, qtbot_left())
    qtbot.waitUntil(lambda: engines.made and engines.last.holding.is_set(), timeout=10_000)
    qtbot.mouseClick(page.spot_cancel, qtbot_left())
    qtbot.waitUntil(lambda: page.spot_bar.isHidden(), timeout=10_000)
    assert page.note.text() == "Spot-check cancelled; a cancelled run is never shown on the card."
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    assert "Not run yet" in page.view.toPlainText()


def gui_folder() -> Path:
    import vetted.gui

    return Path(vetted.gui.__file__).parent


NOT_FROM_THE_GUI = ("vetted.store", "vetted.catalog.signed", "vetted.install", "vetted.fetch", "vetted.runtime",
                    "vetted.services")
TYPES_THE_GUI_MAY_USE = {("vetted.runtime.engine", "EngineCrashed")}  # isinstance, for the crash banner


def test_the_gui_calls_only_the_application_object() -> None:
    """Outside `if TYPE_CHECKING:` blocks, no GUI module imports the layers under `Vetted`."""
    offenders = []
    for path in sorted(gui_folder().glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                names = [(a.name, "*") for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [(node.module, a.name) for a in node.names]
            else:
                continue
            for module, name in names:
                if any(module == m or module.startswith(m + ".") for m in NOT_FROM_THE_GUI) \
                        and (module, name) not in TYPES_THE_GUI_MAY_USE:
                    offenders.append(f"{path.name}: {module}.{name}")
    assert offenders == []
    assert not (gui_folder().parent / "services.py").exists()
