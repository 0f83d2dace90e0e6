"""`pull`: the only path into the model store (DESIGN.md invariant 1).

  signature bundle first (a few KB) → verified against the catalog's pinned signer →
  its digests must equal the signed catalog's → each file streamed into quarantine,
  hashed as it lands → digest and size equal the catalog's → atomic rename into the
  content-addressed store (and proof that the store now holds that very inode) →
  recorded (with this boot's id), the decision audited.

A file whose bytes are wrong is deleted from quarantine (it can never be resumed); a
transfer that merely stopped is kept and resumed next time — by the next source too, and
if a resumed file then fails its digest, that source starts it again from zero once
before it is blamed (an earlier source may have left the bad prefix); so does a file that
came in ranged parts (fetch/parallel.py), then over one connection without Range. Pulls
take a lock per file digest, so two models sharing a file never write one partial at the
same time.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import sqlite_utils
from filelock import FileLock, Timeout

from vetted.catalog.schema import FileEntry, ModelEntry
from vetted.catalog.signed import LoadedCatalog
from vetted.digest import sha256_fd
from vetted.errors import CatalogError, DownloadError, Refused, StoreError
from vetted.net.http import Cancelled
from vetted.store.quarantine import Partial
from vetted.fetch.sources import Source, sources_for
from vetted.net.watchdog import DEFAULT_LIMITS, TransferLimits
from vetted.paths import Locations
from vetted.store import audit, installed, layout
from vetted.trust import oms
from vetted.trust.coverage import signed_file_digest
from vetted.trust.identity import TrustSpec

FileProgress = Callable[[str, int, int], None]  # (file name, bytes so far, total)
Log = Callable[[str], None]


@dataclass(frozen=True)
class PullResult:
    model: installed.InstalledModel
    source: str
    already: bool = False


def store_path(loc: Locations, sha256: str) -> Path:
    return layout.store_path(loc.store, sha256)


def pull(
    loc: Locations,
    db: sqlite_utils.Database,
    cat: LoadedCatalog,
    model_id: str,
    progress: FileProgress | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    log: Log | None = None,
    limits: TransferLimits | None = None,
    local_only: str | None = None,
    hf_endpoint: str | None = None,
) -> PullResult:
    """`timeout` (seconds without data) overrides `limits.stall_timeout` when given;
    `local_only` and `hf_endpoint` carry an organisation's network rule (fetch/sources.py)."""
    limits = limits or DEFAULT_LIMITS
    if timeout is not None:
        limits = replace(limits, stall_timeout=float(timeout))
    say = log or (lambda _m: None)
    audit.require_intact(db)  # no trust decision while the audit chain is broken and unacknowledged
    entry = cat.catalog.model(model_id)
    if cat.expired:
        reason = (f"catalog {cat.catalog.id} v{cat.catalog.version} expired at "
                  f"{cat.catalog.expires.isoformat()}")
        audit.record(db, "model.pull", model_id, "refused", reason, cat.signer)
        raise CatalogError(f"catalog {cat.catalog.id}", f"expired at {cat.catalog.expires.isoformat()}",
                           "new downloads are frozen until its publisher issues a fresh catalog; "
                           "installed models stay usable")
    loc.ensure()
    for folder in (loc.quarantine, loc.store):  # a symlinked folder would carry bytes outside the data folder
        layout.check_dir(folder)
    with digest_locks(loc, [f.sha256 for f in entry.files], cancel, say):
        existing = already_installed(db, entry, cat)
        if existing:
            return PullResult(existing, existing.source, already=True)
        return _pull_locked(loc, db, cat, entry, progress, cancel, limits, say, local_only, hf_endpoint)


@contextmanager
def digest_locks(loc: Locations, digests: list[str], cancel: threading.Event | None, log: Log) -> Iterator[None]:
    """One lock per file digest, taken in sorted order (no deadlock), waiting for other pulls."""
    with ExitStack() as stack:
        for sha in sorted(set(digests)):
            path = loc.quarantine / f"{sha}.lock"
            if path.is_symlink():  # filelock opens with O_NOFOLLOW; a planted link would just fail
                layout.remove_entry(path)
            lock = FileLock(str(path))
            told = False
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("waiting for another pull of the same file")
                try:
                    lock.acquire(timeout=0.2)
                    break
                except Timeout:
                    if not told:
                        log(f"waiting: another pull is fetching the file with sha256 {sha[:16]}…")
                        told = True
            stack.callback(lock.release)
        yield


def already_installed(db: sqlite_utils.Database, entry: ModelEntry,
                      cat: LoadedCatalog | None = None) -> installed.InstalledModel | None:
    """The installed model, if it holds exactly these files, verified, and was recorded from
    this very catalog and signer. A model recorded under another catalog or signer (an
    organisation rotated its key, a bundle brought it) is installed again from this one:
    its files are reused from the store after a re-hash, its signature verified anew."""
    try:
        model = installed.get(db, entry.id)
    except Exception:
        return None
    same = sorted((f.name, f.sha256) for f in model.files) == sorted((f.name, f.sha256) for f in entry.files)
    if cat is not None and (model.catalog_location != cat.location or model.catalog_signer_key != cat.signer_key):
        return None
    return model if same and model.state == "verified" else None


