"""Conversations and messages (DESIGN.md invariant 6: nothing typed is lost).

A user message is committed when sent. A reply is inserted as 'streaming' and its text
rewritten at most every FLUSH_S while tokens arrive, then closed as complete, stopped or
failed, with why it ended (`finish`: 'length' when cut at max tokens) and the seed it was
sampled with. WAL + synchronous=NORMAL means each commit survives the process being killed.

Regenerating keeps the earlier replies at that place as alternatives (migration 10): they
share `alt_of` (the id of the first reply there) and exactly one is `active` — the one
shown and the one the model sees as history. A conversation is shown in place order
(`COALESCE(alt_of, id)`), so an alternative written later still sits where it belongs.
A deleted chat is first put aside (`trash`, undoable) and purged later.
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

# No "seed": a chat without one samples a fresh seed for every reply (so Regenerate gives
# another answer); a seed set by the person makes replies reproducible.
DEFAULT_PARAMS: dict[str, Any] = {
    "temperature": 0.7, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1,
    "max_tokens": 512, "n_ctx": 4096,
}
POSITION = "COALESCE(alt_of, id)"  # where a message sits in its conversation


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
    seed: int | None = None
    finish: str | None = None  # 'stop', 'length' (cut at max tokens), 'stopped'; None before migration 10
    alt_of: int | None = None
    alt_index: int = 1  # this reply's place among the alternatives at its position (1-based)
    alt_count: int = 1

    @property
    def position(self) -> int:
        return self.alt_of or self.id

    @property
    def cut_at_max_tokens(self) -> bool:
        return self.role == "assistant" and self.status == "complete" and self.finish == "length"


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
        conv.messages = self._active(conversation_id)
        return conv

    def _active(self, conversation_id: int) -> builtins.list[Message]:
        """The messages shown (and sent to the model): the active one at each place, in place
        order, each reply knowing which of how many alternatives it is."""
        msgs = [self._msg(m) for m in self.db.query(
            f"SELECT * FROM messages WHERE conversation_id = ? AND active = 1 ORDER BY {POSITION}, id",
            [conversation_id])]
        groups = [m.position for m in msgs if m.role == "assistant"]
        if groups:
            marks = ",".join("?" * len(groups))
            rows = self.db.execute(
                f"SELECT {POSITION} AS pos, id FROM messages WHERE conversation_id = ? AND {POSITION} IN ({marks})"
                " ORDER BY id", [conversation_id, *groups]).fetchall()
            ids: dict[int, builtins.list[int]] = {}
            for pos, mid in rows:
                ids.setdefault(pos, []).append(mid)
            for m in msgs:
                if m.role == "assistant":
                    group = ids.get(m.position, [m.id])
                    m.alt_count, m.alt_index = len(group), group.index(m.id) + 1 if m.id in group else 1
        return msgs

    def alternatives(self, message_id: int) -> builtins.list[Message]:
        """Every reply written at this reply's place, oldest first."""
        row = self.db.execute("SELECT conversation_id, COALESCE(alt_of, id) FROM messages WHERE id = ?",
                              [message_id]).fetchone()
        if row is None:
            return []
        return [self._msg(r) for r in self.db.query(
            f"SELECT * FROM messages WHERE conversation_id = ? AND {POSITION} = ? ORDER BY id", list(row))]

    def choose_alternative(self, message_id: int) -> None:
        """Makes this reply the one shown and sent as history at its place."""
        alts = self.alternatives(message_id)
        if not any(m.id == message_id for m in alts):
            raise InputError(f"reply {message_id}", "does not exist")
        with self.db.conn:
            for m in alts:
                self.db.execute("UPDATE messages SET active = ? WHERE id = ?", [int(m.id == message_id), m.id])
        self.db.execute("UPDATE conversations SET updated_at=? WHERE id=?", [now(), alts[0].conversation_id])

    def list(self) -> builtins.list[Conversation]:
        return [Conversation(r["id"], r["title"], r["model_id"], r["system_prompt"], json.loads(r["params"]),
                             r["created_at"], r["updated_at"])
                for r in self.db.query("SELECT * FROM conversations WHERE deleted_at IS NULL"
                                       " ORDER BY updated_at DESC, id DESC")]

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
        """Deletes a chat for good (the CLI's `chats delete`; the app trashes first)."""
        self.get(conversation_id)
        self.db.execute("DELETE FROM conversations WHERE id=?", [conversation_id])

    def trash(self, conversation_id: int) -> None:
        """Puts a chat aside: gone from lists and searches, back with `restore` until purged."""
        self.get(conversation_id)
        self.db.execute("UPDATE conversations SET deleted_at=? WHERE id=?", [now(), conversation_id])

    def restore(self, conversation_id: int) -> None:
        self.get(conversation_id)
        self.db.execute("UPDATE conversations SET deleted_at=NULL WHERE id=?", [conversation_id])

    def is_trashed(self, conversation_id: int) -> bool:
        row = self.db.execute("SELECT deleted_at FROM conversations WHERE id=?", [conversation_id]).fetchone()
        return bool(row and row[0])

    def purge_trashed(self, conversation_id: int | None = None, older_than_s: float = 0.0) -> int:
        """Deletes trashed chats for good: one, or every one put aside more than `older_than_s` ago."""
        if conversation_id is not None:
            cur = self.db.execute("DELETE FROM conversations WHERE id=? AND deleted_at IS NOT NULL",
                                  [conversation_id])
            return int(cur.rowcount)
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - older_than_s))
        cur = self.db.execute("DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                              [cutoff + "\uffff"])
        return int(cur.rowcount)

    # -- messages
    def add_user(self, conversation_id: int, text: str) -> int:
        t = now()
        cur = self.db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, created_at, updated_at)"
            " VALUES (?, 'user', ?, 'complete', ?, ?)", [conversation_id, text, t, t])
        self.db.execute("UPDATE conversations SET updated_at=? WHERE id=?", [t, conversation_id])
        return _rowid(cur)

    def start_reply(self, conversation_id: int, seed: int | None = None,
                    alternative_to: int | None = None) -> "ReplyWriter":
        """A new reply, streaming; `alternative_to` (a reply) makes it another answer at that
        reply's place, the active one, keeping the earlier ones to flip back to."""
        t = now()
        alt_of = None
        if alternative_to is not None:
            row = self.db.execute("SELECT COALESCE(alt_of, id) FROM messages WHERE id=? AND conversation_id=?",
                                  [alternative_to, conversation_id]).fetchone()
            if row is None:
                raise InputError(f"reply {alternative_to}", f"is not in chat {conversation_id}")
            alt_of = int(row[0])
            self.db.execute(f"UPDATE messages SET active=0 WHERE conversation_id=? AND {POSITION}=?",
                            [conversation_id, alt_of])
        cur = self.db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, writer_pid, created_at, updated_at,"
            " seed, alt_of, active) VALUES (?, 'assistant', '', 'streaming', ?, ?, ?, ?, ?, 1)",
            [conversation_id, os.getpid(), t, t, seed, alt_of])
        self.db.execute("UPDATE conversations SET updated_at=? WHERE id=?", [t, conversation_id])
        return ReplyWriter(self.db, _rowid(cur))

    def resume_reply(self, message_id: int) -> "ReplyWriter":
        """Goes on writing a finished reply (Continue after max tokens): same row, its text kept."""
        row = self.db.execute("SELECT content FROM messages WHERE id=? AND role='assistant'", [message_id]).fetchone()
        if row is None:
            raise InputError(f"reply {message_id}", "does not exist")
        self.db.execute("UPDATE messages SET status='streaming', writer_pid=?, updated_at=? WHERE id=?",
                        [os.getpid(), now(), message_id])
        writer = ReplyWriter(self.db, message_id)
        writer.text = row[0]
        return writer

    def delete_from(self, conversation_id: int, message_id: int) -> None:
        """Drops a message and everything after it, alternatives included (edit-and-resend)."""
        row = self.db.execute("SELECT COALESCE(alt_of, id) FROM messages WHERE id=?", [message_id]).fetchone()
        pos = int(row[0]) if row else message_id
        self.db.execute(f"DELETE FROM messages WHERE conversation_id=? AND {POSITION}>=?", [conversation_id, pos])

    def delete_message(self, message_id: int) -> None:
        """Drops one reply (a failed or empty one that regenerating replaces rather than keeps)."""
        self.db.execute("DELETE FROM messages WHERE id=?", [message_id])

    def edit(self, message_id: int, text: str) -> None:
        self.db.execute("UPDATE messages SET content=?, updated_at=? WHERE id=?", [text, now(), message_id])

    def search(self, text: str) -> builtins.list[tuple[Conversation, Message]]:  # `list` is a method here
        terms = " ".join('"' + t.replace('"', '""') + '"' for t in text.split())
        if not terms:
            return []
        rows = self.db.query(
            "SELECT m.* FROM messages_fts f JOIN messages m ON m.id = f.rowid"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE messages_fts MATCH ? AND c.deleted_at IS NULL ORDER BY m.id DESC LIMIT 200", [terms])
        out = []
        for r in rows:
            msg = self._msg(r)
            conv = self.get(msg.conversation_id)
            conv.messages = []
            out.append((conv, msg))
        title_hits = self.db.query("SELECT id FROM conversations WHERE deleted_at IS NULL AND title LIKE ? ESCAPE '\\'",
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
                       json.loads(r["timings"]) if r["timings"] else None,
                       r.get("seed"), r.get("finish"), r.get("alt_of"))


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
              timings: dict | None = None, finish: str | None = None) -> None:
        self.db.execute(
            "UPDATE messages SET content=?, status=?, reason=?, usage=?, timings=?, finish=?, updated_at=?"
            " WHERE id=?",
            [self.text, status, reason, json.dumps(usage) if usage else None,
             json.dumps(timings) if timings else None, finish, now(), self.id])
        self.dirty = False


