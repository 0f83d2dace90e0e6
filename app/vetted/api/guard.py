"""What every request passes before any endpoint sees it, in this order:

1. **Host** must be one of the names this server answers to — `127.0.0.1:PORT`,
   `localhost:PORT`, `[::1]:PORT` (and a policy-allowed address the person asked for).
   A web page that rebinds its own domain name to 127.0.0.1 still sends its own name as
   `Host`, so DNS rebinding ends here (403), before authentication is even attempted.
2. **Origin**, when present (only browsers send it), must be on the allowlist (the
   person's `cors_origins`, or the organisation's `api.cors_origins`), else 403 with no
   `Access-Control-Allow-Origin`: the browser cannot read the answer, and a preflight
   from such an origin fails, so the real request is never sent. Allowed origins get
   CORS headers naming that one origin (never `*`, never credentials: the token travels
   in a header the page must already hold).
3. **Authorization: Bearer <token>** on every endpoint (401 otherwise), compared in
   constant time against the token file, re-read when it changes (rotation is immediate).
4. **Body size**: a declared `Content-Length` over the cap is refused before reading,
   a chunked body as soon as it passes the cap (413); the body read here is replayed to
   the endpoint, and the endpoint's later `receive()` calls report the client going away.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from vetted.api.errors import ApiError
from vetted.core.api_access import TokenCheck
from vetted.textsafe import one_line

log = logging.getLogger("vetted.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What a browser client (the official openai JS client included) may send cross-origin.
ALLOWED_REQUEST_HEADERS = {"authorization", "content-type", "openai-organization", "openai-project", "openai-beta"}


def allowed_hosts(addresses: list[str], port: int) -> set[str]:
    """The `Host` values this server answers to, lower case."""
    names = set()
    for a in addresses:
        host = f"[{a}]" if ":" in a else a
        names.add(f"{host}:{port}")
        if port == 80:
            names.add(host)
        if a == "127.0.0.1" or a == "::1":
            names.add(f"localhost:{port}")
            if port == 80:
                names.add("localhost")
    return names


async def send_error(send: Send, err: ApiError, extra: list[tuple[bytes, bytes]] | None = None,
                     close: bool = False) -> None:
    body = err.encoded()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="vetted"'))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": err.status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: ASGIApp, token: TokenCheck, hosts: set[str], origins: list[str],
                 max_body: int) -> None:
        self.app = app
        self.token = token
        self.hosts = {h.lower() for h in hosts}
        self.origins = {o.lower().rstrip("/") for o in origins}
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers: dict[bytes, list[bytes]] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.lower(), []).append(v)
        peer = (scope.get("client") or ("?", 0))[0]
        path = scope.get("path", "")

        hosts = headers.get(b"host", [])
        host = hosts[0].decode("latin-1").lower() if len(hosts) == 1 else None
        if host not in self.hosts:
            log.warning("refused %s %s from %s: Host %s is not this server's loopback name and port",
                        scope["method"], one_line(path), peer, one_line(host) if host else "(missing or repeated)")
            await send_error(send, ApiError(403, "Host header is not this server's loopback address and port "
                                            "(requests through another name, as DNS rebinding makes, are refused)",
                                            "invalid_request_error", "host_not_allowed"), close=True)
            return

        cors: list[tuple[bytes, bytes]] = []
        origins = headers.get(b"origin", [])
        if origins:
            origin = origins[0].decode("latin-1")
            if len(origins) > 1 or origin.lower().rstrip("/") not in self.origins:
                log.warning("refused %s %s from %s: web origin %s is not on the allowlist", scope["method"],
                            one_line(path), peer, one_line(origin))
                await send_error(send, ApiError(403, f"web origin {origin} is not allowed to use this API "
                                                "(cors_origins in config/api.json, or the organisation's "
                                                "api.cors_origins)", "invalid_request_error",
                                                "origin_not_allowed"), close=True)
                return
            cors = [(b"access-control-allow-origin", origins[0]), (b"vary", b"Origin")]
            if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
                await self._preflight(send, headers, cors)
                return

        auth = headers.get(b"authorization", [])
        scheme, _, presented = (auth[0] if len(auth) == 1 else b"").partition(b" ")
        if scheme.lower() != b"bearer" or not self.token.matches(presented.strip()):
            log.warning("refused %s %s from %s: %s", scope["method"], one_line(path), peer,
                        "wrong token" if auth else "no token")
            await send_error(send, ApiError(401, "a valid API token is required: Authorization: Bearer <token> "
                                            "(`vetted api-token` prints it)", "invalid_request_error",
                                            "invalid_api_key"), cors)
            return

        body = await self._read_body(scope, receive, send, headers, cors)
        if body is None:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # from here on: only the client going away

        async def send_with_cors(message: Message) -> None:
            if cors and message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + cors}
            await send(message)

        await self.app(scope, replay, send_with_cors)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, list[bytes]],
                         cors: list[tuple[bytes, bytes]]) -> bytes | None:
        too_big = ApiError(413, f"request body is over the {self.max_body}-byte limit", "invalid_request_error",
                           "request_too_large")
        declared = headers.get(b"content-length", [])
        if declared:
            try:
                n = int(declared[0])
            except ValueError:
                n = -1
            if n < 0 or len(declared) > 1:
                await send_error(send, ApiError(400, "malformed Content-Length"), cors, close=True)
                return None
            if n > self.max_body:
                log.warning("refused %s %s: body of %d bytes declared", scope["method"], one_line(scope["path"]), n)
                await send_error(send, too_big, cors, close=True)
                return None
        parts: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                log.warning("refused %s %s: body over %d bytes", scope["method"], one_line(scope["path"]),
                            self.max_body)
                await send_error(send, too_big, cors, close=True)
                return None
            parts.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(parts)

    async def _preflight(self, send: Send, headers: dict[bytes, list[bytes]],
                         cors: list[tuple[bytes, bytes]]) -> None:
        asked = b",".join(headers.get(b"access-control-request-headers", [])).decode("latin-1").lower()
        allowed = [h.strip() for h in asked.split(",") if h.strip() and
                   (h.strip() in ALLOWED_REQUEST_HEADERS or h.strip().startswith("x-stainless-"))]
        out = cors + [(b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                      (b"access-control-allow-headers", ", ".join(allowed).encode("latin-1")),
                      (b"access-control-max-age", b"600"), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": out})
        await send({"type": "http.response.body", "body": b""})
