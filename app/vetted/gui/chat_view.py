"""Chat: conversations as message bubbles (gui/chat_bubbles.py), one live reply while it
streams, Stop, per-message copy / regenerate (keeping alternatives) / edit, Continue for a
reply cut at max tokens, the model's parameters with presets and a seed, export, and
delete with Undo.

Model work runs on the runner's chat lane: one thread, where the chat session (made by
`Vetted.chat_session`, on the engine `Vetted` was given) lives so its engine stays loaded
across turns; each turn hands it that thread's current database connection. The UI
thread reads and writes only this page's conversation rows (`Vetted.chats`, its own
connection: one indexed query each), so typing, opening and rendering never wait for
the engine. The list of models (and which of them can chat: `Vetted.chat_capability`)
is read through the runner when the core says a model was installed, removed or checked.

A turn builds the transcript once (the conversation and the message being sent) and adds
one live bubble; tokens go to that bubble only (throttled by `MessageText`), and when the
reply ends that bubble is given the stored message. A new chat starts from the model's
default parameters (Settings ▸ Chat defaults), never from the chat that was open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem,
    QPushButton, QSplitter, QVBoxLayout, QWidget,
)

from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.chat_bubbles import Transcript, copy_text
from vetted.gui.chat_input import MessageInput
from vetted.gui.chat_params import ChatParams
from vetted.gui.chat_support import SessionHost, export_dialog, export_to, finished_text
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line

if TYPE_CHECKING:  # types only: the page goes through `Vetted`
    from vetted.runtime.chat import ChatSession, TurnResult
    from vetted.store.chats import Chats, Message

EMPTY = "No messages yet. Type below and press Enter to send."
NO_CHAT = "Start a new chat, or pick one on the left."
UNDO_MS = 10_000  # how long a deleted chat can be brought back


class ChatPage(QWidget):
    busy_changed = Signal(bool)
    models_loaded = Signal()  # the model list shows what is installed and verified now

    def __init__(self, runner: Runner, events: CoreEvents, prefs: QSettings | None = None) -> None:
        super().__init__()
        self.runner = runner
        self._chats: Chats | None = None
        self.host = SessionHost(runner.app)
        self.conv_id: int | None = None
        self.streaming: str | None = None  # the reply so far, while one streams
        self.streaming_conv: int | None = None  # the chat it belongs to
        self.editing_id: int | None = None
        self.busy = False
        self.trashed: int | None = None  # the chat whose Undo is on offer
        if prefs is None:
            from vetted.gui.theme import prefs as open_prefs

            prefs = open_prefs(runner.app.loc.config)
        self.prefs = prefs

        # -- conversation list
        self.search = QLineEdit(placeholderText="Search chats", accessibleName="Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.refresh_list)
        self.list = QListWidget(accessibleName="Conversations")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # long titles are elided
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.currentItemChanged.connect(self._on_pick)
        self.new_btn = QPushButton("New chat", accessibleName="Start a new chat")
        self.new_btn.clicked.connect(lambda: (self.new_chat(), self.focus_input()))
        self.rename_btn = QPushButton("Rename", accessibleName="Rename this chat")
        self.rename_btn.clicked.connect(self.rename)
        self.delete_btn = QPushButton("Delete", accessibleName="Delete this chat")
        self.delete_btn.clicked.connect(self.delete)
        self.export_btn = QPushButton("Export…", accessibleName="Export this chat as Markdown or JSON")
        self.export_btn.clicked.connect(self.export_chat)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.new_btn)
        lv.addWidget(self.search)
        lv.addWidget(self.list, 1)
        row = QHBoxLayout()
        for b in (self.rename_btn, self.delete_btn, self.export_btn):
            row.addWidget(b)
        lv.addLayout(row)
        self.undo_bar = QFrame(accessibleName="Chat deleted")
        self.undo_bar.setFrameShape(QFrame.Shape.StyledPanel)
        self.undo_text = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.undo_btn = QPushButton("Undo", accessibleName="Undo deleting the chat")
        self.undo_btn.clicked.connect(self.undo_delete)
        ub = QHBoxLayout(self.undo_bar)
        ub.addWidget(self.undo_text, 1)
        ub.addWidget(self.undo_btn)
        self.undo_bar.hide()
        lv.addWidget(self.undo_bar)
        self.undo_timer = QTimer(self, singleShot=True, interval=UNDO_MS)
        self.undo_timer.timeout.connect(self._purge_trashed)

        # -- settings of the current chat
        self.params = ChatParams(runner)
        self.model, self.system = self.params.model, self.params.system
        self.temperature, self.max_tokens, self.n_ctx = self.params.temperature, self.params.max_tokens, \
            self.params.n_ctx
        self.seed, self.preset = self.params.seed, self.params.preset
        self.params.changed.connect(self._save_settings)

        # -- crash banner, transcript, input
        self.banner = QFrame()
        self.banner.setFrameShape(QFrame.StyledPanel)
        self.banner.setStyleSheet("QFrame { background: #fdecea; } QLabel { color: #611a15; }")
        self.banner_text = QLabel(wordWrap=True, textFormat=Qt.PlainText)  # quotes the engine's error
        self.banner_text.setAccessibleName("Engine problem")
        restart = QPushButton("Restart engine", accessibleName="Restart the engine")
        restart.clicked.connect(self.restart_engine)
        bl = QHBoxLayout(self.banner)
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(restart)
        self.banner.hide()

        self.view = Transcript()
        self.input = MessageInput(self.prefs)
        self.input.setMaximumHeight(100)
        self.input.setMinimumHeight(56)
        self.input.send_requested.connect(self.send)
        self.send_btn = QPushButton("Send", accessibleName="Send the message")
        self.send_btn.setDefault(True)
        self.stop_btn = QPushButton("Stop", accessibleName="Stop the reply")
        self.cancel_edit_btn = QPushButton("Cancel edit", accessibleName="Cancel editing your message")
        self.cancel_edit_btn.hide()
        self.send_btn.clicked.connect(self.send)
        self.stop_btn.clicked.connect(self.stop)
        self.cancel_edit_btn.clicked.connect(self.cancel_edit)
        QShortcut(QKeySequence("Escape"), self.input, activated=self.stop)
        self.status = QLabel(wordWrap=True, accessibleName="Chat status", textFormat=Qt.PlainText)
        compose = QHBoxLayout()
        compose.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        for b in (self.send_btn, self.stop_btn, self.cancel_edit_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        compose.addLayout(buttons)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.params)
        rv.addWidget(self.banner)
        rv.addWidget(self.view, 1)
        rv.addLayout(compose)
        rv.addWidget(self.status)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        split.setSizes([230, 1000])
        split.setChildrenCollapsible(False)
        left.setMinimumWidth(170)
        QVBoxLayout(self).addWidget(split)
        order = [self.new_btn, self.search, self.list, self.rename_btn, self.delete_btn, self.export_btn,
                 *self.params.tab_order(), self.input, self.send_btn, self.stop_btn]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)
        events.models_changed.connect(lambda _model_id: self.refresh_models())
        events.chat_changed.connect(lambda _conv: self.refresh_list())
        self.refresh_models()
        QTimer.singleShot(0, self._startup)  # after the first paint
        self._set_busy(False)
        self.render()

    @property
    def chats(self) -> Chats:
        """This page's conversation rows, on the UI thread's own connection (opened on first use)."""
        if self._chats is None:
            self._chats = self.runner.app.chats
        return self._chats

    def _startup(self) -> None:
        self.chats.purge_trashed(older_than_s=UNDO_MS / 1000)  # undo windows of an earlier run are over
        self.refresh_list()

    # -- lists
    def refresh_models(self) -> Job:
        """Reads the verified models and which can chat through the runner; the picker fills when they arrive."""
        return self.params.refresh_models(on_done=self._models_filled,
                                          on_failed=lambda e: self.status.setText("✖ " + error_text(e)),
                                          keep=lambda: self.chats.get(self.conv_id).model_id
                                          if self.conv_id is not None else None)

    def _models_filled(self) -> None:
        self._check_model()
        self.models_loaded.emit()

    def refresh_list(self, *_a: Any) -> None:
        """The chats on the left (one indexed query). Rows are rebuilt only when other chats
        are listed; otherwise they are moved and updated where they stand."""
        text = self.search.text().strip()
        convs = [c for c, _m in self.chats.search(text)] if text else self.chats.list()
        rows: list[tuple[int, str, str]] = []
        seen: set[int] = set()
        for c in convs:
            if c.id in seen:
                continue
            seen.add(c.id)  # a title is one line, whatever was typed
            rows.append((c.id, one_line(c.title), f"{one_line(c.model_id or 'no model')} — {c.updated_at}"))
        self.list.blockSignals(True)
        shown = [self.list.item(i).data(Qt.UserRole) for i in range(self.list.count())]
        same = len(shown) == len(rows) and set(shown) == seen
        if same:  # the same chats: a reply moved one to the top, say; move its row only
            for i, (cid, _t, _tip) in enumerate(rows):
                if self.list.item(i).data(Qt.UserRole) != cid:
                    j = next(k for k in range(i + 1, self.list.count()) if self.list.item(k).data(Qt.UserRole) == cid)
                    self.list.insertItem(i, self.list.takeItem(j))
        else:
            self.list.clear()
        for i, (cid, title, tip) in enumerate(rows):
            if same:
                item = self.list.item(i)
                if item.text() != title:
                    item.setText(title)
                if item.toolTip() != tip:
                    item.setToolTip(tip)
            else:
                item = QListWidgetItem(title)
                item.setData(Qt.UserRole, cid)
                item.setToolTip(tip)
                self.list.addItem(item)
            if cid == self.conv_id and self.list.currentItem() is not item:
                self.list.setCurrentItem(item)
        if same and self.conv_id not in seen and self.list.currentItem() is not None:
            self.list.setCurrentItem(None)
        self.list.blockSignals(False)
        has = self.conv_id is not None
        for b in (self.rename_btn, self.delete_btn, self.export_btn):
            b.setEnabled(has)

    def _on_pick(self, item: QListWidgetItem | None, _prev: Any = None) -> None:
        if item is not None:
            self.open(int(item.data(Qt.UserRole)))

    def open(self, conv_id: int) -> None:
        """Shows a chat: its settings, its messages; nothing of the chat shown before (its
        errors, its token counts) stays on screen."""
        switched = conv_id != self.conv_id
        self.conv_id = conv_id
        conv = self.chats.get(conv_id)
        self.params.show_chat(conv)
        if switched:
            self.cancel_edit()
            if not (self.streaming is not None and self.streaming_conv == conv_id):
                self.status.clear()
        self._check_model()
        self.render()
        for b in (self.rename_btn, self.delete_btn, self.export_btn):
            b.setEnabled(True)

    def _check_model(self) -> None:
        """Says so when the chosen model cannot chat (a base model in an old chat)."""
        why = self.params.cannot_chat()
        if why and not self.busy:
            self.status.setText(f"This model cannot chat ({why}). Pick another model above.")

    def new_chat(self, model_id: str | None = None) -> int:
        """A new chat with `model_id` (or the model chosen), from that model's default
        parameters — not the previous chat's system prompt and settings."""
        if model_id:
            self.params.choose_model(model_id)
        chosen = model_id or self.params.chosen_model()
        conv = self.runner.app.new_chat(chosen, "New chat")
        self.conv_id = None
        self.refresh_list()
        self.open(conv)
        self.refresh_list()
        return conv

    def focus_input(self) -> None:
        self.input.setFocus()

    def _save_settings(self, *_a: Any) -> None:
        if self.conv_id is None:
            return
        model = self.model.currentData()
        values = self.params.values()
        system = values.pop("system_prompt")
        if model is None:  # the list is not there yet: keep the chat's model
            self.chats.update(self.conv_id, system_prompt=system, params=values)
        else:
            self.chats.update(self.conv_id, model_id=model, system_prompt=system, params=values)
        self._check_model()

    def rename(self) -> None:
        if self.conv_id is None:
            return
        title, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=self.chats.get(self.conv_id).title)
        if ok and title.strip():
            self.chats.rename(self.conv_id, title.strip())
            self.refresh_list()

    def delete(self) -> None:
        """Puts the chat aside with an Undo bar for UNDO_MS; then it is deleted for good."""
        if self.conv_id is None or (self.busy and self.streaming_conv == self.conv_id):
            return
        self._purge_trashed()  # one Undo at a time: the previous deletion is final now
        conv = self.chats.get(self.conv_id)
        self.chats.trash(conv.id)
        self.trashed = conv.id
        self.undo_text.setText(f"Deleted “{one_line(conv.title)[:40]}”.")
        self.undo_bar.show()
        self.undo_timer.start()
        self.conv_id = None
        self.status.clear()
        self.render()
        self.refresh_list()
        self.undo_btn.setFocus()

    def undo_delete(self) -> None:
        if self.trashed is None:
            return
        conv, self.trashed = self.trashed, None
        self.undo_timer.stop()
        self.undo_bar.hide()
        self.chats.restore(conv)
        self.open(conv)
        self.refresh_list()

    def _purge_trashed(self) -> None:
        if self.trashed is not None:
            self.chats.purge_trashed(self.trashed)
            self.trashed = None
        self.undo_timer.stop()
        self.undo_bar.hide()

    def export_chat(self) -> Path | None:
        """Asks where to save the chat on screen, as Markdown or JSON (by the chosen filter)."""
        return export_dialog(self)

    def export_to(self, path: Path, fmt: str) -> Path | None:
        return export_to(self, path, fmt)

    # -- rendering
    def render(self, messages: list[Message] | None = None, pending_user: str | None = None) -> None:
        """Builds the transcript: when a chat is opened, a turn starts or fails. A reply
        streaming in this chat is shown once, live, from memory (not its stored copy)."""
        if self.conv_id is None:
            self.view.set_messages([], NO_CHAT)
            return
        if messages is None:
            messages = self.chats.get(self.conv_id).messages
        streaming_here = self.streaming is not None and self.streaming_conv == self.conv_id
        if streaming_here:
            messages = [m for m in messages if m.status != "streaming"]
        self.view.set_messages(messages, EMPTY)
        if pending_user is not None:
            self.view.add("user").set_pending(pending_user, "")
        if streaming_here:
            self.view.begin_live(self.streaming or "")
        self._wire_bubbles()
        self.view.set_actions(self.busy)
        self.view.scroll_to_end()

    def _adopt_stored(self) -> None:
        """Your message shown while it was being sent becomes the stored one (for its actions)."""
        if self.conv_id is None:
            return
        stored = self.chats.get(self.conv_id).messages
        if len(stored) == len(self.view.bubbles):
            for b, m in zip(self.view.bubbles, stored):
                if b.message is None and b.role == m.role:
                    b.message = m

    def _wire_bubbles(self) -> None:
        for b in self.view.bubbles:
            if getattr(b, "_wired", False):
                continue
            b._wired = True  # type: ignore[attr-defined]
            b.copy_requested.connect(self.copy_message)
            b.edit_requested.connect(self.edit_message)
            b.regenerate_requested.connect(lambda _mid: self.regenerate())
            b.continue_requested.connect(lambda _mid: self.continue_reply())
            b.alternative_requested.connect(self.flip_alternative)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.send_btn.setEnabled(not busy)
        self.stop_btn.setEnabled(busy)
        self.view.set_actions(busy)
        self.busy_changed.emit(busy)

    # -- actions
    def send(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self.busy:
            return
        chosen = self.model.currentData() or (self.conv_id is not None and self.chats.get(self.conv_id).model_id)
        if not chosen:  # (the chat's own model is re-checked before it runs, as any other)
            self.status.setText("No model that can chat is installed. Download one in Discover first.")
            return
        why = self.params.cannot_chat()
        if why:
            self.status.setText(f"This model cannot chat ({why}). Pick another model above.")
            return
        if self.conv_id is None:
            self.new_chat()
        self._save_settings()
        conv = self.conv_id
        assert conv is not None
        if len(self.chats.get(conv).messages) == 0:
            self.chats.rename(conv, one_line(text)[:50])
            self.refresh_list()  # the chat's title shows as it is sent
        editing, self.editing_id = self.editing_id, None
        self.cancel_edit_btn.hide()
        self.input.clear()
        shown = self.chats.get(conv).messages
        if editing is not None:
            cut = next((m.position for m in shown if m.id == editing), editing)
            shown = [m for m in shown if m.position < cut]
            self._start(lambda s, cb: s.edit_and_resend(conv, editing, text, cb), shown, text)
        else:
            self._start(lambda s, cb: s.send(conv, text, cb), shown, text)

    def regenerate(self) -> None:
        """Another answer to the last message; the current one stays, one click away (‹ ›)."""
        last = self._last_reply()
        if last is not None:
            conv, shown = last
            self._start(lambda s, cb: s.regenerate(conv, cb), shown[:-1])

    def continue_reply(self) -> None:
        """The last reply goes on where it stopped (at max tokens, or stopped by you)."""
        last = self._last_reply()
        if last is not None:
            conv, shown = last
            self._start(lambda s, cb: s.continue_reply(conv, cb), shown[:-1], so_far=shown[-1].content)

    def _last_reply(self) -> tuple[int, list[Message]] | None:
        """The open chat and its messages when it ends with a reply a turn can act on
        (none while a reply is being written)."""
        if self.conv_id is None or self.busy:
            return None
        shown = self.chats.get(self.conv_id).messages
        if not shown or shown[-1].role != "assistant":
            return None
        return self.conv_id, shown

    def flip_alternative(self, message_id: int, step: int) -> None:
        if self.busy or self.conv_id is None:
            return
        alts = self.chats.alternatives(message_id)
        ids = [m.id for m in alts]
        if message_id not in ids:
            return
        i = ids.index(message_id) + step
        if 0 <= i < len(ids):
            self.chats.choose_alternative(ids[i])
            bar = self.view.verticalScrollBar().value()
            self.render()
            self.view.verticalScrollBar().setValue(bar)  # flipping keeps your place

    def edit_message(self, message_id: int) -> None:
        if self.conv_id is None or self.busy:
            return
        msg = next((m for m in self.chats.get(self.conv_id).messages if m.id == message_id), None)
        if msg is None or msg.role != "user":
            return
        self.editing_id = msg.id
        self.input.setPlainText(msg.content)
        self.cancel_edit_btn.show()
        self.status.setText("Editing your message: Send replaces it and everything after it.")
        self.focus_input()

    def edit_last(self) -> None:
        if self.conv_id is None or self.busy:
            return
        last = next((m for m in reversed(self.chats.get(self.conv_id).messages) if m.role == "user"), None)
        if last:
            self.edit_message(last.id)

    def cancel_edit(self) -> None:
        if self.editing_id is not None:
            self.editing_id = None
            self.input.clear()
            self.status.clear()
        self.cancel_edit_btn.hide()

    def copy_message(self, message_id: int) -> None:
        msg = next((m for m in self.chats.get(self.conv_id).messages if m.id == message_id), None) \
            if self.conv_id is not None else None
        if msg is not None:
            copy_text(msg.content)
            self.status.setText("Reply copied." if msg.role == "assistant" else "Message copied.")

    def copy_last(self) -> None:
        if self.conv_id is None:
            return
        last = next((m for m in reversed(self.chats.get(self.conv_id).messages) if m.role == "assistant"), None)
        if last:
            self.copy_message(last.id)

    def _start(self, op: Callable[[ChatSession, Callable[[str], None]], TurnResult], shown: list[Message],
               pending_user: str | None = None, so_far: str = "") -> None:
        """Shows the conversation once (with the message being sent), opens the one live
        reply, and runs the turn on the chat lane; tokens go to that reply only."""
        self.streaming, self.streaming_conv = so_far, self.conv_id
        self.banner.hide()
        self._set_busy(True)
        self.status.setText("Checking the model file and starting the engine…")
        self.render(shown, pending_user)
        host = self.host

        def job(job: Job) -> TurnResult:
            return op(host.get(), job.token.emit)

        self.runner.run(job, lane="chat", on_token=self._token, on_done=self._done, on_failed=self._failed)

    def _token(self, t: str) -> None:
        if self.streaming is None:
            return
        if self.conv_id == self.streaming_conv and self.status.text().startswith("Checking"):
            self.status.setText("Writing…")
        self.streaming += t
        if self.conv_id == self.streaming_conv:
            self.view.append(t)

    def _done(self, result: TurnResult) -> None:
        """The reply is stored: its live bubble keeps what it shows (re-rendered only if the
        stored text differs), takes the stored message for its actions; no other bubble is
        touched, and the list on the left is brought up to date in the next event-loop turn."""
        finished = self.streaming_conv
        here = self.conv_id == finished and self.view.live is not None
        self.streaming = self.streaming_conv = None
        if self.conv_id == finished:
            self.status.setText(finished_text(result))
        if here:
            self.view.finish_live(result.message)
            self._adopt_stored()
            self._wire_bubbles()
        elif self.conv_id == finished:
            self.render()
        self._set_busy(False)
        QTimer.singleShot(0, self, self.refresh_list)  # (its order and times): after this turn's paint

    def _failed(self, exc: BaseException) -> None:
        from vetted.runtime.engine import EngineCrashed  # a type, for the banner

        finished = self.streaming_conv
        self.streaming = self.streaming_conv = None
        self._set_busy(False)
        if isinstance(exc, EngineCrashed):
            self.banner_text.setText("The engine stopped unexpectedly. " + error_text(exc))
            self.banner.show()
            self.status.setText("Your chat is saved.")
        elif self.conv_id == finished:
            self.status.setText("✖ " + error_text(exc))
        if self.conv_id == finished:
            self.render()

    def stop(self) -> None:
        self.host.stop()

    def restart_engine(self) -> None:
        self.banner.hide()
        self.status.setText("The engine restarts with your next message.")

    def engine_pid(self) -> int | None:
        session = self.host.session
        return session.engine.pid if session is not None else None

    def shutdown(self) -> None:
        """Stops a reply in progress and closes the engine on its own thread (the runner,
        shutting down, waits for the chat lane). A chat deleted moments ago stays deleted."""
        self.stop()
        if self.trashed is not None:
            try:
                self._purge_trashed()
            except Exception:  # noqa: BLE001 (purged at the next start instead)
                pass
        host = self.host
        self.runner.run(lambda _job: host.close(), lane="chat")

