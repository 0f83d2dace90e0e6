"""Vetted's runtime (worker process, streamed back, chat persistence on) against
llama-cpp-python called directly in one process, alternating runs in one invocation.

Last line: JSON with throughput_ratio (Vetted/direct tokens/s, target >= 0.98),
ttft_overhead_ms (median Vetted TTFT - median direct TTFT, target <= 30), load_s
(Vetted's load including the pre-load re-check), and the absolute figures.

    .venv/bin/python bench/inference.py [--runs 5] [--tokens 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=2048)
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="vetted-bench-")
    os.environ["VETTED_HOME"] = home
    from catalog_kit import build  # noqa: E402  (tests/ helpers build a signed catalog)
    from llama_cpp import Llama

    from vetted.catalog.signed import load
    from vetted.demo import smollm2_path
    from vetted.fetch.install import pull
    from vetted.paths import locations
    from vetted.publish import generate_key
    from vetted.runtime import templates
    from vetted.runtime.chat import ChatSession
    from vetted.store.db import open_db
    from vetted.trust.identity import PublicKey

    loc = locations().ensure()
    db = open_db(loc.database)
    priv, pub = generate_key(Path(home) / "keys")
    cat = build(Path(home) / "cat", priv, models=[{"id": "smol", "name": "SmolLM2", "publisher": "HF",
                                                  "license": "Apache-2.0", "path": str(smollm2_path())}])
    pull(loc, db, load(str(cat), PublicKey(pub.read_bytes()), db), "smol")

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

    # -- direct: same file, same settings, in this process
    t0 = time.perf_counter()
    llm = Llama(model_path=str(smollm2_path()), n_ctx=args.ctx, n_threads=args.threads,
                n_threads_batch=args.threads, n_batch=512, seed=42, verbose=False)
    direct_load = time.perf_counter() - t0
    tmpl = templates.choose(None, llm.metadata.get("tokenizer.chat_template"))[0]
    prompt = templates.render(tmpl, [{"role": "user", "content": PROMPT}])

    def run_direct() -> tuple[float, float, int]:
        toks = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        start = time.perf_counter()
        first = None
        n = 0
        for _ in llm.create_completion(toks, max_tokens=args.tokens, temperature=0.0, top_k=40, top_p=0.95,
                                       repeat_penalty=1.1, stream=True, seed=42, logit_bias={2: -100.0}):
            n += 1
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        return first - start, (n - 1) / (end - first), n

    def run_vetted() -> tuple[float, float, int]:
        conv = session.chats.create("smol", "bench", params=params)
        marks: list[float] = []
        start = time.perf_counter()
        result = session.send(conv, PROMPT, lambda _t: marks.append(time.perf_counter()))
        end = time.perf_counter()
        n = result.usage["completion_tokens"]
        return marks[0] - start, (n - 1) / (end - marks[0]), n

    run_direct(), run_vetted()  # warm-up both
    d_ttft, d_tps, v_ttft, v_tps = [], [], [], []
    for i in range(args.runs):
        for name in (("direct", "vetted") if i % 2 == 0 else ("vetted", "direct")):
            ttft, tps, n = run_direct() if name == "direct" else run_vetted()
            (d_ttft if name == "direct" else v_ttft).append(ttft)
            (d_tps if name == "direct" else v_tps).append(tps)
            print(f"run {i} {name:<6} ttft {ttft * 1000:6.1f} ms  {tps:6.1f} tok/s  ({n} tokens)")
    session.close()

    out = {
        "throughput_ratio": round(statistics.median(v_tps) / statistics.median(d_tps), 4),
        "ttft_overhead_ms": round((statistics.median(v_ttft) - statistics.median(d_ttft)) * 1000, 2),
        "load_s": round(vetted_load, 3),
        "load_direct_s": round(direct_load, 3),
        "load_worker_llama_s": round(worker_load, 3),
        "vetted_tokens_per_s": round(statistics.median(v_tps), 2),
        "direct_tokens_per_s": round(statistics.median(d_tps), 2),
        "vetted_ttft_ms": round(statistics.median(v_ttft) * 1000, 2),
        "direct_ttft_ms": round(statistics.median(d_ttft) * 1000, 2),
        "tokens": args.tokens, "runs": args.runs, "threads": args.threads,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
