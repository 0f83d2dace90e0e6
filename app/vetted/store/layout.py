"""Where a verified file lives: derived from its digest, never read from a database row.

The store is content-addressed (`models/sha256/<ab>/<sha256>` next to the database), so a
row that names a path cannot point the loader at some other file: the path is computed
from the digest the signature covers. Directories on the way must be real directories
(a symlinked `ab/` could lead anywhere), and store entries must be regular files opened
without following links.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from pathlib import Path

from vetted.errors import StoreError

_SHA = re.compile(r"^[0-9a-f]{64}$")
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
BINARY = getattr(os, "O_BINARY", 0)


def store_root_of(conn: sqlite3.Connection) -> Path:
    """The store beside the database (`Locations.store` is `data/models`, the DB `data/vetted.sqlite3`)."""
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file).parent / "models"
    raise StoreError("model store", "the database is not a file, so there is no store beside it")


def store_path(store_root: Path, sha256: str) -> Path:
    if not _SHA.match(sha256):
        raise StoreError("store entry", f"{sha256!r} is not a sha256 digest")
    return store_root / "sha256" / sha256[:2] / sha256


def ensure_dirs(store_root: Path, sha256: str) -> Path:
    """Creates the entry's folders, refusing any that is a symlink or not a folder."""
    target = store_path(store_root, sha256)
    for folder in (store_root, store_root / "sha256", target.parent):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        check_dir(folder)
    return target


def check_dir(folder: Path) -> None:
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"store folder {folder}", "is a symbolic link or not a folder",
                         "someone replaced part of the model store; remove it and pull the model again")


def open_entry(path: Path) -> int:
    """Opens a store entry read-only without following a link; only a regular file will do."""
    for folder in (path.parent.parent.parent, path.parent.parent, path.parent):
        check_dir(folder)
    try:
        fd = open_regular_nofollow(path)
    except FileNotFoundError:
        raise
    except NotRegular:
        raise StoreError(f"store entry {path}", "is not a regular file (a pipe, device or folder)",
                         "remove the model and pull it again") from None
    except OSError as exc:
        raise StoreError(f"store entry {path}", f"cannot be opened as a plain file ({exc.strerror})",
                         "it may be a planted symbolic link; remove the model and pull it again") from None
    return fd


class NotRegular(OSError):
    pass


def open_regular_nofollow(path: Path) -> int:
    """Opens read-only without following a link and without blocking (a FIFO would wait
    for a writer forever), then insists on a regular file."""
    fd = os.open(path, os.O_RDONLY | NOFOLLOW | CLOEXEC | BINARY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular(f"{path} is not a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def remove_entry(path: Path) -> None:
    """Removes whatever sits at a store or quarantine name, without following it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path}", "is a folder where a file belongs", "remove it by hand")
    if os.name == "nt" and stat.S_ISREG(st.st_mode):
        os.chmod(path, 0o600)  # Windows will not delete a read-only file; POSIX needs only the folder
    os.unlink(path)
