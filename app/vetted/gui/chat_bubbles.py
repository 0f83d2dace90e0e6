"""The conversation as message bubbles: author, time, the text as rendered Markdown, and
the actions on each message (copy; regenerate, ‹ n/m › alternatives and Continue on a
reply; edit on your own message).

Why bubbles of their own rather than one big rich-text view: actions belong to a message,
and a streaming reply must update without touching the rest. So the transcript is a
column of `MessageBubble`s; opening a chat builds them once, and while a reply streams
only its live bubble changes — `MessageText.append_stream` buffers each piece and
re-renders that one bubble at most every `message_text.RENDER_INTERVAL_MS` — so a long
conversation costs nothing per token. Model text is untrusted: it reaches the screen only
through `MessageText` (safe Markdown, nothing loaded, links confirmed), and the one-line
places (status notes) through `textsafe.one_line`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from vetted.gui import theme
from vetted.gui.message_text import MessageText
from vetted.gui.theme import is_dark
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.store.chats import Message

BUBBLE_SHARE = 0.86  # of the transcript's width, at most


def local_time(iso: str) -> str:
    """A stored UTC time as the person's local clock: "14:05", or "3 Mar 14:05" on another day."""
    try:
        t = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return ""
    return t.strftime("%H:%M") if t.date() == datetime.now().astimezone().date() else t.strftime("%-d %b %H:%M")


def status_note(m: Message) -> str:
    """What a person needs to know about how a message ended ("" when it simply finished)."""
    if m.cut_at_max_tokens:
        return "stopped at max tokens"
    if m.status == "complete":
        return ""
    return m.status + (": " + one_line(m.reason) if m.reason else "")


