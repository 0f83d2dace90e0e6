"""Installed models and the re-check that runs before every load (DESIGN.md invariant 1).

`open_checked` opens each store file once (no link followed), checks *that descriptor*
and hands it out, so what the engine loads is provably the file that was checked, not a
path looked up again (see docs/threat-model.md).

Fast path: the descriptor's identity — size, mtime, ctime, inode and device — equals the
one recorded when the bytes were last hashed, in the same boot. Anything an in-place
edit changes is in that key: restoring the mtime (`touch -r`) still changes the ctime, and
an edit through a hard link changes both. Otherwise (a changed key, a reboot since — the
bytes may not have reached the disk —, a row from before these fields existed, or on
demand) the file is re-hashed through the descriptor. A refusal sticks: a model refused
once stays refused until a full re-hash finds the verified bytes again.
The stored signature bundle is re-verified against the pinned signer each time (cheap),
as of the time it was first verified, so a certificate that expired since does not strand
an installed model.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from vetted.digest import sha256_fd
from vetted.errors import Fix, InputError, Refused, Remedy, StoreError
from vetted.store import audit, layout


def boot_id() -> str:
    """Identifies the current boot: Linux's boot_id, elsewhere the boot time to the minute."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        import time

        return f"boot@{int((time.time() - time.monotonic()) // 60)}"


