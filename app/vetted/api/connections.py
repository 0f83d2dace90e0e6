"""A deadline for each request's headers, on top of uvicorn's HTTP/1.1 protocol.

uvicorn closes a kept-alive connection that stays silent after a response, but has no
deadline for a connection that never completes its first request: a local program could
open connections, send nothing (or a byte now and then), and hold them for ever. Here a
timer starts when a connection is made (and again when a response is complete and the
connection waits for its next request); it is cancelled once that request's headers have
been read. When it fires the connection is closed. Idle connections therefore cost at
most `seconds` each, and the server's concurrency is not counted in connections at all
(the engine's queue bounds the work), so idle sockets never make real requests wait.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("vetted.api")

DEFAULT_HEADER_SECONDS = 10.0


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for every request's headers."""

    header_seconds: float = DEFAULT_HEADER_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport is not None and not self.transport.is_closing():
            peer = self.client[0] if self.client else "?"
            log.info("closed a connection from %s: no complete request headers within %gs", peer,
                     self.header_seconds)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_deadline is not None and self.conn.their_state is not h11.IDLE:
            self._disarm()  # a request's headers are in (or the connection is over)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # waiting for the next request on a kept-alive connection


def protocol_with_deadline(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class uvicorn is given (`Config(http=...)`), with this deadline."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_seconds": float(seconds)})
