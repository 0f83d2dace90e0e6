"""Quarantine: where bytes wait until their digest is known (DESIGN.md invariant 1).

Only regular files Vetted itself created are used. Whatever else sits at a partial's
name — a planted symlink, a FIFO, a hard link to someone's file, a file owned by another
user, a file longer than the signed size — is removed (never followed, never written
through) and the download starts over. The partial is then written only through the
descriptor opened here, so renaming another file into place mid-download changes
nothing; and `install_into` checks, after the atomic rename, that the store entry is the
very inode that was hashed.

A partial is either a contiguous prefix (`<sha256>.part`, one connection: its length is
where a resume starts) or, while a large file arrives as ranged parts in parallel
(fetch/parallel.py), a file of its full size whose written byte ranges are listed in a
sidecar, `<sha256>.part.ranges`, replaced atomically as parts progress. The sidecar is
only ever a claim: on resume the contiguous prefix it names is re-hashed from disk, the
ranges beyond it are hashed from disk as the prefix reaches them, and the digest of the
whole file must still equal the signed one. A sidecar that cannot be read discards the
partial (nothing says which of its bytes were written); one that claims bytes the file
does not have is clipped to the file.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import stat
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from vetted.digest import CHUNK
from vetted.errors import StoreError
from vetted.store.layout import BINARY, CLOEXEC, NOFOLLOW, remove_entry

RANGES_SUFFIX = ".ranges"
RANGES_FORMAT = "vetted.ranges/1"
# A download's written ranges are separated only by the pieces in flight or given back when
# it stopped (a few per connection), so Vetted's own record holds tens of ranges, rarely
# hundreds. One with more was not written by Vetted, and honouring it would cost one
# request per gap (a 4 MiB record could ask for 300,000).
MAX_RANGES = 4096
RANGES_CAP = 256 * 1024  # bytes: MAX_RANGES ranges of the largest offsets fit with room to spare

Span = tuple[int, int]  # [start, end) byte offsets


@dataclass
class Partial:
    """A quarantined file in progress: its descriptor, bytes so far and their running hash.

    `size` bytes from the start are on disk and hashed into `hasher`. `written` lists
    further byte ranges on disk that a ranged download wrote (not hashed yet: the hash
    reaches them in order).
    """

    path: Path
    fd: int
    size: int
    hasher: "hashlib._Hash" = field(repr=False)
    resumed_from: int = 0  # bytes already there when opened: they came from an earlier attempt
    written: list[Span] = field(default_factory=list)
    ranged: bool = False      # some bytes came from ranged requests (this attempt or an earlier one)
    whole_only: bool = False  # fetch it over one connection, without Range (ranged answers failed it)
    notes: list[str] = field(default_factory=list)  # what the transfer layer wants said and audited
    _io: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, path: Path, limit: int) -> "Partial":
        side = ranges_path(path)
        _clear_foreign(path, limit)
        if not os.path.lexists(path):
            remove_entry(side)  # it described a file that is gone
        recorded = os.path.lexists(side)
        _clear_foreign(side, RANGES_CAP)  # a link, another owner's, too large: not Vetted's record
        fd = _open_own(path)
        if not recorded:  # a contiguous partial: all of it is the prefix
            size, h = _hash_prefix(fd, None)
            return cls(path, fd, size, h, size)
        # a record was there: without it (removed above) a preallocated partial would pass
        # for a complete one-connection download, so it counts as unreadable
        claimed = _read_ranges(side, limit) if os.path.lexists(side) else None
        notes = []
        if claimed is None:  # which bytes were written is unknown, so none are kept
            os.ftruncate(fd, 0)
            remove_entry(side)
            notes.append(f"the record of which parts of {path.name} were written could not be read; "
                         "that partial download was started again from zero")
        have = os.fstat(fd).st_size
        spans = [(a, min(b, have)) for a, b in claimed or [] if a < have]
        prefix = spans[0][1] if spans and spans[0][0] == 0 else 0
        size, h = _hash_prefix(fd, prefix)
        rest = [s for s in spans if s[0] > 0]
        return cls(path, fd, size, h, size + sum(b - a for a, b in rest), rest, ranged=bool(spans), notes=notes)

    @property
    def ranges_path(self) -> Path:
        return ranges_path(self.path)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def write_at(self, offset: int, data: bytes | memoryview) -> None:
        """Writes at an offset (ranged parts, from several threads at once)."""
        view = memoryview(data)
        while view:
            if hasattr(os, "pwrite"):
                n = os.pwrite(self.fd, view, offset)
            else:  # Windows: no positional write; one seek-and-write at a time
                with self._io:
                    os.lseek(self.fd, offset, os.SEEK_SET)
                    n = os.write(self.fd, view)
            view, offset = view[n:], offset + n

    def read_at(self, offset: int, buf: bytearray | memoryview) -> int:
        """Reads into `buf` from an offset, without moving the descriptor's position for others."""
        if hasattr(os, "preadv"):
            return os.preadv(self.fd, [buf], offset)
        with self._io:
            os.lseek(self.fd, offset, os.SEEK_SET)
            data = os.read(self.fd, len(buf))
        memoryview(buf)[:len(data)] = data
        return len(data)

    def sync_size(self) -> int:
        self.size = os.fstat(self.fd).st_size
        return self.size

    def begin_ranged(self, total: int, spans: list[Span]) -> None:
        """Before ranged parts are written: the sidecar first, then the file at its full size.

        In that order a partial of full size always has a sidecar, so a kill between the two
        cannot make a preallocated file pass for a complete one-connection download.
        """
        self.save_ranges(spans, total)
        have = os.fstat(self.fd).st_size
        if have < total:
            _preallocate(self.fd, have, total)
        self.ranged = True

    def save_ranges(self, spans: list[Span], total: int) -> None:
        """Replaces the sidecar atomically (a kill leaves the old one or the new one, never half)."""
        side = self.ranges_path
        tmp = side.with_name(side.name + ".tmp")
        data = json.dumps({"format": RANGES_FORMAT, "size": total, "ranges": spans},
                          separators=(",", ":")).encode()
        remove_entry(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC | BINARY, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, side)

    def finish_ranged(self, total: int) -> None:
        """Every byte is written and hashed: an ordinary complete partial from here on."""
        remove_entry(self.ranges_path)
        self.size, self.written = total, []

    def contiguous(self) -> None:
        """Back to a plain prefix for a one-connection transfer: bytes past the hashed prefix
        (a ranged attempt's) are dropped, and writes append at the end of the prefix."""
        if self.written or os.path.lexists(self.ranges_path) or os.fstat(self.fd).st_size != self.size:
            os.ftruncate(self.fd, self.size)
            remove_entry(self.ranges_path)
            self.written = []
        os.lseek(self.fd, self.size, os.SEEK_SET)

    def reset(self) -> None:
        """Wrong or unusable bytes: start this file from zero (never resumed)."""
        if os.fstat(self.fd).st_size:
            # not on an empty file: ext4 takes a truncation to zero for "replace the
            # contents" and writes the new data out at close, which would slow the install
            os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        remove_entry(self.ranges_path)
        self.size = 0
        self.resumed_from = 0
        self.written = []
        self.ranged = False
        self.hasher = hashlib.sha256()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        """Deletes the partial (only if its name still holds our file) and its sidecar."""
        try:
            if self.fd >= 0 and _same_inode(self.path, self.fd):
                os.unlink(self.path)
            remove_entry(self.ranges_path)
        finally:
            self.close()

    def install_into(self, target: Path) -> os.stat_result:
        """Read-only, atomic rename into the store, then proof that the store holds our inode."""
        os.fchmod(self.fd, 0o444) if hasattr(os, "fchmod") else os.chmod(self.path, 0o444)
        mine = os.fstat(self.fd)
        if not _same_inode(self.path, self.fd):
            raise StoreError(f"quarantine file {self.path}", "was replaced by another file before install",
                             "someone is tampering with Vetted's data folder; nothing was installed")
        remove_entry(self.ranges_path)
        os.replace(self.path, target)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
            if st is not None:
                remove_entry(target)
            raise StoreError(f"store entry {target}", "is not the file that was verified (swapped during install)",
                             "someone is tampering with Vetted's data folder; nothing was installed")
        return os.fstat(self.fd)  # after the rename, which changes the ctime


