"""Chat: conversations, streaming replies rendered as Markdown, Stop, Regenerate, Edit and
resend, system prompt and parameters, and a banner when the engine crashes.

Model work runs on the runner's chat lane: one thread, where the chat session (made by
`Vetted.chat_session`, on the engine `Vetted` was given) lives so its engine stays loaded
across turns; each turn hands it that thread's current database connection. The UI
thread reads and writes only this page's conversation rows (`Vetted.chats`, its own
connection: one indexed query each), so typing, opening and rendering never wait for
the engine. The list of models is read through the runner when the core says a model
was installed, removed or re-checked.

While a reply streams, its text is appended at the end of the view (a `QTextCursor`),
never re-rendering the conversation; when it ends, only that reply is rendered as
Markdown in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QInputDialog, QLabel, QLineEdit,
    QListWidget, QListWidgetItem, QPlainTextEdit, QPushButton, QSpinBox, QSplitter, QTextBrowser, QVBoxLayout,
    QWidget,
)

from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line

if TYPE_CHECKING:  # types only: the page goes through `Vetted`
    from vetted.core.app import Vetted
    from vetted.runtime.chat import ChatSession, TurnResult
    from vetted.store.chats import Chats, Message
    from vetted.store.installed import InstalledModel

EMPTY = "_No messages yet. Type below and press Ctrl+Enter._"
WRITING = "**Assistant** _(writing…)_"


class SessionHost:
    """The chat session, on the chat lane's one thread (create, use and close it there)."""

    def __init__(self, app: Vetted) -> None:
        self.app = app
        self.session: ChatSession | None = None

    def get(self) -> ChatSession:
        if self.session is None:
            self.session = self.app.chat_session()
        else:  # the runner closed the previous job's connection
            self.session.use_connection(self.app.db)
        return self.session

    def stop(self) -> None:
        """From any thread: asks the running reply to stop before its next token."""
        if self.session is not None:
            self.session.stop()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def message_markdown(m: Message) -> str:
    """One finished message: its content as written (newlines are theirs), the status note one line."""
    who = "**You**" if m.role == "user" else "**Assistant**"
    note = "" if m.status == "complete" else f" _({m.status}{': ' + one_line(m.reason) if m.reason else ''})_"
    return f"{who}{note}\n\n{m.content}\n\n---\n"


def conversation_markdown(messages: list[Message], pending_user: str | None = None) -> str:
    """The finished messages, then the message being sent (not stored yet: the chat thread stores it)."""
    out = [message_markdown(m) for m in messages]
    if pending_user is not None:
        out.append(f"**You**\n\n{pending_user}\n\n---\n")
    return "\n".join(out) or EMPTY


def _block_format() -> QTextBlockFormat:
    """The paragraph format Qt's Markdown reader gives a paragraph (so a reply rendered in
    place looks exactly as it does in a full render)."""
    fmt = QTextBlockFormat()
    fmt.setTopMargin(6)
    fmt.setBottomMargin(6)
    return fmt


