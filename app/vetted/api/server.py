"""Starting the server: policy first, then the sockets, then uvicorn in the foreground.

The sockets are bound here rather than by uvicorn, so both loopback families (127.0.0.1
and ::1) share one port and no wildcard address is ever bound. Port 0 picks a free port
(tests). The first line on standard output is `listening on <url>`; a parent process
(the desktop app's switch) waits for it.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from vetted.core import Vetted
from vetted.core.api_access import READY_PREFIX, TokenCheck, bind_addresses, url_for
from vetted.core.local_api import WHO
from vetted.errors import InputError
from vetted.store import audit

log = logging.getLogger("vetted.api")


@dataclass
class Options:
    port: int | None = None
    hosts: list[str] | None = None  # non-loopback addresses the person asks for (policy permitting)
    queue_size: int | None = None
    n_ctx: int | None = None
    cors_origins: list[str] | None = None
    exit_with_stdin: bool = False


def bind(addresses: list[str], port: int) -> tuple[list[socket.socket], list[str], int]:
    """Binds every address on one port (the first fixes it when `port` is 0). ::1 is
    skipped, saying so, on a machine without IPv6; any other failure stops the start."""
    sockets: list[socket.socket] = []
    bound: list[str] = []
    try:
        for a in addresses:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((a, port))
                s.listen(128)
            except OSError as exc:
                s.close()
                if a == "::1" and bound:
                    log.warning("not listening on [::1]: %s", exc.strerror)
                    continue
                raise InputError(f"listening on {a} port {port}", exc.strerror or str(exc),
                                 "choose another port with --port" if exc.errno in (98, 48, 10048) else "") from None
            sockets.append(s)
            bound.append(a)
            port = s.getsockname()[1]
    except BaseException:
        for s in sockets:
            s.close()
        raise
    return sockets, bound, port


def serve(app: Vetted, opts: Options, say: Callable[[str], None] = print) -> None:
    """Runs until Ctrl-C, SIGTERM, or (with `exit_with_stdin`) the parent closing our stdin."""
    import uvicorn

    from vetted.api import routes
    from vetted.api.guard import Guard, allowed_hosts

    settings = app.api_settings()
    addresses = bind_addresses(opts.hosts)
    app.api_check_serve(addresses)  # the organisation's rule first (forbidden, interfaces); audited
    token = TokenCheck(app.loc)
    sockets, bound, port = bind(addresses, settings.port if opts.port is None else opts.port)
    mine = settings.cors_origins + [o.lower().rstrip("/") for o in opts.cors_origins or []]
    origins = app.gate().api_cors_origins(mine)
    service = app.local_api(queue_size=opts.queue_size or settings.queue_size, n_ctx=opts.n_ctx or settings.n_ctx)
    asgi = Guard(routes.build(service), token, allowed_hosts(bound, port), origins, settings.max_body_bytes)
    config = uvicorn.Config(asgi, http="h11", ws="none", lifespan="off", loop="asyncio", log_level="warning",
                            access_log=False, server_header=False, timeout_keep_alive=5,
                            timeout_graceful_shutdown=5, limit_concurrency=max(64, service.queue_size * 4))
    server = uvicorn.Server(config)
    urls = [url_for(port, a) for a in bound]
    audit.record(app.db, "api.serve", ", ".join(urls), "info",
                 f"local API listening (queue {service.queue_size}, CORS origins: {', '.join(origins) or 'none'})",
                 WHO)
    say(f"{READY_PREFIX}{urls[0]}" + (f" (also {', '.join(urls[1:])})" if urls[1:] else ""))
    say("every request needs `Authorization: Bearer <token>`; `vetted api-token` prints it. Ctrl-C stops.")
    sys.stdout.flush()
    if opts.exit_with_stdin:
        def watch() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            server.should_exit = True

        threading.Thread(target=watch, daemon=True, name="vetted-api-parent").start()
    try:
        server.run(sockets=sockets)
    finally:
        service.close()
        for s in sockets:
            s.close()
        audit.record(app.db, "api.serve", ", ".join(urls), "info", f"local API stopped after {service.served} "
                     "generation(s)", WHO)
