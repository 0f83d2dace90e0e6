"""What the chat page needs besides its widgets: the session on the chat lane's thread,
the words for how a reply ended, and export to a file (`Vetted.export_chat`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from vetted.gui.bridge import error_text
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.core.app import Vetted
    from vetted.gui.chat_view import ChatPage
    from vetted.runtime.chat import ChatSession, TurnResult


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


def finished_text(result: TurnResult) -> str:
    """The status line after a reply: how it ended, in words, then its numbers."""
    m = result.message
    tokens = result.usage.get("completion_tokens", 0)
    tps = result.timings.get("tokens_per_s", 0)
    extra = f" {one_line(m.reason)}." if m.reason else ""
    if m.cut_at_max_tokens:
        return f"Stopped at max tokens ({tokens} tokens): Continue goes on with this reply.{extra}"
    how = {"stopped": "Stopped", "complete": "Done"}.get(m.status, m.status.capitalize())
    speed = f" · {tps:.1f} tokens/s" if 0 < tps < 100 else f" · {tps:.0f} tokens/s" if tps >= 100 else ""
    return f"{how}: {tokens} {'token' if tokens == 1 else 'tokens'}{speed}.{extra}"


def export_dialog(self: ChatPage) -> Path | None:
    """Asks where to save the chat on screen, as Markdown or JSON (by the chosen filter)."""
    if self.conv_id is None:
        self.status.setText("Open a chat to export it.")
        return None
    title = one_line(self.chats.get(self.conv_id).title)
    safe = "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in title).strip() or "chat"
    name, chosen = QFileDialog.getSaveFileName(self, "Export chat", str(Path.home() / f"{safe}.md"),
                                               "Markdown (*.md);;JSON (*.json)")
    if not name:
        return None
    fmt = "json" if name.lower().endswith(".json") or (chosen.startswith("JSON")
                                                        and not name.lower().endswith(".md")) else "md"
    path = Path(name)
    if not path.suffix:
        path = path.with_suffix("." + fmt)
    return export_to(self, path, fmt)


def export_to(self: ChatPage, path: Path, fmt: str) -> Path | None:
    """Writes the chat on screen to `path`; a failure is said on the status line."""
    assert self.conv_id is not None
    try:
        path.write_text(self.runner.app.export_chat(self.conv_id, fmt), "utf-8")
    except Exception as exc:  # noqa: BLE001 (shown to the person, never fatal)
        self.status.setText("✖ Could not export: " + error_text(exc))
        return None
    self.status.setText(f"Exported to {path}.")
    return path
