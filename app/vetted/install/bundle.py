"""Air-gapped bundles: one file carrying a signed catalog, model files and their signatures,
imported exactly the way a pull installs (DESIGN.md invariant 1).

A bundle is a plain (uncompressed: GGUF does not compress) POSIX tar file:

    vetted-bundle.json      {"format": "vetted.bundle/1", "catalog_sha256": ..., "models": [id, ...]}
    catalog.json            the organisation's signed catalog, byte for byte
    catalog.json.sig        its detached OMS signature
    models/<id>/<file>      each model's files, named as in the catalog
    models/<id>/<bundle>    each model's signature bundle, named as in the catalog

Nothing in a bundle is trusted because it is in the bundle. The catalog must verify
against a pinned signer and pass the rollback and freeze checks; every model then goes
signature → quarantine (hashed as it is copied) → digest and size equal the signed
catalog's → atomic install, through the same functions a pull uses. The index is not
signed: it only lets a truncated copy be told from a smaller bundle.

The tar file is never extracted by name. Only regular-file members with exactly the
names above are accepted (no links, devices, folders, sparse files, absolute or `..`
paths, duplicates or strays), and their bytes are streamed into quarantine files named by
digest, so a hostile bundle cannot write anywhere. Import is all or nothing: every
model is staged and verified before the first is installed, and one refusal discards
every staged file.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import sqlite_utils

from vetted.catalog.schema import MAX_CATALOG_BYTES, ModelEntry, check_file_name
from vetted.catalog.signed import LoadedCatalog
from vetted.errors import DownloadError, Refused, StoreError
from vetted.fetch.sources import SIGNATURE_CAP, Source
from vetted.fetch.stream import BLOCK, Partial, Progress, pump
from vetted.install import pull as pulling
from vetted.net.http import Cancelled, open_regular
from vetted.paths import Locations
from vetted.store import audit, installed, layout
from vetted.trust import oms
from vetted.trust.identity import TrustSpec

FORMAT = "vetted.bundle/1"
INDEX = "vetted-bundle.json"
CATALOG = "catalog.json"
CATALOG_SIG = "catalog.json.sig"
MAX_MEMBERS = 4096
_MODEL_MEMBER = re.compile(r"^models/([a-z0-9][a-z0-9._-]{0,127})/([^/]+)$")

Log = Callable[[str], None]
FileProgress = Callable[[str, int, int], None]


def member_name(model_id: str, file_name: str) -> str:
    return f"models/{model_id}/{file_name}"


class BundleRefused(Refused):
    """The bundle itself is unusable: malformed, truncated, hostile or inconsistent."""


@dataclass
class Bundle:
    """An opened bundle: its members checked for shape, the catalog bytes read."""

    path: Path
    tar: tarfile.TarFile
    file: IO[bytes]
    index: dict[str, object]
    members: dict[str, tarfile.TarInfo]
    catalog_raw: bytes
    catalog_sig: bytes
    model_ids: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.tar.close()
        self.file.close()

    def read_member(self, name: str, cap: int) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise BundleRefused(f"bundle {self.path}", f"has no {name}", "the bundle is incomplete")
        if info.size > cap:
            raise BundleRefused(f"{name} in bundle {self.path}", f"{info.size} bytes exceeds the {cap}-byte cap")
        f = self.tar.extractfile(info)
        assert f is not None  # regular files only (checked at open)
        data = f.read(cap + 1)
        if len(data) != info.size:
            raise BundleRefused(f"{name} in bundle {self.path}",
                                f"{len(data)} bytes readable, its header says {info.size}",
                                "the bundle is truncated; copy it again")
        return data

    def stream(self, name: str) -> Iterator[bytes]:
        info = self.members[name]
        f = self.tar.extractfile(info)
        assert f is not None
        left = info.size
        while left > 0:
            block = f.read(min(BLOCK, left))
            if not block:
                raise BundleRefused(f"{name} in bundle {self.path}", f"ends {left} bytes early",
                                    "the bundle is truncated; copy it again")
            left -= len(block)
            yield block


def open_bundle(path: Path) -> Bundle:
    """Opens `path` and checks every member's shape before anything is trusted or read."""
    fd = open_regular(path)  # a FIFO or device would hang or lie about its size
    f = os.fdopen(fd, "rb")
    try:
        size = os.fstat(fd).st_size
        try:
            tar = tarfile.open(fileobj=f, mode="r:")  # uncompressed only: no decompression bombs
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleRefused(f"bundle {path}", f"is not a Vetted bundle (an uncompressed tar file): {exc}",
                                "make it with the bundle command of vetted-admin") from None
        members: dict[str, tarfile.TarInfo] = {}
        try:
            for n, info in enumerate(tar):
                if n >= MAX_MEMBERS:
                    raise BundleRefused(f"bundle {path}", f"has more than {MAX_MEMBERS} members")
                _check_member(path, info, size)
                if info.name in members:
                    raise BundleRefused(f"bundle {path}", f"holds {info.name!r} twice",
                                        "a bundle names each file once; this one was altered")
                members[info.name] = info
        except (tarfile.TarError, EOFError) as exc:
            raise BundleRefused(f"bundle {path}", f"is damaged or truncated ({exc})",
                                "copy the bundle again") from None
        bundle = Bundle(path, tar, f, {}, members, b"", b"")
        bundle.index = _index(bundle)
        bundle.catalog_raw = bundle.read_member(CATALOG, MAX_CATALOG_BYTES)
        bundle.catalog_sig = bundle.read_member(CATALOG_SIG, SIGNATURE_CAP)
        return bundle
    except BaseException:
        f.close()
        raise


