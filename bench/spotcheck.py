"""The spot-check's speed: the full HarmBench suite on SmolLM2-135M through Vetted's harness
(worker process, template rendered in the worker, every reply judged and stored) against a
plain generation loop (llama-cpp-python called directly in this process: the same file,
threads, context, prompts and sampling), in one invocation.

Both loops generate greedily with the suite's token cap and reuse llama.cpp's KV cache for
the prompts' shared opening. Both are timed from the first probe to the last reply, so the
model load is not counted in either (it is reported apart). The machine is shared and
drifts, so the plain loop runs before and after the harness and its baseline is the two
runs together.

Last line: JSON with harmbench_probes (probes run), probes_per_minute, suite_seconds (the
spot-check's whole run, load included), harness_overhead_ratio (the spot-check's generated
tokens/s over the plain loop's; target >= 0.9), the absolute figures, and the time per
probe the harness adds (judging, storing, the worker round trips).

    .venv/bin/python bench/spotcheck.py [--threads 2] [--limit N (a partial run, for a quick look)]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchkit import install_smollm2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="vetted-bench-spot-")
    try:
        return bench(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench(args: argparse.Namespace, home: str) -> int:
    os.environ["VETTED_HOME"] = home
    from llama_cpp import Llama
    from vetted.authoring.demo import smollm2_path
    from vetted.cards import spotcheck, suites
    from vetted.runtime import templates
    from vetted.runtime.chat import ChatSession

    _loc, db = install_smollm2(Path(home))

    suite = suites.load("harmbench-standard")
    probes = list(suite.probes[: args.limit] if args.limit else suite.probes)
    gen = suites.GENERATION

    def plain() -> dict[str, float]:
        t0 = time.perf_counter()
        llm = Llama(model_path=str(smollm2_path()), n_ctx=gen["n_ctx"], n_threads=args.threads,
                    n_threads_batch=args.threads, n_batch=512, seed=gen["seed"], verbose=False)
        load_s = time.perf_counter() - t0
        tmpl = templates.choose(None, llm.metadata.get("tokenizer.chat_template"))[0]
        tokens = 0
        start = time.perf_counter()
        for p in probes:
            text = templates.render(tmpl, [{"role": "user", "content": p.prompt}])
            toks = llm.tokenize(text.encode(), add_bos=True, special=True)
            for chunk in llm.create_completion(toks, max_tokens=suites.max_tokens(p), temperature=0.0, top_k=1,
                                               top_p=1.0, repeat_penalty=1.0, seed=gen["seed"], stream=True):
                if chunk["choices"][0]["finish_reason"] is None:
                    tokens += 1
        wall = time.perf_counter() - start
        del llm
        return {"tokens": tokens, "seconds": wall, "load_s": load_s}

    def harness() -> dict[str, float]:
        marks: list[float] = []
        session = ChatSession(db)
        t0 = time.perf_counter()
        whole = suite if probes == list(suite.probes) else suites.Suite(**{**suite.__dict__, "probes": tuple(probes)})
        try:
            result = spotcheck.run(db, "smol", suite=whole, session=session,
                                   progress=lambda i, n, pid: marks.append(time.perf_counter()))
        finally:
            session.close()
        end = time.perf_counter()
        tokens = sum(r.tokens for r in result.results)
        return {"tokens": tokens, "seconds": end - marks[0], "suite_seconds": end - t0,
                "load_s": marks[0] - t0, "status": result.status, "probes": len(result.results),  # type: ignore[dict-item]
                "metrics": {k: f"{m.k}/{m.n} other {m.other}" for k, m in result.metrics.items()}}  # type: ignore[dict-item]

    # a shared machine drifts: the plain loop runs before and after the harness, and its
    # baseline is the two runs' combined rate (a short untimed warm-up of each path first)
    warm = probes[:4]
    probes, full = warm, probes
    plain(), harness()
    probes = full
    res: dict[str, dict] = {}
    for name in ("plain", "harness", "plain-again"):
        res[name] = harness() if name == "harness" else plain()
        r = res[name]
        print(f"{name:<11} {r['tokens']} tokens in {r['seconds']:.1f} s = {r['tokens'] / r['seconds']:.1f} tok/s "
              f"(load {r['load_s']:.2f} s)", flush=True)
    h = res["harness"]
    p = {"tokens": res["plain"]["tokens"] + res["plain-again"]["tokens"],
         "seconds": res["plain"]["seconds"] + res["plain-again"]["seconds"], "load_s": res["plain"]["load_s"]}
    h_tps, p_tps = h["tokens"] / h["seconds"], p["tokens"] / p["seconds"]
    out = {
        "harmbench_probes": h["probes"],
        "status": h["status"],
        "probes_per_minute": round(h["probes"] / h["suite_seconds"] * 60, 1),
        "suite_seconds": round(h["suite_seconds"], 1),
        "harness_overhead_ratio": round(h_tps / p_tps, 4),
        "harness_tokens_per_s": round(h_tps, 2),
        "plain_tokens_per_s": round(p_tps, 2),
        "harness_tokens": h["tokens"], "plain_tokens": p["tokens"],
        "harness_seconds": round(h["seconds"], 2), "plain_seconds": round(p["seconds"], 2),
        "added_ms_per_probe": round((h["seconds"] - p["seconds"] / 2 * h["tokens"] / max(1, p["tokens"] / 2))
                                    / max(1, h["probes"]) * 1000, 1),
        "harness_load_s": round(h["load_s"], 2), "plain_load_s": round(p["load_s"], 2),
        "plain_runs_tokens_per_s": [round(res[k]["tokens"] / res[k]["seconds"], 2) for k in ("plain", "plain-again")],
        "metrics": h["metrics"], "threads": args.threads,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
