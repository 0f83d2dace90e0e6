"""Bringing a model file (and its publisher's signature) from a Hugging Face repo pinned
to a commit, for a catalog author.

The bytes come through Vetted's own transfer path (`fetch.sources.HuggingFace` over
`net.http`: the URL pinned to the commit, `HF_ENDPOINT` and the token as
huggingface_hub finds them, a server answering for another commit refused, redirects
that never carry the token elsewhere, the stall and minimum-rate watchdog, resume with
HTTP Range), so what the organisation signs was fetched the way its users will fetch it.
The size and sha256 recorded in the catalog are computed from the bytes as they arrive,
never taken from the server.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vetted.errors import DownloadError, InputError, Refused
from vetted.fetch.sources import HuggingFace
from vetted.fetch.stream import Partial
from vetted.net import http

ATTEMPTS = 3  # a dropped connection resumes where it stopped
_CONTENT_RANGE = re.compile(r"^bytes 0-0/(\d+)$")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str


def source(repo: str, commit: str) -> HuggingFace:
    from pydantic import ValidationError

    from vetted.catalog.schema import HuggingFaceSource

    try:
        HuggingFaceSource(repo=repo, commit=commit)
    except ValidationError as exc:
        raise InputError("huggingface source", exc.errors()[0]["msg"],
                         'give {"repo": "org/name", "commit": "<40 lower-case hex digits>", "file": "x.gguf"}') \
            from None
    return HuggingFace(f"huggingface {repo}@{commit[:12]}", repo, commit)


def _size(hf: HuggingFace, name: str) -> int:
    """The file's size, from a one-byte range request (the Hub's answer for the pinned
    commit only): the transfer path needs it as its cap, and the digest is checked anyway."""
    url = hf.url(name)
    # the same headers and commit check HuggingFace.fetch uses for the body
    headers = {**hf._headers(), "Range": "bytes=0-0"}
    with http.get(url, headers, hf.limits, on_response=hf._check_commit) as resp:
        if resp.status == 206:
            m = _CONTENT_RANGE.match((resp.header("content-range") or "").strip())
            if m:
                return int(m.group(1))
        length = resp.header("content-length")
        if resp.status == 200 and length and length.isdigit():
            return int(length)
    raise DownloadError(f"size of {url}", f"the server states none (HTTP {resp.status})",
                        "the endpoint does not answer like the Hugging Face Hub")


def download(hf: HuggingFace, name: str, folder: Path) -> Downloaded:
    """Streams `name` at the pinned commit into `folder`, hashing as it arrives."""
    from vetted.catalog.schema import check_file_name

    try:
        check_file_name(name)
    except ValueError as exc:
        raise InputError(f"huggingface file {name!r}", str(exc),
                         "a catalog names files at the top of the repository only") from None
    hf._offline()
    total = _size(hf, name)
    if total <= 0:
        raise Refused(f"{hf.label} {name}", "the file is empty")
    part = Partial.open(folder / f"{name}.part", total)
    try:
        for attempt in range(ATTEMPTS):
            try:
                hf.fetch(name, part, total)
                break
            except Refused:
                raise
            except DownloadError:
                if attempt == ATTEMPTS - 1:
                    raise
        if part.size != total:
            raise DownloadError(f"download of {name} from {hf.label}", f"{part.size} of {total} bytes arrived")
        digest = part.hasher.hexdigest()
    finally:
        part.close()
    final = folder / name
    os.replace(part.path, final)
    return Downloaded(final, total, digest)


def read_signature(hf: HuggingFace, name: str) -> bytes:
    """A signature bundle from the repository at the pinned commit (capped, as Vetted reads it)."""
    from vetted.catalog.schema import check_file_name

    try:
        check_file_name(name)
    except ValueError as exc:
        raise InputError(f"signature_file {name!r}", str(exc),
                         "a catalog names files at the top of the repository only") from None
    return hf.read_small(name)
