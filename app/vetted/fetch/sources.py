"""Where a catalog says a model's bytes can be had, tried in a fixed order: Hugging Face,
an OCI registry (fetch/oci.py), mirrors, local folders.

Each source only moves bytes. Whether they are the right bytes is decided elsewhere,
from the signed catalog and the publisher's signature, never from anything a source
says about them (DESIGN.md invariant 3). A catalog fetched over the network may not
point at this machine's files: its local-folder sources are ignored (a remote party
must not make Vetted read /dev or a FIFO that hangs the pull).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from vetted.catalog.schema import ModelEntry
from vetted.errors import DownloadError, Refused
from vetted.net import http
from vetted.fetch.parallel import download
from vetted.fetch.stream import Partial, Progress, copy_local
from vetted.net.watchdog import DEFAULT_LIMITS, TransferLimits

SIGNATURE_CAP = 1024 * 1024


@dataclass
class Source:
    label: str

    def read_small(self, name: str, cap: int = SIGNATURE_CAP, cancel: threading.Event | None = None) -> bytes:
        raise NotImplementedError

    def fetch(self, name: str, part: Partial, total: int, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> None:
        raise NotImplementedError


@dataclass
class LocalFolder(Source):
    folder: Path

    def read_small(self, name: str, cap: int = SIGNATURE_CAP, cancel: threading.Event | None = None) -> bytes:
        try:
            return http.read_local(self.folder / name, cap)
        except Exception as exc:
            raise DownloadError(f"reading {self.folder / name}", getattr(exc, "found", str(exc)),
                                "check the local mirror folder") from None

    def fetch(self, name: str, part: Partial, total: int, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> None:
        copy_local(self.folder / name, part, total, progress, cancel)


@dataclass
class Mirror(Source):
    base_url: str
    limits: TransferLimits = DEFAULT_LIMITS

    def url(self, name: str) -> str:
        return self.base_url.rstrip("/") + "/" + name

    def read_small(self, name: str, cap: int = SIGNATURE_CAP, cancel: threading.Event | None = None) -> bytes:
        return http.read_small(self.url(name), cap, self.limits, cancel)

    def fetch(self, name: str, part: Partial, total: int, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> None:
        download(self.url(name), part, total, limits=self.limits, progress=progress, cancel=cancel)


@dataclass
class HuggingFace(Source):
    """The Hub (or whatever `HF_ENDPOINT` names), pinned to one commit.

    huggingface_hub builds the resolve URL and the headers (token, user agent) and
    decides offline mode; the bytes go through Vetted's own transfer path, whose
    redirects never carry the token to another origin.
    """

    repo: str
    commit: str
    limits: TransferLimits = DEFAULT_LIMITS
    endpoint: str | None = None  # an organisation's pinned endpoint; wins over HF_ENDPOINT

    def _offline(self) -> None:
        from huggingface_hub import constants

        env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
        if constants.HF_HUB_OFFLINE or env:
            raise DownloadError(f"Hugging Face source {self.repo}", "HF_HUB_OFFLINE is set",
                                "unset it, or use a mirror or local folder source")

    def url(self, name: str) -> str:
        from huggingface_hub import constants, hf_hub_url

        # HF_ENDPOINT is read per call, not only when huggingface_hub was imported.
        url = hf_hub_url(self.repo, name, revision=self.commit)
        endpoint = self.endpoint or os.environ.get("HF_ENDPOINT")
        if endpoint and not url.startswith(endpoint):
            url = url.replace(constants.ENDPOINT, endpoint.rstrip("/"), 1)
        return url

    def _headers(self) -> dict[str, str]:
        """The token the way huggingface_hub finds it (HF_TOKEN, then HF_HOME's token file),
        but not its header builder: that one fetches an "agent harness" list from the
        endpoint, an extra request (carrying the token) nobody asked for."""
        from huggingface_hub import get_token

        token = get_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _check_commit(self, resp: http.Response) -> None:
        served = resp.header("x-repo-commit")
        if served and served != self.commit:
            raise Refused(
                f"Hugging Face commit of {self.repo}",
                f"server answered for commit {served}, the catalog pins {self.commit}",
                "the repository was changed or the endpoint is not the one the catalog names",
            )

    def read_small(self, name: str, cap: int = SIGNATURE_CAP, cancel: threading.Event | None = None) -> bytes:
        self._offline()
        url = self.url(name)
        with http.get(url, self._headers(), self.limits, cancel, on_response=self._check_commit) as resp:
            data = resp.read(cap)
        if len(data) > cap:
            raise DownloadError(f"GET {url}", f"more than the {cap}-byte cap")
        return data

    def fetch(self, name: str, part: Partial, total: int, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> None:
        self._offline()
        download(self.url(name), part, total, headers=self._headers(), limits=self.limits,
                 progress=progress, cancel=cancel, check_response=self._check_commit)


@dataclass
class SourcePlan:
    sources: list[Source]
    skipped: list[str] = field(default_factory=list)  # why a listed source is not used


def is_remote(location: str | None) -> bool:
    return bool(location) and str(location).startswith(("http://", "https://"))


def sources_for(entry: ModelEntry, catalog_base: str | None, limits: TransferLimits = DEFAULT_LIMITS,
                local_only: str | None = None, hf_endpoint: str | None = None) -> SourcePlan:
    """The catalog entry's sources in order; local folders resolve against a local catalog's
    folder. `local_only` (the reason, e.g. an organisation's offline rule) leaves out every
    network source; `hf_endpoint` pins where the Hub is."""
    plan = SourcePlan([])
    s = entry.sources
    if s.huggingface and local_only:
        plan.skipped.append(f"Hugging Face {s.huggingface.repo}: {local_only}")
    elif s.huggingface:
        plan.sources.append(HuggingFace(f"huggingface {s.huggingface.repo}@{s.huggingface.commit[:12]}",
                                        s.huggingface.repo, s.huggingface.commit, limits, hf_endpoint))
    if s.oci and local_only:
        plan.skipped.append(f"OCI registry {s.oci.registry} ({s.oci.repository}): {local_only}")
    elif s.oci:
        from vetted.fetch.oci import OciRegistry, describe  # it builds on Source, defined here

        files = {f.name: (f.sha256, f.size) for f in entry.files}
        plan.sources.append(OciRegistry(describe(s.oci.registry, s.oci.repository, s.oci.manifest), s.oci.registry,
                                        s.oci.repository, s.oci.manifest, files, entry.signature.bundle, limits))
    for url in s.mirrors:
        if local_only:
            plan.skipped.append(f"mirror {url}: {local_only}")
            continue
        plan.sources.append(Mirror(f"mirror {url}", url, limits))
    for folder in s.local:
        if is_remote(catalog_base):
            plan.skipped.append(f"local folder {folder!r}: a catalog fetched from {catalog_base} "
                                "cannot point at this machine's files")
            continue
        p = Path(folder).expanduser()
        if not p.is_absolute() and catalog_base:
            p = Path(catalog_base) / p
        plan.sources.append(LocalFolder(f"local folder {p}", p))
    return plan
