"""The message box: Enter sends and Shift+Enter breaks the line, as in every chat app.

The send key is a preference (`chat/enter_sends` in the window's preferences, the
contract's key; Settings shows the choice): True (the default) — Enter sends, Shift+Enter
is a new line; False — Ctrl+Enter sends, Enter is a new line. It is read at each key press,
so a change in Settings applies at once. Ctrl+Enter always sends. While an input method
is composing (accents, CJK), Enter belongs to it and sends nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QWidget

ENTER_SENDS_KEY = "chat/enter_sends"


def enter_sends(prefs: QSettings | None) -> bool:
    return True if prefs is None else bool(prefs.value(ENTER_SENDS_KEY, True, type=bool))


class MessageInput(QPlainTextEdit):
    send_requested = Signal()

    def __init__(self, prefs: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.setAccessibleName("Message")
        self.setTabChangesFocus(True)  # Tab moves on to Send; a message rarely needs a tab character
        self.update_hint()

    def update_hint(self) -> None:
        self._hint_sends = enter_sends(self.prefs)
        hint = ("Message — Enter to send, Shift+Enter for a new line" if self._hint_sends
                else "Message — Ctrl+Enter to send, Enter for a new line")
        self.setPlaceholderText(hint)
        self.setAccessibleDescription(hint)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if enter_sends(self.prefs) != self._hint_sends:  # changed in Settings meanwhile
                self.update_hint()
            mods = event.modifiers()
            ctrl = bool(mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.MetaModifier))
            shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
            if ctrl or (enter_sends(self.prefs) and not shift):
                event.accept()
                self.send_requested.emit()
                return
            if shift:  # a plain line break (Qt would insert a line separator)
                self.insertPlainText("\n")
                event.accept()
                return
        super().keyPressEvent(event)

    def focusInEvent(self, event: object) -> None:  # type: ignore[override]
        self.update_hint()  # the preference may have changed in Settings
        super().focusInEvent(event)  # type: ignore[arg-type]
