"""Chat: conversations, streaming replies rendered as Markdown, Stop, Regenerate, Edit and
resend, system prompt and parameters, and a banner when the engine crashes.

All model work happens on one background thread that owns the ChatSession (and its own
database connection); the UI only reads conversations through its own connection.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QInputDialog, QLabel, QLineEdit,
    QListWidget, QListWidgetItem, QPlainTextEdit, QPushButton, QSpinBox, QSplitter, QTextBrowser, QVBoxLayout,
    QWidget,
)

from vetted.gui.bridge import Runner, error_text
from vetted.paths import Locations
from vetted.store import installed
from vetted.store.chats import Chats, Conversation
from vetted.textsafe import one_line


class SessionHost:
    """Owns the ChatSession on the single chat thread."""

    def __init__(self, loc: Locations) -> None:
        self.loc = loc
        self.session = None

    def get(self):
        if self.session is None:
            from vetted.runtime.chat import ChatSession
            from vetted.store.db import open_db

            self.session = ChatSession(open_db(self.loc.database))
        return self.session


def conversation_markdown(conv: Conversation, streaming: str | None = None) -> str:
    out = []
    for m in conv.messages:  # contents as written (newlines are theirs); the status note is one line
        who = "**You**" if m.role == "user" else "**Assistant**"
        note = "" if m.status == "complete" else f" _({m.status}{': ' + one_line(m.reason) if m.reason else ''})_"
        out.append(f"{who}{note}\n\n{m.content}\n\n---\n")
    if streaming is not None:
        out.append(f"**Assistant** _(writing…)_\n\n{streaming}\n")
    return "\n".join(out) or "_No messages yet. Type below and press Ctrl+Enter._"


class ChatPage(QWidget):
    busy_changed = Signal(bool)

    def __init__(self, loc: Locations, db) -> None:
        super().__init__()
        self.loc, self.db = loc, db
        self.chats = Chats(db)
        self.runner = Runner(workers=1, name="vetted-chat")
        self.host = SessionHost(loc)
        self.conv_id: int | None = None
        self.streaming: str | None = None
        self.editing_id: int | None = None
        self.busy = False
        self._render_timer = QTimer(self, interval=50, singleShot=True)
        self._render_timer.timeout.connect(self.render)

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
        self.refresh_models()
        self.refresh_list()
        self._set_busy(False)

    # -- lists
    def refresh_models(self) -> None:
        keep = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        for m in installed.all_models(self.db):
            if m.state == "verified":
                self.model.addItem(f"{one_line(m.name)} ({m.model_id})", m.model_id)
        idx = self.model.findData(keep)
        self.model.setCurrentIndex(max(idx, 0))
        self.model.blockSignals(False)

    def refresh_list(self, *_a) -> None:
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

    def _on_pick(self, item, _prev=None) -> None:
        if item is not None:
            self.open(int(item.data(Qt.UserRole)))

    def open(self, conv_id: int) -> None:
        self.conv_id = conv_id
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
        if model_id:
            idx = self.model.findData(model_id)
            if idx >= 0:
                self.model.setCurrentIndex(idx)
        conv = self.chats.create(self.model.currentData(), "New chat", self.system.text(), self._params())
        self.conv_id = conv
        self.refresh_list()
        self.open(conv)
        self.input.setFocus()
        return conv

    def _params(self) -> dict:
        return {"temperature": self.temperature.value(), "max_tokens": self.max_tokens.value(),
                "n_ctx": self.n_ctx.value()}

    def _save_settings(self, *_a) -> None:
        if self.conv_id is not None:
            self.chats.update(self.conv_id, model_id=self.model.currentData(), system_prompt=self.system.text(),
                              params=self._params())

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
    def render(self) -> None:
        if self.conv_id is None:
            self.view.setMarkdown("_Start a new chat, or pick one on the left._")
            return
        self.view.setMarkdown(conversation_markdown(self.chats.get(self.conv_id), self.streaming))
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
        if self.model.currentData() is None:
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
        if editing is not None:
            self._start(lambda s, cb: s.edit_and_resend(conv, editing, text, cb))
        else:
            self._start(lambda s, cb: s.send(conv, text, cb))

    def regenerate(self) -> None:
        if self.conv_id is not None and not self.busy:
            conv = self.conv_id
            self._start(lambda s, cb: s.regenerate(conv, cb))

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

    def _start(self, op) -> None:
        self.streaming = ""
        self.banner.hide()
        self._set_busy(True)
        self.status.setText("Checking the model file and starting the engine…")
        self.render()

        def job(call):
            return op(self.host.get(), lambda t: call.token.emit(t))

        self.runner.run(job, on_token=self._token, on_done=self._done, on_failed=self._failed)

    def _token(self, t: str) -> None:
        self.streaming = (self.streaming or "") + t
        self.status.setText("Writing…")
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _done(self, result) -> None:
        self.streaming = None
        self._set_busy(False)
        tps = result.timings.get("tokens_per_s", 0)
        extra = f" {one_line(result.message.reason)}." if result.message.reason else ""
        self.status.setText(f"{result.message.status}: {result.usage.get('completion_tokens', 0)} tokens, "
                            f"{tps:.1f} tokens/s.{extra}")
        self.render()
        self.refresh_list()

    def _failed(self, exc) -> None:
        from vetted.runtime.engine import EngineCrashed

        self.streaming = None
        self._set_busy(False)
        if isinstance(exc, EngineCrashed):
            self.banner_text.setText("The engine stopped unexpectedly. " + error_text(exc))
            self.banner.show()
            self.status.setText("Your chat is saved.")
        else:
            self.status.setText("✖ " + error_text(exc))
        self.render()

    def stop(self) -> None:
        if self.host.session is not None:
            self.host.session.stop()

    def restart_engine(self) -> None:
        self.banner.hide()
        self.status.setText("The engine restarts with your next message.")

    def engine_pid(self) -> int | None:
        return self.host.session.engine.pid if self.host.session else None

    def shutdown(self) -> None:
        if self.host.session is not None:
            self.stop()
            self.runner.run(lambda _c: self.host.session.close())
        self.runner.pool.shutdown(wait=True)
