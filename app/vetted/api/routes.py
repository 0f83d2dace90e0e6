"""The endpoints, in OpenAI's shapes: /v1/models, /v1/chat/completions, /v1/completions,
/v1/embeddings (a clear 400: the engine worker does not compute embeddings).

A generation is queued on the engine lane (`core/local_api.py`). While it waits and while
it runs, a watcher listens for the client going away (ASGI `http.disconnect`); then the
request leaves the queue, or the worker is told to stop before its next token, so a
dropped stream frees the engine at once instead of generating for nobody. A streamed
reply's status line waits for its first token: a refusal found while the model is
checked and loaded still gets its own status (403, 404, 400) rather than a 200 followed
by an error event. An error after the first token (the worker killed mid-stream) ends
the stream with an OpenAI-shaped `error` event and no `[DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vetted.api import parse
from vetted.api.errors import ApiError, from_vetted
from vetted.core.local_api import Generation, LocalApi, Output
from vetted.errors import VettedError
from vetted.textsafe import one_line

log = logging.getLogger("vetted.api")


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


class Endpoints:
    def __init__(self, service: LocalApi) -> None:
        self.service = service

    # -- models ------------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        rows = await run_in_threadpool(self.service.models)
        return JSONResponse({"object": "list", "data": [_model(r) for r in rows]})

    async def model(self, request: Request) -> Response:
        wanted = request.path_params["model_id"]
        rows = await run_in_threadpool(self.service.models)
        for r in rows:
            if r["id"] == wanted:
                return JSONResponse(_model(r))
        shown = wanted if len(wanted) <= parse.MAX_MODEL_ID else wanted[:parse.MAX_MODEL_ID] + "…"
        return error_response(ApiError(404, f"model {shown!r} is not installed and verified here",
                                       "invalid_request_error", "model_not_found", "model"))

    async def embeddings(self, request: Request) -> Response:
        model = parse.model_id(parse.body_json(await request.body()))
        await run_in_threadpool(self.service.require_model, model)
        return error_response(ApiError(400, f"model {model} cannot make embeddings here: Vetted's engine runs "
                                       "models for text generation only", "invalid_request_error",
                                       "embeddings_not_supported", "model"))

    # -- generation --------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        p = parse.chat(parse.body_json(await request.body()), self.service.n_ctx)
        return await self._generate(request, p, "chat.completion")

    async def completions(self, request: Request) -> Response:
        p = parse.completion(parse.body_json(await request.body()))
        return await self._generate(request, p, "text_completion")

    async def _generate(self, request: Request, p: parse.Parsed, kind: str) -> Response:
        await run_in_threadpool(self.service.require_model, p.model)
        return GenerationResponse(self.service, p, kind)


class GenerationResponse(Response):
    """Runs one generation and answers it, streamed (SSE) or whole, cancelling it when
    the client goes away."""

    def __init__(self, service: LocalApi, parsed: parse.Parsed, kind: str) -> None:
        self.service, self.p, self.kind = service, parsed, kind
        self.rid = ("chatcmpl-" if kind == "chat.completion" else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        def on_text(text: str) -> None:  # on the engine lane's thread
            loop.call_soon_threadsafe(events.put_nowait, ("text", text))

        gen = Generation(self.p.model, self.p.params, self.p.messages, self.p.prompt,
                         on_text if self.p.stream else None)
        try:
            fut = asyncio.wrap_future(self.service.submit(gen))
        except VettedError as exc:  # the queue is full
            await _send_json(send, from_vetted(exc))
            return
        fut.add_done_callback(lambda _f: events.put_nowait(("done", None)))
        gone = asyncio.Event()
        watcher = asyncio.create_task(self._watch(receive, gen, gone))
        try:
            if self.p.stream:
                await self._stream(send, events, fut, gen, gone)
            else:
                await events.get()
                if not gone.is_set():
                    await self._whole(send, fut)
        finally:
            watcher.cancel()
            if not fut.done():  # the client went away: the worker is stopping; log when it has
                await asyncio.wait([fut], timeout=60)
            self._log(gen, fut)

    async def _watch(self, receive: Any, gen: Generation, gone: asyncio.Event) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                gone.set()
                self.service.cancel(gen)
                return

    async def _whole(self, send: Any, fut: "asyncio.Future[Output]") -> None:
        exc = _failure(fut)
        if exc is not None:
            await _send_json(send, from_vetted(exc))
            return
        out = fut.result()
        if self.kind == "chat.completion":
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": out.text},
                                      "logprobs": None, "finish_reason": _finish(out)}
        else:
            choice = {"index": 0, "text": out.text, "logprobs": None, "finish_reason": _finish(out)}
        body = {"id": self.rid, "object": self.kind, "created": self.created, "model": self.p.model,
                "system_fingerprint": f"vetted-seed-{out.seed}", "choices": [choice], "usage": _usage(out)}
        await _send_json(send, None, body)

    async def _stream(self, send: Any, events: "asyncio.Queue[tuple[str, Any]]", fut: "asyncio.Future[Output]",
                      gen: Generation, gone: asyncio.Event) -> None:
        started = False
        while True:
            kind, text = await events.get()
            if gone.is_set():
                return
            if kind == "text":
                if not started:
                    started = True
                    await self._start_stream(send)
                await self._event(send, self._chunk(text, None))
                continue
            break  # done (the future holds the outcome)
        exc = _failure(fut)
        if exc is not None:
            err = from_vetted(exc)
            if not started:
                await _send_json(send, err)
            else:
                await self._event(send, err.body())
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        out = fut.result()
        if not started:
            await self._start_stream(send)
        await self._event(send, self._chunk(None, _finish(out)))
        if self.p.include_usage:
            await self._event(send, {**self._base(), "choices": [], "usage": _usage(out)})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _start_stream(self, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                                (b"x-accel-buffering", b"no")]})
        if self.kind == "chat.completion":  # OpenAI's first chunk names the role
            first = {**self._base(), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                  "logprobs": None, "finish_reason": None}]}
            await self._event(send, first)

    def _base(self) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.kind == "chat.completion" else "text_completion"
        return {"id": self.rid, "object": obj, "created": self.created, "model": self.p.model}

    def _chunk(self, text: str | None, finish: str | None) -> dict[str, Any]:
        if self.kind == "chat.completion":
            delta = {"content": text} if text is not None else {}
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return {**self._base(), "choices": [choice]}

    @staticmethod
    async def _event(send: Any, data: dict[str, Any]) -> None:
        payload = b"data: " + json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n\n"
        await send({"type": "http.response.body", "body": payload, "more_body": True})

    def _log(self, gen: Generation, fut: "asyncio.Future[Any]") -> None:
        """One line per request (stderr); a dropped client's line says how long the worker
        took to stop (monotonic clock, so another process can compare its own times)."""
        if not fut.done():
            outcome = "pending"
        elif fut.cancelled():
            outcome = "cancelled while queued"
        elif fut.exception() is not None:
            outcome = f"error: {one_line(str(fut.exception()))}"
        else:
            outcome = f"finish={fut.result().finish} tokens={fut.result().completion_tokens}"
        extra = ""
        if gen.cancel_at is not None:
            extra = f" client_gone_at={gen.cancel_at:.6f}"
            if gen.ended_at is not None:
                extra += f" worker_stopped_at={gen.ended_at:.6f} stop_ms={(gen.ended_at - gen.cancel_at) * 1000:.1f}"
        log.info("%s %s %s%s", self.kind, one_line(self.p.model), outcome, extra)


async def _send_json(send: Any, err: ApiError | None, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(err.body() if err is not None else body, ensure_ascii=False).encode("utf-8")
    status = err.status if err is not None else 200
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _failure(fut: "asyncio.Future[Any]") -> BaseException | None:
    from vetted.core.local_api import Cancelled

    if fut.cancelled():
        return Cancelled("request", "was cancelled before it ran")
    return fut.exception()


def _finish(out: Output) -> str:
    return "length" if out.finish == "length" else "stop"


def _usage(out: Output) -> dict[str, int]:
    return {"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens,
            "total_tokens": out.prompt_tokens + out.completion_tokens}


def _model(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "model", "created": row["created"], "owned_by": row["publisher"] or "vetted"}


def build(service: LocalApi) -> Starlette:
    e = Endpoints(service)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def vetted_error(request: Request, exc: Exception) -> Response:
        return error_response(from_vetted(exc))

    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not a refusal: uvicorn logs its traceback; answered in OpenAI's shape without its text.
        log.error("%s %s failed: %s", request.method, one_line(request.url.path), type(exc).__name__)
        return error_response(ApiError(500, "the server failed to handle this request (its log says why)",
                                       "server_error", "internal_error"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                                       "invalid_request_error", code))

    routes = [
        Route("/v1/models", e.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", e.model, methods=["GET"]),
        Route("/v1/chat/completions", e.chat, methods=["POST"]),
        Route("/v1/completions", e.completions, methods=["POST"]),
        Route("/v1/embeddings", e.embeddings, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={ApiError: api_error, VettedError: vetted_error,
                                                        HTTPException: http_error, Exception: unexpected})
