"""Installed models and the re-check that runs before every load (DESIGN.md invariant 1).

Fast path: size, mtime and inode as recorded at install, in the same boot. If any
changed, the machine rebooted since (the bytes may not have reached the disk), or on
demand, the file is re-hashed; a digest that no longer matches marks the model refused.
The stored signature bundle is re-verified against the pinned signer each time (cheap).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from vetted.digest import sha256_file
from vetted.errors import InputError, Refused
from vetted.store import audit


def boot_id() -> str:
    """Identifies the current boot: Linux's boot_id, elsewhere the boot time to the minute."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        import time

        return f"boot@{int((time.time() - time.monotonic()) // 60)}"


@dataclass(frozen=True)
class InstalledFile:
    name: str
    sha256: str
    size: int
    path: Path
    inode: int
    mtime_ns: int
    boot_id: str | None = None


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

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def add(db: sqlite_utils.Database, model: InstalledModel) -> None:
    with db.conn:
        db.conn.execute("BEGIN IMMEDIATE")
        db.conn.execute("DELETE FROM installed_models WHERE model_id = ?", [model.model_id])
        db.conn.execute(
            "INSERT INTO installed_models (model_id, name, publisher, catalog_id, catalog_version, source,"
            " signer, signer_spec, signature_path, entry_json, state, state_reason, installed_at, verified_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [model.model_id, model.name, model.publisher, model.catalog_id, model.catalog_version,
             model.source, model.signer, json.dumps(model.signer_spec), str(model.signature_path),
             json.dumps(model.entry), model.state, model.state_reason, model.installed_at, model.verified_at],
        )
        for f in model.files:
            db.conn.execute(
                "INSERT INTO installed_files (model_id, name, sha256, size, path, inode, mtime_ns, verified_at,"
                " boot_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [model.model_id, f.name, f.sha256, f.size, str(f.path), f.inode, f.mtime_ns, model.verified_at,
                 f.boot_id],
            )


def get(db: sqlite_utils.Database, model_id: str) -> InstalledModel:
    rows = list(db.query("SELECT * FROM installed_models WHERE model_id = ?", [model_id]))
    if not rows:
        raise InputError(f"model {model_id}", "is not installed", "see `vetted models`, or `vetted pull` it")
    return _build(db, rows[0])


def all_models(db: sqlite_utils.Database) -> list[InstalledModel]:
    return [_build(db, r) for r in db.query("SELECT * FROM installed_models ORDER BY model_id")]


def _build(db: sqlite_utils.Database, r: dict[str, Any]) -> InstalledModel:
    files = tuple(
        InstalledFile(f["name"], f["sha256"], f["size"], Path(f["path"]), f["inode"], f["mtime_ns"], f["boot_id"])
        for f in db.query("SELECT * FROM installed_files WHERE model_id = ? ORDER BY name", [r["model_id"]])
    )
    return InstalledModel(
        r["model_id"], r["name"], r["publisher"], r["catalog_id"], r["catalog_version"], r["source"],
        r["signer"], json.loads(r["signer_spec"]), Path(r["signature_path"]), json.loads(r["entry_json"]),
        r["state"], r["state_reason"], r["installed_at"], r["verified_at"], files,
    )


def set_state(db: sqlite_utils.Database, model_id: str, state: str, reason: str | None,
              refresh_files: list[InstalledFile] | None = None) -> None:
    with db.conn:
        db.conn.execute("BEGIN IMMEDIATE")
        if state == "verified":
            db.conn.execute("UPDATE installed_models SET state=?, state_reason=?, verified_at=? WHERE model_id=?",
                            [state, reason, audit.now(), model_id])
        else:
            db.conn.execute("UPDATE installed_models SET state=?, state_reason=? WHERE model_id=?",
                            [state, reason, model_id])
        for f in refresh_files or []:
            db.conn.execute("UPDATE installed_files SET inode=?, mtime_ns=?, verified_at=?, boot_id=?"
                            " WHERE model_id=? AND name=?",
                            [f.inode, f.mtime_ns, audit.now(), f.boot_id, model_id, f.name])


