"""Importing an air-gapped bundle: the decisions around `install/bundle.py`.

Which signers the bundle's catalog may carry (the person's, the pinned ones, the
organisation's; the policy may forbid imports or keep them to its catalog signers),
rollback and equivocation (the same floors a fetched catalog meets), freeze (an expired
catalog installs nothing new), the policy's per-model rules (blocked digests, safety
gates), and the memory fit; then every model is staged and verified before any is
installed. Called only through `Vetted.import_bundle`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vetted.core.policy_gate import BUNDLE_PREFIX
from vetted.errors import CatalogError, InputError
from vetted.store import audit
from vetted.trust.identity import TrustSpec

if TYPE_CHECKING:
    from vetted.core.app import Vetted
    from vetted.install.bundle import ImportResult

Progress = Callable[[str, int, int], None]


def import_bundle(app: Vetted, path: Path, signer: TrustSpec | None = None, progress: Progress | None = None,
                  cancel: threading.Event | None = None, log: Callable[[str], None] | None = None) -> ImportResult:
    from vetted.catalog.signed import accept
    from vetted.install.bundle import BundleRefused, check_contents, import_models, open_bundle

    db = app.db
    audit.require_intact(db)
    path = Path(path).absolute()
    if not path.exists():
        raise InputError(f"bundle {path}", "does not exist")
    if not path.is_file():
        raise InputError(f"bundle {path}", "is not a regular file (a pipe, device or folder)",
                         "point at the bundle file itself")
    gate = app.gate()
    uses = app.catalog_uses()
    pinned = [s for use in uses for s in use.signers]
    signers = gate.import_signers(db, str(path), signer, pinned)
    # one publisher per pinned catalog (its signers together: a key rotation); a signer the
    # person names stands alone. Rollback floors never cross from one publisher to another.
    groups = [list(use.signers) for use in uses] + ([[signer]] if signer is not None else [])
    if not signers:
        raise InputError(f"bundle {path}", "no signer to check its catalog against",
                         "name the catalog's signer (a public key, a certificate chain and identity, or a "
                         "Sigstore identity), or pin that catalog's signer first")
    try:
        bundle = open_bundle(path)
    except BundleRefused as exc:
        audit.record(db, "bundle.import", str(path), "refused", exc.line())
        raise
    try:
        location = BUNDLE_PREFIX + str(path)
        cat = accept(bundle.catalog_raw, bundle.catalog_sig, signers, db, location, str(path.parent), groups=groups)
        if cat.expired:
            frozen = CatalogError(f"catalog {cat.catalog.id} v{cat.catalog.version} in bundle {path}",
                               f"expired at {cat.catalog.expires.isoformat()}",
                               "new installs from it are frozen until its publisher issues a fresh bundle; "
                               "models installed before stay usable")
            audit.record(db, "bundle.import", str(path), "refused", frozen.line(), cat.signer)
            raise frozen
        try:
            entries = check_contents(bundle, cat)
        except BundleRefused as exc:
            audit.record(db, "bundle.import", str(path), "refused", exc.line(), cat.signer)
            raise
        for entry in entries:
            app._require_fit(entry)
            gate.check_pull(db, cat, entry)
        gate.record_import(db, str(path))
        result = import_models(app.loc, db, bundle, cat, entries, progress, cancel, log)
    finally:
        bundle.close()
    from vetted.core import events as ev

    for m in result.installed:
        app.events.emit(ev.MODEL_INSTALLED, model_id=m.model_id)
    return result
