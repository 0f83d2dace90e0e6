"""Download one file into quarantine over one connection, hashing while it streams
(DESIGN.md invariant 4). fetch/parallel.py sends large files as ranged parts instead, and
comes here for small files, servers without Range and `connections: 1`.

The receiving thread gathers the body into ~1 MiB buffers; a second thread hashes and
writes them (both release the GIL), so hashing costs no wall-clock time on top of the
transfer. An interrupted transfer leaves `<sha256>.part` behind; the next attempt
re-hashes what is there and asks the server for the rest with HTTP Range, and a server
that answers a Range request with the wrong range or a different file is not trusted.
A partial a ranged download left is cut back to its hashed prefix first (`contiguous`).
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from vetted.errors import DownloadError, Refused
from vetted.net import http
from vetted.net.http import Cancelled
from vetted.store.quarantine import Partial
from vetted.net.watchdog import DEFAULT_LIMITS, TransferLimits

__all__ = ["Cancelled", "Partial", "download", "copy_local", "pump"]

# ~1 MiB hand-overs: larger blocks cost page faults per allocation; a short queue keeps
# the hash at most a few MiB behind the socket, so the digest is known right after the last byte.
BLOCK = 1024 * 1024

Progress = Callable[[int, int], None]  # (bytes so far, total)

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class _Writer(threading.Thread):
    """Hashes and appends buffers handed over by the receiving thread."""

    def __init__(self, part: Partial) -> None:
        super().__init__(daemon=True, name="vetted-hash-write")
        self.part = part
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (chunk := self.q.get()) is not None:
                self.part.hasher.update(chunk)
                self.part.write(chunk)
                # No fsync here: the page cache is the truth within this boot, and a file
                # installed in an earlier boot is fully re-hashed before its first load
                # (store/installed.py), so a power cut can never make wrong bytes run.
        except BaseException as exc:  # surfaced to the caller, e.g. a full disk
            self.error = exc
            while self.q.get() is not None:
                pass


def download(
    url: str,
    part: Partial,
    total: int,
    headers: dict[str, str] | None = None,
    limits: TransferLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    check_response: http.ResponseCheck | None = None,
) -> None:
    """Brings `part` up to `total` bytes from `url` over one connection, or raises with the
    partial kept (fetch/parallel.py decides when one connection is the way)."""
    if part.size == total:
        return
    part.contiguous()
    req_headers = dict(headers or {})
    if part.size:
        req_headers["Range"] = f"bytes={part.size}-"
    with http.get(url, req_headers, limits, cancel, on_response=check_response) as resp:
        if resp.status == 416:
            part.reset()  # our partial is not a prefix the server knows; start over
            raise DownloadError(f"GET {url}", "server rejected the resume range; restarting",
                                "run the command again")
        if part.size and resp.status != 206:
            part.reset()  # server ignored Range: take the whole body from the start
        elif resp.status == 206:
            _check_range(url, resp, part.size, total)
        declared = resp.header("content-length")
        if declared and declared.isdigit() and part.size + int(declared) > total:
            raise Refused(
                f"download size of {url}",
                f"server offers {part.size + int(declared)} bytes, the signed catalog declares {total}",
                "the mirror serves a different file",
            )
        pump(url, resp.chunks(), part, total, progress, cancel)


def _check_range(url: str, resp: http.Response, start: int, total: int) -> None:
    """A 206 must answer exactly the range asked for, of a file of the signed size."""
    got = resp.header("content-range") or ""
    m = _CONTENT_RANGE.match(got.strip())
    if not m or int(m.group(1)) != start:
        raise DownloadError(f"GET {url}", f"server resumed at the wrong range ({got or 'no Content-Range'})",
                            "run the command again; the partial download is kept")
    if m.group(3) != "*" and int(m.group(3)) != total:
        raise Refused(f"download size of {url}",
                      f"server says the file has {m.group(3)} bytes, the signed catalog declares {total}",
                      "the mirror serves a different file")


def copy_local(src: Path, part: Partial, total: int, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> None:
    """The air-gapped case: a local mirror folder goes through the same hashing pipe."""
    try:
        fd = http.open_regular(src)
    except Exception as exc:
        raise DownloadError(f"reading {src}", getattr(exc, "found", str(exc)), "check the local mirror folder") \
            from None
    with open(fd, "rb", buffering=0) as f:
        part.contiguous()
        have = os.fstat(fd).st_size
        if have > total:
            raise Refused(f"size of {src}", f"{have} bytes, the signed catalog declares {total}",
                          "the local mirror holds a different file")
        if part.size > have:
            part.reset()
        f.seek(part.size)

        def chunks() -> Iterator[bytes]:
            while block := f.read(BLOCK):
                yield block

        pump(str(src), chunks(), part, total, progress, cancel)


def pump(label: str, chunks: Iterable[bytes], part: Partial, total: int,
         progress: Progress | None, cancel: threading.Event | None) -> None:
    """Appends `chunks` to the partial's contiguous prefix, hashing in a second thread."""
    part.contiguous()
    writer = _Writer(part)
    writer.start()
    received = part.size
    pending: list[bytes] = []
    pending_n = 0
    lost: http.ConnectionLost | None = None
    try:
        try:
            for chunk in chunks:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"download of {label}")
                received += len(chunk)
                if received > total:
                    raise Refused(
                        f"download size of {label}",
                        f"more than the {total} bytes the signed catalog declares",
                        "the mirror serves a different file",
                    )
                pending.append(chunk)
                pending_n += len(chunk)
                if pending_n >= BLOCK:
                    writer.q.put(pending[0] if len(pending) == 1 else b"".join(pending))
                    pending, pending_n = [], 0
                    if writer.error:
                        break
                if progress:
                    progress(received, total)
        except http.ConnectionLost as exc:
            lost = exc
    finally:
        if pending and not writer.error:  # what arrived is kept for a resume
            writer.q.put(b"".join(pending))
        writer.q.put(None)
        writer.join()
        part.sync_size()
    if writer.error:
        if isinstance(writer.error, OSError):
            raise DownloadError(
                f"writing {part.path}", writer.error.strerror or str(writer.error),
                "free some disk space and run the command again to resume",
            )
        raise writer.error
    if part.size < total:
        raise DownloadError(
            f"download of {label}", f"connection closed after {part.size} of {total} bytes"
            + (f" ({lost.found})" if lost else ""), "run the command again to resume",
        )
