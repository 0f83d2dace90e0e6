"""Conversations and messages (DESIGN.md invariant 6: nothing typed is lost).

A user message is committed when sent. A reply is inserted as 'streaming' and its text
rewritten at most every FLUSH_S while tokens arrive, then closed as complete, stopped or
failed. WAL + synchronous=NORMAL means each commit survives the process being killed.
"""

from __future__ import annotations

import builtins
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from vetted.errors import Fix, InputError, Remedy
from vetted.store.audit import now

FLUSH_S = 0.25

DEFAULT_PARAMS: dict[str, Any] = {
    "temperature": 0.7, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1,
    "max_tokens": 512, "n_ctx": 4096, "seed": 42,
}


@dataclass
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    status: str
    reason: str | None
    created_at: str
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None


@dataclass
class Conversation:
    id: int
    title: str
    model_id: str | None
    system_prompt: str
    params: dict[str, Any]
    created_at: str
    updated_at: str
    messages: list[Message] = field(default_factory=list)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # cannot tell cheaply; staleness is handled by updated_at below
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Chats:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.repair()

    def repair(self) -> int:
        """Marks replies left 'streaming' by a process that no longer exists as incomplete."""
        rows = self.db.execute("SELECT id, writer_pid FROM messages WHERE status = 'streaming'").fetchall()
        dead = [mid for mid, pid in rows if not _pid_alive(pid)]
        for mid in dead:
            self.db.execute("UPDATE messages SET status='incomplete', reason=? WHERE id=?",
                            ["interrupted: Vetted stopped while this reply was being written", mid])
        return len(dead)

    # -- conversations
    def create(self, model_id: str | None, title: str = "New chat", system_prompt: str = "",
               params: dict[str, Any] | None = None) -> int:
        p = {**DEFAULT_PARAMS, **(params or {})}
        t = now()
        cur = self.db.execute(
            "INSERT INTO conversations (title, model_id, system_prompt, params, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", [title, model_id, system_prompt, json.dumps(p), t, t])
        return _rowid(cur)

    def get(self, conversation_id: int) -> Conversation:
        rows = list(self.db.query("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
        if not rows:
            raise InputError(f"chat {conversation_id}", "does not exist", "see the saved chats",
                             Remedy(Fix.LIST_CHATS))
        r = rows[0]
        conv = Conversation(r["id"], r["title"], r["model_id"], r["system_prompt"], json.loads(r["params"]),
                            r["created_at"], r["updated_at"])
        conv.messages = [self._msg(m) for m in self.db.query(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id])]
        return conv

    def list(self) -> list[Conversation]:
        return [Conversation(r["id"], r["title"], r["model_id"], r["system_prompt"], json.loads(r["params"]),
                             r["created_at"], r["updated_at"])
                for r in self.db.query("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC")]

    def rename(self, conversation_id: int, title: str) -> None:
        self.get(conversation_id)
        self.db.execute("UPDATE conversations SET title=?, updated_at=? WHERE id=?", [title, now(), conversation_id])

    def update(self, conversation_id: int, *, model_id: str | None = None, system_prompt: str | None = None,
               params: dict[str, Any] | None = None) -> None:
        conv = self.get(conversation_id)
        self.db.execute(
            "UPDATE conversations SET model_id=?, system_prompt=?, params=?, updated_at=? WHERE id=?",
            [model_id if model_id is not None else conv.model_id,
             system_prompt if system_prompt is not None else conv.system_prompt,
             json.dumps({**conv.params, **(params or {})}), now(), conversation_id])

    def delete(self, conversation_id: int) -> None:
        self.get(conversation_id)
        self.db.execute("DELETE FROM conversations WHERE id=?", [conversation_id])

    # -- messages
    def add_user(self, conversation_id: int, text: str) -> int:
        t = now()
        cur = self.db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, created_at, updated_at)"
            " VALUES (?, 'user', ?, 'complete', ?, ?)", [conversation_id, text, t, t])
        self.db.execute("UPDATE conversations SET updated_at=? WHERE id=?", [t, conversation_id])
        return _rowid(cur)

    def start_reply(self, conversation_id: int) -> "ReplyWriter":
        t = now()
        cur = self.db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, writer_pid, created_at, updated_at)"
            " VALUES (?, 'assistant', '', 'streaming', ?, ?, ?)", [conversation_id, os.getpid(), t, t])
        return ReplyWriter(self.db, _rowid(cur))

    def delete_from(self, conversation_id: int, message_id: int) -> None:
        """Drops a message and everything after it (for regenerate and edit-and-resend)."""
        self.db.execute("DELETE FROM messages WHERE conversation_id=? AND id>=?", [conversation_id, message_id])

    def edit(self, message_id: int, text: str) -> None:
        self.db.execute("UPDATE messages SET content=?, updated_at=? WHERE id=?", [text, now(), message_id])

    def search(self, text: str) -> builtins.list[tuple[Conversation, Message]]:  # `list` is a method here
        terms = " ".join('"' + t.replace('"', '""') + '"' for t in text.split())
        if not terms:
            return []
        rows = self.db.query(
            "SELECT m.* FROM messages_fts f JOIN messages m ON m.id = f.rowid WHERE messages_fts MATCH ?"
            " ORDER BY m.id DESC LIMIT 200", [terms])
        out = []
        for r in rows:
            msg = self._msg(r)
            conv = self.get(msg.conversation_id)
            conv.messages = []
            out.append((conv, msg))
        title_hits = self.db.query("SELECT id FROM conversations WHERE title LIKE ? ESCAPE '\\'",
                                   ["%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"])
        seen = {c.id for c, _ in out}
        for r in title_hits:
            if r["id"] not in seen:
                out.append((self.get(r["id"]), None))  # type: ignore[arg-type]
        return out

    @staticmethod
    def _msg(r: dict[str, Any]) -> Message:
        return Message(r["id"], r["conversation_id"], r["role"], r["content"], r["status"], r["reason"],
                       r["created_at"], json.loads(r["usage"]) if r["usage"] else None,
                       json.loads(r["timings"]) if r["timings"] else None)


