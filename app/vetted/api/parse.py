"""Request bodies in OpenAI's shapes, turned into the engine's parameters.

Fields this server does not implement are refused with a 400 naming them, rather than
silently ignored (a client asking for tools, images or several choices must not get an
answer that pretends to honour them). Fields that change nothing here (`user`,
`metadata`, `store`, a zero penalty) are accepted. Defaults follow OpenAI's: temperature
1, top_p 1, no top-k, no repeat penalty; chat replies may use the rest of the context,
completions 16 tokens. `top_k` and `repeat_penalty` are accepted as llama.cpp's servers do.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from vetted.api.errors import ApiError

MAX_STOP = 4
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
UNSUPPORTED = ("tools", "functions", "audio", "modalities", "prediction", "web_search_options")
MAX_MODEL_ID = 200
# A catalog model id's characters (catalog/schema.py), in either case, plus the ":" and "/"
# other servers' names use (those then get a clear 404 rather than a 400).
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
MAX_DEPTH = 64  # JSON nesting; OpenAI's bodies need a handful of levels


@dataclass
class Parsed:
    model: str
    params: dict[str, Any]
    stream: bool
    include_usage: bool
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, "invalid_request_error", code, param)


def body_json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except RecursionError:
        raise bad("the body nests JSON too deeply", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the body is not valid JSON ({str(exc)[:200]})", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise bad("the body must be a JSON object", code="invalid_json")
    _check_tree(doc)
    return doc


def _check_tree(doc: dict[str, Any]) -> None:
    """No nesting deeper than MAX_DEPTH, and no string JSON's `\\ud800` escapes made into
    text that cannot be encoded as UTF-8 (the worker, the audit log and the reply all need
    it). Walked without recursion; a refusal names the top-level field."""
    stack: list[tuple[Any, str, int]] = [(doc, "body", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise bad(f"{where} nests JSON more than {MAX_DEPTH} levels deep", where, "invalid_json")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad(f"{where} contains an unpaired UTF-16 surrogate (not valid Unicode text)",
                          where) from None
        elif isinstance(value, dict):
            for k, v in value.items():
                field = k if depth == 0 and k.isascii() and len(k) <= 64 else where
                stack.append((k, field, depth + 1))
                stack.append((v, field, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, where, depth + 1) for v in value)


def model_id(doc: dict[str, Any]) -> str:
    """The request's `model`: a catalog model id (at most MAX_MODEL_ID characters)."""
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model is required: the catalog model id (GET /v1/models)", "model", "missing_model")
    if len(model) > MAX_MODEL_ID or not _MODEL_ID.fullmatch(model):
        raise bad(f"model must be a catalog model id: at most {MAX_MODEL_ID} letters, digits and . _ - "
                  "(GET /v1/models lists them)", "model")
    return model


def _number(doc: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    v = doc.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high:
        raise bad(f"{key} must be a number from {low:g} to {high:g}", key)
    return float(v)


def _int(doc: dict[str, Any], key: str, low: int = 1) -> int | None:
    v = doc.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise bad(f"{key} must be a whole number of at least {low}", key)
    return v


def _common(doc: dict[str, Any], default_max: int | None) -> tuple[str, dict[str, Any], bool, bool]:
    model = model_id(doc)
    for key in UNSUPPORTED:
        if doc.get(key):
            raise bad(f"{key} is not supported by Vetted's local API", key, "unsupported")
    if doc.get("n") not in (None, 1):
        raise bad("n must be 1: one choice per request", "n", "unsupported")
    if doc.get("logprobs") not in (None, False) or doc.get("top_logprobs"):
        raise bad("logprobs are not supported by Vetted's local API", "logprobs", "unsupported")
    for key in ("frequency_penalty", "presence_penalty"):
        if _number(doc, key, 0.0, -2.0, 2.0) != 0.0:
            raise bad(f"{key} is not supported (use repeat_penalty)", key, "unsupported")
    fmt = doc.get("response_format")
    if fmt not in (None, {"type": "text"}):
        raise bad("response_format other than text is not supported", "response_format", "unsupported")
    params: dict[str, Any] = {
        "temperature": _number(doc, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(doc, "top_p", 1.0, 0.0, 1.0),
        "top_k": _int(doc, "top_k", 0) or 0,
        "repeat_penalty": _number(doc, "repeat_penalty", 1.0, 0.0, 10.0),
    }
    max_tokens = _int(doc, "max_completion_tokens") or _int(doc, "max_tokens") or default_max
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    seed = doc.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise bad("seed must be a whole number", "seed")
        params["seed"] = seed % (2**32 - 1)
    stop = doc.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or len(stops) > MAX_STOP or \
                not all(isinstance(s, str) and s for s in stops):
            raise bad(f"stop must be a string or a list of at most {MAX_STOP} non-empty strings", "stop")
        params["stop"] = stops
    bias = doc.get("logit_bias")
    if bias is not None:
        if not isinstance(bias, dict) or len(bias) > 1024:
            raise bad("logit_bias must map token ids to numbers", "logit_bias")
        out = {}
        for k, v in bias.items():
            token_id = isinstance(k, str) and k.isascii() and k.isdigit() and len(k) <= 9
            if not token_id or isinstance(v, bool) or not isinstance(v, (int, float)) or not -100 <= v <= 100:
                raise bad("logit_bias must map token ids to numbers from -100 to 100", "logit_bias")
            out[str(int(k))] = float(v)
        params["logit_bias"] = out
    stream = doc.get("stream", False)
    if not isinstance(stream, bool):
        raise bad("stream must be true or false", "stream")
    opts = doc.get("stream_options") or {}
    if not isinstance(opts, dict):
        raise bad("stream_options must be an object", "stream_options")
    return model, params, stream, bool(opts.get("include_usage", False))


def chat(doc: dict[str, Any], n_ctx: int) -> Parsed:
    model, params, stream, usage = _common(doc, default_max=n_ctx)
    raw = doc.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("messages must be a non-empty list", "messages")
    messages = []
    for i, m in enumerate(raw):
        role = m.get("role") if isinstance(m, dict) else None
        if not isinstance(role, str) or role not in ROLES:
            raise bad(f"messages[{i}].role must be one of {', '.join(ROLES)} (tools are not supported)",
                      f"messages[{i}].role")
        if m.get("tool_calls") or m.get("function_call"):
            raise bad(f"messages[{i}]: tool calls are not supported", f"messages[{i}]", "unsupported")
        messages.append({"role": ROLES[role], "content": _content(m.get("content"), i)})
    return Parsed(model, params, stream, usage, messages=messages)


def _content(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad(f"messages[{i}].content: only text parts are supported", f"messages[{i}].content",
                          "unsupported")
            texts.append(part["text"])
        return "".join(texts)
    raise bad(f"messages[{i}].content must be a string or a list of text parts", f"messages[{i}].content")


def completion(doc: dict[str, Any]) -> Parsed:
    model, params, stream, usage = _common(doc, default_max=16)
    prompt = doc.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad("prompt must be a string (one prompt per request)", "prompt")
    if doc.get("echo") or doc.get("suffix") or doc.get("best_of") not in (None, 1):
        raise bad("echo, suffix and best_of are not supported", "prompt", "unsupported")
    return Parsed(model, params, stream, usage, prompt=prompt)
