"""Putting a model file where it will be published, and knowing exactly which bytes it holds.

A catalog's sizes and digests must describe the bytes that are actually served, so they
are taken from the published copy itself: a hard link is hashed through the link (the
very inode served), a copy is hashed while it is written (one read of the source). Only a
source the publisher alone can change is hard-linked; anyone else's is copied. When
the catalog already says what the bytes must be (a mirror of a signed catalog), anything
else is refused and the copy removed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vetted.digest import CHUNK, sha256_fd
from vetted.errors import InputError, Refused


@dataclass(frozen=True)
class Placed:
    path: Path
    size: int
    sha256: str
    linked: bool  # a hard link to the source (else a copy)


def place(src: Path, dest: Path, expect_size: int | None = None, expect_sha256: str | None = None,
          what: str = "") -> Placed:
    """Hard-links (else copies) `src` to `dest`, a name that must not exist yet, and
    hashes what `dest` holds; with expectations, anything else is refused and `dest` removed."""
    label = what or str(src)
    try:
        st = os.stat(src)
    except OSError as exc:
        raise InputError(f"reading {label}", f"{src}: {exc.strerror or exc}") from None
    if not os.path.isfile(src):
        raise InputError(f"reading {label}", f"{src} is not a regular file")
    if expect_size is not None and st.st_size != expect_size:
        raise Refused(f"{label} at {src}", f"has {st.st_size} bytes, the catalog says {expect_size}",
                      "the local copy is not the signed file; fetch it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    linked = False
    if _only_mine(st):  # a hard link shares the inode: whoever can write the source could change it
        try:
            os.link(src, dest)
            linked = True
        except OSError:
            pass
    if linked:
        fd = os.open(dest, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            size, digest = os.fstat(fd).st_size, sha256_fd(fd)
        finally:
            os.close(fd)
    else:
        size, digest = _copy_hashing(src, dest)
    if (expect_size is not None and size != expect_size) or (expect_sha256 is not None and digest != expect_sha256):
        dest.unlink(missing_ok=True)
        raise Refused(f"{label} at {src}", f"sha256 {digest} ({size} bytes), the catalog says {expect_sha256} "
                      f"({expect_size} bytes)", "the local copy is not the signed file; nothing was published")
    return Placed(dest, size, digest, linked)


def _only_mine(st: os.stat_result) -> bool:
    """A source only the person publishing can change (their own, not group- or world-writable)."""
    import stat

    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _copy_hashing(src: Path, dest: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(src, "rb", buffering=0) as fin, open(dest, "xb") as fout:
        while block := fin.read(CHUNK):
            h.update(block)
            fout.write(block)
            size += len(block)
    shutil.copystat(src, dest)
    os.chmod(dest, 0o644)  # served to everyone, changed by no one but the publisher
    return size, h.hexdigest()


def publish(staged: Path, final: Path) -> None:
    """Moves a staged file into its published place (same file system: a rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)