class ReplyWriter:
    """Persists a streaming reply: flushed at most every FLUSH_S, closed with its outcome."""

    def __init__(self, db: sqlite_utils.Database, message_id: int) -> None:
        self.db, self.id = db, message_id
        self.text = ""
        self.last_flush = time.monotonic()
        self.dirty = False

    def append(self, token: str) -> None:
        self.text += token
        self.dirty = True
        if time.monotonic() - self.last_flush >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if self.dirty:
            self.db.execute("UPDATE messages SET content=?, updated_at=? WHERE id=?", [self.text, now(), self.id])
            self.dirty = False
        self.last_flush = time.monotonic()

    def close(self, status: str, reason: str | None = None, usage: dict | None = None,
              timings: dict | None = None) -> None:
        self.db.execute(
            "UPDATE messages SET content=?, status=?, reason=?, usage=?, timings=?, updated_at=? WHERE id=?",
            [self.text, status, reason, json.dumps(usage) if usage else None,
             json.dumps(timings) if timings else None, now(), self.id])
        self.dirty = False


def export_markdown(conv: Conversation) -> str:
    lines = [f"# {conv.title}", "", f"- model: {conv.model_id or '(none)'}", f"- created: {conv.created_at}"]
    if conv.system_prompt:
        lines += [f"- system prompt: {conv.system_prompt}"]
    lines.append("")
    for m in conv.messages:
        who = "You" if m.role == "user" else "Assistant"
        note = "" if m.status == "complete" else f" _({m.status}{': ' + m.reason if m.reason else ''})_"
        lines += [f"## {who}{note}", "", m.content, ""]
    return "\n".join(lines)


def export_json(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id, "title": conv.title, "model_id": conv.model_id, "system_prompt": conv.system_prompt,
        "params": conv.params, "created_at": conv.created_at, "updated_at": conv.updated_at,
        "messages": [{"id": m.id, "role": m.role, "content": m.content, "status": m.status, "reason": m.reason,
                      "created_at": m.created_at, "usage": m.usage, "timings": m.timings} for m in conv.messages],
    }


def _rowid(cur: Any) -> int:
    """The id SQLite gave the row just inserted (always set after an INSERT)."""
    if cur.lastrowid is None:
        raise RuntimeError("the insert gave no row id")
    return int(cur.lastrowid)
