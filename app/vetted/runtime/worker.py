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
from typing import Any

from vetted.runtime import protocol


class Worker:
    def __init__(self, out) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.llm = None
        self.stop_ids: set[str] = set()
        self.current: str | None = None
        self.jobs: list[dict[str, Any]] = []
        self.jobs_cv = threading.Condition()

    def send(self, msg: dict[str, Any]) -> None:
        with self.lock:
            protocol.write(self.out, msg)

    # -- the reader thread: stop requests must not wait behind a running generation
    def read_loop(self, inp) -> None:
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
        try:
            self.llm = Llama(model_path=msg["path"], n_ctx=int(msg["n_ctx"]), n_threads=int(msg["n_threads"]),
                             n_threads_batch=int(msg["n_threads"]), n_batch=int(msg["n_batch"]),
                             seed=int(msg.get("seed", 42)), verbose=False)
        except Exception as exc:
            self.send({"ev": "error", "kind": "load_failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        self.send({"ev": "loaded", "load_s": time.perf_counter() - t0, "n_ctx": self.llm.n_ctx(),
                   "n_vocab": self.llm.n_vocab()})

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

    def _need_model(self, msg):
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
        for chunk in stream:
            if gid in self.stop_ids:
                finish = "stopped"
                break
            choice = chunk["choices"][0]
            text = choice.get("text", "")
            n += 1
            if first is None:
                first = time.perf_counter()
            if text:
                self.send({"ev": "token", "id": gid, "text": text})
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        stream.close()
        self.stop_ids.discard(gid)
        end = time.perf_counter()
        gen_s = end - (first or end)
        self.send({"ev": "done", "id": gid, "finish": finish,
                   "usage": {"prompt_tokens": len(prompt_tokens), "completion_tokens": n},
                   "timings": {"ttft_s": (first or end) - t0, "total_s": end - t0,
                               "tokens_per_s": (n - 1) / gen_s if n > 1 and gen_s > 0 else 0.0}})


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
