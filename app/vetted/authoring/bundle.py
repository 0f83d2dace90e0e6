"""`vetted-admin bundle`: one file that carries a signed catalog and some of its models to
a site with no network (the format is described in `install/bundle.py`, which reads it).

The writer checks what it packs — each model file's size and sha256 against the signed
catalog, and its publisher signature against the catalog's signer for it — so a bundle
that would be refused at the far end is never made. It writes a temporary file and
renames it into place, so an interrupted run leaves no half bundle under the final name.
Members are written in a fixed order with fixed owners, modes and times (the catalog's
issue time): the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vetted.catalog.schema import Catalog, ModelEntry, parse
from vetted.errors import InputError, Refused
from vetted.install.bundle import CATALOG, CATALOG_SIG, FORMAT, INDEX, member_name
from vetted.trust import oms
from vetted.trust.coverage import signed_file_digest


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    models: list[str]


class _Hashing(io.RawIOBase):
    """A file read through, hashed as tarfile copies it."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.hasher = hashlib.sha256()
        self.n = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.hasher.update(data)
        self.n += len(data)
        return data


def write_bundle(catalog: Path, model_ids: list[str], out: Path, folders: list[Path] | None = None,
                 log: Callable[[str], None] | None = None) -> Written:
    say = log or (lambda _m: None)
    raw = _read(catalog)
    sig = _read(catalog.with_name(catalog.name + ".sig"))
    cat = parse(raw, str(catalog))
    if not model_ids:
        raise InputError("bundle", "name at least one model (--models ID ...)")
    entries = [cat.model(m) for m in dict.fromkeys(model_ids)]
    search = [*(folders or [])]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    mtime = int(cat.issued.timestamp())
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            index = {"format": FORMAT, "catalog_sha256": hashlib.sha256(raw).hexdigest(),
                     "catalog": f"{cat.id} v{cat.version}", "models": [e.id for e in entries]}
            import json

            _add_bytes(tar, INDEX, json.dumps(index, indent=2).encode(), mtime)
            _add_bytes(tar, CATALOG, raw, mtime)
            _add_bytes(tar, CATALOG_SIG, sig, mtime)
            for entry in entries:
                say(f"{entry.id}: packing {len(entry.files)} file(s)")
                _add_model(tar, cat, entry, catalog.parent, search, mtime)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Written(out, out.stat().st_size, [e.id for e in entries])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"reading {path}", exc.strerror or str(exc)) from None


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    tar.addfile(_info(name, len(data), mtime), io.BytesIO(data))


def _find(entry: ModelEntry, name: str, catalog_dir: Path, search: list[Path]) -> Path:
    folders = [*search, *[(catalog_dir / f) for f in entry.sources.local]]
    for folder in folders:
        for candidate in (folder / entry.id / name, folder / name):
            if candidate.is_file():
                return candidate
    raise InputError(f"model {entry.id}", f"{name} is not in any of: {', '.join(str(f) for f in folders) or '(none)'}",
                     "give the folder holding the model files with --files DIR")


def _add_model(tar: tarfile.TarFile, cat: Catalog, entry: ModelEntry, catalog_dir: Path, search: list[Path],
               mtime: int) -> None:
    sig_path = _find(entry, entry.signature.bundle, catalog_dir, search)
    sig = _read(sig_path)
    try:
        signed = oms.signed_manifest(sig, entry.signature.signer.spec())
    except Refused as exc:
        raise Refused(f"publisher signature of {entry.id} ({sig_path})", exc.found,
                      "the signature would be refused at import; fix the catalog or the signature") from None
    for f in entry.files:
        if signed_file_digest(signed, f.name, len(entry.files)) != f.sha256:
            raise Refused(f"publisher signature of {entry.id}", f"does not sign {f.name} as sha256 {f.sha256}",
                          "the signature would be refused at import")
    _add_bytes(tar, member_name(entry.id, entry.signature.bundle), sig, mtime)
    for f in entry.files:
        path = _find(entry, f.name, catalog_dir, search)
        size = path.stat().st_size
        if size != f.size:
            raise Refused(f"{path}", f"{size} bytes, the signed catalog declares {f.size}",
                          "this is not the file the catalog signs")
        with open(path, "rb") as src:
            reader = _Hashing(src)
            tar.addfile(_info(member_name(entry.id, f.name), f.size, mtime), reader)  # type: ignore[arg-type]
        if reader.hasher.hexdigest() != f.sha256 or reader.n != f.size:
            raise Refused(f"{path}", f"sha256 {reader.hasher.hexdigest()}, the signed catalog says {f.sha256}",
                          "this is not the file the catalog signs")
