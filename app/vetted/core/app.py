"""`Vetted`: the one application object every front end calls.

The CLI, the GUI and the local API server call only this, and it applies the
organisation's policy. It owns the locations, one database connection per thread, the settings, the
catalogs with their trusted roots, and exposes each operation as a plain method with
callbacks (progress, tokens, log lines) and typed results. Every rule — the memory fit
before a download, the trusted root that goes with each catalog, the audit entry of each
decision — is enforced here once, so the front ends cannot drift apart. It never prints,
never names a command or a button, and never imports Qt (DESIGN.md invariant 10).
Its chat and API operations live in two mixins (`chat_ops.py`, `api_ops.py`) so this file
stays readable; `host.py` lists what they may use of the object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from vetted.catalog.schema import ModelEntry
from vetted.catalog.signed import LoadedCatalog
from vetted.core import events as ev
from vetted.core.api_ops import ApiOps
from vetted.core.chat_ops import ChatOps
from vetted.core.policy_gate import CatalogUse, PolicyGate
from vetted.core.results import CatalogState, ModelRow, PinResult, Removed, SetupState
from vetted.core.settings import CatalogSubscription, Settings, SignerConflict
from vetted.errors import Fix, Refused, Remedy, VettedError
from vetted.net.limits import TransferLimits
from vetted.paths import Locations, locations, normalise_location
from vetted.policy.effective import EffectivePolicy
from vetted.store import audit, installed

Progress = Callable[[str, int, int], None]  # (file name, bytes so far, total)


class MemoryRefused(Refused):
    """A model that cannot fit in this machine's memory is not downloaded."""


