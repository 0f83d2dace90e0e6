"""Where a catalog says a model's bytes can be had, tried in the catalog's order.

Each source only moves bytes. Whether they are the right bytes is decided elsewhere,
from the signed catalog and the publisher's signature, never from anything a source
says about them (DESIGN.md invariant 3).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from vetted.errors import DownloadError, Refused
from vetted.fetch import http
from vetted.fetch.stream import Partial, Progress, copy_local, download

SIGNATURE_CAP = 1024 * 1024


@dataclass
class Source:
    label: str

    def read_small(self, name: str, cap: int = SIGNATURE_CAP) -> bytes:
        raise NotImplementedError

    def fetch(self, name: str, part: Partial, total: int, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> None:
        raise NotImplementedError


@dataclass
class LocalFolder(Source):
    folder: Path

    def read_small(self, name: str, cap: int = SIGNATURE_CAP) -> bytes:
        return http.read_small(str(self.folder / name), cap)

    def fetch(self, name, part, total, progress=None, cancel=None) -> None:
        copy_local(self.folder / name, part, total, progress, cancel)


@dataclass
class Mirror(Source):
    base_url: str
    timeout: float = http.DEFAULT_TIMEOUT

    def url(self, name: str) -> str:
        return self.base_url.rstrip("/") + "/" + name

    def read_small(self, name: str, cap: int = SIGNATURE_CAP) -> bytes:
        return http.read_small(self.url(name), cap, self.timeout)

    def fetch(self, name, part, total, progress=None, cancel=None) -> None:
        download(self.url(name), part, total, timeout=self.timeout, progress=progress, cancel=cancel)


@dataclass
class HuggingFace(Source):
    """The Hub (or whatever `HF_ENDPOINT` names), pinned to one commit.

    huggingface_hub builds the resolve URL and the headers (token, user agent) and
    decides offline mode; the bytes go through Vetted's hashing pipe.
    """

    repo: str
    commit: str
    timeout: float = http.DEFAULT_TIMEOUT

    def _offline(self) -> None:
        import os

        from huggingface_hub import constants

        env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
        if constants.HF_HUB_OFFLINE or env:
            raise DownloadError(f"Hugging Face source {self.repo}", "HF_HUB_OFFLINE is set",
                                "unset it, or use a mirror or local folder source")

    def url(self, name: str) -> str:
        from huggingface_hub import constants, hf_hub_url

        # HF_ENDPOINT is read per call, not only when huggingface_hub was imported.
        url = hf_hub_url(self.repo, name, revision=self.commit)
        import os

        endpoint = os.environ.get("HF_ENDPOINT")
        if endpoint and not url.startswith(endpoint):
            url = url.replace(constants.ENDPOINT, endpoint.rstrip("/"), 1)
        return url

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils import build_hf_headers

        return dict(build_hf_headers(library_name="vetted"))

    def _check_commit(self, resp: http.Response) -> None:
        served = resp.header("x-repo-commit")
        if served and served != self.commit:
            raise Refused(
                f"Hugging Face commit of {self.repo}",
                f"server answered for commit {served}, the catalog pins {self.commit}",
                "the repository was changed or the endpoint is not the one the catalog names",
            )

    def read_small(self, name: str, cap: int = SIGNATURE_CAP) -> bytes:
        self._offline()
        with http.get(self.url(name), self._headers(), self.timeout) as resp:
            self._check_commit(resp)
            data = resp.raw.read(cap + 1)
        if len(data) > cap:
            raise DownloadError(f"GET {self.url(name)}", f"more than the {cap}-byte cap")
        return data

    def fetch(self, name, part, total, progress=None, cancel=None) -> None:
        self._offline()
        download(self.url(name), part, total, headers=self._headers(), timeout=self.timeout,
                 progress=progress, cancel=cancel, check_response=self._check_commit)


def sources_for(entry, catalog_base: str | None, timeout: float = http.DEFAULT_TIMEOUT) -> list[Source]:
    """The catalog entry's sources in order; local folders resolve against the catalog's folder."""
    out: list[Source] = []
    s = entry.sources
    if s.huggingface:
        out.append(HuggingFace(f"huggingface {s.huggingface.repo}@{s.huggingface.commit[:12]}",
                               s.huggingface.repo, s.huggingface.commit, timeout))
    for url in s.mirrors:
        out.append(Mirror(f"mirror {url}", url, timeout))
    for folder in s.local:
        p = Path(folder).expanduser()
        if not p.is_absolute() and catalog_base and not catalog_base.startswith(("http://", "https://")):
            p = Path(catalog_base) / p
        out.append(LocalFolder(f"local folder {p}", p))
    return out