def _check_member(path: Path, info: tarfile.TarInfo, size: int) -> None:
    name = info.name
    shown = json.dumps(name)[:200]
    if not info.isreg() or info.issparse():
        raise BundleRefused(f"member {shown} of bundle {path}",
                            "is not a plain file (a link, device, folder or sparse file)",
                            "a bundle holds only plain files; this one was altered or not made by Vetted")
    m = _MODEL_MEMBER.match(name)
    if name not in (INDEX, CATALOG, CATALOG_SIG):
        try:
            if m is None:
                raise ValueError("not a bundle path")
            check_file_name(m.group(2))
        except ValueError:
            raise BundleRefused(f"member {shown} of bundle {path}",
                                "is not a name a bundle may hold (only vetted-bundle.json, catalog.json, "
                                "catalog.json.sig and models/<id>/<file>)",
                                "the bundle was altered or not made by Vetted") from None
    if info.offset_data + info.size > size:
        raise BundleRefused(f"member {shown} of bundle {path}",
                            f"needs {info.offset_data + info.size} bytes, the file has {size}",
                            "the bundle is truncated; copy it again")


def _index(bundle: Bundle) -> dict[str, object]:
    raw = bundle.read_member(INDEX, 1024 * 1024)
    try:
        index = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleRefused(f"{INDEX} in bundle {bundle.path}", f"not valid JSON ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise BundleRefused(f"{INDEX} in bundle {bundle.path}", f"is not a {FORMAT} index",
                            "this Vetted reads only bundles made by vetted-admin bundle")
    models = index.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models) \
            or len(set(models)) != len(models):
        raise BundleRefused(f"{INDEX} in bundle {bundle.path}", "'models' must list distinct model ids")
    bundle.model_ids = list(models)
    return index