class Vetted(ChatOps, ApiOps):
    def __init__(self, loc: Locations | None = None, *, engine_factory: Callable[[], Any] | None = None,
                 available_memory: Callable[[], int] | None = None) -> None:
        """`engine_factory` makes the engine chats and spot-checks run on (the real llama.cpp
        worker by default; a fake in fast GUI tests). `available_memory` overrides how much
        memory counts as free (tests)."""
        self.loc = loc or locations()
        self.events = ev.Events()
        self.engine_factory = engine_factory
        self._available = available_memory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite_utils.Database] = []
        self._policy: EffectivePolicy | None = None

    # -- resources ----------------------------------------------------------------------

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (SQLite connections belong to the thread that opened them)."""
        db = getattr(self._local, "db", None)
        if db is None:
            from vetted.store.db import open_db

            self.loc.ensure()
            db = open_db(self.loc.database)
            self._local.db = db
            # the organisation may collect a copy of every audit entry (policy audit.copy_to)
            audit.set_copies(str(self.loc.database), [str(r.value) for r in self.policy().audit_copies])
            with self._lock:
                self._open.append(db)
        return db

    def db_if_available(self) -> sqlite_utils.Database | None:
        """For operations that must also work without a usable data folder (`verify`)."""
        import sqlite3

        try:
            return self.db
        except (OSError, sqlite3.Error, VettedError):
            return None

    def close_thread(self) -> None:
        """Closes this thread's connection (background threads call it when they finish)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            with self._lock:
                if db in self._open:
                    self._open.remove(db)
            db.conn.close()

    def close(self) -> None:
        self.close_thread()

    def policy(self) -> EffectivePolicy:
        """The organisation's policy in force (read once per application object; never
        raises: a broken policy refuses every decision it governs)."""
        if self._policy is None:
            from vetted.policy.effective import load

            self._policy = load()
        return self._policy

    def gate(self) -> PolicyGate:
        return PolicyGate(self.policy())

    def settings(self) -> Settings:
        """The person's settings, with whatever the organisation locks put in place."""
        s = Settings.load(self.loc)
        s.transfers = self.gate().lock_transfers(s.transfers)
        return s

    def transfer_limits(self, **overrides: float | int | None) -> TransferLimits:
        """The settings' limits with a front end's overrides on top (each must be positive)."""
        from dataclasses import replace

        from vetted.errors import InputError
        from vetted.net.limits import MAX_CONNECTIONS

        limits = self.settings().transfers
        for name, value in overrides.items():
            if value is None:
                continue
            if name == "connections" and not 1 <= value <= MAX_CONNECTIONS:
                raise InputError("connections", f"must be from 1 to {MAX_CONNECTIONS}, not {value}")
            if value <= 0:
                raise InputError(name.replace("_", " "), f"must be positive, not {value}")
            self.gate().check_override(self.db, name, value)  # nothing a person does loosens a lock
            changes: dict[str, Any] = {name: value}
            limits = replace(limits, **changes)
        return limits

    def available_memory(self) -> int:
        from vetted.runtime.memory import available_memory

        return self._available() if self._available else available_memory()

    # -- catalogs -----------------------------------------------------------------------

    def catalog_uses(self) -> list[CatalogUse]:
        """The catalogs the app may load: the organisation's (its signers win), then the
        person's own pins where the policy allows them."""
        return self.gate().catalogs(self.settings().catalogs)

    def catalog(self, location: str | None = None, limits: TransferLimits | None = None) -> LoadedCatalog:
        """Loads (and verifies, and audits) a catalog; the first one in use by default."""
        settings = self.settings()
        use = self._find_use(location, settings)
        return self._load_use(use, limits or settings.transfers)

    def _find_use(self, location: str | None, settings: Settings) -> CatalogUse:
        uses = self.gate().catalogs(settings.catalogs)
        if location is None:
            if uses:
                return uses[0]
            settings.find(None)  # raises the "none configured" error with its remedy
        else:
            norm = normalise_location(location)
            for u in uses:
                if normalise_location(u.location) == norm:
                    return u
            if any(normalise_location(s.location) == norm for s in settings.catalogs):
                gate = self.gate()
                gate.usable(self.db, "catalog", location)
                gate.check_pin(self.db, location)  # says which rule keeps the person's pin out
            settings.find(location)  # "no signer is pinned for it", with its remedy
        raise AssertionError("unreachable")

    def _load_use(self, use: CatalogUse, limits: TransferLimits) -> LoadedCatalog:
        from vetted.catalog.signed import load

        gate = self.gate()
        gate.usable(self.db, "catalog", use.location)
        gate.check_fetch(self.db, use)
        return load(use.location, use.signers, self.db, limits, trusted_root=use.trusted_root)

    def catalogs(self) -> list[CatalogState]:
        """Every catalog in use, verified now; a refused one carries its reason. Each claim's
        signature is checked once here (off the UI thread), so labels read later are cached."""
        settings = self.settings()
        out = []
        for use in self.gate().catalogs(settings.catalogs):
            try:
                out.append(CatalogState(use.location, self._load_use(use, settings.transfers), None))
            except VettedError as exc:
                out.append(CatalogState(use.location, None, exc.line()))
        from vetted.cards import labels

        for s in out:
            if s.loaded is None:
                continue
            for e in s.loaded.catalog.models:
                try:
                    labels.claims_for(e, s.loaded.trusted_root)
                except Exception:  # shown as unverified later; never fatal for the list
                    pass
        return out

    def pin_catalog(self, location: str, signer: Any, trusted_root: Path | None = None,
                    replace_signer: bool = False) -> PinResult:
        """Pins the signer a catalog must carry; another signer for a pinned location needs
        `replace_signer` (the person's explicit confirmation), and both are audited."""
        from vetted.trust.identity import spec_key

        location = normalise_location(location)
        self.gate().check_pin(self.db, location)
        settings = Settings.load(self.loc)
        sub = CatalogSubscription(location, signer, str(trusted_root) if trusted_root else None)
        try:
            old = settings.subscribe(sub, replace_signer=replace_signer)
        except SignerConflict as exc:
            audit.record(self.db, "catalog.pin", location, "refused", exc.line(), signer.describe())
            raise
        settings.save(self.loc)
        from vetted.catalog.signed import unbind

        unbind(self.db, location)  # the person chose this location now: whichever catalog it serves
        replaced = None
        if old is not None and spec_key(old.signer) != spec_key(signer):
            replaced = old.signer.describe()
            audit.record(self.db, "catalog.repin", location, "accepted",
                         f"signer replaced on the user's confirmation: was {replaced}", signer.describe())
        else:
            audit.record(self.db, "catalog.pin", location, "info", "signer pinned by user", signer.describe())
        self.events.emit(ev.CATALOGS_CHANGED)
        return PinResult(location, signer.describe(), replaced)

    def unpin_catalog(self, location: str) -> str:
        """Stops using a catalog the person pinned (installed models stay; the pin can be
        added again). One the organisation's policy provides is the administrator's to
        remove. Returns the signer it required; audited."""
        location = normalise_location(location)
        managed = self.policy().allowed_catalog(location)
        if managed is not None:
            exc = self.policy().refuse("catalogs.allowed", managed.source, f"catalog {location}",
                                       "is provided by your organisation's policy")
            audit.record(self.db, "catalog.unpin", location, "refused", exc.line())
            raise exc
        settings = Settings.load(self.loc)
        old = settings.unsubscribe(location)
        if old is None:
            settings.find(location)  # "no signer is pinned for it"
            raise AssertionError("unreachable")
        settings.save(self.loc)
        audit.record(self.db, "catalog.unpin", location, "info", "catalog removed by user", old.signer.describe())
        self.events.emit(ev.CATALOGS_CHANGED)
        return old.signer.describe()

    def setup_state(self) -> SetupState:
        """For a first run (an installed app with no catalog and no model yet): whether to
        welcome the person, and which of the first steps the organisation's policy allows."""
        p = self.policy()
        uses = self.catalog_uses()
        add_blocked = import_blocked = None
        if p.broken is not None:
            add_blocked = import_blocked = p.broken.line()
        else:
            if not p.may_use_users_catalog() and p.users_may_add is not None:
                add_blocked = (f"your organisation does not allow adding catalogs (rule catalogs.users_may_add, "
                               f"from {p.users_may_add.source})")
            if p.imports_allowed is not None:
                import_blocked = (f"your organisation does not allow importing bundles (rule imports.allowed, "
                                  f"from {p.imports_allowed.source})")
        return SetupState(not uses and not installed.all_models(self.db),
                          [u.location for u in uses if u.managed_by], add_blocked, import_blocked)

    @staticmethod
    def signer(data: dict[str, Any]) -> Any:
        """A signer from a front end's form: {"kind": "key", "public_key_pem"}, {"kind":
        "certificate", "chain_pem", "identity"} or {"kind": "sigstore", "identity", "issuer"};
        malformed input is an `InputError` naming the field."""
        from vetted.trust.identity import from_json

        spec = from_json(data)
        spec.describe()  # a key or chain that cannot be read fails here, not at first use
        return spec

    def model_rows(self, states: list[CatalogState]) -> list[ModelRow]:
        """Catalog entries with install state, memory fit and what the organisation's policy
        would refuse (unaudited: it is what a list shows), as the GUI's lists show them."""
        from vetted.cards import spotcheck
        from vetted.runtime.memory import entry_estimate, fits

        inst = {m.model_id: m for m in installed.all_models(self.db)}
        # the local spot-checks on file (only installed files can have one): one query, not one per row
        checked = {r["sha256"] for r in
                   self.db.query("SELECT DISTINCT sha256 FROM spotchecks WHERE status = 'complete'")}
        available = self.available_memory()
        gate = self.gate()
        rows = []
        for s in states:
            if not s.loaded:
                continue
            for e in s.loaded.catalog.models:
                need = entry_estimate(e.size, e.runtime.ram_bytes)
                m = inst.get(e.id)
                sha = e.files[0].sha256
                rows.append(ModelRow(e, s.loaded, m.state if m else None, need, fits(need, available).verdict,
                                     gate.pull_blockers(e, s.loaded),
                                     spotcheck.latest(self.db, sha) if sha in checked else None,
                                     m.state_reason if m else None))
        return rows

    def entry(self, model_id: str, location: str | None = None) -> tuple[ModelEntry, Path | None]:
        """A model's catalog entry and its catalog's trusted root; for an installed model
        whose catalog cannot be loaded now, the entry kept at install (no private root)."""
        try:
            cat = self.catalog(location)
            return cat.catalog.model(model_id), cat.trusted_root
        except VettedError as first:
            try:
                model = installed.get(self.db, model_id)
                return ModelEntry.model_validate(model.entry), self._root_for_installed(model)
            except VettedError:
                raise first from None

    @staticmethod
    def _root_for_installed(model: installed.InstalledModel) -> Path | None:
        """The private Sigstore root the model's catalog carried: recorded with its keyless
        publisher's spec at install (a catalog root applies to the signers that catalog names)."""
        root = model.signer_spec.get("trusted_root") if model.signer_spec.get("kind") == "sigstore" else None
        return Path(root) if root else None

    # -- models -------------------------------------------------------------------------

    def models(self) -> list[installed.InstalledModel]:
        return installed.all_models(self.db)

    def model(self, model_id: str) -> installed.InstalledModel:
        return installed.get(self.db, model_id)

    def pull(self, model_id: str, location: str | None = None, progress: Progress | None = None,
             cancel: threading.Event | None = None, log: Callable[[str], None] | None = None,
             limits: TransferLimits | None = None) -> Any:
        """Downloads, verifies and installs a model (install/pull.py) — if it fits in memory."""
        from vetted.install.pull import pull

        limits = limits or self.settings().transfers
        cat = self.catalog(location, limits)
        entry = cat.catalog.model(model_id)
        self._require_fit(entry)
        gate = self.gate()
        gate.check_pull(self.db, cat, entry)
        local_only, hf_endpoint = gate.pull_network(cat)
        result = pull(self.loc, self.db, cat, model_id, progress=progress, cancel=cancel, limits=limits, log=log,
                      local_only=local_only, hf_endpoint=hf_endpoint)
        if not result.already:
            self.events.emit(ev.MODEL_INSTALLED, model_id=model_id)
        return result

    def import_bundle(self, path: Path, signer: Any = None, progress: Progress | None = None,
                      cancel: threading.Event | None = None, log: Callable[[str], None] | None = None) -> Any:
        """Installs every model an air-gapped bundle carries, or none (core/imports.py)."""
        from vetted.core.imports import import_bundle

        return import_bundle(self, path, signer, progress, cancel, log)

    def _require_fit(self, entry: ModelEntry) -> None:
        from vetted.runtime.memory import MiB, entry_estimate, fits

        need = entry_estimate(entry.size, entry.runtime.ram_bytes)
        fit = fits(need, self.available_memory())
        if fit.verdict == "too_big":
            exc = MemoryRefused(f"memory for {entry.id}", fit.message() + f" (estimate {need / MiB:.0f} MiB)",
                                "it would not run on this machine; choose a smaller model",
                                Remedy(Fix.SMALLER_MODEL, entry.id))
            audit.record(self.db, "model.pull", entry.id, "refused", exc.line())
            raise exc

    def discard_partial(self, model_id: str, location: str | None = None) -> int:
        """Cancel for good: deletes a model's partial downloads from quarantine (Pause keeps them)."""
        from vetted.store import layout
        from vetted.store.quarantine import ranges_path

        entry = self.catalog(location).catalog.model(model_id)
        removed = 0
        for f in entry.files:
            part = self.loc.quarantine / f"{f.sha256}.part"
            if part.is_symlink() or part.exists():
                layout.remove_entry(part)
                removed += 1
            side = ranges_path(part)  # a ranged download's list of written parts goes with it
            if side.is_symlink() or side.exists():
                layout.remove_entry(side)
        return removed

    def check(self, model_id: str, full: bool = False) -> installed.CheckResult:
        try:
            result = installed.check(self.db, model_id, full=full)
        except Refused:
            self.events.emit(ev.MODEL_CHECKED, model_id=model_id, state="refused")
            raise
        self.events.emit(ev.MODEL_CHECKED, model_id=model_id, state="verified")
        return result

    def remove(self, model_id: str) -> Removed:
        gone = installed.purge(self.db, model_id)
        self.events.emit(ev.MODEL_REMOVED, model_id=model_id)
        return Removed(model_id, gone)

    # -- what is known about a model ----------------------------------------------------

    def card(self, model_id: str, location: str | None = None) -> dict[str, Any]:
        from vetted.cards.view import card

        entry, root = self.entry(model_id, location)
        return card(entry, self.db, root)

    def card_for(self, entry: ModelEntry, trusted_root: Path | None) -> dict[str, Any]:
        """For a front end that already holds the entry (a catalog row)."""
        from vetted.cards.view import card

        return card(entry, self.db, trusted_root)

    def compare(self, model_ids: list[str], location: str | None = None) -> list[dict[str, Any]]:
        """Models side by side; each model's claims checked against *its own* catalog's root."""
        found = [self.entry(mid, location) for mid in model_ids]
        return self.compare_entries([e for e, _ in found], [r for _, r in found])

    def compare_entries(self, entries: list[ModelEntry], roots: list[Path | None]) -> list[dict[str, Any]]:
        from vetted.cards.compare import compare_rows

        return compare_rows(entries, self.db, roots=roots)

    def spotcheck(self, model_id: str, limit: int | None = None,
                  progress: Callable[[int, int, str], None] | None = None,
                  cancel: threading.Event | None = None, session: Any = None, suite: Any = "quick") -> Any:
        """Runs one suite (`cards.suites`; the quick one unless named) on the installed,
        re-checked file; `session.stop()` (or `cancel`) ends it early, and such a run is
        never stored as complete."""
        from vetted.cards import spotcheck

        own = session is None
        session = session or self.chat_session(purpose="spotcheck")
        was = session.purpose
        session.purpose = "spotcheck"  # allowed before first use, which a policy may require
        try:
            result = spotcheck.run(self.db, model_id, suite=suite, session=session, progress=progress,
                                   cancel=cancel, limit=limit)
        finally:
            session.purpose = was
            if own:
                session.close()
        self.events.emit(ev.SPOTCHECK_DONE, model_id=model_id, status=result.status)
        return result

    def spotcheck_suites(self) -> list[Any]:
        """The suites a spot-check can run (quick first), with their sizes and sources."""
        from vetted.cards import suites

        return suites.describe()

    # -- audit --------------------------------------------------------------------------

    def audit_entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        return audit.entries(self.db, limit)

    def audit_status(self) -> Any:
        return audit.verify_chain(self.db)

    def audit_export(self, limit: int | None = None) -> dict[str, Any]:
        return audit.export_document(self.db, limit=limit)

    def audit_acknowledge(self, reason: str | None = None) -> Any:
        return audit.acknowledge(self.db, reason)

    def audit_check_export(self, document: Any, name: str = "the export") -> str:
        return audit.check_export(self.db, document, name)

    # -- signatures, outside the store ---------------------------------------------------

    def verify(self, path: Path, signature: Path, spec: Any, ignore_paths: list[str] | None = None) -> Any:
        """Is `path` exactly what this signer signed? Audited when a data folder is usable;
        refused while an existing audit log's chain is broken."""
        from vetted.trust.verify import verify_path

        db = self.db_if_available()
        if db is not None:
            audit.require_intact(db)
        try:
            verdict = verify_path(path, signature, spec, ignore_paths)
        except Refused as exc:
            self._audit_best_effort(db, "verify", str(path), "refused", exc.line(), spec.describe())
            raise
        self._audit_best_effort(db, "verify", str(path), "accepted", verdict.kind, spec.describe())
        return verdict

    @staticmethod
    def _audit_best_effort(db: sqlite_utils.Database | None, *args: Any) -> None:
        """`verify` is also a scripting tool: a read-only data folder must not break it."""
        if db is None:
            return
        try:
            audit.record(db, *args)
        except Exception:
            pass

    # -- for the desktop app (added with the GUI's move onto this object) -----------------

    def engine_defaults(self) -> Any:
        """The engine settings a chat starts from on this machine (`EngineSettings`: threads
        resolved to the physical cores, the default context), for a front end to show."""
        from vetted.runtime.defaults import EngineSettings

        return EngineSettings().resolved()

    def audit_export_rows(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """An export of chosen audit rows (a front end's filtered view) with the chain's
        head, so `--verify-against` can check the log against it later."""
        return audit.export_document(self.db, rows=rows)
