"""The caller's side of the worker: start it, load a verified model, stream a reply.

One worker process per loaded model. Calls are plain callables with callbacks, so the
CLI uses them directly and the GUI adapts them to Qt signals on a thread. If the worker
dies (segfault, OOM kill, `kill -9`), the pending request gets an `EngineCrashed` naming
the signal or exit code, and the next request starts a fresh worker.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vetted.errors import Refused, VettedError
from vetted.runtime import protocol
from vetted.runtime.defaults import EngineSettings
from vetted.store.installed import CheckedFile, CheckedModel, FileIdentity

RENDER_TIMEOUT_S = 10.0  # a chat template that renders longer than this is stopped


class EngineError(VettedError):
    """The engine refused or failed a request; the worker is still alive."""


class EngineCrashed(EngineError):
    """The worker process died; a fresh one is started on the next request."""


_SIGNAL_HINTS = {
    signal.SIGKILL: "killed (by the out-of-memory killer or another process); try a smaller model or context",
    signal.SIGSEGV: "crashed (segmentation fault); the model file may be malformed or unsupported",
    signal.SIGABRT: "aborted; the model file may be malformed or unsupported by this llama.cpp",
    signal.SIGBUS: "crashed (bus error); the model file may have changed or been truncated while loaded",
    signal.SIGFPE: "crashed (arithmetic error); the model file may be malformed",
    signal.SIGILL: "crashed (illegal instruction); this llama.cpp build may not suit this CPU",
}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is not responding"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"was stopped by signal {-code}"
        return f"was stopped by {sig.name}: {_SIGNAL_HINTS.get(sig, 'unexpected signal')}"
    return f"exited with code {code}"


@dataclass
class Reply:
    text: str = ""
    finish: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)


def worker_command() -> list[str]:
    """How the engine process is started.

    From a Python install: -I, isolated mode. `-m` would otherwise put the current folder
    first on sys.path, and a `vetted/` package there (a cloned repo, an unpacked archive)
    would become the engine and be handed the checked descriptor. -u: unbuffered (-I
    ignores PYTHON*). A frozen app (packaging/) has no `-m`: its executable runs the worker
    when given the hidden flag `--run-engine-worker` (launch.py), and its modules come only
    from inside the bundle, never from the current folder.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "--run-engine-worker"]
    return [sys.executable, "-I", "-u", "-m", "vetted.runtime.worker"]