@dataclass(frozen=True)
class CheckResult:
    model_id: str
    rehashed: list[str]
    fast_path: list[str]
    signer: str


def check(db: sqlite_utils.Database, model_id: str, full: bool = False, purpose: str = "check") -> CheckResult:
    """Re-verifies an installed model; raises `Refused` (and records it) if anything changed."""
    from vetted.trust import identity, oms

    model = get(db, model_id)
    rehashed, fast, refreshed = [], [], []
    try:
        spec = identity.from_json(model.signer_spec)
        # as of the first verification: a certificate that expired since keeps the model usable
        signed = oms.signed_manifest(_read(model.signature_path), spec, _first_verified(model))
        for f in model.files:
            try:
                st = os.stat(f.path)
            except FileNotFoundError:
                raise Refused(f"installed file {f.name} of {model_id}", f"{f.path} is missing",
                              f"run `vetted remove {model_id}` then `vetted pull {model_id}`") from None
            signed_digest = _signed_digest(signed, f.name, len(model.files))
            if signed_digest != f.sha256:
                raise Refused(f"signature of {model_id}", f"no longer covers {f.name} as installed")
            unchanged = st.st_size == f.size and st.st_mtime_ns == f.mtime_ns and st.st_ino == f.inode
            same_boot = f.boot_id == boot_id()  # else the bytes may not have reached the disk
            if unchanged and same_boot and not full:
                fast.append(f.name)
                continue
            if st.st_size != f.size:
                raise Refused(f"installed file {f.name} of {model_id}",
                              f"size is {st.st_size} bytes, {f.size} were verified at install",
                              f"the file was changed after install; run `vetted remove {model_id}` and pull it again")
            actual = sha256_file(f.path)
            rehashed.append(f.name)
            if actual != f.sha256:
                raise Refused(f"installed file {f.name} of {model_id}",
                              f"sha256 is now {actual}, {f.sha256} was verified at install",
                              f"the file was changed after install; run `vetted remove {model_id}` and pull it again")
            refreshed.append(InstalledFile(f.name, f.sha256, f.size, f.path, st.st_ino, st.st_mtime_ns, boot_id()))
    except Refused as exc:
        set_state(db, model_id, "refused", exc.line())
        audit.record(db, f"model.{purpose}", model_id, "refused", exc.line(), model.signer)
        raise
    set_state(db, model_id, "verified", None, refreshed)
    how = (f"re-hashed {', '.join(rehashed)}" if rehashed else "") + \
          ("; " if rehashed and fast else "") + (f"unchanged since verification: {', '.join(fast)}" if fast else "")
    audit.record(db, f"model.{purpose}", model_id, "accepted", how, signed.signer)
    return CheckResult(model_id, rehashed, fast, signed.signer)


def _first_verified(model: InstalledModel) -> datetime | None:
    try:
        return datetime.fromisoformat(model.installed_at)
    except ValueError:
        return None


def _signed_digest(signed, name: str, n_files: int) -> str | None:
    """A single-file OMS signature names its one resource "."."""
    digest = signed.file_digest(name)
    if digest is None and n_files == 1 and set(signed.digests) == {"."}:
        digest = signed.digests["."] if signed.method == "files" and signed.hash_type == "sha256" else None
    return digest


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Refused("stored signature bundle", f"{path}: {exc.strerror}", "pull the model again") from None


def remove(db: sqlite_utils.Database, model_id: str) -> list[Path]:
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
    audit.record(db, "model.remove", model_id, "info", "removed by user")
    return orphans


def purge(db: sqlite_utils.Database, model_id: str) -> list[Path]:
    """Removes a model and deletes the store files nothing else uses; returns them."""
    gone = remove(db, model_id)
    for path in gone:
        try:
            path.chmod(0o644)  # store files are read-only
            path.unlink()
        except FileNotFoundError:
            pass
    return gone