class MessageBubble(QFrame):
    """One message. Its actions are signals with the message id; the page acts on them."""

    copy_requested = Signal(int)
    regenerate_requested = Signal(int)
    edit_requested = Signal(int)
    continue_requested = Signal(int)
    alternative_requested = Signal(int, int)  # (message id, -1 previous / +1 next)

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.message: Message | None = None
        self.note = ""
        self.setObjectName("bubble_user" if role == "user" else "bubble_assistant")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        who = "You" if role == "user" else "Assistant"
        self.author = QLabel(f"<b>{who}</b>", textFormat=Qt.TextFormat.RichText)
        self.time = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.status = QLabel(textFormat=Qt.TextFormat.PlainText, accessibleName="Message status")
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.author)
        head.addWidget(self.time)
        head.addWidget(self.status)
        head.addStretch(1)
        self.body = MessageText(dark=is_dark())
        theme.notifier().changed.connect(self._theme_changed)
        self.body.setAccessibleName(f"{who} message")

        def tool(text: str, name: str, tip: str) -> QToolButton:
            b = QToolButton(text=text, accessibleName=name, toolTip=tip)
            b.setAutoRaise(True)
            b.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            return b

        self.copy_btn = tool("Copy", "Copy this message", "Copy the text of this message")
        self.edit_btn = tool("Edit", "Edit this message", "Edit and send again (replaces what follows)")
        self.regen_btn = tool("Regenerate", "Regenerate this reply", "Another answer; this one is kept to flip back to")
        self.continue_btn = tool("Continue", "Continue this reply", "Let the model go on writing this reply")
        self.prev_btn = tool("‹", "Previous alternative reply", "Previous answer")
        self.alt_label = QLabel(textFormat=Qt.TextFormat.PlainText, accessibleName="Which alternative reply")
        self.next_btn = tool("›", "Next alternative reply", "Next answer")
        self.copy_btn.clicked.connect(lambda: self._emit(self.copy_requested))
        self.edit_btn.clicked.connect(lambda: self._emit(self.edit_requested))
        self.regen_btn.clicked.connect(lambda: self._emit(self.regenerate_requested))
        self.continue_btn.clicked.connect(lambda: self._emit(self.continue_requested))
        self.prev_btn.clicked.connect(lambda: self.message and self.alternative_requested.emit(self.message.id, -1))
        self.next_btn.clicked.connect(lambda: self.message and self.alternative_requested.emit(self.message.id, 1))
        actions = QHBoxLayout()
        actions.setContentsMargins(0, 0, 0, 0)
        actions.setSpacing(2)
        for w in (self.prev_btn, self.alt_label, self.next_btn, self.copy_btn, self.edit_btn, self.regen_btn,
                  self.continue_btn):
            actions.addWidget(w)
        actions.addStretch(1)
        v = QVBoxLayout(self)
        v.setContentsMargins(12, 8, 12, 6)
        v.setSpacing(4)
        v.addLayout(head)
        v.addWidget(self.body)
        v.addLayout(actions)
        self.set_actions(last=False, busy=False)
        self._restyle()

    def _emit(self, signal: Signal) -> None:
        if self.message is not None:
            signal.emit(self.message.id)  # type: ignore[attr-defined]

    # -- content
    def set_message(self, m: Message) -> None:
        """A finished (or stored) message, rendered whole."""
        self.message = m
        self.time.setText(local_time(m.created_at))
        self.set_note(status_note(m))
        self.body.set_markdown(m.content)
        many = m.role == "assistant" and m.alt_count > 1
        for w in (self.prev_btn, self.alt_label, self.next_btn):
            w.setVisible(many)
        self.alt_label.setText(f"{m.alt_index}/{m.alt_count}")
        self.prev_btn.setEnabled(m.alt_index > 1)
        self.next_btn.setEnabled(m.alt_index < m.alt_count)
        self._fit_width()

    def set_pending(self, text: str, note: str) -> None:
        """A message not stored yet (yours, being sent) or a reply about to stream."""
        self.time.setText(datetime.now().strftime("%H:%M"))
        self.set_note(note)
        self.body.set_markdown(text)
        for w in (self.prev_btn, self.alt_label, self.next_btn):
            w.hide()
        self._fit_width()

    def set_note(self, note: str) -> None:
        self.note = note
        self.status.setText(f"· {note}" if note else "")
        self.status.setVisible(bool(note))

    def append(self, text: str) -> None:
        self.body.append_stream(text)

    def text(self) -> str:
        """What a person reads in it (for copying and for tests): header line, then the text."""
        head = ("You" if self.role == "user" else "Assistant") + (f" ({self.note})" if self.note else "")
        return head + "\n" + self.body.toPlainText()

    def set_actions(self, last: bool, busy: bool) -> None:
        """Which actions apply: regenerate and Continue on the last reply only, none while busy."""
        m = self.message
        mine = self.role == "user"
        self.copy_btn.setVisible(m is not None)
        self.edit_btn.setVisible(mine and m is not None)
        self.regen_btn.setVisible(not mine and last and m is not None)
        self.continue_btn.setVisible(not mine and last and m is not None and bool(m.content)
                                     and (m.cut_at_max_tokens or m.status in ("stopped", "incomplete")))
        for b in (self.edit_btn, self.regen_btn, self.continue_btn):
            b.setEnabled(not busy)
        if m is not None:
            self.prev_btn.setEnabled(not busy and m.alt_index > 1)
            self.next_btn.setEnabled(not busy and m.alt_index < m.alt_count)

    # -- look
    def _restyle(self) -> None:
        # the application's palette decides: a bubble carries its own style sheet, and a widget
        # with a style sheet keeps the palette it was polished with when the theme changes
        dark = is_dark()
        if dark == getattr(self, "_styled_dark", None):
            return  # (a style sheet change is itself a palette change: only a new theme restyles)
        self._styled_dark = dark
        if self.role == "user":
            bg, border = ("#1f3a5c", "#2f5480") if dark else ("#e3efff", "#c3dafc")
        else:
            bg, border = ("#24272d", "#353a42") if dark else ("#f5f6f8", "#e1e4e8")
        self.setStyleSheet(f"QFrame#{self.objectName()} {{ background: {bg}; border: 1px solid {border};"
                           " border-radius: 10px; }")
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        self.time.setStyleSheet(f"color: {muted};")
        self.status.setStyleSheet(f"color: {muted}; font-style: italic;")
        self.alt_label.setStyleSheet(f"color: {muted};")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._restyle()

    def _theme_changed(self, _mode: str = "") -> None:
        self._restyle()
        self.body.set_dark(is_dark())

    def _fit_width(self) -> None:
        """Your messages are as wide as their text; replies take the whole bubble width."""
        if self.role == "user":
            parent = self.parentWidget()
            room = int(parent.width() * BUBBLE_SHARE) if parent is not None and parent.width() > 0 else 640
            want = self.body.sizeHint().width() + 40
            self.setMaximumWidth(max(220, min(room, want)))