class BundleSource(Source):
    """One model's members of an opened bundle, read like any other source."""

    def __init__(self, bundle: Bundle, model_id: str) -> None:
        super().__init__(f"bundle {bundle.path.name}")
        self.bundle = bundle
        self.model_id = model_id

    def read_small(self, name: str, cap: int = SIGNATURE_CAP, cancel: threading.Event | None = None) -> bytes:
        return self.bundle.read_member(member_name(self.model_id, name), cap)

    def fetch(self, name: str, part: Partial, total: int, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> None:
        member = member_name(self.model_id, name)
        info = self.bundle.members.get(member)
        if info is None:
            raise BundleRefused(f"bundle {self.bundle.path}", f"has no {member}", "the bundle is incomplete")
        if info.size != total:
            raise BundleRefused(f"{member} in bundle {self.bundle.path}",
                                f"{info.size} bytes, the signed catalog declares {total}",
                                "the bundle holds a different file")
        part.reset()  # a bundle is read whole: nothing to resume from an earlier attempt
        pump(f"{member} in {self.bundle.path.name}", self.bundle.stream(member), part, total, progress, cancel)


@dataclass(frozen=True)
class ImportResult:
    catalog: LoadedCatalog
    installed: list[installed.InstalledModel]
    already: list[str]  # model ids that were installed with exactly these files before


def check_contents(bundle: Bundle, cat: LoadedCatalog) -> list[ModelEntry]:
    """Every model the index lists is in the signed catalog, with all its members present
    at their signed sizes; and nothing else is in the bundle."""
    import hashlib

    if bundle.index.get("catalog_sha256") not in (None, hashlib.sha256(bundle.catalog_raw).hexdigest()):
        raise BundleRefused(f"{INDEX} in bundle {bundle.path}", "names another catalog than the one it carries",
                            "the bundle was altered")
    entries = []
    expected = {INDEX, CATALOG, CATALOG_SIG}
    for model_id in bundle.model_ids:
        try:
            entry = cat.catalog.model(model_id)
        except Refused:
            raise BundleRefused(f"bundle {bundle.path}", f"carries model {model_id!r}, which its signed catalog "
                                f"{cat.catalog.id} v{cat.catalog.version} does not list",
                                "the bundle was altered") from None
        for name in [f.name for f in entry.files] + [entry.signature.bundle]:
            member = member_name(model_id, name)
            if member not in bundle.members:
                raise BundleRefused(f"bundle {bundle.path}", f"lacks {member}",
                                    "the bundle is incomplete or truncated; copy it again")
            expected.add(member)
        for f in entry.files:
            have = bundle.members[member_name(model_id, f.name)].size
            if have != f.size:
                raise BundleRefused(f"{member_name(model_id, f.name)} in bundle {bundle.path}",
                                    f"{have} bytes, the signed catalog declares {f.size}",
                                    "the bundle holds a different file")
        entries.append(entry)
    strays = sorted(set(bundle.members) - expected)
    if strays:
        raise BundleRefused(f"bundle {bundle.path}", f"holds files no listed model needs: {', '.join(strays[:5])}",
                            "the bundle was altered")
    return entries


def import_models(loc: Locations, db: sqlite_utils.Database, bundle: Bundle, cat: LoadedCatalog,
                  entries: list[ModelEntry], progress: FileProgress | None = None,
                  cancel: threading.Event | None = None, log: Log | None = None) -> ImportResult:
    """Stages every model (signature verified, files hashed into quarantine), then installs
    them all; nothing is installed unless every model verified."""
    say = log or (lambda _m: None)
    loc.ensure()
    for folder in (loc.quarantine, loc.store):
        layout.check_dir(folder)
    digests = [f.sha256 for e in entries for f in e.files]
    staged_all: list[tuple[ModelEntry, BundleSource, TrustSpec, bytes, oms.SignedManifest, list[pulling.Staged]]] = []

    def parts() -> Iterator[Partial]:
        return (s.part for *_rest, staged in staged_all for s in staged if s.part is not None)
    already: list[str] = []
    staging: set[str] = set()  # digests staged for an earlier model of this import (two models, one file)

    def refuse(exc: BaseException) -> None:
        if isinstance(exc, (Refused, DownloadError, StoreError)) and not isinstance(exc, Cancelled):
            audit.record(db, "bundle.import", str(bundle.path), "refused", exc.line(), cat.signer,
                         {"catalog": f"{cat.catalog.id} v{cat.catalog.version}"})

    with pulling.digest_locks(loc, digests, cancel, say):
        try:
            for entry in entries:
                if pulling.already_installed(db, entry, cat) is not None:
                    already.append(entry.id)
                    say(f"{entry.id}: already installed with these files")
                    continue
                source = BundleSource(bundle, entry.id)
                spec = entry.signature.signer.spec(cat.trusted_root)
                say(f"{entry.id}: checking its publisher signature")
                sig, signed = pulling.check_signature(source, entry, spec, cancel)
                say(f"{entry.id}: copying into quarantine and hashing")
                staged = pulling.stage_files(loc, db, source, entry, progress, cancel, say, shared=set(staging))
                staging.update(f.sha256 for f in entry.files)
                staged_all.append((entry, source, spec, sig, signed, staged))
        except BaseException as exc:
            for part in parts():
                part.discard()
            refuse(exc)
            raise
        models: list[installed.InstalledModel] = []
        before = {e.id: _record(db, e.id) for e, *_rest in staged_all}  # a model already here, from elsewhere
        try:
            for entry, source, spec, sig, signed, staged in staged_all:
                staged = [_fill_shared(loc, s) for s in staged]
                models.append(pulling.install_staged(loc, db, cat, entry, source, sig, signed, staged, spec))
        except BaseException as exc:
            for m in models:  # all or nothing: what this import installed goes again
                previous = before.get(m.model_id)
                if previous is not None:  # it was installed before (same files): its record comes back
                    installed.add(db, previous)
                    audit.record(db, "model.install", m.model_id, "info",
                                 f"restored its earlier record: the import of {bundle.path} failed")
                else:
                    installed.purge(db, m.model_id, f"rolled back: the import of {bundle.path} failed")
            for part in parts():
                part.discard()
            refuse(exc)
            raise
        finally:
            for part in parts():
                part.close()
    audit.record(db, "bundle.import", str(bundle.path), "accepted",
                 f"{len(models)} model(s) installed, {len(already)} already installed; catalog "
                 f"{cat.catalog.id} v{cat.catalog.version}", cat.signer,
                 {"models": [m.model_id for m in models], "already": already})
    return ImportResult(cat, models, already)


def _record(db: sqlite_utils.Database, model_id: str) -> installed.InstalledModel | None:
    try:
        return installed.get(db, model_id)
    except Exception:  # not installed
        return None


def _fill_shared(loc: Locations, s: pulling.Staged) -> pulling.Staged:
    """A placeholder for a file an earlier model of this import installed: the store entry,
    hashed from disk again now (never assumed)."""
    if s.part is not None or s.existing is not None:
        return s
    st = pulling.reusable_store_entry(loc, s.file)
    if st is None:
        raise StoreError(f"{s.file.name} (sha256 {s.file.sha256})",
                         "was installed for another model of this bundle moments ago and is gone or changed",
                         "someone is tampering with the model store; nothing was installed")
    return pulling.Staged(s.file, None, st)

