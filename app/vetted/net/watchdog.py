"""Slow-retrieval protection: a transfer that does not keep moving is abandoned.

A per-read timeout alone cannot stop a server that trickles one byte every few seconds
(each read succeeds), and that applies to response headers as much as to bodies. So
every transfer gets a watchdog that counts the bytes arriving on its sockets and, unless
`TransferLimits.min_bytes_per_window` bytes arrived in each `window` seconds, shuts the
sockets down: the blocked read returns at once and the transfer fails with the reason.

The watchdog is given each socket the moment it connects (`net/http.py` hooks the HTTP
library's connection factory), before TLS, a proxy tunnel or the response headers, so a
trickle at any stage is cut; only body bytes count as progress. A cancel event is
honoured the same way, so Cancel takes effect even while a server is silent.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from vetted.net.limits import DEFAULT_LIMITS, TransferLimits

__all__ = ["DEFAULT_LIMITS", "Meter", "TransferLimits", "Watchdog"]


class Meter:
    """The bytes one transfer has received, judged against the minimum rate.

    A file fetched as ranged parts over several connections is still one transfer: its
    connections' watchdogs share one meter, so the rule judges the file (a slow link split
    eight ways is not eight slow links) and trips all of them at once.
    """

    def __init__(self, limits: TransferLimits) -> None:
        self.limits = limits
        self.received = 0
        self.slow = False  # set by the first watchdog that finds the rate under the minimum
        self._lock = threading.Lock()
        self._mark_time = self.last = time.monotonic()
        self._mark_bytes = 0

    def feed(self, n: int) -> None:
        with self._lock:
            self.received += n
            self.last = time.monotonic()  # when the last byte of any connection arrived
            if self.received - self._mark_bytes >= self.limits.min_bytes_per_window:
                self._mark_time, self._mark_bytes = time.monotonic(), self.received

    def deadline(self) -> float:
        """When the transfer counts as slow unless enough bytes arrive before then."""
        with self._lock:
            return self._mark_time + self.limits.window

    def since_mark(self) -> tuple[int, float]:
        """(bytes, seconds) since the rate was last met: what the rule judged when it tripped
        (the transfer's total says nothing; most of a file may have come fast before one
        part began to trickle)."""
        with self._lock:
            return self.received - self._mark_bytes, time.monotonic() - self._mark_time


class Watchdog:
    """Watches one connection group (cancel, minimum rate) and cuts its sockets when it trips."""

    def __init__(self, limits: TransferLimits, cancel: threading.Event | None = None,
                 meter: Meter | None = None) -> None:
        self.limits = limits
        self.cancel = cancel
        self.meter = meter or Meter(limits)
        self.tripped: str | None = None  # "slow" or "cancelled"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="vetted-transfer-watchdog")
        self._thread.start()

    # -- called from the transfer's thread
    def register(self, sock: socket.socket | None) -> None:
        """Keeps a handle of its own on the connection: a duplicate of the descriptor, because
        wrapping a socket in TLS detaches the original object (its fd becomes -1), and
        shutdown() through any descriptor of a socket ends the connection for all of them."""
        if sock is None:
            return
        try:
            handle = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        with self._lock:
            self._sockets.append(handle)
            tripped = self.tripped
        if tripped:
            _cut(handle)

    @property
    def received(self) -> int:
        return self.meter.received

    def feed(self, n: int) -> None:
        self.meter.feed(n)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)
        with self._lock:
            handles, self._sockets = self._sockets, []
        for handle in handles:
            handle.close()  # our duplicate only; the connection belongs to the HTTP library

    def check(self) -> None:
        """Raises ConnectionError if the watchdog has tripped (for loops that never block)."""
        if self.tripped:
            raise ConnectionError(f"transfer abandoned ({self.tripped})")

    # -- the watchdog's own thread
    def _watch(self) -> None:
        while True:
            wait = max(0.0, self.meter.deadline() - time.monotonic())
            if self.cancel is not None:
                wait = min(wait, 0.1)
            if self.meter.slow:  # another connection of the same transfer found it slow
                wait = 0.0
            if self._done.wait(wait):
                return
            if self.cancel is not None and self.cancel.is_set():
                self._trip("cancelled")
                return
            if self.meter.slow or time.monotonic() >= self.meter.deadline():
                self.meter.slow = True
                self._trip("slow")
                return

    def _trip(self, why: str) -> None:
        with self._lock:
            self.tripped = why
            sockets = list(self._sockets)
        for sock in sockets:
            _cut(sock)


def _cut(sock: socket.socket) -> None:
    """shutdown() wakes a read blocked in another thread (close() alone would not)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