class Transcript(QScrollArea):
    """The column of bubbles. `set_messages` builds it; `begin_live`/`append`/`finish_live`
    touch only the live reply's bubble."""

    copied = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAccessibleName("Conversation")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.inner = QWidget()
        self.inner.setObjectName("transcript")
        self.column = QVBoxLayout(self.inner)
        self.column.setContentsMargins(12, 12, 12, 12)
        self.column.setSpacing(10)
        self.empty = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True,
                            textFormat=Qt.TextFormat.PlainText)
        self.empty.setAccessibleName("No messages")
        self.column.addWidget(self.empty)
        self.column.addStretch(1)
        self.setWidget(self.inner)
        self.bubbles: list[MessageBubble] = []
        self.live: MessageBubble | None = None
        self._follow = True
        self.verticalScrollBar().rangeChanged.connect(self._on_range)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll)

    # -- building
    def clear(self, empty_text: str = "") -> None:
        for b in self.bubbles:
            self.column.removeWidget(b)
            b.deleteLater()
        self.bubbles, self.live = [], None
        self.empty.setText(empty_text)
        self.empty.setVisible(bool(empty_text))

    def set_messages(self, messages: list[Message], empty_text: str) -> None:
        self.clear(empty_text if not messages else "")
        for m in messages:
            self.add(m.role).set_message(m)
        self._follow = True

    def add(self, role: str) -> MessageBubble:
        bubble = MessageBubble(role, self.inner)
        row_align = Qt.AlignmentFlag.AlignRight if role == "user" else Qt.AlignmentFlag.AlignLeft
        self.column.insertWidget(self.column.count() - 1, bubble, 0, row_align)
        self.bubbles.append(bubble)
        self.empty.hide()
        self._size(bubble)
        return bubble

    def begin_live(self, so_far: str) -> MessageBubble:
        """The one live reply: a bubble that shows the text as it streams."""
        self.live = self.add("assistant")
        self.live.set_pending(so_far, "writing…")
        self._follow = True
        return self.live

    def append(self, text: str) -> None:
        if self.live is not None:
            self.live.append(text)

    def finish_live(self, m: Message) -> None:
        if self.live is not None:
            self.live.set_message(m)
            self.live = None

    def set_actions(self, busy: bool) -> None:
        last_reply = next((b for b in reversed(self.bubbles) if b.message is not None), None)
        for b in self.bubbles:
            b.set_actions(last=b is last_reply and b is self.bubbles[-1], busy=busy)

    def toPlainText(self) -> str:  # noqa: N802 (as a text view's, for tests and copying)
        if not self.bubbles:
            return self.empty.text()
        return "\n\n".join(b.text() for b in self.bubbles)

    # -- size and scrolling
    def _size(self, bubble: MessageBubble) -> None:
        width = self.viewport().width() - 24
        if width > 0:
            bubble.setMaximumWidth(int(width * BUBBLE_SHARE) if bubble.role == "user" else width)
            if bubble.role == "assistant":  # a reply reads best at one steady width
                bubble.setMinimumWidth(int(width * BUBBLE_SHARE))
                bubble.setMaximumWidth(int(width * BUBBLE_SHARE))
            bubble._fit_width()

    def resizeEvent(self, event: object) -> None:  # type: ignore[override]
        super().resizeEvent(event)  # type: ignore[arg-type]
        for b in self.bubbles:
            self._size(b)

    def _on_scroll(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 8

    def _on_range(self, _lo: int, hi: int) -> None:
        if self._follow:  # a person reading further up is not pulled down by new text
            QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(self.verticalScrollBar().maximum()))

    def scroll_to_end(self) -> None:
        self._follow = True
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())


def copy_text(text: str) -> None:
    QGuiApplication.clipboard().setText(text)
