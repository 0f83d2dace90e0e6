"""Signing side, for catalog authors: keys, OMS model signatures, signed catalogs.

An organisation signs with a key or with a certificate from its own PKI
(`authoring/signers.py`); keyless signing needs an OIDC flow and is done with
`model_signing sign` directly, whose output Vetted verifies and a catalog can carry as a
publisher's signature.

`build_catalog` vouches only for what it checked: sizes and digests come from the bytes it
publishes (a local file, or one fetched from a Hugging Face repo pinned to a commit
through Vetted's own transfer path), and a publisher's signature or a pre-signed
attestation goes in only after Vetted's verifier accepted it against the declared signer
and those very bytes. Everything is prepared in a staging folder next to the output, so a
refusal leaves the output untouched; the catalog's signature is checked against the
signer a verifier will pin before anything is published.
"""

from __future__ import annotations

import hashlib
import json
import re
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vetted.authoring import checks
from vetted.authoring.files import place, publish
from vetted.authoring.signers import KeySigner, Signer, as_signer, trust_spec
from vetted.catalog.schema import _ID, check_file_name, parse
from vetted.errors import InputError, Refused, VettedError

if TYPE_CHECKING:
    from vetted.fetch.sources import HuggingFace


def generate_key(out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    priv = out / "signing-key.pem"
    pub = out / "signing-key.pub.pem"
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    pub.write_bytes(public_pem(priv))
    return priv, pub


def public_pem(private_key: Path) -> bytes:
    return KeySigner(private_key).public_pem().encode()


def sign_file_or_folder(path: Path, private_key: Path | Signer, out: Path) -> None:
    """An OMS signature (key or certificate mode) of a file or folder; a signature written
    inside the folder is not part of what it signs."""
    ignore = [out.name] if path.is_dir() and out.parent.resolve() == path.resolve() else []
    as_signer(private_key).sign_path(path, out, ignore)


@dataclass
class _Prepared:
    """One model, checked and staged: its entry and the staged files to publish by name."""

    entry: dict[str, Any]
    files: dict[str, tuple[Path, str]]  # published name -> (staged path, its sha256)


def build_catalog(spec: dict[str, Any], spec_dir: Path, signer: Path | Signer, out: Path, *,
                  verify_publisher_signatures: bool = True) -> Path:
    """Spec: catalog fields plus `models`, each with `path` (a local GGUF) or
    `huggingface: {repo, commit, file}` instead of `files`; optionally a publisher's
    `signature_path` (or, in the Hugging Face repo, `signature_file`) with its `signer`,
    `attest: {kind: predicate}` (signed here) and `attestations` (pre-signed references,
    files or objects). A catalog-level `trusted_root` (a private Sigstore's root) is used
    only to verify keyless publishers here; it is not written into the catalog.

    Writes `out/mirror/<file>` (hard links when possible) and each model's signature
    bundle, then `out/catalog.json` and its detached signature `out/catalog.json.sig`.
    `verify_publisher_signatures=False` copies a publisher's bundle unchecked: only for
    tests of the installing side, which need a catalog carrying a bad signature.
    """
    signer = as_signer(signer)
    signer.trust()  # an incomplete signer is refused before any work
    root = _path(spec["trusted_root"], spec_dir) if spec.get("trusted_root") else None
    now = datetime.now(timezone.utc).replace(microsecond=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        prepared = []
        for i, m in enumerate(spec["models"]):
            try:
                prepared.append(_prepare(dict(m), spec_dir, staging / f"m{i}", signer, root,
                                         verify_publisher_signatures))
            except VettedError as exc:
                raise _about(exc, m.get("id", f"#{i + 1}")) from None
        published = _flat_names(prepared)
        doc = {
            "schema": "vetted.catalog/1",
            "id": spec["id"], "name": spec["name"], "publisher": spec["publisher"],
            "version": int(spec["version"]),
            "issued": spec.get("issued", now.isoformat()),
            "expires": spec.get("expires", (now + timedelta(days=int(spec.get("valid_days", 90)))).isoformat()),
            "models": [p.entry for p in prepared],
        }
        raw = json.dumps(doc, indent=2, ensure_ascii=False).encode()
        parse(raw, "the built catalog")  # never sign something Vetted itself would refuse
        staged_catalog = staging / "catalog.json"
        staged_catalog.write_bytes(raw)
        sign_catalog(staged_catalog, signer, staging / "catalog.json.sig")
        mirror = out / "mirror"
        for name, path in published.items():
            publish(path, mirror / name)
        publish(staging / "catalog.json.sig", out / "catalog.json.sig")
        publish(staged_catalog, out / "catalog.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "catalog.json"


def sign_catalog(catalog: Path, signer: Signer, out: Path) -> None:
    """The detached OMS signature over the catalog file, checked as a verifier pinning
    this signer will check it (a certificate without the pinned identity, or not issued
    for code signing, is found here rather than by every user)."""
    from vetted.trust import oms

    signer.sign_path(catalog, out)
    signed = oms.signed_manifest(out.read_bytes(), trust_spec(signer))
    digest = hashlib.sha256(catalog.read_bytes()).hexdigest()
    if list(signed.digests.values()) != [digest]:
        raise Refused("signature of the built catalog", f"covers {list(signed.digests.values())}, not {digest}")


def _checked_names(m: dict[str, Any]) -> str:
    """The model id and any file name a spec gives are used as names inside the staging
    folder: they must be what the catalog schema allows before anything is written (a
    '../' or absolute name would otherwise place a file outside it)."""
    model_id = m.get("id")
    if not isinstance(model_id, str) or not re.fullmatch(_ID, model_id):
        raise InputError("model id", f"{model_id!r} is not a model id (lower-case letters, digits, . _ -)")
    for field in ("file_name",):
        if field in m:
            try:
                check_file_name(str(m[field]))
            except ValueError as exc:
                raise InputError(f"model {model_id}: {field}", str(exc)) from None
    return model_id


def _prepare(m: dict[str, Any], spec_dir: Path, stage: Path, signer: Signer, root: Path | None,
             verify: bool) -> _Prepared:
    """One spec entry: its bytes staged and hashed, its signature made or checked, its
    attestations signed or checked; the catalog entry that describes exactly that."""
    model_id = _checked_names(m)
    stage.mkdir(parents=True)
    got = _model_bytes(m, spec_dir, stage)
    bundle_name, trust = _signature(m, model_id, got, spec_dir, stage, signer, root, verify)
    bundle = stage / bundle_name
    files = {got.name: (got.staged, got.sha256), bundle_name: (bundle, hashlib.sha256(bundle.read_bytes()).hexdigest())}
    attestations = [attest_with(signer, kind, predicate, got.name, got.sha256)
                    for kind, predicate in (m.pop("attest", None) or {}).items()]
    for i, ref in enumerate(m.pop("attestations", None) or []):
        origin = str(ref) if isinstance(ref, str) else f"#{i + 1}"
        doc = json.loads(_read(_path(ref, spec_dir), "attestation")) if isinstance(ref, str) else ref
        attestations.append(checks.attestation(model_id, doc, origin, got.sha256, root))
    m["files"] = [{"name": got.name, "size": got.size, "sha256": got.sha256}]
    m["sources"] = got.sources
    m["signature"] = {"bundle": bundle_name, "signer": trust}
    m["attestations"] = attestations
    return _Prepared(m, files)


@dataclass
class _Bytes:
    name: str
    staged: Path
    size: int
    sha256: str
    sources: dict[str, Any]
    hub: HuggingFace | None  # the pinned repository, for a model from the Hub


def _model_bytes(m: dict[str, Any], spec_dir: Path, stage: Path) -> _Bytes:
    """The model file staged for publishing (a local file, or downloaded from the Hub at
    the pinned commit), with the size and sha256 of the staged bytes."""
    path, hf = m.pop("path", None), m.pop("huggingface", None)
    if bool(path) == bool(hf):
        raise InputError("model source", "give exactly one of 'path' (a local file) or 'huggingface' "
                         "({repo, commit, file})")
    sources = dict(m.pop("sources", None) or {"local": ["mirror"]})
    if path:
        src = _path(path, spec_dir)
        name = m.pop("file_name", src.name)
        try:
            check_file_name(name)  # a name from the spec or the file system, used inside the staging folder
        except ValueError as exc:
            raise InputError(f"model file {name!r}", str(exc)) from None
        placed = place(src, stage / name, what=f"model file {name}")
        return _Bytes(name, placed.path, placed.size, placed.sha256, sources, None)
    from vetted.authoring import hub

    if not isinstance(hf, dict) or set(hf) != {"repo", "commit", "file"}:
        raise InputError("huggingface", f"{hf!r}", 'give {"repo": "org/name", "commit": "<40 hex>", '
                         '"file": "model.gguf"}')
    repo = hub.source(str(hf["repo"]), str(hf["commit"]))
    if m.pop("file_name", hf["file"]) != hf["file"]:
        raise InputError("file_name", "a Hugging Face file keeps its name in the repository")
    got = hub.download(repo, str(hf["file"]), stage)
    sources["huggingface"] = {"repo": hf["repo"], "commit": hf["commit"]}
    return _Bytes(got.path.name, got.path, got.size, got.sha256, sources, repo)


def _signature(m: dict[str, Any], model_id: str, got: _Bytes, spec_dir: Path, stage: Path, signer: Signer,
               root: Path | None, verify: bool) -> tuple[str, dict[str, Any]]:
    """The model's signature bundle, staged: the publisher's own (verified against the
    declared signer and the staged bytes) or one made here. Returns (bundle name, signer)."""
    sig_path, sig_file, sig_signer = m.pop("signature_path", None), m.pop("signature_file", None), m.pop("signer", None)
    if sig_file and got.hub is None:
        raise InputError("signature_file", "names a file in the Hugging Face repository; for a local model "
                         "give 'signature_path'")
    if sig_signer is not None and not (sig_path or sig_file):
        raise InputError("signer", "is given without the publisher's signature",
                         "add 'signature_path' (or, for a Hugging Face model, 'signature_file')")
    if not (sig_path or sig_file):
        bundle_name = f"{model_id}.model.sig"
        signer.sign_path(got.staged, stage / bundle_name)
        trust = signer.trust()
        checks.publisher_signature(model_id, (stage / bundle_name).read_bytes(), checks.signer_model(model_id, trust),
                                   got.name, got.sha256, root)
        return bundle_name, trust
    # without a signer, a given signature is the organisation's own: checked against its signer
    declared = checks.signer_model(model_id, sig_signer if sig_signer is not None else signer.trust())
    if sig_file:
        from vetted.authoring import hub

        assert got.hub is not None
        bundle_name, bundle = str(sig_file), hub.read_signature(got.hub, str(sig_file))
    else:
        bundle_name, bundle = f"{model_id}.model.sig", _read(_path(sig_path, spec_dir), "publisher signature")
    if verify:
        checks.publisher_signature(model_id, bundle, declared, got.name, got.sha256, root)
    (stage / bundle_name).write_bytes(bundle)
    return bundle_name, declared.model_dump(mode="json", exclude_none=True)


def _flat_names(prepared: list[_Prepared]) -> dict[str, Path]:
    """Every model's files share one mirror folder: a name may repeat only for the same bytes."""
    out: dict[str, Path] = {}
    digests: dict[str, str] = {}
    for p in prepared:
        for name, (path, digest) in p.files.items():
            if name in digests and digests[name] != digest:
                raise InputError(f"mirror file {name}", f"two models publish different files under this name "
                                 f"(the second is model {p.entry['id']})",
                                 "rename one with 'file_name', or give the signature another name")
            digests[name] = digest
            out.setdefault(name, path)
    return out


def attest_with(signer: Path | Signer, kind: str, predicate: dict[str, Any], subject: str,
                sha256: str) -> dict[str, Any]:
    """Validates a provenance or safety-card predicate, signs it about one file, and returns
    the catalog's inline reference to it (key or certificate mode)."""
    from vetted.cards.attest import statement
    from vetted.cards.predicates import KINDS, PREDICATES

    signer = as_signer(signer)
    if kind not in KINDS:
        raise InputError("attestation", f"unknown kind {kind!r}", "use provenance or safety_card")
    PREDICATES[KINDS[kind]].model_validate(predicate)  # never sign a claim Vetted would reject
    bundle = signer.sign_statement(statement(KINDS[kind], predicate, subject, sha256))
    return {"kind": kind, "bundle": bundle, "signer": signer.trust()}


def attestation_ref(kind: str, predicate: dict[str, Any], subject: str, sha256: str, private_key: Path,
                    public_pem_text: str) -> dict[str, Any]:
    """Key mode, as `vetted-admin attest` makes it (`public_pem_text` is the key's own)."""
    ref = attest_with(KeySigner(private_key), kind, predicate, subject, sha256)
    ref["signer"] = {"kind": "key", "public_key_pem": public_pem_text}
    return ref


def _path(value: Any, base: Path) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"reading the {what} {path}", exc.strerror or str(exc)) from None


def _about(exc: VettedError, model_id: str) -> VettedError:
    """The same refusal, naming the model it is about."""
    if f"model {model_id}" not in exc.checked:
        exc.checked = f"model {model_id}: {exc.checked}"
        exc.args = (exc.line(),)
    return exc
