"""Core events as Qt signals on the UI thread, so pages refresh themselves.

The core announces what changed (`vetted.core.events`) on whichever thread did the
work — a download thread, the chat thread, the UI thread. `CoreEvents` subscribes to
each and re-emits it through a queued signal, so every page's slot runs on the UI
thread (Electrum's `qt_event_listener`, Anki's `operation_did_execute`). A page listens
to what concerns it; the main window never refreshes a page by hand, and no page
touches another page's widgets.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from vetted.core import events as ev

if TYPE_CHECKING:
    from vetted.core.events import Events


class CoreEvents(QObject):
    model_installed = Signal(str)       # model id
    model_removed = Signal(str)         # model id
    model_checked = Signal(str, str)    # model id, "verified" | "refused"
    models_changed = Signal(str)        # after any of the three above: what is installed, or its state, changed
    catalogs_changed = Signal()         # a signer pinned or replaced: catalogs must be verified again
    chat_changed = Signal(object)       # conversation id (or None)
    spotcheck_done = Signal(str, str)   # model id, status
    _relay = Signal(str, object)        # (event name, payload): queued onto the UI thread

    NAMES = (ev.MODEL_INSTALLED, ev.MODEL_REMOVED, ev.MODEL_CHECKED, ev.CATALOGS_CHANGED, ev.CHAT_CHANGED,
             ev.SPOTCHECK_DONE)

    def __init__(self, events: Events, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay.connect(self._dispatch)  # this object lives on the UI thread: emits from others are queued
        self._unsubscribe = [events.subscribe(name, partial(self._forward, name)) for name in self.NAMES]

    def _forward(self, name: str, **payload: Any) -> None:
        """On the thread that did the work."""
        self._relay.emit(name, payload)

    def _dispatch(self, name: str, p: dict[str, Any]) -> None:
        """On the UI thread."""
        if name == ev.MODEL_INSTALLED:
            self.model_installed.emit(p["model_id"])
        elif name == ev.MODEL_REMOVED:
            self.model_removed.emit(p["model_id"])
        elif name == ev.MODEL_CHECKED:
            self.model_checked.emit(p["model_id"], p.get("state", ""))
        elif name == ev.CATALOGS_CHANGED:
            self.catalogs_changed.emit()
        elif name == ev.CHAT_CHANGED:
            self.chat_changed.emit(p.get("conversation_id"))
        elif name == ev.SPOTCHECK_DONE:
            self.spotcheck_done.emit(p["model_id"], p.get("status", ""))
        if name in (ev.MODEL_INSTALLED, ev.MODEL_REMOVED, ev.MODEL_CHECKED):
            self.models_changed.emit(p["model_id"])

    def close(self) -> None:
        """Stops listening to the core (the window is closing)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
