"""The engine process: llama.cpp lives here and only here (DESIGN.md invariant 5).

Started by `engine.Worker` as `python -m vetted.runtime.worker`. The protocol channel is a
private duplicate of the original stdout; fd 1 itself is pointed at stderr so nothing a
native library prints can corrupt the protocol.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, BinaryIO

from vetted.runtime import protocol


class Worker:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.llm: Any = None  # a llama_cpp.Llama once loaded (imported only in this process)
        self.stop_ids: set[str] = set()
        self.current: str | None = None
        self.jobs: list[dict[str, Any]] = []
        self.jobs_cv = threading.Condition()

    def send(self, msg: dict[str, Any]) -> None:
        with self.lock:
            protocol.write(self.out, msg)

    # -- the reader thread: stop requests must not wait behind a running generation
    def read_loop(self, inp: BinaryIO) -> None:
        for line in inp:
            try:
                msg = protocol.decode(line)
            except ValueError as exc:
                self.send({"ev": "error", "kind": "bad_request", "message": str(exc)})
                continue
            if msg.get("op") == "stop":
                self.stop_ids.add(str(msg.get("id")))
                continue
            with self.jobs_cv:
                self.jobs.append(msg)
                self.jobs_cv.notify()
        with self.jobs_cv:
            self.jobs.append({"op": "exit"})
            self.jobs_cv.notify()

    def main_loop(self) -> None:
        while True:
            with self.jobs_cv:
                while not self.jobs:
                    self.jobs_cv.wait()
                msg = self.jobs.pop(0)
            op = msg.get("op")
            try:
                if op == "exit":
                    return
                handler = getattr(self, f"op_{op}", None)
                if handler is None:
                    self.send({"ev": "error", "id": msg.get("id"), "kind": "bad_request",
                               "message": f"unknown op {op!r}"})
                else:
                    handler(msg)
            except Exception as exc:  # reported, and the worker stays usable
                self.send({"ev": "error", "id": msg.get("id"), "kind": "internal",
                           "message": f"{type(exc).__name__}: {exc}"})

    def op_load(self, msg: dict[str, Any]) -> None:
        from llama_cpp import Llama

        self.llm = None
        t0 = time.perf_counter()
        fd = msg.get("fd")
        # The app checked this very descriptor and passed it down (pass_fds): opening it
        # through /proc/self/fd (Linux) or /dev/fd (macOS) reaches the checked inode, never
        # whatever the store path names by now. Windows sends a path (docs/threat-model.md).
        path = fd_path(int(fd)) if fd is not None else str(msg["path"])
        try:
            self.llm = Llama(model_path=path, n_ctx=int(msg["n_ctx"]), n_threads=int(msg["n_threads"]),
                             n_threads_batch=int(msg["n_threads"]), n_batch=int(msg["n_batch"]),
                             seed=int(msg.get("seed", 42)), verbose=False)
        except Exception as exc:
            self.send({"ev": "error", "kind": "load_failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        finally:
            if fd is not None:
                try:
                    os.close(int(fd))  # llama.cpp holds its own mapping now
                except OSError:
                    pass
        self.send({"ev": "loaded", "load_s": time.perf_counter() - t0, "n_ctx": self.llm.n_ctx(),
                   "n_vocab": self.llm.n_vocab()})

    def op_prompt(self, msg: dict[str, Any]) -> None:
        """Renders a chat template here, not in the app: a runaway template can only
        exhaust this process's bounded memory, and the app stops it when time runs out."""
        from vetted.runtime import templates

        gid = msg.get("id")
        try:
            with address_space_budget(RENDER_MEMORY_BUDGET):
                text = templates.render(str(msg["template"]), list(msg["messages"]),
                                        bos_token=str(msg.get("bos_token", "")),
                                        eos_token=str(msg.get("eos_token", "")),
                                        add_generation_prompt=bool(msg.get("add_generation_prompt", True)))
        except templates.TemplateError as exc:
            self.send({"ev": "error", "id": gid, "kind": "template", "checked": exc.checked, "found": exc.found,
                       "action": exc.action, "message": exc.line()})
            return
        count = None
        if self.llm is not None and msg.get("count", True):
            count = len(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))
        self.send({"ev": "prompt", "id": gid, "text": text, "tokens": count})

    def op_unload(self, msg: dict[str, Any]) -> None:
        if self.llm is not None:
            self.llm.close()
        self.llm = None
        self.send({"ev": "unloaded"})

    def op_stats(self, msg: dict[str, Any]) -> None:
        self.send({"ev": "stats", "rss_bytes": rss_bytes(), "loaded": self.llm is not None})

    def op_tokenize(self, msg: dict[str, Any]) -> None:
        llm = self._need_model(msg)
        if llm:
            toks = llm.tokenize(msg["text"].encode("utf-8"), add_bos=False, special=True)
            self.send({"ev": "tokens", "id": msg.get("id"), "count": len(toks)})

    def _need_model(self, msg: dict[str, Any]) -> Any:
        if self.llm is None:
            self.send({"ev": "error", "id": msg.get("id"), "kind": "bad_request", "message": "no model loaded"})
        return self.llm

    def op_generate(self, msg: dict[str, Any]) -> None:
        llm = self._need_model(msg)
        if llm is None:
            return
        gid = str(msg["id"])
        prompt_tokens = llm.tokenize(msg["prompt"].encode("utf-8"), add_bos=True, special=True)
        max_tokens = int(msg.get("max_tokens", 512))
        if len(prompt_tokens) + 1 > llm.n_ctx():
            self.send({"ev": "error", "id": gid, "kind": "context_overflow", "prompt_tokens": len(prompt_tokens),
                       "n_ctx": llm.n_ctx(),
                       "message": f"the prompt is {len(prompt_tokens)} tokens, the context holds {llm.n_ctx()}"})
            return
        max_tokens = max(1, min(max_tokens, llm.n_ctx() - len(prompt_tokens)))
        if msg.get("seed") is not None:
            llm.set_seed(int(msg["seed"]))
        self.stop_ids.discard(gid)
        if msg.get("fresh"):  # no KV-cache prefix reuse: the same request computes (and samples) the same way
            llm.reset()  # (a reused prefix evaluates fewer tokens per batch; near-ties may then tip otherwise)
        batch = TokenBatch(self, gid, max(0.0, float(msg.get("stream_ms", STREAM_MS))) / 1000)
        t0 = time.perf_counter()
        first = None
        n = 0
        finish = "length"
        stream = llm.create_completion(
            prompt_tokens, max_tokens=max_tokens, temperature=float(msg.get("temperature", 0.7)),
            top_p=float(msg.get("top_p", 0.95)), top_k=int(msg.get("top_k", 40)),
            repeat_penalty=float(msg.get("repeat_penalty", 1.1)), stop=msg.get("stop") or None,
            stream=True, seed=msg.get("seed"),
            logit_bias={int(k): float(v) for k, v in (msg.get("logit_bias") or {}).items()} or None,
        )
        try:
            for chunk in stream:
                if gid in self.stop_ids:  # before every token, whatever is waiting in the batch
                    finish = "stopped"
                    break
                choice = chunk["choices"][0]
                now = time.perf_counter()
                if choice.get("finish_reason"):  # the closing piece carries no new token
                    finish = choice["finish_reason"]
                    batch.add(choice.get("text", ""), 0, now)
                    continue
                n += 1
                if first is None:
                    first = now
                batch.add(choice.get("text", ""), 1, now)
        finally:
            batch.flush()  # all generated text reaches the caller before "done", "error" or on stop
            stream.close()
        self.stop_ids.discard(gid)
        end = time.perf_counter()
        gen_s = end - (first or end)
        self.send({"ev": "done", "id": gid, "finish": finish,
                   "usage": {"prompt_tokens": len(prompt_tokens), "completion_tokens": n},
                   "timings": {"ttft_s": (first or end) - t0, "total_s": end - t0,
                               "tokens_per_s": (n - 1) / gen_s if n > 1 and gen_s > 0 else 0.0}})


