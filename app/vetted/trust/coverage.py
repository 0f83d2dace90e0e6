"""Does a verified signature cover this file, and as which sha256?

The installer (a file arriving from a server), the store (a file re-checked before it
runs) and anything else that holds a verified `SignedManifest` ask the same question
about a model's files by name; answering it in one place keeps them from disagreeing
about the one subtle case, a signature made over a single file rather than a folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vetted.trust.oms import SignedManifest


def signed_file_digest(signed: SignedManifest, file_name: str, n_files: int) -> str | None:
    """The sha256 (hex) `signed` vouches for as the whole of file `file_name`, or None
    when it does not vouch for that file (callers refuse: the signature does not cover it).

    A per-file sha256 signature of a folder names each file by its path in the folder. A
    single-file OMS signature names its one resource "." — that is the file only when the
    model has exactly one file (`n_files`, as the catalog lists it). A sharded signature,
    or one hashed with anything but sha256, never vouches for a whole file's sha256.
    """
    digest = signed.file_digest(file_name)
    if digest is None and n_files == 1 and set(signed.digests) == {"."}:
        digest = signed.digests["."] if signed.method == "files" and signed.hash_type == "sha256" else None
    return digest
