"""Loading a catalog: fetch (size-capped, timed out), verify its detached signature
against the pinned signer, refuse rollbacks and equivocation, record the decision."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from vetted.catalog.schema import MAX_CATALOG_BYTES, Catalog, parse
from vetted.errors import CatalogError, Refused
from vetted.net import http
from vetted.net.watchdog import DEFAULT_LIMITS, TransferLimits
from vetted.store import audit
from vetted.trust import oms
from vetted.trust.identity import TrustSpec, spec_key


@dataclass(frozen=True)
class LoadedCatalog:
    catalog: Catalog
    location: str
    base: str  # folder or URL the catalog came from (local sources resolve against it)
    sha256: str
    signer: str
    trusted_root: Path | None = None  # a private Sigstore's root, for keyless signers in this catalog
    signer_key: str | None = None  # fingerprint of the pinned signer it verified against (trust.identity.spec_key)

    @property
    def expired(self) -> bool:
        return self.catalog.expired()


def signature_location(location: str) -> str:
    return location + ".sig"


def _base_of(location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location.rsplit("/", 1)[0]
    return str(Path(location.removeprefix("file://")).resolve().parent)


def verify_catalog_bytes(raw: bytes, bundle: bytes, signer: TrustSpec, origin: str) -> str:
    """The catalog's detached OMS signature must cover exactly these bytes; returns who signed."""
    try:
        signed = oms.signed_manifest(bundle, signer)
    except Refused as exc:
        raise CatalogError(f"signature of catalog {origin}", exc.found, exc.action or
                           "the catalog was not signed by the pinned signer; do not use it") from None
    digest = hashlib.sha256(raw).hexdigest()
    if list(signed.digests.values()) != [digest]:
        raise CatalogError(
            f"catalog {origin} against its signature by {signed.signer}",
            f"the signature covers sha256 {list(signed.digests.values())}, the catalog is {digest}",
            "the catalog was altered after signing",
        )
    return signed.signer


def load(location: str, signer: TrustSpec | list[TrustSpec], db: sqlite_utils.Database,
         limits: TransferLimits = DEFAULT_LIMITS, trusted_root: Path | None = None) -> LoadedCatalog:
    """Fetches, verifies and accepts a catalog. `signer` may be several pinned signers (an
    organisation rotating its key: old, both, new): the first whose signature verifies is
    the one recorded; only when none does is the catalog refused (and audited once)."""
    audit.require_intact(db)  # no trust decision while the audit log's chain is broken and unacknowledged
    signers = signer if isinstance(signer, list) else [signer]
    try:
        raw = http.read_small(location, MAX_CATALOG_BYTES, limits)
        bundle = _signature_bytes(location, limits)
    except CatalogError as exc:
        audit.record(db, "catalog.load", location, "refused", exc.line(), signer_description(signers))
        raise
    return accept(raw, bundle, signers, db, location, _base_of(location), trusted_root, bind=True)


def unbind(db: sqlite_utils.Database, location: str) -> None:
    """A person pinned the location again: whichever catalog it serves next is the one."""
    db.execute("DELETE FROM catalog_bindings WHERE location = ?", [location])


def _check_binding(db: sqlite_utils.Database, location: str, catalog: Catalog) -> None:
    row = db.execute("SELECT catalog_id FROM catalog_bindings WHERE location = ?", [location]).fetchone()
    if row is not None and row[0] != catalog.id:
        raise CatalogError(
            f"catalog at {location}",
            f"serves {catalog.id} v{catalog.version}, but it served catalog {row[0]} before (another catalog "
            "from the same signer put in its place)",
            "if its publisher really renamed the catalog, pin the location again; otherwise do not use it",
        )


def accept(raw: bytes, bundle: bytes, signers: list[TrustSpec], db: sqlite_utils.Database, location: str,
           base: str, trusted_root: Path | None = None,
           groups: list[list[TrustSpec]] | None = None, bind: bool = False) -> LoadedCatalog:
    """Verifies catalog bytes already in hand (fetched, or carried in an air-gapped bundle)
    against the pinned signers, refuses rollbacks and equivocation, records and audits.

    `groups`: which of the candidate signers are one publisher (the signers pinned together
    for one catalog: a key rotation). Rollback floors span the group(s) of the signer that
    verified, never other publishers' (by default all candidates are one group). `bind`: the
    location is a stable address, which serves one catalog id from then on."""
    audit.require_intact(db)
    if not signers:
        raise CatalogError(f"catalog {location}", "no signer to check it against")
    signer = signers[0]
    try:
        for i, candidate in enumerate(signers):
            try:
                who = verify_catalog_bytes(raw, bundle, candidate, location)
                signer = candidate
                break
            except CatalogError:
                if i == len(signers) - 1:
                    raise
        catalog = parse(raw, location)
        digest = hashlib.sha256(raw).hexdigest()
        key = spec_key(signer)
        together = [g for g in (groups or [signers]) if key in _keys(g)]
        _check_freshness(db, catalog, digest, location, key, who, [k for g in together for k in _keys(g)])
        if bind:
            _check_binding(db, location, catalog)
    except CatalogError as exc:
        audit.record(db, "catalog.load", location, "refused", exc.line(), signer_description(signers))
        raise
    _remember(db, catalog, digest, who, key)
    if bind:
        db.execute("INSERT OR IGNORE INTO catalog_bindings (location, catalog_id, bound_at) VALUES (?, ?, ?)",
                   [location, catalog.id, datetime.now(timezone.utc).isoformat(timespec="seconds")])
    audit.record(db, "catalog.load", f"{catalog.id} v{catalog.version}", "accepted",
                 "signature verified" + ("; EXPIRED: new downloads refused" if catalog.expired() else ""),
                 who, {"location": location, "sha256": digest})
    return LoadedCatalog(catalog, location, base, digest, who, trusted_root, key)


