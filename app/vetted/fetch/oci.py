"""An OCI registry (Harbor, Artifactory, the CNCF `registry`) as a model source.

The signed catalog pins one image manifest by digest. The manifest is fetched (capped),
its sha256 must be that digest, and every file the catalog names must be one of its layers
with the file's signed sha256 and size, all before any model byte is asked for: a registry
serving another manifest, or a manifest that disagrees with the catalog, is refused
outright. The blobs then come through Vetted's own transfer path (`fetch.parallel.download`:
size cap, resume, watchdog, hashing; large blobs in ranged parts), so the registry is
trusted with nothing but moving bytes (DESIGN.md invariant 3). The publisher's signature
bundle is the layer titled with its file name (`org.opencontainers.image.title`).

Access is anonymous unless the registry asks: a `401` with `WWW-Authenticate: Bearer`
sends Vetted to the named token service (with `VETTED_OCI_USERNAME`/`VETTED_OCI_PASSWORD`
as HTTP Basic if set, and only to a token service on the registry's own host), `Basic`
uses those variables directly. The credentials belong to one registry, named by
`VETTED_OCI_REGISTRY` (its origin, e.g. https://registry.example.org): they are never
offered to any other, since the registry is chosen by whoever signed a catalog, and a
catalog someone else signs must not be able to collect the organisation's password. The token goes only to the registry's origin: the HTTP
layer drops it on any redirect to another origin (object storage, where registries send
blob downloads).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from vetted.errors import DownloadError, Refused
from vetted.fetch.sources import SIGNATURE_CAP, Source
from vetted.fetch.parallel import download
from vetted.fetch.stream import Partial, Progress
from vetted.net import http
from vetted.net.watchdog import DEFAULT_LIMITS, TransferLimits

MANIFEST_CAP = 4 * 1024 * 1024
TOKEN_CAP = 64 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
TITLE = "org.opencontainers.image.title"
USERNAME_ENV = "VETTED_OCI_USERNAME"
PASSWORD_ENV = "VETTED_OCI_PASSWORD"
REGISTRY_ENV = "VETTED_OCI_REGISTRY"  # the one registry (origin) the credentials are for

_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')
T = TypeVar("T")


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    media_type: str
    title: str | None


def parse_manifest(raw: bytes) -> list[Layer]:
    """The layers of an OCI (or Docker schema 2) image manifest; raises ValueError naming the problem."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or type(doc.get("schemaVersion")) is not int or doc["schemaVersion"] != 2:
        raise ValueError("not an image manifest with schemaVersion 2")
    if doc.get("mediaType", OCI_MANIFEST) not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise ValueError(f"media type {doc.get('mediaType')!r} is not an image manifest")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ValueError("'layers' is not a list")
    out = []
    for i, d in enumerate(layers):
        if not isinstance(d, dict):
            raise ValueError(f"layers.{i} is not an object")
        digest, size, media, notes = d.get("digest"), d.get("size"), d.get("mediaType"), d.get("annotations", {})
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ValueError(f"layers.{i}.digest is not a digest")
        if type(size) is not int or size < 0:
            raise ValueError(f"layers.{i}.size is not a size")
        if not isinstance(media, str):
            raise ValueError(f"layers.{i}.mediaType is missing")
        if not isinstance(notes, dict) or not all(isinstance(v, str) for v in notes.values()):
            raise ValueError(f"layers.{i}.annotations is not a map of strings")
        out.append(Layer(digest, size, media, notes.get(TITLE)))
    return out


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…"` → ("bearer", {realm, service, …})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


class _Challenge(Exception):
    """The registry answered 401: how it wants to be asked (raised from a response check)."""

    def __init__(self, header: str) -> None:
        super().__init__(header)
        self.header = header


def _credentials(registry: str) -> tuple[str, str] | None:
    """The credentials, only for the registry they were issued for (`VETTED_OCI_REGISTRY`)."""
    user = os.environ.get(USERNAME_ENV)
    if not user:
        return None
    meant = os.environ.get(REGISTRY_ENV, "").strip()
    try:
        if not meant or http.origin(meant) != http.origin(registry):
            return None
    except Exception:  # an unparsable VETTED_OCI_REGISTRY names no registry
        return None
    return (user, os.environ.get(PASSWORD_ENV, ""))


def _not_for(registry: str) -> str:
    """Why credentials that are set were not offered (empty when none are set)."""
    if not os.environ.get(USERNAME_ENV):
        return ""
    meant = os.environ.get(REGISTRY_ENV, "").strip()
    if not meant:
        return f"; {USERNAME_ENV} is set but {REGISTRY_ENV} does not name the registry it is for, so it was not sent"
    return f"; {USERNAME_ENV} is for {meant} (from {REGISTRY_ENV}), not {registry}, so it was not sent"


