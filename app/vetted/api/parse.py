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
from dataclasses import dataclass
from typing import Any

from vetted.api.errors import ApiError

MAX_STOP = 4
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
UNSUPPORTED = ("tools", "functions", "audio", "modalities", "prediction", "web_search_options")


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
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the body is not valid JSON ({exc})", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise bad("the body must be a JSON object", code="invalid_json")
    return doc


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
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model is required: the catalog model id (GET /v1/models)", "model", "missing_model")
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
            if not str(k).isdigit() or isinstance(v, bool) or not isinstance(v, (int, float)) or not -100 <= v <= 100:
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
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise bad(f"messages[{i}].role must be one of {', '.join(ROLES)} (tools are not supported)",
                      f"messages[{i}].role")
        if m.get("tool_calls") or m.get("function_call"):
            raise bad(f"messages[{i}]: tool calls are not supported", f"messages[{i}]", "unsupported")
        messages.append({"role": ROLES[m["role"]], "content": _content(m.get("content"), i)})
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
