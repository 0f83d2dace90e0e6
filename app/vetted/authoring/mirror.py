"""A static mirror of a signed catalog: files any plain web server can serve.

    DIR/catalog.json, DIR/catalog.json.sig
    DIR/models/<model id>/<file>, DIR/models/<model id>/<signature bundle>

nginx, IIS, an S3 bucket or `python -m http.server` serve it as they are; no server-side
logic, no listing, no rewriting. The catalog is the input catalog with
`BASE_URL/models/<id>` first among each model's mirrors (and `models/<id>` as its local
folder, so the same folder also works copied to an air-gapped machine), a higher version,
signed again by the organisation.

Nothing is taken on trust from the folder being mirrored: the input catalog must carry a
valid signature by the very signer that re-signs it (else anyone who can write the build
folder could add a model the organisation's signature would then vouch for); every file is checked against
the input catalog's size and sha256 while it is placed (hard-linked when possible, else
copied and hashed in one pass), each model's signature bundle must verify against the
signer the catalog names and vouch for those digests, each inline attestation must be
about that file; a refusal publishes nothing. Files go into place first and the catalog
last, so a client never sees a catalog whose files are missing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vetted.authoring import checks
from vetted.authoring.files import place, publish
from vetted.authoring.publish import sign_catalog
from vetted.authoring.signers import Signer
from vetted.catalog.schema import Catalog, ModelEntry, parse
from vetted.errors import InputError, Refused, VettedError
from vetted.net.http import read_local


@dataclass(frozen=True)
class Mirrored:
    catalog: Path
    version: int
    models: int
    files: int
    linked: int  # of them hard-linked (the rest copied)


def model_url(base_url: str, model_id: str) -> str:
    return f"{base_url.rstrip('/')}/models/{model_id}"


def build_mirror(catalog_path: Path, out: Path, base_url: str, signer: Signer, version: int,
                 trusted_root: Path | None = None, valid_days: int | None = None) -> Mirrored:
    """Writes the static layout of `catalog_path` (a catalog with local sources next to it)
    into `out`; see the module docstring. `trusted_root`: a private Sigstore's root, to
    verify keyless publishers' bundles; `valid_days`: a new expiry (default: the input's)."""
    from vetted.catalog.schema import MAX_CATALOG_BYTES

    try:
        raw = read_local(catalog_path, MAX_CATALOG_BYTES)
    except VettedError as exc:
        raise InputError(f"catalog {catalog_path}", exc.found) from None
    catalog = parse(raw, str(catalog_path))
    checks.signed_by(catalog_path, raw, signer.trust())  # never vouch for what someone else put there
    if version <= catalog.version:
        raise InputError("--version", f"{version} is not greater than the input catalog's v{catalog.version}",
                         "a re-signed catalog needs a higher version, or clients refuse it as a rollback")
    doc = json.loads(raw)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    doc["version"] = version
    doc["issued"] = now.isoformat()
    if valid_days is not None:
        doc["expires"] = (now + timedelta(days=valid_days)).isoformat()
    for m in doc["models"]:
        sources = m.setdefault("sources", {})
        url = model_url(base_url, m["id"])
        sources["mirrors"] = [url] + [u for u in sources.get("mirrors", []) if u != url]
        sources["local"] = [f"models/{m['id']}"]
    new_raw = json.dumps(doc, indent=2, ensure_ascii=False).encode()
    parse(new_raw, "the mirrored catalog")  # e.g. a base URL that is not https is refused here
    base = catalog_path.resolve().parent

    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mirror-staging-", dir=out))
    try:
        staged: list[tuple[Path, Path]] = []
        linked = 0
        for entry in catalog.models:
            try:
                files, n_linked = _stage_model(entry, catalog, base, staging / "models" / entry.id, trusted_root)
            except VettedError as exc:
                if f"model {entry.id}" not in exc.checked:
                    exc.checked = f"model {entry.id}: {exc.checked}"
                    exc.args = (exc.line(),)
                raise
            staged += [(p, out / "models" / entry.id / p.name) for p in files]
            linked += n_linked
        (staging / "catalog.json").write_bytes(new_raw)
        sign_catalog(staging / "catalog.json", signer, staging / "catalog.json.sig")
        for src, dest in staged:
            publish(src, dest)
        publish(staging / "catalog.json.sig", out / "catalog.json.sig")
        publish(staging / "catalog.json", out / "catalog.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Mirrored(out / "catalog.json", version, len(catalog.models),
                    sum(len(m.files) for m in catalog.models), linked)


def _stage_model(entry: ModelEntry, catalog: Catalog, base: Path, stage: Path,
                 trusted_root: Path | None) -> tuple[list[Path], int]:
    """The model's files and bundle from its local folders, checked; returns the staged paths."""
    folders = [(Path(f).expanduser() if Path(f).expanduser().is_absolute() else base / f) for f in entry.sources.local]
    if not folders:
        raise InputError("local sources", "none: the files to mirror must be on this machine",
                         "build the catalog with vetted-admin build-catalog (its mirror/ folder), or add a "
                         "'local' source")
    out: list[Path] = []
    linked = 0
    for f in entry.files:
        src = _find(folders, f.name)
        placed = place(src, stage / f.name, f.size, f.sha256, what=f"file {f.name}")
        linked += placed.linked
        out.append(placed.path)
    bundle_src = _find(folders, entry.signature.bundle)
    bundle = read_local(bundle_src, 1024 * 1024)
    if len(entry.files) != 1:
        _check_multi(entry, bundle, trusted_root)
    else:
        f = entry.files[0]
        checks.publisher_signature(entry.id, bundle, entry.signature.signer, f.name, f.sha256, trusted_root)
    (stage / entry.signature.bundle).write_bytes(bundle)
    out.append(stage / entry.signature.bundle)
    for i, att in enumerate(entry.attestations):
        checks.attestation(entry.id, att.model_dump(mode="json", exclude_none=True), f"#{i + 1}",
                           entry.files[0].sha256, trusted_root)
    return out, linked


def _check_multi(entry: ModelEntry, bundle: bytes, trusted_root: Path | None) -> None:
    """A folder signature over several files: each must be vouched for as the catalog says."""
    from vetted.trust import oms
    from vetted.trust.coverage import signed_file_digest

    signed = oms.signed_manifest(bundle, entry.signature.signer.spec(trusted_root))
    for f in entry.files:
        if signed_file_digest(signed, f.name, len(entry.files)) != f.sha256:
            raise Refused(f"publisher signature of model {entry.id} by {signed.signer}",
                          f"does not vouch for {f.name} as sha256 {f.sha256}", "do not mirror it")


def _find(folders: list[Path], name: str) -> Path:
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"file {name}", f"not found in the local folder(s) {', '.join(map(str, folders))}",
                     "mirror from the folder the catalog was built in")
