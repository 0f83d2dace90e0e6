"""Vetted's runtime (worker process, streamed back, chat persistence on) against
llama-cpp-python called directly in one process, alternating runs in one invocation.

Both paths load the same model with the same threads, context and batch, render the same
prompt from the GGUF's template, and sample with the same parameters (greedy, the end token
biased away so both produce exactly --tokens tokens; the texts are compared). Both are
timed the same way: time to first token from the start of the request, and throughput
from the first token to the end of the stream (Vetted: when `Engine.generate` returns,
i.e. every token has reached the caller; closing the reply in the database and reading
it back is done after that and is not generation).

Last line: JSON with throughput_ratio (median Vetted tokens/s over median direct tokens/s,
target >= 0.98), paired_ratio (the median of the ratios of adjacent Vetted/direct runs,
less sensitive to other load on a shared machine), ttft_overhead_ms (median Vetted TTFT -
median direct TTFT, target <= 30; Vetted's includes committing the message, the pre-load
re-check and rendering the template in the worker), load_s (Vetted's load including the
pre-load re-check), the absolute figures, and what each path cost in CPU per run: the
direct process, and for Vetted the worker and the app (parent) separately, with the
parent's context switches and the token events it received. CPU times do not depend on
other load nearly as much as wall-clock rates do.

    .venv/bin/python bench/inference.py [--runs 7] [--tokens 128] [--threads 2] [--stream-ms 40]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchkit import install_smollm2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a whole process (all threads), from /proc; 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def ctx_switches() -> int:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_nvcsw + ru.ru_nivcsw


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--stream-ms", type=float, default=None,
                    help="the worker's token batching window (default: the worker's own; 0: every token)")
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="vetted-bench-")
    try:
        return bench(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench(args: argparse.Namespace, home: str) -> int:
    os.environ["VETTED_HOME"] = home
    from llama_cpp import Llama
    from vetted.authoring.demo import smollm2_path
    from vetted.runtime import templates
    from vetted.runtime.chat import ChatSession

    _loc, db = install_smollm2(Path(home))

    eos_bias = {"2": -100.0}  # SmolLM2's end token: generate exactly --tokens tokens in both paths
    params = {"temperature": 0.0, "max_tokens": args.tokens, "seed": 42, "n_ctx": args.ctx,
              "n_threads": args.threads, "logit_bias": eos_bias, "top_k": 40, "top_p": 0.95,
              "repeat_penalty": 1.1}

    # -- Vetted: load (pre-load re-check + worker start + llama.cpp load)
    session = ChatSession(db)
    t0 = time.perf_counter()
    session.ensure_model(session.chats.get(session.chats.create("smol", "warm", params=params)))
    vetted_load = time.perf_counter() - t0
    worker_load = session.engine.load_s
    s = session.engine.loaded_settings
    assert s is not None and s.n_threads == args.threads and s.n_ctx == args.ctx and s.n_batch == 512, s

    # Vetted's stream ends when Engine.generate returns (every token delivered to the caller)
    generate = session.engine.generate
    generate_ends: list[float] = []

    def timed_generate(prompt, params, on_token=None):
        if args.stream_ms is not None:
            params = {**params, "stream_ms": args.stream_ms}
        r = generate(prompt, params, on_token)
        generate_ends.append(time.perf_counter())
        return r

    session.engine.generate = timed_generate  # type: ignore[method-assign]

    # -- direct: same file, same settings, in this process
    t0 = time.perf_counter()
    llm = Llama(model_path=str(smollm2_path()), n_ctx=args.ctx, n_threads=args.threads,
                n_threads_batch=args.threads, n_batch=512, seed=42, verbose=False)
    direct_load = time.perf_counter() - t0
    tmpl = templates.choose(None, llm.metadata.get("tokenizer.chat_template"))[0]
    prompt = templates.render(tmpl, [{"role": "user", "content": PROMPT}])
    vetted_prompt, _ = session.engine.render_prompt(tmpl, [{"role": "user", "content": PROMPT}])
    assert session._template is not None and session._template[0] == tmpl, "a different chat template"
    assert vetted_prompt == prompt, "the two paths would not see the same prompt"

    texts: dict[str, str] = {}

    def run_direct() -> dict[str, float]:
        toks = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        cpu0 = time.process_time()
        start = time.perf_counter()
        first = None
        n = 0
        parts = []
        for chunk in llm.create_completion(toks, max_tokens=args.tokens, temperature=0.0, top_k=40, top_p=0.95,
                                           repeat_penalty=1.1, stream=True, seed=42, logit_bias={2: -100.0}):
            choice = chunk["choices"][0]
            if choice["finish_reason"] is None:
                n += 1
            parts.append(choice["text"])
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        texts["direct"] = "".join(parts)
        return {"ttft": first - start, "tps": (args.tokens - 1) / (end - first), "n": n,
                "cpu": time.process_time() - cpu0}

    def run_vetted() -> dict[str, float]:
        conv = session.chats.create("smol", "bench", params=params)
        marks: list[float] = []
        wpid = session.engine.pid or 0
        cpu0, wcpu0, cs0 = time.process_time(), proc_cpu_s(wpid), ctx_switches()
        start = time.perf_counter()
        result = session.send(conv, PROMPT, lambda _t: marks.append(time.perf_counter()))
        end = generate_ends[-1]
        cpu, wcpu, cs = time.process_time() - cpu0, proc_cpu_s(wpid) - wcpu0, ctx_switches() - cs0
        texts["vetted"] = result.message.content
        return {"ttft": marks[0] - start, "tps": (args.tokens - 1) / (end - marks[0]),
                "n": result.usage["completion_tokens"], "cpu": cpu, "worker_cpu": wcpu, "switches": cs,
                "events": len(marks)}

    run_direct(), run_vetted()  # warm-up both
    res: dict[str, list[dict[str, float]]] = {"direct": [], "vetted": []}
    pairs: list[float] = []
    for i in range(args.runs):
        pair = {}
        for name in (("direct", "vetted") if i % 2 == 0 else ("vetted", "direct")):
            r = run_direct() if name == "direct" else run_vetted()
            res[name].append(r)
            pair[name] = r["tps"]
            extra = (f"  app cpu {r['cpu'] * 1000:5.1f} ms  worker cpu {r['worker_cpu'] * 1000:6.0f} ms  "
                     f"{r['events']:3d} token events" if name == "vetted" else f"  cpu {r['cpu'] * 1000:6.0f} ms")
            print(f"run {i} {name:<6} ttft {r['ttft'] * 1000:6.1f} ms  {r['tps']:6.1f} tok/s  ({r['n']} tokens)"
                  + extra, flush=True)
        pairs.append(pair["vetted"] / pair["direct"])
    session.close()

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in res[name])

    out = {
        "throughput_ratio": round(med("vetted", "tps") / med("direct", "tps"), 4),
        "paired_ratio": round(statistics.median(pairs), 4),
        "paired_ratio_range": [round(min(pairs), 4), round(max(pairs), 4)],
        "ttft_overhead_ms": round((med("vetted", "ttft") - med("direct", "ttft")) * 1000, 2),
        "load_s": round(vetted_load, 3),
        "load_direct_s": round(direct_load, 3),
        "load_worker_llama_s": round(worker_load, 3),
        "vetted_tokens_per_s": round(med("vetted", "tps"), 2),
        "direct_tokens_per_s": round(med("direct", "tps"), 2),
        "vetted_ttft_ms": round(med("vetted", "ttft") * 1000, 2),
        "direct_ttft_ms": round(med("direct", "ttft") * 1000, 2),
        "direct_cpu_ms": round(med("direct", "cpu") * 1000, 1),
        "vetted_worker_cpu_ms": round(med("vetted", "worker_cpu") * 1000, 1),
        "vetted_app_cpu_ms": round(med("vetted", "cpu") * 1000, 2),
        "vetted_app_context_switches": int(med("vetted", "switches")),
        "vetted_token_events": int(med("vetted", "events")),
        "same_text": texts["direct"] == texts["vetted"],
        "tokens": args.tokens, "runs": args.runs, "threads": args.threads, "stream_ms": args.stream_ms,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
