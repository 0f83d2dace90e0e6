"""The chat as people use it (issue 13), driven through real widgets on the fake engine:
Enter to send, bubbles with their actions, regenerate alternatives with fresh seeds,
"stopped at max tokens" with Continue, new chats from defaults (not the last chat), delete
with Undo, nothing stale after switching chats, export, and a picker that offers only
models that can chat."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from catalog_kit import build
from fake_engine import FakeEngines
from tiny_gguf import write_gguf
from vetted.core.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
STORY = "one two three four five six seven eight nine ten eleven twelve"


@pytest.fixture
def cat(tmp_path, loc, signing_key):
    """Two chat models and a base model (no chat template anywhere)."""
    src = tmp_path / "src"
    src.mkdir()
    models = [{"id": mid, "name": name, "publisher": "Test Pub", "license": "MIT",
               "path": str(write_gguf(src / f"{mid}.gguf", chat_template=tpl, extra={"test.model": mid}))}
              for mid, name, tpl in (("tiny", "Tiny Chat", TEMPLATE), ("other", "Other Tiny", TEMPLATE),
                                     ("base", "Base Model", None))]
    path = build(tmp_path / "cat", signing_key[0], models=models)
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(path), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    return path


def window(qtbot, loc, engines=None, install=("base", "tiny")):
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    app = Vetted(loc, engine_factory=engines or FakeEngines())
    for mid in install:
        if not any(m.model_id == mid for m in app.models()):
            app.pull(mid)
    w = MainWindow(app)
    qtbot.addWidget(w)
    w.show()
    w.go("Chat")
    qtbot.waitUntil(lambda: w.chat.model.count() == len(install), timeout=10_000)
    return w


def turn(qtbot, chat, action=None) -> list:
    (action or chat.send)()
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    return chat.chats.get(chat.conv_id).messages


def test_enter_sends_shift_enter_breaks_the_line_and_the_preference_flips_it(qtbot, loc, cat) -> None:
    w = window(qtbot, loc)
    chat = w.chat
    chat.new_chat("tiny")
    chat.input.setFocus()
    qtbot.keyClicks(chat.input, "first line")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(chat.input, "second line")
    assert chat.input.toPlainText() == "first line\nsecond line" and not chat.busy
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not chat.busy and len(chat.chats.get(chat.conv_id).messages) == 2, timeout=10_000)
    assert chat.chats.get(chat.conv_id).messages[0].content == "first line\nsecond line"
    assert chat.input.toPlainText() == ""

    chat.prefs.setValue("chat/enter_sends", False)
    qtbot.keyClicks(chat.input, "a")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    qtbot.keyClicks(chat.input, "b")
    assert chat.input.toPlainText() == "a\nb" and not chat.busy
    assert "Ctrl+Enter to send" in chat.input.placeholderText()
    qtbot.keyClick(chat.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not chat.busy and len(chat.chats.get(chat.conv_id).messages) == 4, timeout=10_000)
    assert chat.chats.get(chat.conv_id).messages[2].content == "a\nb"


def test_bubbles_have_author_time_and_actions_and_regenerate_keeps_alternatives(qtbot, loc, cat) -> None:
    answers = iter(["First answer.", "Second answer.", "Third answer."])
    engines = FakeEngines(reply=lambda msgs: next(answers))
    w = window(qtbot, loc, engines)
    chat = w.chat
    chat.new_chat("tiny")
    chat.input.setPlainText("Hello")
    turn(qtbot, chat)
    you, reply = chat.view.bubbles
    assert you.role == "user" and you.author.text() == "<b>You</b>" and you.time.text()
    assert reply.author.text() == "<b>Assistant</b>" and "First answer." in reply.body.toPlainText()
    assert you.edit_btn.isVisibleTo(you) and not you.regen_btn.isVisibleTo(you)
    assert reply.regen_btn.isVisibleTo(reply) and reply.copy_btn.isVisibleTo(reply)
    assert not reply.prev_btn.isVisibleTo(reply)  # one answer so far: nothing to flip through

    qtbot.mouseClick(reply.regen_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    qtbot.mouseClick(chat.view.bubbles[-1].regen_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    last = chat.view.bubbles[-1]
    assert len(chat.view.bubbles) == 2 and "Third answer." in last.body.toPlainText()
    assert last.alt_label.text() == "3/3" and last.prev_btn.isEnabled() and not last.next_btn.isEnabled()
    seeds = [m.seed for m in chat.chats.alternatives(last.message.id)]
    assert len(set(seeds)) == 3 and chat.seed.specialValueText() == "random"  # a fresh seed each time

    qtbot.mouseClick(last.prev_btn, Qt.MouseButton.LeftButton)
    last = chat.view.bubbles[-1]
    assert "Second answer." in last.body.toPlainText() and last.alt_label.text() == "2/3"
    assert chat.chats.get(chat.conv_id).messages[-1].content == "Second answer."  # what the model sees next

    qtbot.mouseClick(last.copy_btn, Qt.MouseButton.LeftButton)
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == "Second answer." and chat.status.text() == "Reply copied."


def test_a_fixed_seed_is_used_and_stored(qtbot, loc, cat) -> None:
    w = window(qtbot, loc)
    chat = w.chat
    chat.new_chat("tiny")
    chat.seed.setValue(1234)
    chat.input.setPlainText("Hi")
    msgs = turn(qtbot, chat)
    assert chat.chats.get(chat.conv_id).params["seed"] == 1234 and msgs[-1].seed == 1234
    chat.seed.setValue(-1)
    assert chat.seed.text() == "random" and chat.chats.get(chat.conv_id).params["seed"] is None


def test_a_reply_cut_at_max_tokens_says_so_and_continue_extends_it(qtbot, loc, cat) -> None:
    engines = FakeEngines(reply=STORY)
    w = window(qtbot, loc, engines)
    chat = w.chat
    chat.new_chat("tiny")
    chat.max_tokens.setValue(4)
    chat.input.setPlainText("Count")
    msgs = turn(qtbot, chat)
    assert chat.status.text().startswith("Stopped at max tokens (4 tokens)") and "complete" not in chat.status.text()
    last = chat.view.bubbles[-1]
    assert last.note == "stopped at max tokens" and "(stopped at max tokens)" in chat.view.toPlainText()
    assert last.continue_btn.isVisibleTo(last) and last.continue_btn.isEnabled()
    reply_id = msgs[-1].id
    engines.last.reply = "five six"
    qtbot.mouseClick(last.continue_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    msgs = chat.chats.get(chat.conv_id).messages
    assert len(msgs) == 2 and msgs[-1].id == reply_id and msgs[-1].content == "one two three four five six"
    assert len(chat.view.bubbles) == 2 and not chat.view.bubbles[-1].continue_btn.isVisibleTo(chat.view.bubbles[-1])
    assert chat.status.text().startswith("Done: 6 tokens")


def test_new_chat_starts_from_defaults_not_the_previous_chat(qtbot, loc, cat) -> None:
    w = window(qtbot, loc)
    chat = w.chat
    chat.new_chat("tiny")
    chat.system.setText("You are a pirate.")
    chat.system.editingFinished.emit()
    chat.temperature.setValue(1.8)
    chat.max_tokens.setValue(99)
    first = chat.conv_id
    assert chat.chats.get(first).system_prompt == "You are a pirate."
    qtbot.mouseClick(chat.new_btn, Qt.MouseButton.LeftButton)
    assert chat.conv_id != first
    conv = chat.chats.get(chat.conv_id)
    assert conv.system_prompt == "" and conv.params["temperature"] == 0.7 and conv.params["max_tokens"] == 512
    assert chat.system.text() == "" and chat.temperature.value() == 0.7 and chat.input.hasFocus()

    chat.temperature.setValue(0.4)
    qtbot.mouseClick(chat.params.save_defaults, Qt.MouseButton.LeftButton)  # this model's defaults now
    chat.new_chat("tiny")
    assert chat.temperature.value() == pytest.approx(0.4)
    chat.preset.setCurrentIndex(chat.preset.findData("Creative"))
    chat.preset.activated.emit(chat.preset.currentIndex())
    conv = chat.chats.get(chat.conv_id)
    assert conv.params["temperature"] == 1.1 and conv.params["top_k"] == 100
    assert chat.preset.currentText() == "Creative"


def test_delete_offers_undo_then_purges(qtbot, loc, cat, monkeypatch) -> None:
    from vetted.gui import chat_view

    w = window(qtbot, loc)
    chat = w.chat
    keep = chat.new_chat("tiny")
    chat.chats.rename(keep, "Keep me")
    chat.refresh_list()
    qtbot.mouseClick(chat.delete_btn, Qt.MouseButton.LeftButton)
    assert chat.undo_bar.isVisible() and "Keep me" in chat.undo_text.text() and chat.list.count() == 0
    qtbot.mouseClick(chat.undo_btn, Qt.MouseButton.LeftButton)
    assert not chat.undo_bar.isVisible() and chat.conv_id == keep and chat.list.count() == 1

    monkeypatch.setattr(chat_view, "UNDO_MS", 50)
    chat.undo_timer.setInterval(50)
    qtbot.mouseClick(chat.delete_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not chat.undo_bar.isVisible(), timeout=5_000)
    assert all(c.id != keep for c in chat.chats.list()) and not chat.chats.is_trashed(keep)
    with pytest.raises(Exception, match="does not exist"):
        chat.chats.get(keep)


def test_switching_chats_clears_stale_errors_and_token_counts(qtbot, loc, cat) -> None:
    w = window(qtbot, loc)
    chat = w.chat
    a = chat.new_chat("tiny")
    chat.input.setPlainText("Hi")
    turn(qtbot, chat)
    assert "tokens" in chat.status.text()
    b = chat.new_chat("tiny")
    assert chat.status.text() == "" and chat.view.toPlainText().startswith("No messages yet")
    chat.status.setText("✖ something failed")
    chat.open(a)
    assert chat.status.text() == "" and "Hi" in chat.view.toPlainText()
    chat.open(b)
    assert "Hi" not in chat.view.toPlainText()


def test_export_markdown_and_json_from_the_app(qtbot, loc, cat, tmp_path, monkeypatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    w = window(qtbot, loc)
    chat = w.chat
    chat.new_chat("tiny")
    chat.input.setPlainText("Export me")
    turn(qtbot, chat)
    for name, chosen in (("chat.md", "Markdown (*.md)"), ("chat", "JSON (*.json)")):
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / name), chosen))
        path = chat.export_chat()
        assert path is not None and "Exported to" in chat.status.text()
    md = (tmp_path / "chat.md").read_text()
    assert md.startswith("# Export me") and "## You" in md and "Export me" in md
    doc = json.loads((tmp_path / "chat.json").read_text())
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant"]


def test_the_picker_offers_only_models_that_can_chat(qtbot, loc, cat) -> None:
    w = window(qtbot, loc, install=("base", "tiny"))
    chat = w.chat
    combo = chat.model
    base = combo.findData("base")
    assert base >= 0 and "no chat template" in combo.itemText(base)
    tiny = combo.findData("tiny")  # the name only (it fits a narrow window); the id on hover
    assert combo.itemText(tiny) == "Tiny Chat" and combo.itemData(tiny, Qt.ItemDataRole.ToolTipRole) == "tiny"
    assert combo.toolTip() == "tiny" and combo.minimumContentsLength() >= len("Tiny Chat")
    assert not combo.model().item(base).isEnabled()
    assert combo.currentData() == "tiny"  # never the base model, whatever the order
    w.close()
    w2 = window(qtbot, loc, install=("base", "tiny"))  # after a restart, too
    assert w2.chat.model.currentData() == "tiny"
    conv = w2.runner.app.new_chat("base", "old chat with a base model")
    w2.chat.refresh_list()
    w2.chat.open(conv)
    assert "cannot chat" in w2.chat.status.text()
    w2.chat.input.setPlainText("Hello?")
    w2.chat.send()
    assert not w2.chat.busy and "cannot chat" in w2.chat.status.text()


def test_edit_a_message_from_its_bubble(qtbot, loc, cat) -> None:
    w = window(qtbot, loc)
    chat = w.chat
    chat.new_chat("tiny")
    chat.input.setPlainText("Helo")
    turn(qtbot, chat)
    qtbot.mouseClick(chat.view.bubbles[0].edit_btn, Qt.MouseButton.LeftButton)
    assert chat.input.toPlainText() == "Helo" and chat.cancel_edit_btn.isVisible()
    chat.input.setPlainText("Hello")
    msgs = turn(qtbot, chat)
    assert [m.content for m in msgs][0] == "Hello" and len(msgs) == 2


def test_every_chat_control_has_an_accessible_name(qtbot, loc, cat) -> None:
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit

    w = window(qtbot, loc)
    chat = w.chat
    chat.new_chat("tiny")
    chat.input.setPlainText("Hi")
    turn(qtbot, chat)
    missing = [type(c).__name__ + ":" + (getattr(c, "text", lambda: "")() or "")
               for kind in (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit)
               for c in chat.findChildren(kind)
               if not c.accessibleName() and not isinstance(c.parent(), (QAbstractSpinBox, QComboBox, QLineEdit))]
    assert missing == []


def test_the_chat_defaults_panel_saves_global_and_per_model_defaults_and_presets(qtbot, loc, cat) -> None:
    from vetted.gui.chat_defaults import ChatDefaultsPanel

    w = window(qtbot, loc)
    panel = ChatDefaultsPanel(w.runner)
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: panel.scope.count() == 3, timeout=10_000)
    panel.temperature.setValue(0.3)
    panel.n_threads.setValue(2)
    assert panel.save_defaults()
    app = w.runner.app
    assert app.chat_defaults().global_["temperature"] == 0.3 and app.chat_defaults().global_["n_threads"] == 2
    panel.scope.setCurrentIndex(panel.scope.findData("tiny"))
    assert not panel.temperature.isEnabled()  # no own defaults yet: the global ones, shown
    panel.own.setChecked(True)
    panel.temperature.setValue(1.2)
    assert panel.save_defaults()
    assert app.chat_defaults().for_model("tiny")["temperature"] == 1.2
    assert app.chat_defaults().for_model("other")["temperature"] == 0.3
    assert panel.save_preset_as("Mine")
    assert "Mine" in app.chat_defaults().presets and panel.delete_preset.isEnabled()
    assert not panel.save_preset_as("Precise") and "built in" in panel.status.text()
    w.chat.new_chat("tiny")
    assert w.chat.temperature.value() == pytest.approx(1.2)
    assert w.chat.preset.findData("Mine") >= 0  # the chat page offers the new preset


def test_a_bubble_and_its_code_follow_a_live_theme_switch(qtbot) -> None:
    """A bubble carries its own style sheet, and a widget with a style sheet keeps the
    palette it was polished with: it must still restyle (and recolour its code) when the
    person switches theme while the chat is open."""
    from PySide6.QtWidgets import QApplication

    from vetted.gui import theme
    from vetted.gui.chat_bubbles import MessageBubble

    qapp = QApplication.instance()
    theme.apply_theme(qapp, "light")
    try:
        bubble = MessageBubble("assistant")
        qtbot.addWidget(bubble)
        bubble.body.set_markdown("```python\nx = 1\n```", False)
        bubble.show()
        qtbot.waitExposed(bubble)
        assert "#f5f6f8" in bubble.styleSheet() and not bubble.body.dark
        theme.apply_theme(qapp, "dark")
        qtbot.waitUntil(lambda: "#24272d" in bubble.styleSheet() and bubble.body.dark, timeout=5000)
    finally:
        theme.apply_theme(qapp, "light")


CODE_REPLY = "Here is the check:\n\n```python\nimport hashlib\nprint(hashlib.sha256(b'x').hexdigest())\n```\n\n" \
             "- read in chunks\n- compare the digest\n\nThat is all."


def test_the_end_of_a_reply_re_renders_no_bubble_already_shown(qtbot, loc, cat, monkeypatch) -> None:
    """When a reply ends, the bubbles shown before it are the same widgets, not rendered
    again, and the live bubble keeps the document it streamed into: its stored text is the
    text it shows, so nothing is rendered again (and nothing is ever rendered from scratch)."""
    from vetted.gui.message_text import MessageText

    engines = FakeEngines(reply=CODE_REPLY)
    w = window(qtbot, loc, engines)
    chat = w.chat
    chat.new_chat("tiny")
    chat.input.setPlainText("First")
    turn(qtbot, chat)
    resets: list[MessageText] = []
    real_reset = MessageText._reset
    monkeypatch.setattr(MessageText, "_reset", lambda self: (resets.append(self), real_reset(self))[1])

    engines.last.hold_after = 5
    chat.input.setPlainText("Second")
    chat.send()
    qtbot.waitUntil(lambda: engines.last.holding.is_set(), timeout=10_000)
    earlier = list(chat.view.bubbles[:3])  # first question, its answer, the question being sent
    renders = [b.body.renders for b in earlier]
    live = chat.view.live
    assert live is not None and live is chat.view.bubbles[-1]
    at_done: list[int] = []
    real_done = chat._done

    def done(result) -> None:  # the reply is stored: from here on, what does the page render?
        live.body.flush()  # (what streamed is on screen)
        at_done.append(live.body.renders)
        real_done(result)

    monkeypatch.setattr(chat, "_done", done)
    engines.last.release()
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    qtbot.waitUntil(lambda: chat.list.count() == 1 and chat.list.item(0).text() == "First", timeout=5_000)

    assert chat.view.bubbles == [*earlier, live] and chat.view.live is None
    assert [b.body.renders for b in earlier] == renders  # the bubbles shown before: not touched
    assert live.message is not None and live.message.content == CODE_REPLY == live.body.markdown()
    assert at_done and live.body.renders == at_done[0]  # same text: the streamed document stays
    assert resets == [] and len(live.body.code_blocks) == 1
    assert "That is all." in live.body.toPlainText() and live.regen_btn.isVisibleTo(live)
    assert chat.status.text() == "Done: 20 tokens · 1000 tokens/s."


def test_the_chat_list_follows_a_reply_without_being_rebuilt(qtbot, loc, cat) -> None:
    w = window(qtbot, loc)
    chat = w.chat
    older = chat.new_chat("tiny")
    chat.input.setPlainText("Older")
    turn(qtbot, chat)
    newer = chat.new_chat("tiny")
    chat.input.setPlainText("Newer")
    turn(qtbot, chat)
    for conv in (older, newer):  # (times are in seconds: the next reply must be later than both)
        chat.chats.db.execute("UPDATE conversations SET updated_at=? WHERE id=?", ["2020-01-01T00:00:00+00:00", conv])
    chat.refresh_list()
    qtbot.waitUntil(lambda: [chat.list.item(i).text() for i in range(chat.list.count())] == ["Newer", "Older"],
                    timeout=5_000)
    items = {chat.list.item(i).text(): chat.list.item(i) for i in range(2)}
    chat.open(older)
    chat.input.setPlainText("Again")
    turn(qtbot, chat)
    qtbot.waitUntil(lambda: chat.list.item(0).text() == "Older", timeout=5_000)
    assert [chat.list.item(i) for i in range(2)] == [items["Older"], items["Newer"]]  # moved, not rebuilt
    assert chat.list.currentItem() is items["Older"] and chat.conv_id == older
