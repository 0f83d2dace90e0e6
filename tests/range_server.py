"""A loopback file server for ranged, parallel downloads: per-connection rate caps, Range
support on or off, and per-answer faults. Used by tests/test_parallel_download*.py and,
in a process of its own, by bench/download.py.

  GET /{name}   a file of the served folder; `Range: bytes=A-B` / `bytes=A-` is answered
                with 206 and `Content-Range` (416 past the end), unless `ranges` is off
                (then 200 with the whole file and no `Accept-Ranges`). An absolute-form
                request line (`GET http://host/name`, as sent to a proxy) is served too and
                recorded as proxied.

Bodies go out with sendfile(2) in slices; a cap (`cap_bps`) is a token bucket per
connection, kept across the requests of a keep-alive connection, as a CDN caps each
connection. So one Python process serves 8 × 25 MB/s on two cores with little CPU.

`fault(request)` may return an `Answer` that changes one answer: another status, another
Content-Range or Content-Length, bytes shifted or flipped, extra bytes, a stall, a trickle,
a cut connection, a redirect. Every request is recorded (`requests`: connection number, range asked,
status sent, whether it came through a proxy), and `max_active` is the most requests
served at once.
"""

from __future__ import annotations

import http.server
import itertools
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
SLICE_CAPPED = 256 * 1024
SLICE_FREE = 8 * 1024 * 1024


@dataclass
class Answer:
    """How one answer departs from a faithful one (None / 0: as it should be)."""

    status: int | None = None            # e.g. 200 instead of 206 (the whole file is then sent)
    content_range: str | None = None     # this Content-Range header instead of the true one
    content_length: str | None = None    # this Content-Length instead of the true one ("" = none)
    shift: int = 0                       # the body holds the file's bytes from start+shift (wrong bytes)
    flip_at: int | None = None           # this file offset is XORed with 0xFF, if the answer holds it
    extra: int = 0                       # this many junk bytes after the body (Content-Length unchanged)
    stall_after: int | None = None       # after this many body bytes, silence...
    stall_seconds: float = 30.0          # ...for this long
    trickle: float | None = None         # after stall_after bytes: one byte per this many seconds
    close_after: int | None = None       # after this many body bytes the connection is cut
    location: str | None = None          # with a 3xx status: where the answer redirects


@dataclass
class Request:
    conn: int
    path: str
    range: str | None
    start: int = 0
    end: int = 0                         # one past the last byte sent
    status: int = 0
    proxied: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RangeServer:
    folder: Path
    cap_bps: float | None = None         # per connection
    ranges: bool = True
    fault: Callable[[Request], Answer | None] | None = None
    port: int = 0
    tls: Any = None                      # a hub_server.LoopbackTLS: https instead of http

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.requests: list[Request] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns = itertools.count(1)
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 60

            def setup(self) -> None:
                super().setup()
                self.conn_id = next(srv._conns)
                self.tokens = 0.0
                self.refilled = time.monotonic()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                srv._serve(self)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 64

            def handle_error(self, request, client_address) -> None:  # noqa: ANN001
                """A client that cuts its connection (a cancelled download does) is not news."""
                if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", self.port), Handler)
        if self.tls is not None:  # each connection's handshake happens in its own thread, on first read
            self.httpd.socket = self.tls.server_context().wrap_socket(self.httpd.socket, server_side=True,
                                                                      do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="range-server")
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def for_file(self, name: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.rsplit("/", 1)[-1] == name]

    def wait(self) -> None:
        """Serves until the process is stopped (bench/download.py runs it in its own process)."""
        self._thread.join()

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "RangeServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------

    def _serve(self, h) -> None:
        path, proxied = h.path, False
        if path.startswith(("http://", "https://")):
            path, proxied = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/", True
        req = Request(h.conn_id, path, h.headers.get("Range"), proxied=proxied,
                      headers={k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.requests.append(req)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self._answer(h, req)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout, OSError):
            h.close_connection = True
        finally:
            with self._lock:
                self.active -= 1

    def _answer(self, h, req: Request) -> None:
        name = req.path.lstrip("/").split("?", 1)[0]
        file = self.folder / name
        if "/" in name or name.startswith(".") or not file.is_file():
            req.status = 404
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        size = file.stat().st_size
        start, end, status = 0, size, 200
        m = _RANGE.match((req.range or "").strip())
        if self.ranges and m:
            start = int(m.group(1))
            end = min(int(m.group(2)) + 1, size) if m.group(2) else size
            if start >= size or start >= end:
                req.status = 416
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{size}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        req.start, req.end = start, end
        ans = (self.fault(req) if self.fault else None) or Answer()
        if ans.status is not None:
            status = ans.status
            if status == 200:
                start, end = 0, size
        req.status = status
        if status >= 300:  # a redirect or an error answer: no body
            h.send_response(status)
            if ans.location:
                h.send_header("Location", ans.location)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        if self.ranges:
            h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", ans.content_range or f"bytes {start}-{end - 1}/{size}")
        length = str(end - start) if ans.content_length is None else ans.content_length
        if length:
            h.send_header("Content-Length", length)
        else:  # the body ends when the connection does
            h.send_header("Connection", "close")
            h.close_connection = True
        h.send_header("ETag", '"' + "0" * 64 + '"')  # a claim about the bytes: never to be trusted
        h.end_headers()
        h.wfile.flush()
        self._body(h, file, start + ans.shift, end + ans.shift, ans)

    def _body(self, h, file: Path, start: int, end: int, ans: Answer) -> None:
        sock = h.connection
        sent = 0
        with open(file, "rb") as f:
            pos = start
            while pos < end:
                n = end - pos
                if ans.stall_after is not None:
                    n = min(n, max(0, ans.stall_after - sent))
                    if n == 0:
                        if ans.trickle:
                            self._trickle(sock, f, pos, end, ans.trickle)
                        else:
                            self._stop.wait(ans.stall_seconds)
                        h.close_connection = True
                        return
                if ans.close_after is not None:
                    n = min(n, max(0, ans.close_after - sent))
                    if n == 0:
                        h.close_connection = True
                        sock.shutdown(socket.SHUT_RDWR)
                        return
                n = min(n, SLICE_CAPPED if self.cap_bps else SLICE_FREE)
                self._pace(h, n)
                if ans.flip_at is not None and pos <= ans.flip_at < pos + n:
                    f.seek(pos)
                    data = bytearray(f.read(n))
                    data[ans.flip_at - pos] ^= 0xFF
                    sock.sendall(data)
                    k = n
                else:
                    k = sock.sendfile(f, pos, n)  # os.sendfile, waiting on the socket's timeout
                    if k == 0:
                        break
                pos += k
                sent += k
        if ans.extra:
            sock.sendall(b"\xee" * ans.extra)

    def _pace(self, h, n: int) -> None:
        """Token bucket per connection: never more than cap_bps on average, bursts of one slice."""
        if not self.cap_bps:
            return
        now = time.monotonic()
        h.tokens = min(float(SLICE_CAPPED), h.tokens + (now - h.refilled) * self.cap_bps)
        h.refilled = now
        if h.tokens < n:
            self._stop.wait((n - h.tokens) / self.cap_bps)
            later = time.monotonic()
            h.tokens += (later - now) * self.cap_bps  # the time actually slept is credited
            h.refilled = later
        h.tokens -= n

    def _trickle(self, sock: socket.socket, f, pos: int, end: int, every: float) -> None:
        while pos < end and not self._stop.is_set():
            f.seek(pos)
            sock.sendall(f.read(1))
            pos += 1
            if self._stop.wait(every):
                return