class ChatPage(QWidget):
    busy_changed = Signal(bool)
    models_loaded = Signal()  # the model list shows what is installed and verified now

    def __init__(self, runner: Runner, events: CoreEvents) -> None:
        super().__init__()
        self.runner = runner
        self._chats: Chats | None = None
        self.host = SessionHost(runner.app)
        self.conv_id: int | None = None
        self.streaming: str | None = None  # the reply so far, while one streams
        self.streaming_conv: int | None = None  # the chat it belongs to
        self.editing_id: int | None = None
        self.busy = False
        self._reply_start: int | None = None  # where the streaming reply begins in the view
        self._reply_cursor: QTextCursor | None = None  # at its end: tokens are inserted here
        self._plain = QTextCharFormat()

        # -- conversation list
        self.search = QLineEdit(placeholderText="Search chats", accessibleName="Search chats")
        self.search.textChanged.connect(self.refresh_list)
        self.list = QListWidget(accessibleName="Conversations")
        self.list.currentItemChanged.connect(self._on_pick)
        new_btn = QPushButton("New chat", accessibleName="Start a new chat")
        new_btn.clicked.connect(lambda: self.new_chat())
        self.rename_btn = QPushButton("Rename", accessibleName="Rename this chat")
        self.rename_btn.clicked.connect(self.rename)
        self.delete_btn = QPushButton("Delete", accessibleName="Delete this chat")
        self.delete_btn.clicked.connect(self.delete)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.search)
        lv.addWidget(self.list)
        row = QHBoxLayout()
        for b in (new_btn, self.rename_btn, self.delete_btn):
            row.addWidget(b)
        lv.addLayout(row)

        # -- settings of the current chat
        self.model = QComboBox(accessibleName="Model (verified models only)")
        self.system = QLineEdit(placeholderText="System prompt (optional)", accessibleName="System prompt")
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=0.7,
                                          accessibleName="Temperature")
        self.max_tokens = QSpinBox(minimum=1, maximum=8192, value=512, accessibleName="Maximum reply tokens")
        self.n_ctx = QSpinBox(minimum=256, maximum=131072, singleStep=256, value=4096,
                              accessibleName="Context length")
        for w in (self.model,):
            w.currentIndexChanged.connect(self._save_settings)
        for w in (self.system,):
            w.editingFinished.connect(self._save_settings)
        for w in (self.temperature, self.max_tokens, self.n_ctx):
            w.valueChanged.connect(self._save_settings)
        box = QGroupBox("Model and parameters")
        form = QFormLayout(box)
        form.addRow("Model", self.model)
        form.addRow("System prompt", self.system)
        params = QHBoxLayout()
        for label, w in (("Temperature", self.temperature), ("Max tokens", self.max_tokens),
                         ("Context", self.n_ctx)):
            params.addWidget(QLabel(label))
            params.addWidget(w)
        form.addRow(params)

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

        self.view = QTextBrowser(accessibleName="Conversation")
        self.view.setOpenExternalLinks(True)
        self.input = QPlainTextEdit(placeholderText="Message (Ctrl+Enter to send)", accessibleName="Message")
        self.input.setMaximumHeight(110)
        self.send_btn = QPushButton("Send", accessibleName="Send the message")
        self.stop_btn = QPushButton("Stop", accessibleName="Stop the reply")
        self.regen_btn = QPushButton("Regenerate", accessibleName="Regenerate the last reply")
        self.edit_btn = QPushButton("Edit last", accessibleName="Edit and resend your last message")
        self.copy_btn = QPushButton("Copy reply", accessibleName="Copy the last reply")
        self.send_btn.clicked.connect(self.send)
        self.stop_btn.clicked.connect(self.stop)
        self.regen_btn.clicked.connect(self.regenerate)
        self.edit_btn.clicked.connect(self.edit_last)
        self.copy_btn.clicked.connect(self.copy_last)
        QShortcut(QKeySequence("Ctrl+Return"), self.input, activated=self.send)
        self.status = QLabel(wordWrap=True, accessibleName="Chat status", textFormat=Qt.PlainText)
        actions = QHBoxLayout()
        for b in (self.send_btn, self.stop_btn, self.regen_btn, self.edit_btn, self.copy_btn):
            actions.addWidget(b)
        actions.addStretch(1)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(box)
        rv.addWidget(self.banner)
        rv.addWidget(self.view, 1)
        rv.addWidget(self.input)
        rv.addLayout(actions)
        rv.addWidget(self.status)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        QVBoxLayout(self).addWidget(split)
        events.models_changed.connect(lambda _model_id: self.refresh_models())
        events.chat_changed.connect(lambda _conv: self.refresh_list())
        self.refresh_models()
        QTimer.singleShot(0, self.refresh_list)  # after the first paint
        self._set_busy(False)

    @property
    def chats(self) -> Chats:
        """This page's conversation rows, on the UI thread's own connection (opened on first use)."""
        if self._chats is None:
            self._chats = self.runner.app.chats
        return self._chats

    # -- lists
    def refresh_models(self) -> Job:
        """Reads the verified models through the runner; the list fills when they arrive."""
        app = self.runner.app
        return self.runner.run(lambda _job: app.models(), key="chat.models", on_done=self._fill_models,
                               on_failed=lambda e: self.status.setText("✖ " + error_text(e)))

    def _fill_models(self, models: list[InstalledModel]) -> None:
        keep = self.model.currentData()
        if self.conv_id is not None:  # the open chat's model, when it is (still) there
            keep = self.chats.get(self.conv_id).model_id or keep
        self.model.blockSignals(True)
        self.model.clear()
        for m in models:
            if m.state == "verified":
                self.model.addItem(f"{one_line(m.name)} ({m.model_id})", m.model_id)
        idx = self.model.findData(keep)
        self.model.setCurrentIndex(max(idx, 0))
        self.model.blockSignals(False)
        self.models_loaded.emit()

    def refresh_list(self, *_a: Any) -> None:
        text = self.search.text().strip()
        convs = [c for c, _m in self.chats.search(text)] if text else self.chats.list()
        seen: set[int] = set()
        self.list.blockSignals(True)
        self.list.clear()
        for c in convs:
            if c.id in seen:
                continue
            seen.add(c.id)
            item = QListWidgetItem(one_line(c.title))  # a title is one line, whatever was typed
            item.setData(Qt.UserRole, c.id)
            item.setToolTip(f"{one_line(c.model_id or 'no model')} — {c.updated_at}")
            self.list.addItem(item)
            if c.id == self.conv_id:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    def _on_pick(self, item: QListWidgetItem | None, _prev: Any = None) -> None:
        if item is not None:
            self.open(int(item.data(Qt.UserRole)))

    def open(self, conv_id: int) -> None:
        self.conv_id = conv_id
        self._reply_cursor = None  # a reply streaming into the view is re-attached by render()
        conv = self.chats.get(conv_id)
        for w in (self.model, self.system, self.temperature, self.max_tokens, self.n_ctx):
            w.blockSignals(True)
        idx = self.model.findData(conv.model_id)
        if idx >= 0:
            self.model.setCurrentIndex(idx)
        self.system.setText(conv.system_prompt)
        self.temperature.setValue(float(conv.params.get("temperature", 0.7)))
        self.max_tokens.setValue(int(conv.params.get("max_tokens", 512)))
        self.n_ctx.setValue(int(conv.params.get("n_ctx", 4096)))
        for w in (self.model, self.system, self.temperature, self.max_tokens, self.n_ctx):
            w.blockSignals(False)
        self.render()

    def new_chat(self, model_id: str | None = None) -> int:
        """A new chat, with `model_id` when given (the model list may still be on its way)."""
        if model_id:
            idx = self.model.findData(model_id)
            if idx >= 0:
                self.model.setCurrentIndex(idx)
        conv = self.chats.create(model_id or self.model.currentData(), "New chat", self.system.text(),
                                 self._params())
        self.conv_id = conv
        self.refresh_list()
        self.open(conv)
        self.input.setFocus()
        return conv

    def _params(self) -> dict:
        return {"temperature": self.temperature.value(), "max_tokens": self.max_tokens.value(),
                "n_ctx": self.n_ctx.value()}

    def _save_settings(self, *_a: Any) -> None:
        if self.conv_id is None:
            return
        model = self.model.currentData()
        if model is None:  # the list is not there yet: keep the chat's model
            self.chats.update(self.conv_id, system_prompt=self.system.text(), params=self._params())
        else:
            self.chats.update(self.conv_id, model_id=model, system_prompt=self.system.text(), params=self._params())

    def rename(self) -> None:
        if self.conv_id is None:
            return
        title, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=self.chats.get(self.conv_id).title)
        if ok and title.strip():
            self.chats.rename(self.conv_id, title.strip())
            self.refresh_list()

    def delete(self) -> None:
        if self.conv_id is None or self.busy:
            return
        self.chats.delete(self.conv_id)
        self.conv_id = None
        self.view.clear()
        self.refresh_list()

    # -- rendering
    def render(self, messages: list[Message] | None = None, pending_user: str | None = None) -> None:
        """The whole conversation, as Markdown: when a chat is opened, a turn starts or fails.
        A reply streaming in this chat is shown after it, as streamed so far."""
        self._reply_cursor = None
        if self.conv_id is None:
            self.view.setMarkdown("_Start a new chat, or pick one on the left._")
            return
        if messages is None:
            messages = self.chats.get(self.conv_id).messages
        streaming_here = self.streaming is not None and self.streaming_conv == self.conv_id
        if streaming_here:  # the reply being written is shown from memory, not from its stored copy
            messages = [m for m in messages if m.status != "streaming"]
        self.view.setMarkdown(conversation_markdown(messages, pending_user))
        if streaming_here:
            self._begin_reply(self.streaming or "")
        self._scroll_to_end()

    def _begin_reply(self, so_far: str) -> None:
        """Opens the streaming reply at the end of the view: its header, then plain text."""
        doc = self.view.document()
        cursor = QTextCursor(doc)
        cursor.movePosition(QTextCursor.End)
        if not doc.isEmpty():  # after the last message's rule, a paragraph of its own
            cursor.insertBlock(_block_format(), self._plain)
        self._reply_start = cursor.position()
        cursor.insertMarkdown(WRITING)
        cursor.insertBlock(_block_format(), self._plain)
        cursor.insertText(so_far, self._plain)
        self._reply_cursor = cursor

    def _append(self, text: str) -> None:
        """A streamed piece, at the end of the reply: nothing before it is touched."""
        if self._reply_cursor is None:
            return
        bar = self.view.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self._reply_cursor.insertText(text, self._plain)
        if at_end:
            bar.setValue(bar.maximum())

    def _finish_reply(self, message: Message) -> None:
        """The finished reply replaces its streamed text, rendered as Markdown in place."""
        if self._reply_cursor is None or self._reply_start is None:
            return
        cursor = QTextCursor(self.view.document())
        cursor.setPosition(self._reply_start)
        cursor.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
        cursor.removeSelectedText()
        cursor.insertMarkdown(message_markdown(message))
        QTextCursor(self.view.document().findBlock(self._reply_start)).mergeBlockFormat(_block_format())
        self._reply_cursor = self._reply_start = None
        self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        self.view.verticalScrollBar().setValue(self.view.verticalScrollBar().maximum())

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.send_btn.setEnabled(not busy)
        self.regen_btn.setEnabled(not busy)
        self.edit_btn.setEnabled(not busy)
        self.stop_btn.setEnabled(busy)
        self.busy_changed.emit(busy)

    # -- actions
    def send(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self.busy:
            return
        chosen = self.model.currentData() or (self.conv_id is not None and self.chats.get(self.conv_id).model_id)
        if not chosen:  # (the chat's own model is re-checked before it runs, as any other)
            self.status.setText("No verified model is installed. Download one in Discover first.")
            return
        if self.conv_id is None:
            self.new_chat()
        self._save_settings()
        conv = self.conv_id
        if len(self.chats.get(conv).messages) == 0:
            self.chats.rename(conv, text[:50])
        editing, self.editing_id = self.editing_id, None
        self.input.clear()
        shown = self.chats.get(conv).messages
        if editing is not None:
            shown = [m for m in shown if m.id < editing]
            self._start(lambda s, cb: s.edit_and_resend(conv, editing, text, cb), shown, text)
        else:
            self._start(lambda s, cb: s.send(conv, text, cb), shown, text)

    def regenerate(self) -> None:
        if self.conv_id is not None and not self.busy:
            conv = self.conv_id
            shown = self.chats.get(conv).messages
            last = next((m for m in reversed(shown) if m.role == "assistant"), None)
            if last is not None:
                shown = [m for m in shown if m.id < last.id]
            self._start(lambda s, cb: s.regenerate(conv, cb), shown)

    def edit_last(self) -> None:
        if self.conv_id is None or self.busy:
            return
        last = next((m for m in reversed(self.chats.get(self.conv_id).messages) if m.role == "user"), None)
        if last:
            self.editing_id = last.id
            self.input.setPlainText(last.content)
            self.status.setText("Editing your last message: Send replaces it and everything after it.")
            self.input.setFocus()

    def copy_last(self) -> None:
        if self.conv_id is None:
            return
        last = next((m for m in reversed(self.chats.get(self.conv_id).messages) if m.role == "assistant"), None)
        if last:
            QGuiApplication.clipboard().setText(last.content)
            self.status.setText("Reply copied.")

    def _start(self, op: Callable[[ChatSession, Callable[[str], None]], TurnResult], shown: list[Message],
               pending_user: str | None = None) -> None:
        """Shows the conversation once (with the message being sent), opens the reply, and
        runs the turn on the chat lane; tokens are appended as they come."""
        self.streaming, self.streaming_conv = "", self.conv_id
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
        if not self.streaming:
            self.status.setText("Writing…")
        self.streaming += t
        if self.conv_id == self.streaming_conv:
            self._append(t)

    def _done(self, result: TurnResult) -> None:
        finished = self.streaming_conv
        here = self.conv_id == finished and self._reply_cursor is not None
        self.streaming = self.streaming_conv = None
        self._set_busy(False)
        tps = result.timings.get("tokens_per_s", 0)
        extra = f" {one_line(result.message.reason)}." if result.message.reason else ""
        self.status.setText(f"{result.message.status}: {result.usage.get('completion_tokens', 0)} tokens, "
                            f"{tps:.1f} tokens/s.{extra}")
        if here:
            self._finish_reply(result.message)
        elif self.conv_id == finished:  # (another chat on screen: nothing of this one to update)
            self.render()
        self.refresh_list()

    def _failed(self, exc: BaseException) -> None:
        from vetted.runtime.engine import EngineCrashed  # a type, for the banner

        self.streaming = self.streaming_conv = None
        self._set_busy(False)
        if isinstance(exc, EngineCrashed):
            self.banner_text.setText("The engine stopped unexpectedly. " + error_text(exc))
            self.banner.show()
            self.status.setText("Your chat is saved.")
        else:
            self.status.setText("✖ " + error_text(exc))
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
        shutting down, waits for the chat lane)."""
        self.stop()
        host = self.host
        self.runner.run(lambda _job: host.close(), lane="chat")
