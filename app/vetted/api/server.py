"""Starting the server: policy first, then the sockets, then uvicorn in the foreground.

The sockets are bound here rather than by uvicorn, so both loopback families (127.0.0.1
and ::1) share one port and no wildcard address is ever bound. Port 0 picks a free port
(tests). The first line on standard output is `listening on <url>`; a parent process
(the desktop app's switch) waits for it.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from vetted.core import Vetted
from vetted.core.api_access import READY_PREFIX, TokenCheck, bind_addresses, url_for, web_origin
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
    header_seconds: float | None = None  # deadline for each request's headers (config/api.json otherwise)


# ::1 is skipped only when this machine has no IPv6 loopback; any other failure (another
# program holding [::1]:PORT above all) stops the start: clients that resolve `localhost`
# to ::1 would otherwise hand their token to whoever holds it.
_NO_IPV6 = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, 10047, 10049}
_IN_USE = {errno.EADDRINUSE, 48, 98, 10048}
PORT_ATTEMPTS = 8


class _Taken(Exception):
    """An address after the first could not have the port the first one got."""

    def __init__(self, address: str, port: int, exc: OSError) -> None:
        super().__init__(address)
        self.address, self.port, self.exc = address, port, exc


def _refusal(address: str, port: int, exc: OSError) -> InputError:
    shown = f"[{address}]" if ":" in address else address
    fix = ""
    if exc.errno in _IN_USE:
        fix = (f"another program is listening on {shown}:{port}; clients that reach this server through "
               "`localhost` could reach it instead — stop it or choose another port with --port")
    return InputError(f"listening on {shown} port {port}", exc.strerror or str(exc), fix)


def _bind_once(addresses: list[str], port: int) -> tuple[list[socket.socket], list[str], int]:
    sockets: list[socket.socket] = []
    bound: list[str] = []
    try:
        for a in addresses:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            s: socket.socket | None = None
            try:
                s = socket.socket(family, socket.SOCK_STREAM)
                if sys.platform != "win32":  # on Windows SO_REUSEADDR would let another socket share the port
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((a, port))
                s.listen(128)
            except OSError as exc:
                if s is not None:
                    s.close()
                if a == "::1" and exc.errno in _NO_IPV6:
                    log.warning("not listening on [::1]: this machine has no IPv6 loopback (%s)",
                                exc.strerror or exc)
                    continue
                if bound and exc.errno in _IN_USE:
                    raise _Taken(a, port, exc) from None
                raise _refusal(a, port, exc) from None
            sockets.append(s)
            bound.append(a)
            port = s.getsockname()[1]
    except BaseException:
        for s in sockets:
            s.close()
        raise
    if not bound:
        raise InputError("listening on loopback", "no address could be bound")
    return sockets, bound, port


def bind(addresses: list[str], port: int) -> tuple[list[socket.socket], list[str], int]:
    """Binds every address on one port (the first fixes it when `port` is 0). ::1 is
    skipped, saying so, only on a machine without IPv6; any other failure stops the start,
    except that with port 0 a port another program holds on a later address (::1) is
    given up for a fresh one, a few times."""
    for attempt in range(PORT_ATTEMPTS if port == 0 else 1):
        try:
            return _bind_once(addresses, port)
        except _Taken as taken:
            if port != 0 or attempt == PORT_ATTEMPTS - 1:
                raise _refusal(taken.address, taken.port, taken.exc) from None
            log.info("port %d is taken on %s; trying another", taken.port, taken.address)
    raise AssertionError("unreachable")


def serve(app: Vetted, opts: Options, say: Callable[[str], None] = print) -> None:
    """Runs until Ctrl-C, SIGTERM, or (with `exit_with_stdin`) the parent closing our stdin."""
    import uvicorn

    from vetted.api import routes
    from vetted.api.connections import protocol_with_deadline
    from vetted.api.guard import Guard, allowed_hosts

    settings = app.api_settings()
    asked = [(o, web_origin(o)) for o in opts.cors_origins or []]
    for given, origin in asked:
        if origin is None:
            raise InputError(f"CORS origin {given!r}", "is not a web origin (scheme://host[:port], no path; "
                             "null and * are never allowed)", "name the page's origin, e.g. https://tool.example.org")
    addresses = bind_addresses(opts.hosts)
    app.api_check_serve(addresses)  # the organisation's rule first (forbidden, interfaces); audited
    token = TokenCheck(app.loc)
    sockets, bound, port = bind(addresses, settings.port if opts.port is None else opts.port)
    mine = settings.cors_origins + [o for _, o in asked if o is not None]
    origins = app.gate().api_cors_origins(mine)
    service = app.local_api(queue_size=opts.queue_size or settings.queue_size, n_ctx=opts.n_ctx or settings.n_ctx)
    asgi = Guard(routes.build(service), token, allowed_hosts(bound, port), origins, settings.max_body_bytes)
    # No limit_concurrency: uvicorn counts idle connections in it, so a few dozen silent sockets
    # would make every real request a 503. The engine's queue bounds the work (429 beyond it),
    # and each connection must send its request headers within `header_seconds` or is closed.
    config = uvicorn.Config(asgi, http=protocol_with_deadline(opts.header_seconds or settings.header_seconds),
                            ws="none", lifespan="off", loop="asyncio", log_level="warning",
                            access_log=False, server_header=False, timeout_keep_alive=5,
                            timeout_graceful_shutdown=5)
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
