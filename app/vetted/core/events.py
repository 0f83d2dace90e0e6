"""Core events: what changed, announced once, for whoever shows it.

Front ends subscribe instead of refreshing each other's views by hand (Electrum's
`register_callback`, Anki's `operation_did_execute`). Events are emitted on the thread
that did the work; a GUI re-emits them onto its own thread (gui/events.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

MODEL_INSTALLED = "model_installed"   # model_id
MODEL_REMOVED = "model_removed"       # model_id
MODEL_CHECKED = "model_checked"       # model_id, state ("verified" | "refused")
CATALOGS_CHANGED = "catalogs_changed"  # (a signer pinned or replaced)
CHAT_CHANGED = "chat_changed"         # conversation_id (created, renamed, deleted, a reply finished)
SPOTCHECK_DONE = "spotcheck_done"     # model_id, status

Listener = Callable[..., None]


class Events:
    """A small thread-safe publish/subscribe hub; a failing listener never stops the others."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Listener]] = {}

    def subscribe(self, name: str, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.setdefault(name, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners.get(name, []):
                    self._listeners[name].remove(listener)

        return unsubscribe

    def emit(self, name: str, **payload: Any) -> None:
        with self._lock:
            listeners = list(self._listeners.get(name, []))
        for listener in listeners:
            try:
                listener(**payload)
            except Exception:  # a view's bug must not undo the core's work
                import logging

                logging.getLogger(__name__).exception("listener for %s failed", name)