def _basic(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()


@dataclass
class OciRegistry(Source):
    """One pinned manifest in one repository; `files` and `bundle` come from the signed catalog."""

    registry: str
    repository: str
    manifest: str  # sha256:<hex>, pinned by the catalog
    files: dict[str, tuple[str, int]]  # file name -> (sha256, size)
    bundle: str
    limits: TransferLimits = DEFAULT_LIMITS
    _layers: dict[str, Layer] | None = field(default=None, init=False, repr=False)
    _auth: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _withheld: str = field(default="", init=False, repr=False)  # why the credentials were not sent

    @property
    def _where(self) -> str:
        return f"{self.registry.rstrip('/')} repository {self.repository}"

    def _url(self, kind: str, ref: str) -> str:
        return f"{self.registry.rstrip('/')}/v2/{self.repository}/{kind}/{ref}"

    # -- requests, with the registry's token flow ---------------------------------------

    def _check_auth(self, resp: http.Response) -> None:
        """A 401 from the registry itself starts the token flow; one from elsewhere is an error."""
        if resp.status == 401 and http.origin(resp.url) == http.origin(self.registry):
            raise _Challenge(resp.header("www-authenticate") or "")

    def _authorized(self, call: Callable[[dict[str, str]], T], cancel: threading.Event | None) -> T:
        for attempt in range(2):
            try:
                return call(dict(self._auth))
            except _Challenge as ch:
                if attempt:
                    raise DownloadError(f"registry {self._where}", "refused access again after authenticating "
                                        f"(HTTP 401){self._withheld}", f"check {USERNAME_ENV} / {PASSWORD_ENV} and "
                                        f"that they may pull {self.repository}") from None
                self._authenticate(ch.header, cancel)
        raise AssertionError("unreachable")

    def _authenticate(self, header: str, cancel: threading.Event | None) -> None:
        scheme, params = parse_challenge(header)
        creds = _credentials(self.registry)
        self._withheld = _not_for(self.registry) if creds is None else ""
        if scheme == "basic":
            if creds is None:
                raise DownloadError(f"registry {self._where}", "asks for a user name and password" + self._withheld,
                                    f"set {USERNAME_ENV} and {PASSWORD_ENV}, and {REGISTRY_ENV} to this registry")
            self._auth = {"Authorization": _basic(creds)}
            return
        if scheme != "bearer" or not params.get("realm"):
            raise DownloadError(f"registry {self._where}", f"asks for an unsupported authentication ({header!r})",
                                "Vetted speaks the registry token flow (Bearer) and Basic")
        realm = http.target(params["realm"])
        if realm.scheme != "https" and not http.is_loopback(realm.host):
            raise Refused(f"token service of {self._where}", f"is plain http ({realm.url})",
                          "a token must not travel unencrypted; the registry is misconfigured")
        query = {k: v for k, v in (("service", params.get("service")),
                                   ("scope", params.get("scope") or f"repository:{self.repository}:pull")) if v}
        url = realm.url + ("&" if "?" in realm.url else "?") + urllib.parse.urlencode(query)
        headers: dict[str, str] = {}
        if creds is not None and realm.host == http.target(self.registry).host:
            # only to a token service on the registry's own host (Harbor, Artifactory and the
            # CNCF registry's token servers live there, often on another port), over https
            # or loopback (checked above); the credentials are bound to this registry anyway
            headers["Authorization"] = _basic(creds)
        elif creds is not None:
            self._withheld = (f"; {USERNAME_ENV} was not sent to the token service {realm.url}, which is not "
                              "on the registry's host")
        try:
            with http.get(url, headers, self.limits, cancel) as resp:
                raw = resp.read(TOKEN_CAP)
        except http.Cancelled:
            raise
        except DownloadError as exc:
            raise DownloadError(f"token for {self._where}", f"{exc.checked}: {exc.found}{self._withheld}",
                                f"check {USERNAME_ENV} / {PASSWORD_ENV}" if creds else
                                f"the registry needs credentials: set {USERNAME_ENV} and {PASSWORD_ENV}, and "
                                f"{REGISTRY_ENV} to this registry") from None
        try:
            doc = json.loads(raw) if len(raw) <= TOKEN_CAP else None
        except (ValueError, UnicodeDecodeError):
            doc = None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token or any(ord(c) < 0x21 or ord(c) > 0x7E for c in token):
            raise DownloadError(f"token for {self._where}", f"{realm.url} answered without a usable token")
        self._auth = {"Authorization": f"Bearer {token}"}

    def _read(self, url: str, headers: dict[str, str], cap: int, cancel: threading.Event | None) -> bytes:
        with http.get(url, headers, self.limits, cancel, on_response=self._check_auth) as resp:
            declared = resp.header("content-length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise DownloadError(f"GET {url}", f"server declares {declared} bytes, over the {cap}-byte cap")
            data = resp.read(cap)
        if len(data) > cap:
            raise DownloadError(f"GET {url}", f"more than the {cap}-byte cap", "the registry may be hostile")
        return data

    # -- the pinned manifest ------------------------------------------------------------

    def _resolve(self, cancel: threading.Event | None) -> dict[str, Layer]:
        """name -> layer for every catalog file and the bundle; checked once per source object."""
        if self._layers is not None:
            return self._layers
        accept = {"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"}
        url = self._url("manifests", self.manifest)
        raw = self._authorized(lambda auth: self._read(url, {**accept, **auth}, MANIFEST_CAP, cancel), cancel)
        what = f"manifest {self.manifest} in {self._where}"
        got = "sha256:" + hashlib.sha256(raw).hexdigest()
        if got != self.manifest:
            raise Refused(what, f"the registry served a manifest whose digest is {got}",
                          "the registry serves another manifest than the signed catalog pins; do not use it")
        try:
            layers = parse_manifest(raw)
        except ValueError as exc:
            raise Refused(what, f"is malformed: {exc}", "the catalog pins a manifest Vetted cannot use") from None
        resolved = {name: self._file_layer(what, layers, name, sha, size) for name, (sha, size) in self.files.items()}
        resolved[self.bundle] = self._bundle_layer(what, layers)
        self._layers = resolved
        return resolved

    @staticmethod
    def _file_layer(what: str, layers: list[Layer], name: str, sha: str, size: int) -> Layer:
        same = [x for x in layers if x.digest == f"sha256:{sha}"]
        if not same:
            raise Refused(what, f"lists no layer sha256:{sha} for {name}",
                          "the manifest does not hold the file the signed catalog names")
        for x in same:
            if x.size != size:
                raise Refused(what, f"lists {name} (sha256:{sha[:16]}…) with size {x.size}, the signed catalog "
                              f"declares {size}", "the manifest and the signed catalog disagree; do not use it")
        return same[0]

    def _bundle_layer(self, what: str, layers: list[Layer]) -> Layer:
        named = [x for x in layers if x.title == self.bundle]
        if not named:
            raise Refused(what, f"lists no layer titled {self.bundle} (the publisher's signature)",
                          "push the model with its signature bundle")
        if len({(x.digest, x.size) for x in named}) > 1:
            raise Refused(what, f"lists several different layers titled {self.bundle}",
                          "the manifest is ambiguous; do not use it")
        if not named[0].digest.startswith("sha256:") or named[0].size > SIGNATURE_CAP:
            raise Refused(what, f"lists {self.bundle} as {named[0].digest} with {named[0].size} bytes",
                          f"a signature bundle is a sha256 blob of at most {SIGNATURE_CAP} bytes")
        return named[0]

    # -- Source -------------------------------------------------------------------------

    def read_small(self, name: str, cap: int = SIGNATURE_CAP, cancel: threading.Event | None = None) -> bytes:
        layers = self._resolve(cancel)
        layer = layers.get(name)
        if layer is None:
            raise DownloadError(f"{name} in {self._where}", "not a file of this model")
        if layer.size > cap:
            raise DownloadError(f"{name} in {self._where}", f"{layer.size} bytes, over the {cap}-byte cap")
        url = self._url("blobs", layer.digest)
        data = self._authorized(lambda auth: self._read(url, auth, cap, cancel), cancel)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != layer.digest:
            raise Refused(f"blob {layer.digest} ({name}) in {self._where}",
                          f"the registry served {len(data)} bytes with digest {got}",
                          "the registry serves altered bytes; do not use it")
        return data

    def fetch(self, name: str, part: Partial, total: int, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> None:
        layer = self._resolve(cancel).get(name)
        if layer is None or name not in self.files or total != layer.size:
            raise DownloadError(f"{name} in {self._where}", "not a file of this model as the catalog lists it")
        url = self._url("blobs", layer.digest)
        self._authorized(lambda auth: download(url, part, total, headers=auth, limits=self.limits, progress=progress,
                                               cancel=cancel, check_response=self._check_auth), cancel)


def describe(registry: str, repository: str, manifest: str) -> str:
    """How a pull names this source (audit rows, progress lines)."""
    return f"oci {registry.rstrip('/')}/{repository}@{manifest[:19]}"

