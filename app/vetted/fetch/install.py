"""`pull`: the only path into the model store (DESIGN.md invariant 1).

  signature bundle first (a few KB) → verified against the catalog's pinned signer →
  its digests must equal the signed catalog's → each file streamed into quarantine,
  hashed as it lands → digest and size equal the catalog's → atomic rename into the
  content-addressed store → recorded (with this boot's id), the decision audited.

A file whose bytes are wrong is deleted from quarantine (it can never be resumed); a
transfer that merely stopped is kept and resumed next time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from filelock import FileLock, Timeout

from vetted.catalog.schema import ModelEntry
from vetted.catalog.signed import LoadedCatalog
from vetted.errors import CatalogError, DownloadError, Refused, StoreError
from vetted.fetch import http
from vetted.fetch.sources import Source, sources_for
from vetted.fetch.stream import Cancelled, Partial
from vetted.paths import Locations
from vetted.store import audit, installed
from vetted.trust import oms

FileProgress = Callable[[str, int, int], None]  # (file name, bytes so far, total)


@dataclass(frozen=True)
class PullResult:
    model: installed.InstalledModel
    source: str
    already: bool = False


def store_path(loc: Locations, sha256: str) -> Path:
    return loc.store / "sha256" / sha256[:2] / sha256


def pull(
    loc: Locations,
    db: sqlite_utils.Database,
    cat: LoadedCatalog,
    model_id: str,
    progress: FileProgress | None = None,
    cancel: threading.Event | None = None,
    timeout: float = http.DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = None,
) -> PullResult:
    entry = cat.catalog.model(model_id)
    if cat.expired:
        reason = (f"catalog {cat.catalog.id} v{cat.catalog.version} expired at "
                  f"{cat.catalog.expires.isoformat()}")
        audit.record(db, "model.pull", model_id, "refused", reason, cat.signer)
        raise CatalogError(f"catalog {cat.catalog.id}", f"expired at {cat.catalog.expires.isoformat()}",
                           "new downloads are frozen until its publisher issues a fresh catalog; "
                           "installed models stay usable")
    loc.ensure()
    lock = FileLock(str(loc.quarantine / f"{model_id}.lock"))
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        raise StoreError(f"pull of {model_id}", "another pull of this model is running", "wait for it") from None
    try:
        existing = _already_installed(db, entry)
        if existing:
            return PullResult(existing, existing.source, already=True)
        return _pull_locked(loc, db, cat, entry, progress, cancel, timeout, log or (lambda _m: None))
    finally:
        lock.release()


def _already_installed(db, entry: ModelEntry) -> installed.InstalledModel | None:
    try:
        model = installed.get(db, entry.id)
    except Exception:
        return None
    same = sorted((f.name, f.sha256) for f in model.files) == sorted((f.name, f.sha256) for f in entry.files)
    return model if same and model.state == "verified" else None


def _pull_locked(loc, db, cat, entry: ModelEntry, progress, cancel, timeout, log) -> PullResult:
    spec = entry.signature.signer.spec(cat.trusted_root)
    sources = sources_for(entry, cat.base, timeout)
    failures: list[str] = []
    last_refusal: Refused | None = None
    last_download: DownloadError | None = None
    for source in sources:
        try:
            log(f"trying {source.label}")
            bundle, signed = _signature(source, entry, spec)
            parts = _fetch_files(loc, source, entry, progress, cancel)
            model = _install(loc, db, cat, entry, source, bundle, signed, parts, spec)
            return PullResult(model, source.label)
        except Cancelled:
            audit.record(db, "model.pull", entry.id, "info", "cancelled by user; partial download kept for resume")
            raise
        except Refused as exc:
            audit.record(db, "model.pull", entry.id, "refused", f"{source.label}: {exc.line()}",
                         spec_description(spec))
            failures.append(f"{source.label}: {exc.checked}: {exc.found}")
            last_refusal = exc
        except DownloadError as exc:
            failures.append(f"{source.label}: {exc.checked}: {exc.found}")
            last_download = exc
    summary = " | ".join(failures) or "no sources"
    if last_refusal is not None:
        raise Refused(f"pull of {entry.id}", summary, last_refusal.action or "the sources do not serve the signed files")
    raise DownloadError(f"pull of {entry.id}", summary,
                        (last_download.action if last_download else "") or
                        "check the network or the sources, then run again to resume")


def spec_description(spec) -> str:
    return spec.describe()


def _signature(source: Source, entry: ModelEntry, spec) -> tuple[bytes, oms.SignedManifest]:
    bundle = source.read_small(entry.signature.bundle)
    signed = oms.signed_manifest(bundle, spec)  # Refused names signer and reason
    for f in entry.files:
        digest = installed._signed_digest(signed, f.name, len(entry.files))
        if digest is None:
            raise Refused(f"publisher signature of {entry.id} by {signed.signer}",
                          f"does not cover {f.name}", "the catalog and the publisher disagree; do not use it")
        if digest != f.sha256:
            raise Refused(f"publisher signature of {entry.id} by {signed.signer}",
                          f"signs {f.name} as sha256 {digest}, the catalog says {f.sha256}",
                          "the catalog and the publisher disagree; do not use it")
    return bundle, signed


def _fetch_files(loc, source: Source, entry: ModelEntry, progress, cancel) -> list[tuple[str, Partial]]:
    parts = []
    for f in entry.files:
        target = store_path(loc, f.sha256)
        if target.exists():  # already in the store (shared by another model); re-checked below
            parts.append((f.name, Partial(target, target.stat().st_size, None)))  # type: ignore[arg-type]
            continue
        part = Partial.open(loc.quarantine / f"{f.sha256}.part", f.size)
        cb = (lambda done, total, n=f.name: progress(n, done, total)) if progress else None
        try:
            source.fetch(f.name, part, f.size, cb, cancel)
        except Refused:
            part.reset()  # wrong bytes can never be resumed
            raise
        digest = part.hasher.hexdigest()
        if part.size != f.size or digest != f.sha256:
            part.reset()
            raise Refused(f"downloaded {f.name} from {source.label}",
                          f"sha256 {digest} ({part.size} bytes), the signed catalog says {f.sha256} ({f.size} bytes)",
                          "the source serves altered bytes; they were deleted")
        parts.append((f.name, part))
    return parts


def _install(loc, db, cat: LoadedCatalog, entry: ModelEntry, source: Source, bundle: bytes,
             signed: oms.SignedManifest, parts, spec) -> installed.InstalledModel:
    from vetted.digest import sha256_file
    from vetted.trust.identity import to_json

    files = []
    for name, part in parts:
        f = next(x for x in entry.files if x.name == name)
        target = store_path(loc, f.sha256)
        if part.hasher is None:  # already in the store: it must still be what it claims
            if sha256_file(target) != f.sha256:
                raise StoreError(f"store file {target}", "does not match its name (changed on disk)",
                                 "remove it and pull again")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(part.path, 0o444)
            os.replace(part.path, target)
            _fsync_dir(target.parent)
        st = target.stat()
        files.append(installed.InstalledFile(name, f.sha256, f.size, target, st.st_ino, st.st_mtime_ns,
                                             installed.boot_id()))
    sig_dir = loc.store / "signatures"
    sig_dir.mkdir(parents=True, exist_ok=True)
    sig_path = sig_dir / f"{entry.id}.{hashlib.sha256(bundle).hexdigest()[:16]}.sig"
    tmp = sig_path.with_suffix(".tmp")
    tmp.write_bytes(bundle)
    os.replace(tmp, sig_path)
    now = audit.now()
    model = installed.InstalledModel(
        model_id=entry.id, name=entry.name, publisher=entry.publisher, catalog_id=cat.catalog.id,
        catalog_version=cat.catalog.version, source=source.label, signer=signed.signer,
        signer_spec=to_json(spec), signature_path=sig_path,
        entry=entry.model_dump(mode="json", exclude_none=True), state="verified", state_reason=None,
        installed_at=now, verified_at=now, files=tuple(files),
    )
    installed.add(db, model)
    audit.record(db, "model.install", entry.id, "accepted",
                 f"sha256 of {len(files)} file(s) matches the signed catalog and the publisher signature",
                 signed.signer, {"source": source.label, "files": {f.name: f.sha256 for f in files},
                                 "catalog": f"{cat.catalog.id} v{cat.catalog.version}"})
    return model


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
