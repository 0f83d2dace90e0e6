"""The local API's engine side: one lane, a bounded fair queue, the same checks as chats.

Why one lane: on a laptop the engine already uses every core for one generation, and a
second model copy would double memory; so requests run one at a time on one worker
(the same isolated llama.cpp process chats use), first come first served, and a bounded
number may wait (`queue_size`, default 16). One more is refused (`QueueFull`) instead of
piling up requests no client will wait for.

Every request goes through what a chat turn goes through before its model runs: the
organisation's policy gate, the store's re-check of the file through one descriptor
(fast path, or a re-hash), a load of *that* descriptor and the identity check after it
(`runtime.engine.load_verified`). Loads and refusals are audited with "local API" as the
one who asked. Nothing is written to the person's chats.

A request is cancelled when its client goes away: still waiting, it leaves the queue;
running, the worker is told to stop before its next token (`Engine.stop`), and the lane
is free for the next request. A worker that dies mid-request (`kill -9`, OOM) fails that
request; the next one starts a fresh worker.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vetted.errors import InputError, Refused, VettedError
from vetted.store import audit, installed

if TYPE_CHECKING:
    from vetted.core.app import Vetted

WHO = "local API"  # the audit log's "who" for everything the API server does


class ModelNotFound(InputError):
    """No installed model has that id."""


class QueueFull(Refused):
    """As many requests wait as the queue holds."""


class PromptTooLong(Refused):
    """The prompt does not fit the context."""


class NotSupported(InputError):
    """A request for something this server does not do (it says so rather than ignore it)."""


class Cancelled(VettedError):
    """The client went away before its request ran."""


@dataclass
class Generation:
    """One request's work. `messages` (chat) or `prompt` (completion); `params` are the
    engine's (max_tokens, temperature, top_p, top_k, repeat_penalty, seed, stop, logit_bias)."""

    model: str
    params: dict[str, Any]
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    on_text: Callable[[str], None] | None = None  # called on the lane's thread
    cancelled: bool = False
    cancel_at: float | None = None  # time.monotonic() when the client went away
    ended_at: float | None = None  # ... and when the worker reported the generation over
    future: Future[Any] | None = field(default=None, repr=False)


@dataclass
class Output:
    text: str
    finish: str  # "stop", "length", "stopped" (its client went away)
    prompt_tokens: int
    completion_tokens: int
    seed: int
    timings: dict[str, Any]


