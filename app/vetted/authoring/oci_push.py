"""Pushing a catalog's models to an OCI registry (`vetted-admin oci-push`).

Organisations already run a registry; this puts each model there as one OCI artifact:
its GGUF file(s) and its publisher's signature bundle as layers (each titled with its
file name, so a puller finds the bundle by name), an empty config, and a manifest that is
pushed by digest and tagged with the model id for people browsing the registry. What
comes back is the manifest digest: the catalog pins that (`sources.oci`), never the tag,
so whoever can push to the registry still cannot change what Vetted installs.

The bytes pushed are the ones the catalog signs: each file is found in the model's local
folder source (the `mirror/` that `vetted-admin build-catalog` writes) and must have the
catalog's size and sha256, or nothing is pushed. Transfers use urllib3 directly (the
project's HTTP library; the puller's limits and watchdog guard against a hostile server,
which an author pushing to their own registry does not need); the registry's token flow
and `VETTED_OCI_USERNAME`/`VETTED_OCI_PASSWORD` work as for pulls (fetch/oci.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from vetted.catalog.schema import ModelEntry, OciSource, parse
from vetted.digest import sha256_file
from vetted.errors import InputError, VettedError
from vetted.fetch.oci import OCI_MANIFEST, PASSWORD_ENV, TITLE, USERNAME_ENV, parse_challenge
from vetted.fetch.sources import SIGNATURE_CAP
from vetted.net import http

ARTIFACT_TYPE = "application/vnd.vetted.model.v1"
GGUF_LAYER = "application/vnd.vetted.gguf.v1"
BUNDLE_LAYER = "application/vnd.vetted.oms-bundle.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


class PushError(VettedError):
    """The registry did not take what was pushed."""


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str
    title: str | None
    path: Path | None = None  # a file, streamed; else `data`
    data: bytes = b""

    def descriptor(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.title:
            d["annotations"] = {TITLE: self.title}
        return d


@dataclass(frozen=True)
class Pushed:
    model_id: str
    source: OciSource
    uploaded: int  # blobs sent; the others were already there


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    """The few distribution-API calls a push needs, answering the registry's 401 challenges."""

    def __init__(self, registry: str, repository: str) -> None:
        self.base = registry.rstrip("/")
        self.repository = repository
        self.origin = http.origin(self.base)
        self.pool = urllib3.PoolManager(retries=False, ssl_context=http.ssl_context(),
                                        timeout=urllib3.Timeout(connect=30, read=300))
        self.auth: dict[str, str] = {}

    def url(self, kind: str, ref: str) -> str:
        return f"{self.base}/v2/{self.repository}/{kind}/{ref}"

    def request(self, method: str, url: str, body: bytes | Path | None = None,
                headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        for attempt in range(2):
            send = {"User-Agent": http.USER_AGENT, **(headers or {})}
            if http.origin(url) == self.origin:  # the token is the registry's, never another origin's
                send.update(self.auth)
            payload: Any = body
            opened = None
            if isinstance(body, Path):
                opened = payload = open(body, "rb")
                send["Content-Length"] = str(body.stat().st_size)
            try:
                resp = self.send(method, url, payload, send)
            finally:
                if opened is not None:
                    opened.close()
            if resp.status != 401 or attempt:
                return resp
            self.authenticate(resp.headers.get("WWW-Authenticate", ""))
        raise AssertionError("unreachable")

    def send(self, method: str, url: str, body: Any, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            return self.pool.request(method, url, body=body, headers=headers, redirect=False, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise PushError(f"{method} {url}", f"failed ({exc})", "check the registry address") from None

    def authenticate(self, header: str) -> None:
        scheme, params = parse_challenge(header)
        user = os.environ.get(USERNAME_ENV)
        creds = urllib3.make_headers(basic_auth=f"{user}:{os.environ.get(PASSWORD_ENV, '')}") if user else {}
        if scheme == "basic" and creds:
            self.auth = creds
            return
        if scheme != "bearer" or not params.get("realm"):
            raise PushError(f"registry {self.base}", f"asks for authentication Vetted cannot give ({header!r})",
                            f"set {USERNAME_ENV} and {PASSWORD_ENV}")
        realm = http.target(params["realm"])
        if realm.scheme != "https" and not http.is_loopback(realm.host):
            raise PushError(f"token service of {self.base}", f"is plain http ({realm.url})")
        query = {"service": params.get("service", ""), "scope": f"repository:{self.repository}:pull,push"}
        url = realm.url + ("&" if "?" in realm.url else "?") + urllib.parse.urlencode(query)
        send = creds if creds and realm.host == http.target(self.base).host else {}
        resp = self.send("GET", url, None, {"User-Agent": http.USER_AGENT, **send})
        try:
            doc = json.loads(resp.data) if resp.status == 200 else {}
        except ValueError:
            doc = {}
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise PushError(f"token for {self.base}", f"{realm.url} answered HTTP {resp.status} without a token",
                            f"check {USERNAME_ENV} / {PASSWORD_ENV} and that they may push to {self.repository}")
        self.auth = {"Authorization": f"Bearer {token}"}

    def has_blob(self, digest: str) -> bool:
        status = self.request("HEAD", self.url("blobs", digest)).status
        return status == 200 or 300 <= status < 400  # a registry may redirect a blob it has to storage

    def upload(self, blob: Blob) -> None:
        """Monolithic upload: POST opens a session, PUT ?digest= sends every byte and closes it."""
        start = self.request("POST", self.url("blobs", "uploads/"))
        location = start.headers.get("Location")
        if start.status != 202 or not location:
            raise PushError(f"upload of {blob.title or blob.digest} to {self.base}/{self.repository}",
                            f"the registry answered HTTP {start.status} {_error_text(start)}",
                            "check the repository name and your push rights")
        url = urllib.parse.urljoin(self.url("blobs", "uploads/"), location)
        url += ("&" if "?" in url else "?") + "digest=" + urllib.parse.quote(blob.digest)
        done = self.request("PUT", url, blob.path if blob.path is not None else blob.data,
                            {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)})
        if done.status != 201:
            raise PushError(f"upload of {blob.title or blob.digest} to {self.base}/{self.repository}",
                            f"the registry answered HTTP {done.status} {_error_text(done)}")

    def put_manifest(self, ref: str, raw: bytes) -> None:
        resp = self.request("PUT", self.url("manifests", ref), raw, {"Content-Type": OCI_MANIFEST})
        served = resp.headers.get("Docker-Content-Digest")
        if resp.status != 201 or (served and served != _digest(raw)):
            raise PushError(f"manifest {ref} in {self.base}/{self.repository}",
                            f"the registry answered HTTP {resp.status} {_error_text(resp)}"
                            + (f", digest {served}" if served else ""))


def _error_text(resp: urllib3.BaseHTTPResponse) -> str:
    text = resp.data[:300].decode("utf-8", "replace").strip()
    return f"({text})" if text else ""


def local_blobs(catalog: Path, entry: ModelEntry) -> list[Blob]:
    """The model's files and signature bundle from its local folder source, checked against the catalog."""
    folders = [(catalog.parent / Path(f).expanduser()) for f in entry.sources.local]
    names = [f.name for f in entry.files] + [entry.signature.bundle]
    folder = next((d for d in folders if all((d / n).is_file() for n in names)), None)
    if folder is None:
        raise InputError(f"files of {entry.id}", f"not all of {', '.join(names)} are in a local folder source "
                         f"({', '.join(map(str, folders)) or 'the model lists none'})",
                         "push from the folder vetted-admin build-catalog wrote (its mirror/ next to catalog.json)")
    blobs = []
    for f in entry.files:
        path = folder / f.name
        size, sha = path.stat().st_size, sha256_file(path)
        if (size, sha) != (f.size, f.sha256):
            raise InputError(f"{path}", f"sha256 {sha} ({size} bytes), the catalog signs {f.sha256} ({f.size} bytes)",
                             "push the very bytes the catalog names")
        blobs.append(Blob(f"sha256:{sha}", size, GGUF_LAYER, f.name, path))
    bundle = (folder / entry.signature.bundle).read_bytes()
    if len(bundle) > SIGNATURE_CAP:
        raise InputError(f"{folder / entry.signature.bundle}", f"{len(bundle)} bytes, over the {SIGNATURE_CAP}-byte cap")
    blobs.append(Blob(_digest(bundle), len(bundle), BUNDLE_LAYER, entry.signature.bundle, data=bundle))
    return blobs


def manifest(layers: list[Blob]) -> bytes:
    """An OCI image manifest for an artifact: empty config, the given layers; deterministic bytes."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_TYPE, "digest": _digest(EMPTY), "size": len(EMPTY)},
        "layers": [b.descriptor() for b in layers],
    }
    return json.dumps(doc, indent=2).encode()


def push_model(client: RegistryClient, catalog: Path, entry: ModelEntry) -> Pushed:
    layers = local_blobs(catalog, entry)
    uploaded = 0
    for blob in [Blob(_digest(EMPTY), len(EMPTY), EMPTY_TYPE, None, data=EMPTY), *layers]:
        if not client.has_blob(blob.digest):
            client.upload(blob)
            uploaded += 1
    raw = manifest(layers)
    digest = _digest(raw)
    client.put_manifest(digest, raw)
    client.put_manifest(entry.id, raw)  # a tag for people browsing the registry; the catalog pins the digest
    return Pushed(entry.id, OciSource(registry=client.base, repository=client.repository, manifest=digest), uploaded)


def read_catalog(catalog: Path) -> tuple[dict[str, Any], list[ModelEntry]]:
    try:
        raw = catalog.read_bytes()
    except OSError as exc:
        raise InputError(f"reading {catalog}", exc.strerror or str(exc)) from None
    models = parse(raw, str(catalog)).models  # first: it words a malformed catalog, naming the field
    return json.loads(raw), models


def check_target(registry: str, repository: str) -> None:
    """Refuses a registry or repository a catalog's `oci` source could not name (plain http, a bad name)."""
    from pydantic import ValidationError

    try:
        OciSource(registry=registry, repository=repository, manifest="sha256:" + "0" * 64)
    except ValidationError as exc:
        raise InputError("oci-push target", "; ".join(str(e["msg"]).removeprefix("Value error, ")
                                                       for e in exc.errors())) from None


def push_catalog(catalog: Path, registry: str, repository: str, model_ids: list[str] | None = None) -> list[Pushed]:
    """Pushes the named models (default: all) of `catalog`; checks every file before the first byte goes."""
    _doc, models = read_catalog(catalog)
    check_target(registry, repository)
    known = {m.id: m for m in models}
    unknown = [i for i in model_ids or [] if i not in known]
    if unknown:
        raise InputError(f"catalog {catalog}", f"has no model {', '.join(unknown)}",
                         f"it lists {', '.join(known) or 'no models'}")
    chosen = [known[i] for i in model_ids] if model_ids else models
    for entry in chosen:
        local_blobs(catalog, entry)
    client = RegistryClient(registry, repository)
    return [push_model(client, catalog, entry) for entry in chosen]


def check_version(catalog: Path, version: int) -> dict[str, Any]:
    """The catalog document, if `version` may follow it (checked before pushing anything)."""
    doc, _models = read_catalog(catalog)
    if version <= int(doc["version"]):
        raise InputError("--version", f"{version} is not above the catalog's version {doc['version']}",
                         "a re-signed catalog needs a higher version, or clients refuse it as a rollback")
    return doc


def add_oci_sources(catalog: Path, pushed: list[Pushed], private_key: Path, out: Path, version: int) -> Path:
    """The catalog with each pushed model's `sources.oci` set and the author's new version, signed into `out`."""
    from vetted.authoring.publish import sign_file_or_folder

    from vetted.authoring import checks
    from vetted.authoring.signers import as_signer

    checks.signed_by(catalog, catalog.read_bytes(), as_signer(private_key).trust())  # only what you signed
    doc = check_version(catalog, version)
    by_id = {p.model_id: p.source.model_dump() for p in pushed}
    for m in doc["models"]:
        if m["id"] in by_id:
            m["sources"]["oci"] = by_id[m["id"]]
    doc["version"] = version
    raw = json.dumps(doc, indent=2, ensure_ascii=False).encode()
    parse(raw, "the rewritten catalog")  # never sign something Vetted itself would refuse
    out.mkdir(parents=True, exist_ok=True)
    target = out / "catalog.json"
    target.write_bytes(raw)
    sign_file_or_folder(target, private_key, out / "catalog.json.sig")
    return target