def export_markdown(conv: Conversation) -> str:
    lines = [f"# {conv.title}", "", f"- model: {conv.model_id or '(none)'}", f"- created: {conv.created_at}"]
    if conv.system_prompt:
        lines += [f"- system prompt: {conv.system_prompt}"]
    lines.append("")
    for m in conv.messages:
        who = "You" if m.role == "user" else "Assistant"
        note = "" if m.status == "complete" else f" _({m.status}{': ' + m.reason if m.reason else ''})_"
        if m.cut_at_max_tokens:
            note = " _(stopped at max tokens)_"
        lines += [f"## {who}{note}", "", m.content, ""]
    return "\n".join(lines)


def export_json(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id, "title": conv.title, "model_id": conv.model_id, "system_prompt": conv.system_prompt,
        "params": conv.params, "created_at": conv.created_at, "updated_at": conv.updated_at,
        "messages": [{"id": m.id, "role": m.role, "content": m.content, "status": m.status, "reason": m.reason,
                      "created_at": m.created_at, "usage": m.usage, "timings": m.timings, "seed": m.seed,
                      "finish": m.finish, "alternative": [m.alt_index, m.alt_count]} for m in conv.messages],
    }


def _rowid(cur: Any) -> int:
    """The id SQLite gave the row just inserted (always set after an INSERT)."""
    if cur.lastrowid is None:
        raise RuntimeError("the insert gave no row id")
    return int(cur.lastrowid)