class LocalApi:
    def __init__(self, app: "Vetted", queue_size: int = 16, n_ctx: int = 4096) -> None:
        if queue_size < 1:
            raise InputError("queue size", f"must be at least 1, not {queue_size}")
        self.app = app
        self.queue_size = queue_size
        self.n_ctx = n_ctx
        self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vetted-api-engine")
        self._lock = threading.Lock()
        self._pending = 0  # waiting + running
        self._current: Generation | None = None
        self._engine: Any = None
        self._loaded: tuple[str, int] | None = None
        self._template: str | None = None
        self.served = 0
        self._closing = False

    # -- what the server lists -------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """Installed models whose last check verified them (refused ones are not offered)."""
        out = []
        for m in installed.all_models(self.app.db):
            if m.state != "verified":
                continue
            out.append({"id": m.model_id, "name": m.name, "publisher": str(m.entry.get("publisher") or ""),
                        "created": _epoch(m.verified_at)})
        return out

    def require_model(self, model_id: str) -> None:
        """Refuses an id no installed model has (audited), before it takes a queue place."""
        if not isinstance(model_id, str) or not model_id:
            raise InputError("model", "is required (the catalog model id, see GET /v1/models)")
        try:
            installed.get(self.app.db, model_id)
        except InputError:
            shown = model_id if len(model_id) <= 200 else model_id[:200] + "…"
            exc = ModelNotFound(f"model {shown!r}", "is not installed here",
                                "GET /v1/models lists the installed, verified models")
            audit.record(self.app.db, "api.request", model_id[:200], "refused", exc.line(), WHO)
            raise exc from None

    # -- the queue -------------------------------------------------------------------------

    def submit(self, gen: Generation) -> Future[Output]:
        with self._lock:
            if self._pending >= self.queue_size + 1:  # one running, queue_size waiting
                raise QueueFull("the local API's queue", f"{self.queue_size} requests are already waiting",
                                "retry shortly")
            self._pending += 1
        fut = self._lane.submit(self._run, gen)
        gen.future = fut
        fut.add_done_callback(self._release)
        return fut

    def _release(self, _fut: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    def cancel(self, gen: Generation) -> None:
        """The client went away: leave the queue, or stop the worker before its next token."""
        if gen.cancelled:
            return
        gen.cancelled, gen.cancel_at = True, time.monotonic()
        if gen.future is not None and gen.future.cancel():
            return
        with self._lock:
            if self._current is gen and self._engine is not None:
                self._engine.stop()  # else on_text stops it at its first token

    @property
    def pending(self) -> int:
        return self._pending

    def worker_pid(self) -> int | None:
        return self._engine.pid if self._engine is not None else None

    def close(self) -> None:
        """Stops what runs, drops what waits, and ends the worker (on the lane's thread)."""
        self._closing = True
        with self._lock:
            current = self._current
        if current is not None:
            self.cancel(current)
        self._lane.submit(self._close_engine)
        self._lane.shutdown(wait=True)

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.app.close_thread()

    # -- on the lane's thread --------------------------------------------------------------

    def _run(self, gen: Generation) -> Output:
        if gen.cancelled or self._closing:
            raise Cancelled("request", "its client went away while it waited")
        with self._lock:
            self._current = gen
        try:
            return self._generate(gen)
        finally:
            with self._lock:
                self._current = None
            gen.ended_at = time.monotonic()

    def _generate(self, gen: Generation) -> Output:
        from vetted.runtime.engine import EngineError

        prompt = self._prepare(gen)
        seed = gen.params.get("seed")
        if seed is None:
            seed = random.SystemRandom().randrange(1, 2**31 - 1)
        params = {**gen.params, "seed": seed, "fresh": True}  # reproducible: see worker.op_generate
        if gen.cancelled:
            return Output("", "stopped", 0, 0, seed, {})
        engine = self._engine

        def on_token(text: str) -> None:
            if gen.cancelled:
                engine.stop()
                return
            if gen.on_text is not None:
                gen.on_text(text)

        try:
            reply = engine.generate(prompt, params, on_token)
        except EngineError as exc:
            detail = getattr(exc, "detail", None) or {}
            if getattr(exc, "kind", None) == "context_overflow":
                raise PromptTooLong("prompt", f"is {detail.get('prompt_tokens')} tokens; the context holds "
                                    f"{detail.get('n_ctx')}", "shorten it") from None
            raise
        self.served += 1
        finish = "stopped" if gen.cancelled or reply.finish == "stopped" else reply.finish
        return Output(reply.text, finish, int(reply.usage.get("prompt_tokens", 0)),
                      int(reply.usage.get("completion_tokens", 0)), int(seed), dict(reply.timings))

    def _prepare(self, gen: Generation) -> str:
        """The chat turn's pre-load path (runtime/chat.py `ensure_model`), audited as the
        local API's: gate, re-check, load that descriptor; then the prompt."""
        db = self.app.db
        try:
            self._ensure_model(db, gen.model)
        except VettedError as exc:
            audit.record(db, "api.load", gen.model, "refused", exc.line(), WHO)
            raise
        if gen.messages is None:
            return gen.prompt or ""
        if self._template is None:
            from vetted.runtime.chat import NO_TEMPLATE

            raise NotSupported(f"model {gen.model}", NO_TEMPLATE, "use /v1/completions with a raw prompt")
        text, count = self._engine.render_prompt(self._template, gen.messages)
        n_ctx = self._engine.loaded_settings.n_ctx if self._engine.loaded_settings else self.n_ctx
        if count is not None and int(count) + 1 > n_ctx:
            raise PromptTooLong("messages", f"are {count} tokens once rendered; the context holds {n_ctx}",
                                "shorten the conversation")
        return str(text)

    def _ensure_model(self, db: Any, model_id: str) -> None:
        from vetted.runtime import templates
        from vetted.runtime.defaults import EngineSettings
        from vetted.runtime.engine import Engine, load_verified
        from vetted.runtime.gguf_meta import read_gguf_fd
        from vetted.runtime.memory import estimate, fits

        self.app.gate().gate_load(db, model_id, "chat")
        if self._engine is None:
            self._engine = self.app.engine_factory() if self.app.engine_factory else Engine()
        engine = self._engine
        with installed.open_checked(db, model_id, purpose="load") as checked:
            gguf = checked.gguf()
            worker = engine.worker
            if self._loaded == (model_id, self.n_ctx) and worker is not None and worker.alive \
                    and engine.loaded_identity == gguf.identity:
                return  # the running engine maps exactly the file that was just checked
            info = read_gguf_fd(gguf.fd, gguf.name)
            settings = EngineSettings(n_ctx=self.n_ctx).resolved(info.context_length)
            need = estimate(info, settings.n_ctx, settings.n_batch)
            fit = fits(need.total)
            if fit.verdict == "too_big":
                raise Refused(f"memory for {model_id}", f"{fit.message()}; {need.describe()}",
                              "use a smaller model or context (n_ctx in the API settings)")
            self._loaded = None
            load_verified(engine, db, model_id, settings, checked)
            self._loaded = (model_id, self.n_ctx)
            try:
                self._template = templates.choose(checked.model.entry.get("runtime", {}).get("chat_template"),
                                                  info.chat_template)[0]
            except Refused:
                self._template = None
        audit.record(db, "api.load", model_id, "accepted",
                     f"loaded for the local API (context {settings.n_ctx})", WHO)


def _epoch(when: Any) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp())
    except (TypeError, ValueError):
        return 0
