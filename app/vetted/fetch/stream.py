"""Download one file into quarantine, hashing while it streams (DESIGN.md invariant 4).

A receiving thread reads the socket into fresh buffers; a second thread hashes and
writes them (both release the GIL), so hashing costs no wall-clock time on top of the
transfer. An interrupted transfer leaves `<sha256>.part` behind; the next attempt
re-hashes what is there and asks the server for the rest with HTTP Range.
"""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vetted.digest import CHUNK
from vetted.errors import DownloadError, Refused
from vetted.fetch import http







# 1 MiB reads: larger blocks cost page faults per allocation; a short queue keeps the
# hash at most ~4 MiB behind the socket, so the digest is known right after the last byte.
RECV_CHUNK = 1024 * 1024

Progress = Callable[[int, int], None]  # (bytes so far, total)


class Cancelled(DownloadError):
    def __init__(self, what: str) -> None:
        super().__init__(what, "cancelled", "run the same command again to resume")


@dataclass
class Partial:
    """A quarantined file in progress: its bytes so far and their running hash."""

    path: Path
    size: int
    hasher: "hashlib._Hash"

    @classmethod
    def open(cls, path: Path, limit: int) -> "Partial":
        h = hashlib.sha256()
        size = 0
        if path.exists():
            if path.stat().st_size > limit:
                path.unlink()
            else:
                buf = bytearray(CHUNK)
                with open(path, "rb", buffering=0) as f:
                    while n := f.readinto(buf):
                        h.update(memoryview(buf)[:n])
                        size += n
        return cls(path, size, h)

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
        self.size = 0
        self.hasher = hashlib.sha256()


class _Writer(threading.Thread):
    """Hashes and appends buffers handed over by the receiving thread."""

    def __init__(self, part: Partial) -> None:
        super().__init__(daemon=True, name="vetted-hash-write")
        self.part = part
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.part.path, "ab", buffering=0) as f:
                while (chunk := self.q.get()) is not None:
                    self.part.hasher.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[f.write(view):]
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
    timeout: float = http.DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    check_response: Callable[[http.Response], None] | None = None,
) -> None:
    """Brings `part` up to `total` bytes from `url`, or raises with the partial kept."""
    if part.size == total:
        return
    req_headers = dict(headers or {})
    if part.size:
        req_headers["Range"] = f"bytes={part.size}-"
    with http.get(url, req_headers, timeout) as resp:
        if check_response:
            check_response(resp)
        if resp.status == 416:
            part.reset()  # our partial is not a prefix the server knows; start over
            raise DownloadError(f"GET {url}", "server rejected the resume range; restarting", "retry")
        if part.size and resp.status != 206:
            part.reset()  # server ignored Range: take the whole body from the start
        elif resp.status == 206 and not (resp.header("content-range") or "").startswith(f"bytes {part.size}-"):
            part.reset()
            raise DownloadError(f"GET {url}", f"server resumed at the wrong offset ({resp.header('content-range')})", "retry")
        declared = resp.header("content-length")
        if declared and declared.isdigit() and part.size + int(declared) > total:
            raise Refused(
                f"download size of {url}",
                f"server offers {part.size + int(declared)} bytes, the signed catalog declares {total}",
                "the mirror serves a different file",
            )
        raw = resp.raw
        pump(url, raw.read1 if hasattr(raw, "read1") else raw.read, part, total, progress, cancel, timeout)


def copy_local(src: Path, part: Partial, total: int, progress=None, cancel=None) -> None:
    """The air-gapped case: a local mirror folder goes through the same hashing pipe."""
    try:
        f = open(src, "rb")
    except OSError as exc:
        raise DownloadError(f"reading {src}", exc.strerror or str(exc), "check the local mirror folder") from None
    with f:
        have = src.stat().st_size
        if have > total:
            raise Refused(f"size of {src}", f"{have} bytes, the signed catalog declares {total}",
                          "the local mirror holds a different file")
        if part.size > have:
            part.reset()
        f.seek(part.size)
        pump(str(src), f.read, part, total, progress, cancel, None)


def pump(label: str, read: Callable[[int], bytes], part: Partial, total: int,
         progress: Progress | None, cancel: threading.Event | None, timeout: float | None) -> None:
    writer = _Writer(part)
    writer.start()
    received = part.size
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"download of {label}")
            try:
                chunk = read(RECV_CHUNK)
            except (socket.timeout, TimeoutError):
                raise DownloadError(
                    f"download of {label}", f"no data for {timeout} s",
                    "the server stalled; run the command again to resume",
                ) from None
            except OSError as exc:
                raise DownloadError(f"download of {label}", f"connection lost ({exc})", "run again to resume") from None
            if not chunk:
                break
            received += len(chunk)
            if received > total:
                raise Refused(
                    f"download size of {label}",
                    f"more than the {total} bytes the signed catalog declares",
                    "the mirror serves a different file",
                )
            writer.q.put(chunk)
            if writer.error:
                break
            if progress:
                progress(received, total)
    finally:
        writer.q.put(None)
        writer.join()
        part.size = part.path.stat().st_size if part.path.exists() else 0
    if writer.error:
        if isinstance(writer.error, OSError):
            raise DownloadError(
                f"writing {part.path}", writer.error.strerror or str(writer.error),
                "free some disk space and run the command again to resume",
            )
        raise writer.error
    if part.size < total:
        raise DownloadError(
            f"download of {label}", f"connection closed after {part.size} of {total} bytes",
            "run the command again to resume",
        )
