"""A fake engine, so most GUI tests need neither llama.cpp nor a worker process.

Like Dangerzone's dummy isolation provider, it stands in behind the same interface the
real engine has (`runtime.engine.EngineLike`): a chat session still checks the installed
file, reads its GGUF header, estimates memory and picks the chat template exactly as for
the real worker, and hands the fake the checked descriptor. Only the engine is fake:
`load_checked` reads the GGUF magic from that descriptor, `generate` streams a fixed
reply word by word, instantly and deterministically, and a test can hold a reply
mid-stream (`hold_after`), release it, stop it, or crash the "worker" (`crash()`: the
pending and the next request fail as the real engine's do after a SIGKILL, and the next
load starts a fresh one).

    app = Vetted(engine_factory=FakeEngine)             # defaults
    engines = FakeEngines(reply="Hello **there**.")     # a factory that keeps what it made
    app = Vetted(engine_factory=engines)  ...  engines.last.crash()
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import threading
from collections.abc import Callable
from typing import Any

from vetted.runtime.defaults import EngineSettings
from vetted.runtime.engine import EngineCrashed, EngineError, Reply, describe_exit
from vetted.store.installed import CheckedFile

DEFAULT_REPLY = ("Sure. Here is a **short** answer from the fake engine: every byte was checked "
                 "before this ran, and nothing here comes from a real model.")
_pids = itertools.count(900_000)  # never a real process: crash() is the only way to kill one


class FakeWorker:
    """Stands for the worker process: alive until closed or crashed."""

    def __init__(self) -> None:
        self.pid = next(_pids)
        self.alive = True


class FakeEngine:
    """What ChatSession and the spot-check call, answered at once from memory."""

    def __init__(self, reply: str | Callable[[list[dict[str, str]]], str] = DEFAULT_REPLY,
                 hold_after: int | None = None, settings: EngineSettings | None = None) -> None:
        """`reply`: the text (or a function of the chat's messages) streamed word by word;
        `hold_after`: after that many pieces, wait until `release()`, `stop()` or `crash()`."""
        self.settings = settings or EngineSettings()
        self.reply = reply
        self.hold_after = hold_after
        self.worker: FakeWorker | None = None
        self.loaded_identity: Any = None
        self.loaded_settings: EngineSettings | None = None
        self.load_s = 0.0
        self.loads = 0
        self.generations = 0
        self.prompts: list[list[dict[str, str]]] = []
        self._messages: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._go = threading.Event()
        self._crashed = False
        self.holding = threading.Event()  # set while a reply waits at `hold_after`

    # -- what a chat session calls
    def load_checked(self, checked: CheckedFile, settings: EngineSettings | None = None) -> float:
        """Reads the header from the checked descriptor (as the worker maps it), nothing else."""
        self.close()
        if os.pread(checked.fd, 4, 0) != b"GGUF":
            raise EngineError(f"loading {checked.name}", "not a GGUF file")
        self.worker, self._crashed = FakeWorker(), False
        self.loaded_identity, self.loaded_settings = checked.identity, settings or self.settings
        self.loads += 1
        return self.load_s

    def render_prompt(self, template: str, messages: list[dict[str, str]], count: bool = True,
                      timeout: float | None = None) -> tuple[str, int | None]:
        self._ensure()
        self._messages = [dict(m) for m in messages]
        self.prompts.append(self._messages)
        prompt = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages) + "<|assistant|>"
        return prompt, self.count_tokens(prompt) if count else None

    def generate(self, prompt: str, params: dict[str, Any], on_token: Callable[[str], None] | None = None) -> Reply:
        w = self._ensure()
        self.generations += 1
        self._stop.clear()
        self._go.clear()
        text = self.reply(self._messages) if callable(self.reply) else self.reply
        pieces = re.findall(r"\S+\s*|\s+", text)[: int(params.get("max_tokens", 512))]
        out: list[str] = []
        finish = "length" if len(pieces) == int(params.get("max_tokens", 512)) else "stop"
        for i, piece in enumerate(pieces):
            if self.hold_after is not None and i == self.hold_after:
                self.holding.set()
                while not (self._go.wait(0.01) or self._stop.is_set() or self._crashed):
                    pass
                self.holding.clear()
            if self._crashed or not w.alive:
                raise self._crash_error()
            if self._stop.is_set():
                finish = "stopped"
                break
            out.append(piece)
            if on_token:
                on_token(piece)
        n = len(out)
        return Reply("".join(out), finish, {"prompt_tokens": self.count_tokens(prompt), "completion_tokens": n},
                     {"ttft_s": 0.0, "total_s": 0.0, "tokens_per_s": 1000.0 if n else 0.0})

    def stop(self) -> None:
        self._stop.set()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        if self.worker is not None:
            self.worker.alive = False
            self.worker = None

    @property
    def pid(self) -> int | None:
        return self.worker.pid if self.worker and self.worker.alive else None

    # -- what a test does
    def release(self) -> None:
        """Lets a reply held at `hold_after` go on to its end."""
        self._go.set()

    def crash(self) -> None:
        """As if the worker were killed: the pending request and the next fail like the real engine's."""
        self._crashed = True
        if self.worker is not None:
            self.worker.alive = False

    # -- internals
    def _ensure(self) -> FakeWorker:
        if self._crashed:
            raise self._crash_error()
        if self.worker is None or not self.worker.alive:
            raise EngineCrashed("the engine", "is not running (it stopped or crashed)",
                                "load the model again; your chats are safe")
        return self.worker

    def _crash_error(self) -> EngineCrashed:
        return EngineCrashed("the engine process", describe_exit(-signal.SIGKILL),
                             "your chats are safe; the next request starts a fresh engine")


class FakeEngines:
    """An engine factory (`Vetted(engine_factory=...)`) that keeps every engine it made."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.made: list[FakeEngine] = []

    def __call__(self) -> FakeEngine:
        engine = FakeEngine(**self.options)
        self.made.append(engine)
        return engine

    @property
    def last(self) -> FakeEngine:
        return self.made[-1]