def _pull_locked(loc: Locations, db: sqlite_utils.Database, cat: LoadedCatalog, entry: ModelEntry,
                 progress: FileProgress | None, cancel: threading.Event | None, limits: TransferLimits,
                 log: Log, local_only: str | None = None, hf_endpoint: str | None = None) -> PullResult:
    spec = entry.signature.signer.spec(cat.trusted_root)
    plan = sources_for(entry, cat.base, limits, local_only, hf_endpoint)
    for note in plan.skipped:
        log(f"not using {note}")
    if not plan.sources:
        raise DownloadError(f"pull of {entry.id}", "no source this catalog may use"
                            + (f" ({'; '.join(plan.skipped)})" if plan.skipped else ""),
                            "ask the catalog's publisher for a mirror or Hugging Face source")
    failures: list[str] = []
    last_refusal: Refused | None = None
    last_download: DownloadError | None = None
    for source in plan.sources:
        try:
            log(f"trying {source.label}")
            bundle, signed = check_signature(source, entry, spec, cancel)
            staged = stage_files(loc, db, source, entry, progress, cancel, log)
            try:
                model = install_staged(loc, db, cat, entry, source, bundle, signed, staged, spec)
            finally:
                for s in staged:
                    if s.part is not None:
                        s.part.close()
            return PullResult(model, source.label)
        except Cancelled:
            audit.record(db, "model.pull", entry.id, "info", "cancelled by user; partial download kept for resume")
            raise
        except Refused as exc:
            audit.record(db, "model.pull", entry.id, "refused", f"{source.label}: {exc.line()}", spec.describe())
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


def spec_description(spec: TrustSpec) -> str:
    return spec.describe()


def check_signature(source: Source, entry: ModelEntry, spec: TrustSpec,
               cancel: threading.Event | None) -> tuple[bytes, oms.SignedManifest]:
    bundle = source.read_small(entry.signature.bundle, cancel=cancel)
    signed = oms.signed_manifest(bundle, spec)  # Refused names signer and reason
    for f in entry.files:
        digest = signed_file_digest(signed, f.name, len(entry.files))
        if digest is None:
            raise Refused(f"publisher signature of {entry.id} by {signed.signer}",
                          f"does not cover {f.name}", "the catalog and the publisher disagree; do not use it")
        if digest != f.sha256:
            raise Refused(f"publisher signature of {entry.id} by {signed.signer}",
                          f"signs {f.name} as sha256 {digest}, the catalog says {f.sha256}",
                          "the catalog and the publisher disagree; do not use it")
    return bundle, signed


@dataclass
class Staged:
    """A file ready for install: a verified partial in quarantine, or an entry already in the store."""

    file: FileEntry
    part: Partial | None
    existing: os.stat_result | None


def stage_files(loc: Locations, db: sqlite_utils.Database, source: Source, entry: ModelEntry,
                progress: FileProgress | None, cancel: threading.Event | None, log: Log,
                shared: set[str] | None = None) -> list[Staged]:
    """Each file into quarantine, verified. A digest in `shared` is being staged for an
    earlier model of the same import: it is left as a placeholder (no part, no store entry)
    that the importer fills once that model is installed."""
    staged: list[Staged] = []
    try:
        for f in entry.files:
            if shared is not None and f.sha256 in shared:
                staged.append(Staged(f, None, None))
                continue
            st = reusable_store_entry(loc, f)
            if st is not None:  # shared with another installed model, and still exactly these bytes
                staged.append(Staged(f, None, st))
                continue
            part = Partial.open(loc.quarantine / f"{f.sha256}.part", f.size)
            staged.append(Staged(f, part, None))
            _fetch_one(db, source, entry, f, part, progress, cancel, log)
        return staged
    except BaseException:
        for s in staged:
            if s.part is not None:
                s.part.close()
        raise


def _fetch_one(db: sqlite_utils.Database, source: Source, entry: ModelEntry, f: FileEntry, part: Partial,
               progress: FileProgress | None, cancel: threading.Event | None, log: Log) -> None:
    """Fetches one file into its partial until its digest is the signed one, or refuses.

    A digest that fails after a resumed or a ranged transfer cannot say which bytes were
    wrong (an earlier source's prefix, one ranged answer): the file starts again from
    zero once — over one connection without Range if ranges were used, since a server
    can answer ranges wrongly and the whole file right — before the source is blamed."""
    cb = (lambda done, total: progress(f.name, done, total)) if progress else None
    _fetch_noting(db, source, entry, f, part, cb, cancel, log)
    if part.size == f.size and part.hasher.hexdigest() == f.sha256:
        return
    if part.resumed_from or part.ranged:
        if part.resumed_from:
            note = (f"{f.name}: the {part.resumed_from} bytes kept from an earlier attempt did not lead to the "
                    f"signed digest; restarting from zero with {source.label}")
        else:
            note = (f"{f.name}: the ranged parts from {source.label} did not lead to the signed digest; "
                    f"restarting from zero with {source.label}")
        if part.ranged:
            note += " over one connection without Range"
        log(note)
        audit.record(db, "model.pull", entry.id, "info", note)
        whole_only = part.ranged
        part.reset()
        part.whole_only = whole_only
        _fetch_noting(db, source, entry, f, part, cb, cancel, log)
        if part.size == f.size and part.hasher.hexdigest() == f.sha256:
            return
    digest, got = part.hasher.hexdigest(), part.size
    part.discard()
    raise Refused(f"downloaded {f.name} from {source.label}",
                  f"sha256 {digest} ({got} bytes), the signed catalog says {f.sha256} ({f.size} bytes)",
                  "the source serves altered bytes; they were deleted")


