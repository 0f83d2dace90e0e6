"""SHA-256 of files, as fast as `sha256sum` (large reads into one reused buffer)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            if progress:
                progress(n)
    return h.hexdigest()


def sha256_fd(fd: int, progress: Callable[[int], None] | None = None) -> str:
    """Hashes an open file from its start, through the descriptor (not a path looked up again)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    offset = 0
    while True:
        n = os.preadv(fd, [buf], offset) if hasattr(os, "preadv") else _pread_into(fd, buf, offset)
        if not n:
            break
        h.update(view[:n])
        offset += n
        if progress:
            progress(n)
    return h.hexdigest()


def _pread_into(fd: int, buf: bytearray, offset: int) -> int:
    data = os.pread(fd, len(buf), offset) if hasattr(os, "pread") else _seek_read(fd, len(buf), offset)
    buf[: len(data)] = data
    return len(data)


def _seek_read(fd: int, n: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, n)