STREAM_MS = 40.0  # generated text is sent at most about this often (the first text at once)
STREAM_MAX_CHARS = 4096  # ... or as soon as this much is waiting


class TokenBatch:
    """Coalesces streamed tokens into few "token" events, so the app wakes at most ~25 times
    a second instead of once per token and takes next to no CPU from llama.cpp's threads
    (on a small machine every wake-up of the app preempts one of them).

    The first text is sent at once, so time to first token does not grow. After that, text
    waits until `interval` has passed since the last send and goes out with the token that
    arrives then (or as soon as STREAM_MAX_CHARS are waiting): at a steady pace a token
    waits less than `interval`, and a model slower than one token per `interval` streams
    token by token. The generation loop flushes what is left before "done" and "error",
    and on stop, which is checked before every token as before."""

    def __init__(self, worker: Worker, gid: str, interval: float) -> None:
        self.worker, self.gid, self.interval = worker, gid, interval
        self.parts: list[str] = []
        self.chars = 0
        self.tokens = 0
        self.sent_at: float | None = None  # None: nothing sent yet

    def add(self, text: str, tokens: int, now: float) -> None:
        self.tokens += tokens
        if text:
            self.parts.append(text)
            self.chars += len(text)
        if self.parts and (self.sent_at is None or now - self.sent_at >= self.interval
                           or self.chars >= STREAM_MAX_CHARS):
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.parts:
            self.worker.send({"ev": "token", "id": self.gid, "text": "".join(self.parts), "n": self.tokens})
            self.parts, self.chars, self.tokens = [], 0, 0
            self.sent_at = time.perf_counter() if now is None else now


RENDER_MEMORY_BUDGET = 512 * 1024 * 1024  # address space a template render may add


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else f"/dev/fd/{fd}"


def vm_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class address_space_budget:
    """Lowers the soft RLIMIT_AS to what the process maps now plus `budget` while a
    template renders, then restores it (a process may raise its soft limit back up to
    the hard one). Where the limit is unavailable (Windows) or unreadable, the output cap
    and the app's timeout still bound the render."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> "address_space_budget":
        try:
            import resource

            vm = vm_bytes()
            if vm:
                soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                limit = vm + self.budget
                if hard != resource.RLIM_INFINITY:
                    limit = min(limit, hard)
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
                self.saved = (soft, hard)
        except (ImportError, ValueError, OSError):
            self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.saved)


def rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except Exception:
        return 0


def main() -> None:
    proto_fd = os.dup(1)
    os.dup2(2, 1)  # stray native prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    out = os.fdopen(proto_fd, "wb", buffering=0)
    inp = os.fdopen(os.dup(0), "rb")
    w = Worker(out)
    threading.Thread(target=w.read_loop, args=(inp,), daemon=True, name="vetted-worker-reader").start()
    w.send({"ev": "ready", "pid": os.getpid()})
    w.main_loop()


if __name__ == "__main__":
    main()
