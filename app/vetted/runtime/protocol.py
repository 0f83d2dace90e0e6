"""The worker protocol: one JSON object per line over the worker's stdin/stdout.

Requests (parent → worker), each with an "op":
  {"op": "load", "fd" | "path", "n_ctx", "n_threads", "n_batch", "seed"}
                                "fd": a descriptor of the checked file, inherited by the worker
  {"op": "prompt", "id", "template", "messages", "bos_token", "eos_token", "add_generation_prompt"}
                                render a chat template here (sandboxed, bounded) and count its tokens
  {"op": "generate", "id", "prompt", "max_tokens", "temperature", "top_p", "top_k",
   "repeat_penalty", "seed", "stop": [...], "logit_bias": {token_id: bias}, "stream_ms"?}
                                "stream_ms": how long generated text may wait to be batched
                                (default worker.STREAM_MS = 40; 0 sends every token at once)
  {"op": "stop", "id"}          stop generation `id` (takes effect before the next token;
                                batching never delays it)
  {"op": "tokenize", "id", "text"}
  {"op": "unload"} | {"op": "stats"} | {"op": "exit"}
Events (worker → parent), each with an "ev":
  {"ev": "ready", "pid"}
  {"ev": "loaded", "load_s", "n_ctx", "n_vocab"}
  {"ev": "token", "id", "text", "n"}
                                streamed text, batched: the text of the `n` tokens generated
                                since the previous token event (n may be 0 for a closing piece).
                                The first text of a generation is sent on its own, at once;
                                after that at most one event per stream_ms (sooner once 4096
                                characters wait), and whatever waits is always sent before
                                "done", before an "error" for this id, and when stopped.
                                The concatenated texts are the reply.
  {"ev": "done", "id", "finish": "stop"|"length"|"stopped", "usage": {...}, "timings": {...}}
                                usage.completion_tokens counts generated tokens (stream pieces)
  {"ev": "tokens", "id", "count"}
  {"ev": "prompt", "id", "text", "tokens"}
  {"ev": "error", "id"?, "kind", "message"}   kind: load_failed, context_overflow, bad_request, template, internal
  {"ev": "stats", "rss_bytes", "loaded"}
  {"ev": "unloaded"}
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO


def encode(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def write(stream: BinaryIO, msg: dict[str, Any]) -> None:
    stream.write(encode(msg))
    stream.flush()


def decode(line: bytes) -> dict[str, Any]:
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("protocol message is not an object")
    return msg