@dataclass(frozen=True)
class FileIdentity:
    """Everything an in-place edit, a hard-link edit or a swap changes about a file."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileIdentity":
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def changes(self, other: "FileIdentity") -> list[str]:
        return [k for k in ("dev", "ino", "size", "mtime_ns", "ctime_ns") if getattr(self, k) != getattr(other, k)]


@dataclass(frozen=True)
class InstalledFile:
    name: str
    sha256: str
    size: int
    path: Path  # derived from the digest (store/layout.py), never read from the database
    inode: int
    mtime_ns: int
    boot_id: str | None = None
    dev: int | None = None
    ctime_ns: int | None = None

    @property
    def identity(self) -> FileIdentity | None:
        if self.dev is None or self.ctime_ns is None:
            return None  # recorded before migration 5: re-hashed on first use
        return FileIdentity(self.dev, self.inode, self.size, self.mtime_ns, self.ctime_ns)


@dataclass(frozen=True)
class InstalledModel:
    model_id: str
    name: str
    publisher: str | None
    catalog_id: str | None
    catalog_version: int | None
    source: str
    signer: str
    signer_spec: dict[str, Any]
    signature_path: Path
    entry: dict[str, Any]
    state: str
    state_reason: str | None
    installed_at: str
    verified_at: str
    files: tuple[InstalledFile, ...]
    catalog_location: str | None = None   # where its catalog was loaded from (migration 8)
    catalog_signer_key: str | None = None  # which pinned catalog signer vouched for it

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def gguf(self) -> InstalledFile:
        ggufs = [f for f in self.files if f.name.endswith(".gguf")] or list(self.files)
        if len(ggufs) != 1:
            raise Refused(f"model {self.model_id}", f"has {len(ggufs)} GGUF files; one is needed to load")
        return ggufs[0]


def add(db: sqlite_utils.Database, model: InstalledModel) -> None:
    with db.conn:
        db.conn.execute("BEGIN IMMEDIATE")
        db.conn.execute("DELETE FROM installed_models WHERE model_id = ?", [model.model_id])
        db.conn.execute(
            "INSERT INTO installed_models (model_id, name, publisher, catalog_id, catalog_version, source,"
            " signer, signer_spec, signature_path, entry_json, state, state_reason, installed_at, verified_at,"
            " catalog_location, catalog_signer_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [model.model_id, model.name, model.publisher, model.catalog_id, model.catalog_version,
             model.source, model.signer, json.dumps(model.signer_spec), str(model.signature_path),
             json.dumps(model.entry), model.state, model.state_reason, model.installed_at, model.verified_at,
             model.catalog_location, model.catalog_signer_key],
        )
        for f in model.files:
            db.conn.execute(
                "INSERT INTO installed_files (model_id, name, sha256, size, path, inode, mtime_ns, verified_at,"
                " boot_id, dev, ctime_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [model.model_id, f.name, f.sha256, f.size, str(f.path), f.inode, f.mtime_ns, model.verified_at,
                 f.boot_id, f.dev, f.ctime_ns],
            )


def get(db: sqlite_utils.Database, model_id: str) -> InstalledModel:
    rows = list(db.query("SELECT * FROM installed_models WHERE model_id = ?", [model_id]))
    if not rows:
        raise InputError(f"model {model_id}", "is not installed", "install it from a catalog first",
                         Remedy(Fix.INSTALL, model_id))
    return _build(db, rows[0])


def all_models(db: sqlite_utils.Database) -> list[InstalledModel]:
    return [_build(db, r) for r in db.query("SELECT * FROM installed_models ORDER BY model_id")]


def _build(db: sqlite_utils.Database, r: dict[str, Any]) -> InstalledModel:
    root = layout.store_root_of(db.conn)
    files = tuple(
        InstalledFile(f["name"], f["sha256"], f["size"], layout.store_path(root, f["sha256"]), f["inode"],
                      f["mtime_ns"], f["boot_id"], f.get("dev"), f.get("ctime_ns"))
        for f in db.query("SELECT * FROM installed_files WHERE model_id = ? ORDER BY name", [r["model_id"]])
    )
    # the bundle lives in the store's signatures folder; a row cannot point elsewhere
    name = Path(str(r["signature_path"])).name
    if not _SIG_NAME.match(name):
        raise StoreError(f"installed model {r['model_id']}", f"its signature file name {name!r} is not one Vetted writes",
                         "the database was edited; remove the model and install it again")
    try:
        spec, entry = json.loads(r["signer_spec"]), json.loads(r["entry_json"])
    except (TypeError, ValueError) as exc:
        raise StoreError(f"installed model {r['model_id']}", f"its database row is damaged ({exc})",
                         "remove the model and install it again") from None
    return InstalledModel(
        r["model_id"], r["name"], r["publisher"], r["catalog_id"], r["catalog_version"], r["source"],
        r["signer"], spec, root / "signatures" / name, entry,
        r["state"], r["state_reason"], r["installed_at"], r["verified_at"], files,
        r.get("catalog_location"), r.get("catalog_signer_key"),
    )


_SIG_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}\.[0-9a-f]{16}\.sig$")


def set_state(db: sqlite_utils.Database, model_id: str, state: str, reason: str | None,
              refresh: dict[str, FileIdentity] | None = None) -> None:
    with db.conn:
        db.conn.execute("BEGIN IMMEDIATE")
        if state == "verified":
            db.conn.execute("UPDATE installed_models SET state=?, state_reason=?, verified_at=? WHERE model_id=?",
                            [state, reason, audit.now(), model_id])
        else:
            db.conn.execute("UPDATE installed_models SET state=?, state_reason=? WHERE model_id=?",
                            [state, reason, model_id])
        for name, ident in (refresh or {}).items():
            db.conn.execute("UPDATE installed_files SET inode=?, mtime_ns=?, dev=?, ctime_ns=?, verified_at=?,"
                            " boot_id=? WHERE model_id=? AND name=?",
                            [ident.ino, ident.mtime_ns, ident.dev, ident.ctime_ns, audit.now(), boot_id(),
                             model_id, name])


@dataclass
class CheckedFile:
    """A store file opened once and checked through this descriptor."""

    name: str
    sha256: str
    size: int
    path: Path
    fd: int
    identity: FileIdentity

    def current(self) -> FileIdentity:
        return FileIdentity.of(os.fstat(self.fd))


@dataclass
class CheckedModel:
    """The outcome of a re-check, holding the checked descriptors open until closed."""

    model: InstalledModel
    files: list[CheckedFile]
    signer: str
    rehashed: list[str] = field(default_factory=list)
    fast_path: list[str] = field(default_factory=list)

    def gguf(self) -> CheckedFile:
        name = self.model.gguf().name
        return next(f for f in self.files if f.name == name)

    def close(self) -> None:
        for f in self.files:
            if f.fd >= 0:
                os.close(f.fd)
                f.fd = -1

    def __enter__(self) -> "CheckedModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class CheckResult:
    model_id: str
    rehashed: list[str]
    fast_path: list[str]
    signer: str


def check(db: sqlite_utils.Database, model_id: str, full: bool = False, purpose: str = "check") -> CheckResult:
    """Re-verifies an installed model; raises `Refused` (and records it) if anything changed."""
    with open_checked(db, model_id, full, purpose) as checked:
        return CheckResult(model_id, checked.rehashed, checked.fast_path, checked.signer)


def open_checked(db: sqlite_utils.Database, model_id: str, full: bool = False, purpose: str = "check",
                 audit_accept: bool = True) -> CheckedModel:
    """Re-verifies an installed model and returns its files open; the caller closes them."""
    from vetted.trust import identity, oms
    from vetted.trust.coverage import signed_file_digest

    audit.require_intact(db)  # no trust decision while the audit chain is broken and unacknowledged
    model = get(db, model_id)
    opened: list[CheckedFile] = []
    rehashed: list[str] = []
    fast: list[str] = []
    refresh: dict[str, FileIdentity] = {}
    try:
        if model.state == "refused" and not full:
            raise Refused(f"model {model_id}", f"stays refused since its last check ({model.state_reason})",
                          "only a full re-hash that finds exactly the verified bytes again clears a refusal",
                          Remedy(Fix.FULL_CHECK, model_id))
        try:
            spec = identity.from_json(model.signer_spec)
        except InputError as exc:  # e.g. a signer pinned before identities were required
            raise Refused(f"pinned signer of {model_id}", exc.found,
                          "the signer recorded at install is no longer acceptable; install the model again "
                          "from a catalog that names the signer's identity", Remedy(Fix.REINSTALL, model_id)) from None
        signed = oms.signed_manifest(_read_signature(model.signature_path), spec, _first_verified(model))
        for f in model.files:
            if signed_file_digest(signed, f.name, len(model.files)) != f.sha256:
                raise Refused(f"signature of {model_id}", f"no longer covers {f.name} as installed")
            what = f"installed file {f.name} of {model_id}"
            redo = "the file was changed after install; remove the model and install it again"
            again = Remedy(Fix.REINSTALL, model_id)
            try:
                fd = layout.open_entry(f.path)
            except FileNotFoundError:
                raise Refused(what, f"{f.path} is missing", "remove the model and install it again", again) from None
            except StoreError as exc:
                raise Refused(what, exc.found, exc.action, again) from None
            now = FileIdentity.of(os.fstat(fd))
            opened.append(CheckedFile(f.name, f.sha256, f.size, f.path, fd, now))
            recorded = f.identity
            if recorded is not None and now == recorded and f.boot_id == boot_id() and not full:
                fast.append(f.name)
                continue
            if now.size != f.size:
                raise Refused(what, f"size is {now.size} bytes, {f.size} were verified at install", redo, again)
            actual = sha256_fd(fd)
            after = FileIdentity.of(os.fstat(fd))
            if after != now:
                raise Refused(what, f"changed while it was being checked ({', '.join(now.changes(after))})", redo, again)
            if actual != f.sha256:
                raise Refused(what, f"sha256 is now {actual}, {f.sha256} was verified at install", redo, again)
            rehashed.append(f.name)
            refresh[f.name] = after
    except (Refused, StoreError) as exc:
        for c in opened:
            os.close(c.fd)
        line = exc.line()
        set_state(db, model_id, "refused", line)
        audit.record(db, f"model.{purpose}", model_id, "refused", line, model.signer)
        if isinstance(exc, Refused):
            raise
        raise Refused(exc.checked, exc.found, exc.action, exc.remedy or Remedy(Fix.REINSTALL, model_id)) from None
    set_state(db, model_id, "verified", None, refresh)
    if audit_accept:
        how = (f"re-hashed {', '.join(rehashed)}" if rehashed else "") + ("; " if rehashed and fast else "") + \
              (f"unchanged since verification (size, mtime, ctime, inode, device): {', '.join(fast)}"
               if fast else "")
        audit.record(db, f"model.{purpose}", model_id, "accepted", how, signed.signer)
    return CheckedModel(model, opened, signed.signer, rehashed, fast)


def _first_verified(model: InstalledModel) -> datetime | None:
    try:
        return datetime.fromisoformat(model.installed_at)
    except ValueError:
        return None




def _read_signature(path: Path) -> bytes:
    try:
        fd = layout.open_regular_nofollow(path)
    except OSError as exc:
        raise Refused("stored signature bundle", f"{path}: {exc.strerror or exc}", "install the model again") from None
    with open(fd, "rb") as f:
        return f.read(4 * 1024 * 1024)


def remove(db: sqlite_utils.Database, model_id: str, reason: str = "removed by user") -> list[Path]:
    """Forgets a model; returns the store files no other installed model still uses."""
    model = get(db, model_id)
    with db.conn:
        db.conn.execute("BEGIN IMMEDIATE")
        db.conn.execute("DELETE FROM installed_files WHERE model_id = ?", [model_id])
        db.conn.execute("DELETE FROM installed_models WHERE model_id = ?", [model_id])
    orphans = [model.signature_path]
    for f in model.files:
        still = db.execute("SELECT 1 FROM installed_files WHERE sha256 = ? LIMIT 1", [f.sha256]).fetchone()
        if not still:
            orphans.append(f.path)
    audit.record(db, "model.remove", model_id, "info", reason)
    return orphans


def purge(db: sqlite_utils.Database, model_id: str, reason: str = "removed by user") -> list[Path]:
    """Removes a model and deletes the store files nothing else uses; returns them."""
    gone = remove(db, model_id, reason)
    for path in gone:
        layout.remove_entry(path)
    return gone