def _signature_bytes(location: str, limits: TransferLimits) -> bytes:
    """A catalog without a readable signature is a refused catalog (a trust decision, audited),
    whether the file is missing locally or the server does not have it."""
    from vetted.errors import DownloadError, InputError

    sig = signature_location(location)
    try:
        return http.read_small(sig, 1024 * 1024, limits)
    except (InputError, DownloadError) as exc:
        raise CatalogError(f"signature of catalog {location}", f"{sig} is missing or unreadable ({exc.found})",
                           "a catalog is only used with its detached signature; ask its publisher for "
                           "catalog.json.sig") from None


def signer_description(signer: TrustSpec | list[TrustSpec]) -> str:
    if isinstance(signer, list):
        return " or ".join(signer_description(s) for s in signer)
    try:
        return signer.describe()
    except Exception:
        return repr(signer)


def _keys(signers: list[TrustSpec]) -> list[str]:
    keys = []
    for s in signers:
        try:
            keys.append(spec_key(s))
        except Exception:  # an unreadable signer cannot have verified anything: no floor of its own
            continue
    return keys


def _check_freshness(db: sqlite_utils.Database, catalog: Catalog, digest: str, origin: str, key: str,
                     who: str, pinned: list[str] | None = None) -> None:
    """Rollback and equivocation, judged against what the signers pinned for this catalog
    published under this id before. Several signers pinned together are one publisher
    rotating its key (old, both, new): the old key's v1 replayed after the new key's v2 is a
    rollback. A signer pinned elsewhere, alone, reusing the id cannot lock this one out, and a
    catalog with no stable location is still protected."""
    keys = list(dict.fromkeys([key, *(pinned or [])]))
    marks = ",".join("?" * len(keys))
    rows = db.execute(f"SELECT version, sha256, signer_key FROM catalog_versions WHERE catalog_id = ? "
                      f"AND signer_key IN ({marks})", [catalog.id, *keys]).fetchall()
    if not rows:  # a floor recorded before migration 5 counts if the same signer set it
        old = db.execute("SELECT version, sha256 FROM catalogs_seen WHERE catalog_id = ? AND signer = ?",
                         [catalog.id, who]).fetchone()
        rows = [(old[0], old[1], key)] if old else []
    if not rows:
        return
    seen_version, _sha, seen_key = max(rows, key=lambda r: int(r[0]))
    whose = "this signer" if seen_key == key else "a signer pinned for this catalog"
    if catalog.version < seen_version:
        raise CatalogError(
            f"version of catalog {catalog.id} from {origin}",
            f"v{catalog.version} is older than v{seen_version} already seen from {whose} (rollback)",
            "someone may be replaying an old catalog; ask its publisher for the current one",
        )
    for version, seen_sha, seen_key in rows:
        if catalog.version == version and digest != seen_sha:
            whose = "this signer" if seen_key == key else "a signer pinned for this catalog"
            raise CatalogError(
                f"catalog {catalog.id} v{catalog.version} from {origin}",
                f"differs from the v{version} {whose} published before under the same version number",
                "a publisher must raise the version for every change; ask them",
            )


def _remember(db: sqlite_utils.Database, catalog: Catalog, digest: str, signer: str, key: str) -> None:
    db.execute(
        "INSERT INTO catalog_versions (signer_key, catalog_id, version, sha256, signer, issued, expires, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(signer_key, catalog_id) DO UPDATE SET"
        " version=excluded.version, sha256=excluded.sha256, signer=excluded.signer,"
        " issued=excluded.issued, expires=excluded.expires, seen_at=excluded.seen_at",
        [key, catalog.id, catalog.version, digest, signer, catalog.issued.isoformat(),
         catalog.expires.isoformat(), datetime.now(timezone.utc).isoformat(timespec="seconds")],
    )


def search(catalog: Catalog, text: str) -> list:
    terms = text.lower().split()
    out = []
    for m in catalog.models:
        hay = " ".join([m.id, m.name, m.publisher, m.description, m.license, m.family, m.quantization]).lower()
        if all(t in hay for t in terms):
            out.append(m)
    return out
