"""What the GUI shows, computed by the core (no Qt): catalogs with their load state,
model rows with trust badge, memory fit and install state, downloads as callables."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import sqlite_utils

from vetted.cards import labels
from vetted.catalog.schema import ModelEntry
from vetted.catalog.signed import LoadedCatalog, load
from vetted.errors import VettedError
from vetted.paths import Locations
from vetted.runtime.memory import MiB, fits
from vetted.settings import Settings
from vetted.store import installed


@dataclass
class CatalogState:
    location: str
    loaded: LoadedCatalog | None
    error: str | None

    @property
    def label(self) -> str:
        if self.loaded:
            c = self.loaded.catalog
            return f"{c.name} v{c.version}" + (" (expired)" if self.loaded.expired else "")
        return self.location


def open_catalogs(loc: Locations, db: sqlite_utils.Database) -> list[CatalogState]:
    """For a background thread: also checks every claim's signature once, so the labels
    Discover shows on the UI thread come from `cards.labels`' cache."""
    out = []
    settings = Settings.load(loc)
    for sub in settings.catalogs:
        try:
            out.append(CatalogState(sub.location, load(sub.location, sub.signer, db, settings.transfers,
                                                       trusted_root=sub.root_path), None))
        except VettedError as exc:
            out.append(CatalogState(sub.location, None, exc.line()))
    for s in out:
        for e in s.loaded.catalog.models if s.loaded else []:
            try:
                labels.claims_for(e, s.loaded.trusted_root)
            except Exception:  # a malformed claim is labelled when shown; it must not stop the load
                pass
    return out


def entry_memory_estimate(entry: ModelEntry) -> int:
    """Before download there is no file to read: the catalog's figure, else weights + a margin."""
    if entry.runtime.ram_bytes:
        return entry.runtime.ram_bytes
    return int(entry.size * 1.15) + 120 * MiB


@dataclass
class ModelRow:
    entry: ModelEntry
    catalog: LoadedCatalog
    installed_state: str | None  # None, "verified", "refused"
    memory_bytes: int
    fit: str  # ok / tight / too_big

    @property
    def signer(self) -> str:
        try:
            return self.entry.signature.signer.spec(self.catalog.trusted_root).describe()
        except Exception:
            return "unknown signer"

    @property
    def trust_badge(self) -> str:
        if self.installed_state == "verified":
            return f"Verified: {self.signer}"
        if self.installed_state == "refused":
            return "Refused: file changed"
        return f"Signed by {self.signer}"

    @cached_property
    def claims(self) -> dict[str, list[labels.Claim]]:
        """Labelled by the same function as the model page, Compare and `vetted card`."""
        return labels.claims_for(self.entry, self.catalog.trusted_root)

    @property
    def safety_summary(self) -> str:
        return labels.safety_summary(self.claims["safety_card"])

    def search_text(self) -> str:
        e = self.entry
        return " ".join([e.id, e.name, e.publisher, e.description, e.license, e.family, e.quantization]).lower()


def model_rows(states: list[CatalogState], db: sqlite_utils.Database, available: int | None = None) -> list[ModelRow]:
    inst = {m.model_id: m.state for m in installed.all_models(db)}
    rows = []
    for s in states:
        if not s.loaded:
            continue
        for e in s.loaded.catalog.models:
            mem = entry_memory_estimate(e)
            rows.append(ModelRow(e, s.loaded, inst.get(e.id), mem, fits(mem, available).verdict))
    return rows


def pull_model(loc: Locations, location: str, model_id: str, progress: Callable[[str, int, int], None],
               cancel: threading.Event) -> Any:
    """For a background thread: its own DB connection, the catalog re-verified, then pull."""
    from vetted.install.pull import pull
    from vetted.store.db import open_db

    db = open_db(loc.database)
    try:
        settings = Settings.load(loc)
        sub = settings.find(location)
        cat = load(sub.location, sub.signer, db, settings.transfers, trusted_root=sub.root_path)
        return pull(loc, db, cat, model_id, progress=progress, cancel=cancel, limits=settings.transfers)
    finally:
        db.conn.close()


def check_model(loc: Locations, model_id: str, full: bool = True) -> installed.CheckResult:
    from vetted.store.db import open_db

    db = open_db(loc.database)
    try:
        return installed.check(db, model_id, full=full)
    finally:
        db.conn.close()


def discard_partial(loc: Locations, location: str, model_id: str) -> int:
    """Cancel for good: deletes a model's partial downloads from quarantine (Pause keeps them)."""
    from vetted.store.db import open_db

    db = open_db(loc.database)
    try:
        settings = Settings.load(loc)
        sub = settings.find(location)
        entry = load(sub.location, sub.signer, db, settings.transfers,
                     trusted_root=sub.root_path).catalog.model(model_id)
    finally:
        db.conn.close()
    removed = 0
    for f in entry.files:
        part = loc.quarantine / f"{f.sha256}.part"
        if part.exists():
            part.unlink()
            removed += 1
    return removed