def _fetch_noting(db: sqlite_utils.Database, source: Source, entry: ModelEntry, f: FileEntry, part: Partial,
                  cb: Callable[[int, int], None] | None, cancel: threading.Event | None, log: Log) -> None:
    """`source.fetch`, then what the transfer layer noted (a server's ranged answers refused,
    an unreadable record of a partial's parts) is said and audited, however it ended."""
    try:
        source.fetch(f.name, part, f.size, cb, cancel)
    except Refused:
        part.discard()  # wrong bytes can never be resumed
        raise
    finally:
        for note in part.notes:
            log(f"{f.name}: {note}")
            audit.record(db, "model.pull", entry.id, "info", f"{source.label}: {f.name}: {note}")
        part.notes.clear()


def reusable_store_entry(loc: Locations, f: FileEntry) -> os.stat_result | None:
    """A store entry is reused only if it is a plain file holding exactly the signed bytes;
    anything else at its name (a planted link, altered bytes) is removed and fetched anew."""
    target = layout.ensure_dirs(loc.store, f.sha256)
    try:
        fd = layout.open_entry(target)
    except FileNotFoundError:
        return None
    except StoreError:
        layout.remove_entry(target)
        return None
    try:
        st = os.fstat(fd)
        if st.st_size == f.size and sha256_fd(fd) == f.sha256 and os.fstat(fd).st_ctime_ns == st.st_ctime_ns:
            return st
    finally:
        os.close(fd)
    layout.remove_entry(target)
    return None


def install_staged(loc: Locations, db: sqlite_utils.Database, cat: LoadedCatalog, entry: ModelEntry, source: Source,
             bundle: bytes, signed: oms.SignedManifest, staged: list[Staged], spec: TrustSpec) -> installed.InstalledModel:
    from vetted.trust.identity import to_json

    files = []
    for s in staged:
        target = layout.ensure_dirs(loc.store, s.file.sha256)
        if s.part is not None:
            st = s.part.install_into(target)
            _fsync_dir(target.parent)
            # The digest was computed over the bytes as they arrived, not as they sit on
            # disk: another program could have written into the partial meanwhile. No
            # identity is recorded, so the first check re-reads the file from disk.
            dev, ctime = None, None
        else:
            assert s.existing is not None
            st = s.existing  # hashed from disk just now, its identity unchanged while hashing
            dev, ctime = st.st_dev, st.st_ctime_ns
        files.append(installed.InstalledFile(s.file.name, s.file.sha256, s.file.size, target, st.st_ino,
                                             st.st_mtime_ns, installed.boot_id(), dev, ctime))
    sig_path = _store_signature(loc, entry.id, bundle)
    now = audit.now()
    model = installed.InstalledModel(
        model_id=entry.id, name=entry.name, publisher=entry.publisher, catalog_id=cat.catalog.id,
        catalog_version=cat.catalog.version, source=source.label, signer=signed.signer,
        signer_spec=to_json(spec), signature_path=sig_path,
        entry=entry.model_dump(mode="json", exclude_none=True), state="verified", state_reason=None,
        installed_at=now, verified_at=now, files=tuple(files),
        catalog_location=cat.location, catalog_signer_key=cat.signer_key,
    )
    installed.add(db, model)
    audit.record(db, "model.install", entry.id, "accepted",
                 f"sha256 of {len(files)} file(s) matches the signed catalog and the publisher signature",
                 signed.signer, {"source": source.label, "files": {f.name: f.sha256 for f in files},
                                 "catalog": f"{cat.catalog.id} v{cat.catalog.version}"})
    return model


def _store_signature(loc: Locations, model_id: str, bundle: bytes) -> Path:
    sig_dir = loc.store / "signatures"
    sig_dir.mkdir(parents=True, exist_ok=True)
    layout.check_dir(sig_dir)
    sig_path = sig_dir / f"{model_id}.{hashlib.sha256(bundle).hexdigest()[:16]}.sig"
    tmp = sig_dir / f".{sig_path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | layout.NOFOLLOW | layout.CLOEXEC | layout.BINARY, 0o444)
    with open(fd, "wb") as f:
        f.write(bundle)
    os.replace(tmp, sig_path)
    return sig_path


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