class Worker:
    """One engine process and its protocol channel."""

    def __init__(self, pass_fds: tuple[int, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            worker_command(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=False, pass_fds=pass_fds,
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr_tail: list[str] = []
        threading.Thread(target=self._pump, daemon=True, name="vetted-engine-events").start()
        threading.Thread(target=self._pump_stderr, daemon=True, name="vetted-engine-stderr").start()
        self.write_lock = threading.Lock()
        try:
            first = self.next_event(timeout=60)
            if first.get("ev") != "ready":
                raise EngineCrashed("starting the engine", f"unexpected first message {first}")
        except BaseException:
            self.kill()  # never leave a half-started engine behind
            raise
        self.pid = int(first["pid"])

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(protocol.decode(line))
            except ValueError:
                continue
        self.events.put(None)  # EOF: the process is gone

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail = (self.stderr_tail + [line.decode("utf-8", "replace").rstrip()])[-20:]

    def send(self, msg: dict[str, Any]) -> None:
        try:
            with self.write_lock:
                assert self.proc.stdin is not None
                self.proc.stdin.write(protocol.encode(msg))
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self.crashed() from None

    def next_event(self, timeout: float | None = None) -> dict[str, Any]:
        try:
            ev = self.events.get(timeout=timeout)
        except queue.Empty:
            raise EngineError("the engine", f"did not answer within {timeout} s", "stop it and try again") from None
        if ev is None:
            raise self.crashed()
        return ev

    def crashed(self) -> EngineCrashed:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        hint = f" (last engine output: {self.stderr_tail[-1]})" if self.stderr_tail else ""
        return EngineCrashed("the engine process", describe_exit(code) + hint,
                             "your chats are safe; the next request starts a fresh engine")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive:
            try:
                self.send({"op": "exit"})
                self.proc.wait(timeout=5)
            except Exception:
                self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class LoadRace(Refused):
    """The checked file changed between its check and the engine's load; nothing runs."""


class EngineLike(Protocol):
    """What a chat session and a spot-check use of an engine: `Engine` below (the
    llama.cpp worker), or a stand-in such as the fake the fast GUI tests run on
    (tests/fake_engine.py). `worker` is None before the first load and has `alive`."""

    worker: Any
    loaded_identity: Any
    loaded_settings: EngineSettings | None

    def load_checked(self, checked: CheckedFile, settings: EngineSettings | None = None) -> float: ...

    def render_prompt(self, template: str, messages: list[dict[str, str]], count: bool = True,
                      timeout: float | None = None) -> tuple[str, int | None]: ...

    def generate(self, prompt: str, params: dict[str, Any],
                 on_token: Callable[[str], None] | None = None) -> Reply: ...

    def stop(self) -> None: ...

    def count_tokens(self, text: str) -> int: ...

    def close(self) -> None: ...

    @property
    def pid(self) -> int | None: ...


class Engine:
    """A loaded model behind a worker, with crash recovery."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.worker: Worker | None = None
        self.model_path: Path | None = None
        self.loaded_identity: FileIdentity | None = None
        self.loaded_settings: EngineSettings | None = None
        self.load_s: float = 0.0
        self._current: str | None = None
        self._lock = threading.Lock()

    def load_checked(self, checked: CheckedFile, settings: EngineSettings | None = None) -> float:
        """Loads the file behind a checked descriptor in a fresh worker; callers go through
        `load_verified`. Afterwards the descriptor's identity (device, inode, size, mtime,
        ctime) must still be the one the check saw, or the worker is stopped and the load
        refused: what runs is provably what was checked (docs/threat-model.md)."""
        s = settings or self.settings
        self.close()
        load: dict[str, Any]
        if os.name == "posix":
            worker, load = Worker(pass_fds=(checked.fd,)), {"fd": checked.fd}
        else:  # Windows: see docs/threat-model.md
            worker, load = Worker(), {"path": str(checked.path)}
        self.worker = worker
        worker.send({"op": "load", **load, **s.as_dict()})
        ev = worker.next_event(timeout=600)
        if ev.get("ev") == "error":
            self.close()
            raise EngineError(f"loading {checked.name}", ev.get("message", "failed"),
                              "the file may be malformed or unsupported by this llama.cpp")
        now = checked.current()
        if now != checked.identity:
            self.close()
            raise LoadRace(f"installed file {checked.name}",
                           f"changed between its check and the load ({', '.join(checked.identity.changes(now))})",
                           "nothing was run; someone is modifying the model store — check it again in full")
        self.model_path, self.loaded_settings, self.load_s = checked.path, s, float(ev["load_s"])
        self.loaded_identity = checked.identity
        return self.load_s

    def _ensure(self) -> Worker:
        if self.worker is None or not self.worker.alive:
            raise EngineCrashed("the engine", "is not running (it stopped or crashed)",
                                "load the model again; your chats are safe")
        return self.worker

    def render_prompt(self, template: str, messages: list[dict[str, str]], count: bool = True,
                      timeout: float | None = None) -> tuple[str, int | None]:
        """Renders a chat template in the worker (sandboxed, memory-bounded) and counts its
        tokens; a template still running after `timeout` seconds stops the worker."""
        from vetted.runtime.templates import TemplateError

        timeout = RENDER_TIMEOUT_S if timeout is None else timeout
        w = self._ensure()
        rid = uuid.uuid4().hex
        w.send({"op": "prompt", "id": rid, "template": template, "messages": messages, "count": count})
        try:
            ev = w.next_event(timeout=timeout)
        except EngineCrashed:
            raise
        except EngineError:
            w.kill()
            self.worker = None
            raise TemplateError("chat template", f"was still rendering after {timeout:g} s; the engine was stopped",
                                "the template is hostile or broken; choose a catalog-curated template") from None
        if ev.get("ev") == "error":
            if ev.get("kind") == "template":
                raise TemplateError(ev.get("checked", "chat template"), ev.get("found", ev.get("message", "")),
                                    ev.get("action", ""))
            raise EngineError("rendering the chat template", ev.get("message", "failed"))
        return str(ev["text"]), ev.get("tokens")

    def generate(self, prompt: str, params: dict[str, Any], on_token: Callable[[str], None] | None = None) -> Reply:
        """Streams a completion; returns the whole reply. Raises EngineError/EngineCrashed.
        `on_token` gets each streamed piece of text: the worker batches tokens, so a piece
        may hold several tokens (the first one comes alone, at once)."""
        with self._lock:
            w = self._ensure()
            gid = uuid.uuid4().hex
            self._current = gid
        reply = Reply()
        parts: list[str] = []  # joined once at the end, not re-concatenated per event
        try:
            w.send({"op": "generate", "id": gid, "prompt": prompt, **params})
            while True:
                ev = w.next_event()
                kind = ev.get("ev")
                if kind == "token" and ev.get("id") == gid:  # the worker batches tokens (protocol.py)
                    parts.append(ev["text"])
                    if on_token:
                        on_token(ev["text"])
                elif kind == "done" and ev.get("id") == gid:
                    reply.text = "".join(parts)
                    reply.finish, reply.usage, reply.timings = ev["finish"], ev["usage"], ev["timings"]
                    return reply
                elif kind == "error" and ev.get("id") in (gid, None):
                    err = EngineError("generate", ev.get("message", "failed"))
                    err.kind = ev.get("kind")  # type: ignore[attr-defined]
                    err.detail = ev  # type: ignore[attr-defined]
                    raise err
        finally:
            self._current = None

    def stop(self) -> None:
        """Asks the running generation to stop before its next token."""
        gid, w = self._current, self.worker
        if gid and w is not None and w.alive:
            try:
                w.send({"op": "stop", "id": gid})
            except EngineCrashed:
                pass

    def count_tokens(self, text: str) -> int:
        w = self._ensure()
        w.send({"op": "tokenize", "id": "count", "text": text})
        ev = w.next_event(timeout=60)
        if ev.get("ev") != "tokens":
            raise EngineError("tokenize", ev.get("message", "failed"))
        return int(ev["count"])

    def stats(self) -> dict[str, Any]:
        w = self._ensure()
        w.send({"op": "stats"})
        return w.next_event(timeout=30)

    @property
    def pid(self) -> int | None:
        return self.worker.pid if self.worker and self.worker.alive else None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def load_verified(engine: EngineLike, db: Any, model_id: str, settings: EngineSettings | None = None,
                  checked: CheckedModel | None = None) -> Path:
    """Invariant 1: re-check the installed file (fast path or re-hash) through one
    descriptor, load that descriptor, and confirm it did not change in between."""
    from vetted.store import audit, installed

    own = checked is None
    checked = checked or installed.open_checked(db, model_id, purpose="load")
    try:
        gguf = checked.gguf()
        try:
            engine.load_checked(gguf, settings)
        except LoadRace as exc:
            installed.set_state(db, model_id, "refused", exc.line())
            audit.record(db, "model.load", model_id, "refused", exc.line(), checked.signer)
            raise
        return gguf.path
    finally:
        if own:
            checked.close()
