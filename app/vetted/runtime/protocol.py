"""The worker protocol: one JSON object per line over the worker's stdin/stdout.

Requests (parent → worker), each with an "op":
  {"op": "load", "fd" | "path", "n_ctx", "n_threads", "n_batch", "seed"}
                                "fd": a descriptor of the checked file, inherited by the worker
  {"op": "prompt", "id", "template", "messages", "bos_token", "eos_token", "add_generation_prompt"}
                                render a chat template here (sandboxed, bounded) and count its tokens
  {"op": "generate", "id", "prompt", "max_tokens", "temperature", "top_p", "top_k",
   "repeat_penalty", "seed", "stop": [...], "logit_bias": {token_id: bias}}
  {"op": "stop", "id"}          stop generation `id` (takes effect before the next token)
  {"op": "tokenize", "id", "text"}
  {"op": "unload"} | {"op": "stats"} | {"op": "exit"}
Events (worker → parent), each with an "ev":
  {"ev": "ready", "pid"}
  {"ev": "loaded", "load_s", "n_ctx", "n_vocab"}
  {"ev": "token", "id", "text"}
  {"ev": "done", "id", "finish": "stop"|"length"|"stopped", "usage": {...}, "timings": {...}}
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
