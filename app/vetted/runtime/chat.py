"""A chat turn end to end: persist the message, pick the template, fit the context,
stream the reply into the database, and close it with its outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from vetted.errors import Refused
from vetted.runtime import templates
from vetted.runtime.defaults import EngineSettings
from vetted.runtime.engine import Engine, EngineCrashed, EngineError, EngineLike, load_verified
from vetted.runtime.gguf_meta import read_gguf_fd
from vetted.runtime.memory import MiB, estimate, fits
from vetted.store import installed
from vetted.store.chats import Chats, Conversation, Message

GEN_KEYS = ("temperature", "top_p", "top_k", "repeat_penalty", "max_tokens", "seed", "logit_bias")


@dataclass
class TurnResult:
    message: Message
    usage: dict[str, Any]
    timings: dict[str, Any]
    dropped_turns: int


class MemoryRefused(Refused):
    pass


class ChatSession:
    def __init__(self, db: sqlite_utils.Database, engine: EngineLike | None = None,
                 allow_tight_memory: bool = True,
                 gate: Callable[[sqlite_utils.Database, str, str], None] | None = None,
                 purpose: str = "chat") -> None:
        """`gate(db, model_id, purpose)` runs before every load and may refuse it: the
        application object enforces an organisation's policy there (core/policy_gate.py).
        `purpose` is "chat" or "spotcheck" (a spot-check may run before first use)."""
        self.db = db
        self.gate = gate
        self.purpose = purpose
        self.chats = Chats(db)
        self.engine: EngineLike = engine or Engine()
        self.allow_tight_memory = allow_tight_memory
        self._loaded: tuple[str, int] | None = None
        self._template: tuple[str, str] | None = None

    # -- public operations
    def send(self, conversation_id: int, text: str, on_token: Callable[[str], None] | None = None) -> TurnResult:
        self.chats.add_user(conversation_id, text)  # committed before anything can fail
        return self._reply(conversation_id, on_token)

    def regenerate(self, conversation_id: int, on_token: Callable[[str], None] | None = None) -> TurnResult:
        conv = self.chats.get(conversation_id)
        last = next((m for m in reversed(conv.messages) if m.role == "assistant"), None)
        if last is None:
            raise Refused("regenerate", "this chat has no reply yet")
        self.chats.delete_from(conversation_id, last.id)
        return self._reply(conversation_id, on_token)

    def edit_and_resend(self, conversation_id: int, message_id: int, text: str,
                        on_token: Callable[[str], None] | None = None) -> TurnResult:
        conv = self.chats.get(conversation_id)
        msg = next((m for m in conv.messages if m.id == message_id and m.role == "user"), None)
        if msg is None:
            raise Refused("edit", f"message {message_id} is not one of your messages in this chat")
        self.chats.delete_from(conversation_id, message_id)
        return self.send(conversation_id, text, on_token)

    def stop(self) -> None:
        self.engine.stop()

    def close(self) -> None:
        self.engine.close()

    def use_connection(self, db: sqlite_utils.Database) -> None:
        """Goes on over another connection to the same database, keeping the engine and
        the loaded model (a front end that closes each job's connection hands in the next)."""
        self.db = db
        self.chats = Chats(db)

    # -- internals
    def ensure_model(self, conv: Conversation) -> None:
        """Re-checks the model before every turn; (re)loads it through the checked descriptor.

        The GGUF header is parsed only after the file passed its check, from that same
        descriptor; the memory estimate comes from it before anything is loaded.
        """
        if not conv.model_id:
            raise Refused(f"chat {conv.id}", "has no model chosen", "pick an installed, verified model")
        n_ctx = int(conv.params.get("n_ctx", 4096))
        if self.gate is not None:
            self.gate(self.db, conv.model_id, self.purpose)
        with installed.open_checked(self.db, conv.model_id, purpose="load") as checked:
            gguf = checked.gguf()
            worker = self.engine.worker
            if self._loaded == (conv.model_id, n_ctx) and worker is not None and worker.alive \
                    and self.engine.loaded_identity == gguf.identity:
                return  # the running engine maps exactly the file that was just checked
            info = read_gguf_fd(gguf.fd, gguf.name)
            settings = EngineSettings(n_ctx=n_ctx, n_threads=int(conv.params.get("n_threads", 0)),
                                      n_batch=int(conv.params.get("n_batch", 512)),
                                      seed=int(conv.params.get("seed", 42))).resolved(info.context_length)
            need = estimate(info, settings.n_ctx, settings.n_batch)
            fit = fits(need.total)
            if fit.verdict == "too_big" or (fit.verdict == "tight" and not self.allow_tight_memory):
                raise MemoryRefused(f"memory for {conv.model_id}", f"{fit.message()}; {need.describe()}",
                                    "choose a smaller context length or a smaller model, or close other programs")
            self._loaded = None
            load_verified(self.engine, self.db, conv.model_id, settings, checked)
            self._loaded = (conv.model_id, n_ctx)
            self._template = templates.choose(checked.model.entry.get("runtime", {}).get("chat_template"),
                                              info.chat_template)

    def _messages(self, conv: Conversation) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        if conv.system_prompt:
            out.append({"role": "system", "content": conv.system_prompt})
        for m in conv.messages:
            if m.role == "assistant" and (m.status == "failed" or not m.content):
                continue
            out.append({"role": m.role, "content": m.content})
        return out

    def render(self, conv: Conversation) -> tuple[str, int]:
        """Renders the prompt, dropping the oldest turns while it does not leave room to reply."""
        assert self._template is not None
        msgs = self._messages(conv)
        n_ctx = self.engine.loaded_settings.n_ctx if self.engine.loaded_settings else 4096
        reserve = min(int(conv.params.get("max_tokens", 512)), n_ctx // 4)
        dropped = 0
        while True:
            prompt, counted = self.engine.render_prompt(self._template[0], msgs)
            n = int(counted) if counted is not None else self.engine.count_tokens(prompt)
            if n + reserve <= n_ctx:
                return prompt, dropped
            first_turn = 1 if msgs and msgs[0]["role"] == "system" else 0
            if len(msgs) - first_turn <= 1:
                raise Refused("context", f"your message needs {n} tokens plus room to reply ({reserve}); "
                              f"the context holds {n_ctx}", "shorten the message or raise the context length")
            del msgs[first_turn]
            dropped += 1

    def _reply(self, conversation_id: int, on_token: Callable[[str], None] | None) -> TurnResult:
        conv = self.chats.get(conversation_id)
        writer = self.chats.start_reply(conversation_id)
        try:
            self.ensure_model(conv)
            prompt, dropped = self.render(conv)
            params = {k: conv.params[k] for k in GEN_KEYS if k in conv.params}

            def token(t: str) -> None:
                writer.append(t)
                if on_token:
                    on_token(t)

            reply = self.engine.generate(prompt, params, token)
        except (EngineCrashed, EngineError, Refused) as exc:
            writer.close("failed", exc.line())
            raise
        except BaseException as exc:  # Ctrl-C and the like: keep what streamed
            writer.close("failed", f"interrupted ({type(exc).__name__})")
            raise
        status = "stopped" if reply.finish == "stopped" else "complete"
        note = f"{dropped} oldest message(s) left out to fit the context" if dropped else None
        writer.close(status, note, reply.usage, reply.timings)
        msg = next(m for m in self.chats.get(conversation_id).messages if m.id == writer.id)
        return TurnResult(msg, reply.usage, reply.timings, dropped)


def memory_estimate_for(db: sqlite_utils.Database, model_id: str, n_ctx: int) -> str:
    """From the header of the file as checked (fast path), never of an unchecked one."""
    with installed.open_checked(db, model_id, purpose="estimate", audit_accept=False) as checked:
        gguf = checked.gguf()
        info = read_gguf_fd(gguf.fd, gguf.name)
    e = estimate(info, min(n_ctx, info.context_length or n_ctx))
    return f"{e.total / MiB:.0f} MiB"
