"""A chat turn end to end: persist the message, pick the template, fit the context,
stream the reply into the database, and close it with its outcome.

Each reply is sampled with a seed of its own: the chat's seed when the person fixed one
(reproducible), else a fresh random one, stored with the reply either way. Regenerate
keeps the earlier reply as an alternative; Continue extends a reply cut at max tokens,
the engine going on from the conversation with that reply's text as the start of its turn.
"""

from __future__ import annotations

import random
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

    @property
    def finish(self) -> str | None:
        """'stop' (the model ended its turn), 'length' (cut at max tokens), 'stopped' (by the person)."""
        return self.message.finish


def fixed_seed(params: dict[str, Any]) -> int | None:
    """The seed the person fixed for a chat, or None ("random": a fresh seed per reply)."""
    seed = params.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return None
    return seed


def reply_seed(params: dict[str, Any]) -> int:
    fixed = fixed_seed(params)
    return fixed if fixed is not None else random.SystemRandom().randrange(1, 2**31 - 1)


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
        """Another answer to the last message: the last reply is kept as an alternative (one
        that failed or came out empty is replaced), everything the model sees is unchanged."""
        conv = self.chats.get(conversation_id)
        last = next((m for m in reversed(conv.messages) if m.role == "assistant"), None)
        if last is None or conv.messages[-1].id != last.id:
            raise Refused("regenerate", "this chat has no reply to its last message yet")
        if last.status == "failed" or not last.content:
            self.chats.delete_message(last.id)
            return self._reply(conversation_id, on_token, alternative_to=last.alt_of)
        return self._reply(conversation_id, on_token, alternative_to=last.id)

    def continue_reply(self, conversation_id: int, on_token: Callable[[str], None] | None = None) -> TurnResult:
        """Extends the last reply (one cut at max tokens, or stopped): the model goes on from
        the conversation with that reply's text as the start of its turn."""
        conv = self.chats.get(conversation_id)
        last = conv.messages[-1] if conv.messages else None
        if last is None or last.role != "assistant" or last.status not in ("complete", "stopped", "incomplete") \
                or not last.content:
            raise Refused("continue", "the last message is not a reply that can be continued")
        return self._reply(conversation_id, on_token, resume=last)

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
                                      seed=fixed_seed(conv.params) or 42).resolved(info.context_length)
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

    def _messages(self, conv: Conversation, skip: int | None = None) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        if conv.system_prompt:
            out.append({"role": "system", "content": conv.system_prompt})
        for m in conv.messages:
            if m.id == skip or (m.role == "assistant" and (m.status in ("failed", "streaming") or not m.content)):
                continue
            out.append({"role": m.role, "content": m.content})
        return out

    def render(self, conv: Conversation, resume: Message | None = None) -> tuple[str, int]:
        """Renders the prompt, dropping the oldest turns while it does not leave room to reply.
        With `resume`, the prompt asks for that reply's turn and already holds its text."""
        assert self._template is not None
        msgs = self._messages(conv, skip=resume.id if resume else None)
        tail = resume.content if resume else ""
        tail_n = self.engine.count_tokens(tail) if tail else 0
        n_ctx = self.engine.loaded_settings.n_ctx if self.engine.loaded_settings else 4096
        reserve = min(int(conv.params.get("max_tokens", 512)), n_ctx // 4)
        dropped = 0
        while True:
            prompt, counted = self.engine.render_prompt(self._template[0], msgs)
            n = (int(counted) if counted is not None else self.engine.count_tokens(prompt)) + tail_n
            if n + reserve <= n_ctx:
                return prompt + tail, dropped
            first_turn = 1 if msgs and msgs[0]["role"] == "system" else 0
            if len(msgs) - first_turn <= 1:
                raise Refused("context", f"your message needs {n} tokens plus room to reply ({reserve}); "
                              f"the context holds {n_ctx}", "shorten the message or raise the context length")
            del msgs[first_turn]
            dropped += 1

    def _reply(self, conversation_id: int, on_token: Callable[[str], None] | None,
               alternative_to: int | None = None, resume: Message | None = None) -> TurnResult:
        conv = self.chats.get(conversation_id)
        seed = reply_seed(conv.params)
        if resume is not None:
            writer = self.chats.resume_reply(resume.id)
            seed = resume.seed if resume.seed is not None and fixed_seed(conv.params) is None else seed
        else:
            writer = self.chats.start_reply(conversation_id, seed, alternative_to)
        try:
            self.ensure_model(conv)
            prompt, dropped = self.render(conv, resume)
            params = {k: conv.params[k] for k in GEN_KEYS if k in conv.params}
            params["seed"] = seed

            def token(t: str) -> None:
                writer.append(t)
                if on_token:
                    on_token(t)

            reply = self.engine.generate(prompt, params, token)
        except (EngineCrashed, EngineError, Refused) as exc:
            self._close_failed(writer, resume, exc.line())
            raise
        except BaseException as exc:  # Ctrl-C and the like: keep what streamed
            self._close_failed(writer, resume, f"interrupted ({type(exc).__name__})")
            raise
        status = "stopped" if reply.finish == "stopped" else "complete"
        note = f"{dropped} oldest message(s) left out to fit the context" if dropped else None
        usage = dict(reply.usage)
        if resume is not None and resume.usage:  # the reply's tokens in all, over its continuations
            usage["completion_tokens"] = int(usage.get("completion_tokens", 0)) + \
                int(resume.usage.get("completion_tokens", 0))
        writer.close(status, note, usage, reply.timings, reply.finish or None)
        msg = next(m for m in self.chats.get(conversation_id).messages if m.id == writer.id)
        return TurnResult(msg, usage, reply.timings, dropped)


    @staticmethod
    def _close_failed(writer: Any, resume: Message | None, why: str) -> None:
        """A failed turn is kept as such; a failed Continue keeps the reply it was extending
        (with what it added), as it was, the reason noted."""
        if resume is None:
            writer.close("failed", why)
        else:
            writer.close("stopped" if resume.status == "stopped" else "incomplete", f"continuing failed: {why}",
                         resume.usage, resume.timings, resume.finish)


def memory_estimate_for(db: sqlite_utils.Database, model_id: str, n_ctx: int) -> str:
    """From the header of the file as checked (fast path), never of an unchecked one."""
    with installed.open_checked(db, model_id, purpose="estimate", audit_accept=False) as checked:
        gguf = checked.gguf()
        info = read_gguf_fd(gguf.fd, gguf.name)
    e = estimate(info, min(n_ctx, info.context_length or n_ctx))
    return f"{e.total / MiB:.0f} MiB"


NO_TEMPLATE = "no chat template: a base model completes text, it does not chat"
_header_templates: dict[tuple[str, int, int, int], bool] = {}  # (path, inode, size, mtime) -> has a template


def chat_capability(db: sqlite_utils.Database, model_id: str,
                    catalog_template: Callable[[], str | None] | None = None) -> tuple[bool, str]:
    """Can `model_id` chat? The same choice `ensure_model` makes before a turn (the catalog's
    curated template, else the file's own, templates.choose), decided without loading it:
    from the installed entry, else the GGUF header of the installed file (only the header
    is read, once per file version). A model not installed is judged by its catalog entry
    (`catalog_template`); without a curated template that must wait for the file."""
    from vetted.errors import VettedError
    from vetted.runtime.gguf_meta import read_gguf

    try:
        model = installed.get(db, model_id)
    except VettedError:
        model = None
    if model is None:
        try:
            if catalog_template is not None and catalog_template():
                return True, ""
        except VettedError:
            pass
        return False, "not installed: whether it can chat is known once it is downloaded"
    if (model.entry.get("runtime") or {}).get("chat_template"):
        return True, ""
    try:
        path = model.gguf().path
        st = path.stat()
        key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _header_templates:
            _header_templates[key] = read_gguf(path).chat_template is not None
        has = _header_templates[key]
    except (OSError, VettedError) as exc:
        return False, f"its file cannot be read ({exc})"
    return (True, "") if has else (False, NO_TEMPLATE)
