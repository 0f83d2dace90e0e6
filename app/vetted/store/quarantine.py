"""Quarantine: where bytes wait until their digest is known (DESIGN.md invariant 1).

Only regular files Vetted itself created are used. Whatever else sits at a partial's
name — a planted symlink, a FIFO, a hard link to someone's file, a file owned by another
user, a file longer than the signed size — is removed (never followed, never written
through) and the download starts over. The partial is then written only through the
descriptor opened here, so renaming another file into place mid-download changes
nothing; and `install_into` checks, after the atomic rename, that the store entry is the
very inode that was hashed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from vetted.digest import CHUNK
from vetted.errors import StoreError
from vetted.store.layout import BINARY, CLOEXEC, NOFOLLOW, remove_entry


@dataclass
class Partial:
    """A quarantined file in progress: its descriptor, bytes so far and their running hash."""

    path: Path
    fd: int
    size: int
    hasher: "hashlib._Hash" = field(repr=False)
    resumed_from: int = 0  # bytes already there when opened: they came from an earlier attempt

    @classmethod
    def open(cls, path: Path, limit: int) -> "Partial":
        _clear_foreign(path, limit)
        fd = _open_own(path)
        h = hashlib.sha256()
        size = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with open(fd, "rb", buffering=0, closefd=False) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
                size += n
        return cls(path, fd, size, h, size)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def sync_size(self) -> int:
        self.size = os.fstat(self.fd).st_size
        return self.size

    def reset(self) -> None:
        """Wrong or unusable bytes: start this file from zero (never resumed)."""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.size = 0
        self.resumed_from = 0
        self.hasher = hashlib.sha256()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        """Deletes the partial (only if its name still holds our file)."""
        try:
            if self.fd >= 0 and _same_inode(self.path, self.fd):
                os.unlink(self.path)
        finally:
            self.close()

    def install_into(self, target: Path) -> os.stat_result:
        """Read-only, atomic rename into the store, then proof that the store holds our inode."""
        os.fchmod(self.fd, 0o444) if hasattr(os, "fchmod") else os.chmod(self.path, 0o444)
        mine = os.fstat(self.fd)
        if not _same_inode(self.path, self.fd):
            raise StoreError(f"quarantine file {self.path}", "was replaced by another file before install",
                             "someone is tampering with Vetted's data folder; nothing was installed")
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
