"""The local API (`vetted serve`, a real process, SmolLM2 in its engine worker) against
llama-cpp-python called directly in this process, alternating runs in one invocation.

Both paths load the same file with the same threads and context, see the same prompt (the
GGUF's chat template, rendered here and compared with the API's output), and sample the
same way (greedy, top-k off, no repeat penalty, the end tokens biased away so both make
exactly --tokens tokens; the texts are compared). The API path is a raw HTTP client
reading the SSE stream (the official client's per-chunk parsing would compete with the
engine for the cores and would measure the client, not the server). Both reset the KV
cache before each run, as the API does for every request (reproducible sampling).

- stream_throughput_ratio: median API tokens/s over median direct tokens/s, each from the
  first token to the last (target >= 0.95); paired_ratio: median of adjacent pairs;
- ttft_overhead_ms: median API time to first token (request sent → first content chunk;
  includes the HTTP round trip, the token check, the policy gate, the store's re-check of
  the file, the audit entry and the template rendered in the worker) minus the direct one
  (call → first token) (target <= 50);
- concurrent_ok: 8 clients × 4 requests at once, every answer 200 and equal to the answer
  the same prompt got alone; concurrent_s: how long the 32 took;
- disconnect_stop_ms: from a client dropping a stream (its socket closed) to the worker's
  end of that generation reaching the server (the server logs it on the shared monotonic
  clock), median of --drops (target <= 100).

    .venv/bin/python bench/api.py [--runs 5] [--tokens 128] [--drops 5]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
EOS = {"0": -100, "1": -100, "2": -100}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--drops", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vetted-bench-api-"))
    try:
        return bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stream_once(server, body: dict) -> dict[str, float]:
    """One streamed chat completion over a raw socket: TTFT, tokens/s, text."""
    start = time.perf_counter()
    s = server.open_stream(body, path="/v1/chat/completions")
    first = end = None
    parts: list[str] = []
    usage = None
    while True:
        ev = s.next_event()
        if ev is None or ev == "[DONE]":
            break
        if "error" in ev:
            raise RuntimeError(ev)
        if ev.get("usage"):
            usage = ev["usage"]
        for c in ev.get("choices", []):
            text = c["delta"].get("content")
            if text:
                parts.append(text)
                if first is None:
                    first = time.perf_counter()
            if c.get("finish_reason"):
                end = time.perf_counter()
    s.close()
    assert first is not None and end is not None and usage is not None
    n = usage["completion_tokens"]
    return {"ttft": first - start, "tps": (n - 1) / (end - first), "n": n, "text": "".join(parts)}


def bench(args: argparse.Namespace, work: Path) -> int:
    from api_kit import MODEL, Server, install_smollm2
    from llama_cpp import Llama
    from vetted.authoring.demo import smollm2_path
    from vetted.runtime import templates
    from vetted.runtime.defaults import physical_cores

    home = work / "home"
    install_smollm2(home, work)
    threads = physical_cores()
    server = Server(home, "--ctx", str(args.ctx))
    try:
        messages = [{"role": "user", "content": PROMPT}]
        body = {"model": MODEL, "messages": messages, "max_tokens": args.tokens, "temperature": 0, "seed": 42,
                "logit_bias": EOS, "stream_options": {"include_usage": True}}
        t0 = time.perf_counter()
        stream_once(server, {**body, "max_tokens": 1})  # loads the model (re-check, worker, llama.cpp)
        api_load = time.perf_counter() - t0

        llm = Llama(model_path=str(smollm2_path()), n_ctx=args.ctx, n_threads=threads, n_threads_batch=threads,
                    n_batch=512, seed=42, verbose=False)
        tmpl = templates.choose(None, llm.metadata.get("tokenizer.chat_template"))[0]
        toks = llm.tokenize(templates.render(tmpl, messages).encode(), add_bos=True, special=True)

        def run_direct() -> dict[str, float]:
            start = time.perf_counter()
            llm.reset()
            first = None
            parts = []
            n = 0
            for chunk in llm.create_completion(toks, max_tokens=args.tokens, temperature=0.0, top_k=0, top_p=1.0,
                                               repeat_penalty=1.0, stream=True, seed=42,
                                               logit_bias={int(k): float(v) for k, v in EOS.items()}):
                c = chunk["choices"][0]
                if c["finish_reason"] is None:
                    n += 1
                    if first is None:
                        first = time.perf_counter()
                parts.append(c["text"])
            end = time.perf_counter()
            assert first is not None
            return {"ttft": first - start, "tps": (n - 1) / (end - first), "n": n, "text": "".join(parts)}

        run_direct(), stream_once(server, body)  # warm-up both
        res: dict[str, list[dict]] = {"direct": [], "api": []}
        pairs = []
        for i in range(args.runs):
            pair = {}
            for name in (("direct", "api") if i % 2 == 0 else ("api", "direct")):
                r = run_direct() if name == "direct" else stream_once(server, body)
                res[name].append(r)
                pair[name] = r["tps"]
                print(f"run {i} {name:<6} ttft {r['ttft'] * 1000:6.1f} ms  {r['tps']:6.1f} tok/s  ({r['n']} tokens)",
                      flush=True)
            pairs.append(pair["api"] / pair["direct"])
        same_text = res["api"][-1]["text"] == res["direct"][-1]["text"]
        del llm

        concurrent_ok, concurrent_s = concurrent(server, MODEL)
        drops = [disconnect_ms(server, MODEL) for _ in range(args.drops)]
        for d in drops:
            print(f"disconnect → worker stopped: {d:.1f} ms", flush=True)
    finally:
        server.stop()

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in res[name])

    out = {
        "stream_throughput_ratio": round(med("api", "tps") / med("direct", "tps"), 4),
        "paired_ratio": round(statistics.median(pairs), 4),
        "ttft_overhead_ms": round((med("api", "ttft") - med("direct", "ttft")) * 1000, 2),
        "concurrent_ok": concurrent_ok,
        "concurrent_s": round(concurrent_s, 2),
        "disconnect_stop_ms": round(statistics.median(drops), 1),
        "disconnect_stop_ms_max": round(max(drops), 1),
        "api_tokens_per_s": round(med("api", "tps"), 2),
        "direct_tokens_per_s": round(med("direct", "tps"), 2),
        "api_ttft_ms": round(med("api", "ttft") * 1000, 2),
        "direct_ttft_ms": round(med("direct", "ttft") * 1000, 2),
        "api_first_load_s": round(api_load, 3),
        "same_text": same_text,
        "tokens": args.tokens, "runs": args.runs, "threads": threads,
    }
    print(json.dumps(out))
    return 0


def concurrent(server, model: str, clients: int = 8, each: int = 4) -> tuple[bool, float]:
    """8 clients × 4 requests at once; each answer must equal its prompt's answer alone."""
    prompts = [f"Question {i}: what is {i} plus {i}? Answer:" for i in range(clients)]

    def ask(p: str) -> tuple[int, str]:
        st, _, b = server.request("POST", "/v1/completions", {"model": model, "prompt": p, "max_tokens": 12,
                                                              "temperature": 0}, timeout=600)
        return st, json.loads(b)["choices"][0]["text"] if st == 200 else b.decode()

    alone = [ask(p) for p in prompts]
    got: dict[int, list[tuple[int, str]]] = {i: [] for i in range(clients)}

    def client(i: int) -> None:
        for _ in range(each):
            got[i].append(ask(prompts[i]))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    ok = all(a[0] == 200 for a in alone) and all(len(got[i]) == each and all(r == alone[i] for r in got[i])
                                                 for i in range(clients))
    return ok, took


def disconnect_ms(server, model: str) -> float:
    before = len(re.findall(r"stop_ms=", server.log()))
    s = server.open_stream({"model": model, "prompt": "Once upon a time", "max_tokens": 2000, "temperature": 0.8,
                            "logit_bias": EOS})
    for _ in range(5):
        s.next_event()
    dropped = s.drop()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.findall(r"worker_stopped_at=([\d.]+)", server.log())
        if len(found) > before:
            return (float(found[-1]) - dropped) * 1000
        time.sleep(0.01)
    raise RuntimeError("the server never logged the stop")


if __name__ == "__main__":
    sys.exit(main())