def ranges_path(part: Path) -> Path:
    return part.with_name(part.name + RANGES_SUFFIX)


def _hash_prefix(fd: int, limit: int | None) -> tuple[int, "hashlib._Hash"]:
    """Hashes the file from its start (up to `limit` bytes, or all of it), leaving the
    descriptor's position at the end of what was hashed."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    os.lseek(fd, 0, os.SEEK_SET)
    with open(fd, "rb", buffering=0, closefd=False) as f:
        while limit is None or size < limit:
            n = f.readinto(view if limit is None else view[:min(CHUNK, limit - size)])
            if not n:
                break
            h.update(view[:n])
            size += n
    return size, h


def _read_ranges(side: Path, total: int) -> list[Span] | None:
    """The sidecar's byte ranges, checked: sorted, disjoint, inside the signed size; None
    when it cannot be read as one (then nothing is known to be written)."""
    try:
        fd = os.open(side, os.O_RDONLY | NOFOLLOW | CLOEXEC | BINARY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > RANGES_CAP:
            return None
        with open(fd, "rb", closefd=False) as f:
            doc = json.loads(f.read(RANGES_CAP + 1))
        if not isinstance(doc, dict) or doc.get("format") != RANGES_FORMAT or doc.get("size") != total:
            return None
        spans: list[Span] = []
        if len(doc["ranges"]) > MAX_RANGES:
            return None
        for item in doc["ranges"]:
            a, b = item
            if type(a) is not int or type(b) is not int or not 0 <= a < b <= total or (spans and a < spans[-1][1]):
                return None
            if spans and a == spans[-1][1]:
                spans[-1] = (spans[-1][0], b)
            else:
                spans.append((a, b))
        return spans
    except (ValueError, TypeError, KeyError, OSError, RecursionError):  # e.g. [[[[…]]]] nested past the stack
        return None
    finally:
        os.close(fd)


def _preallocate(fd: int, have: int, total: int) -> None:
    """Gives the file its full size. On Linux the blocks are reserved with fallocate(2), so
    a full disk shows at once and the parts land in contiguous extents; glibc's
    posix_fallocate is not used because, where a filesystem cannot allocate, it falls back
    to writing the whole file. Elsewhere (or where that fails) the file is extended sparse."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fallocate = libc.fallocate
            fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
            fallocate.restype = ctypes.c_int
        except (OSError, AttributeError):
            fallocate = None
        if fallocate is not None and fallocate(fd, 0, have, total - have) != 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise OSError(err, os.strerror(err))
    if os.fstat(fd).st_size < total:
        os.ftruncate(fd, total)


def _same_inode(path: Path, fd: int) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _clear_foreign(path: Path, limit: int) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    own = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and own and st.st_size <= limit:
        return
    remove_entry(path)


def _open_own(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | NOFOLLOW | CLOEXEC | BINARY
    last: object = "something else kept appearing at its name"
    for _attempt in range(3):
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            # ELOOP: a symlink appeared after _clear_foreign; take it away and try again
            last = exc.strerror or exc
            remove_entry(path)
            continue
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            return fd
        os.close(fd)
        remove_entry(path)
    raise StoreError(f"quarantine file {path}", f"cannot be created as a plain file ({last})",
                     "someone keeps replacing it; check the data folder's permissions") from None
