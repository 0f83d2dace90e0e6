"""What an organisation must check before it vouches for someone else's signature.

A catalog names, for each model, a signature bundle and the signer it must come from;
every Vetted that installs the model verifies that bundle. Publishing a bundle that
does not verify, or that signs other bytes, would ship a catalog that fails for every
user (or, worse, points users at a signer the organisation never checked). So the same
verifier Vetted uses at install time (`vetted.trust.oms` + `vetted.trust.coverage`, as
`install/pull.py` does) runs at build time, against the computed sha256, and so does the
attestation verifier for pre-signed claims.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vetted.catalog.schema import AttestationRef, TrustSpecModel
from vetted.errors import InputError, Refused
from vetted.trust import oms
from vetted.trust.coverage import signed_file_digest


def signer_model(model_id: str, signer: Any) -> TrustSpecModel:
    """A TRUST object from a spec, validated as the catalog schema will validate it."""
    try:
        return TrustSpecModel.model_validate(signer, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(signer)"
        raise InputError(f"model {model_id}: signer", f"{where}: {first['msg']}",
                         'give {"kind": "key", "public_key_pem": ...}, {"kind": "certificate", "chain_pem": ..., '
                         '"identity": ...} or {"kind": "sigstore", "identity": ..., "issuer": ...}') from None


def publisher_signature(model_id: str, bundle: bytes, signer: TrustSpecModel, file_name: str, sha256: str,
                        trusted_root: Path | None) -> str:
    """Refuses unless `bundle` verifies against `signer` and vouches for exactly these
    bytes as the model's one file; returns who signed, as verified."""
    try:
        signed = oms.signed_manifest(bundle, signer.spec(trusted_root))
    except Refused as exc:
        raise Refused(f"publisher signature of model {model_id}", f"{exc.checked}: {exc.found}",
                      "it does not verify against the declared signer; fix the signer or the signature") from None
    digest = signed_file_digest(signed, file_name, 1)
    if digest is None:
        raise Refused(f"publisher signature of model {model_id} by {signed.signer}",
                      f"does not cover {file_name} (it signs {', '.join(sorted(signed.digests)) or 'nothing'})",
                      "ask the publisher for a signature of this file")
    if digest != sha256:
        raise Refused(f"publisher signature of model {model_id} by {signed.signer}",
                      f"signs {file_name} as sha256 {digest}, the file is {sha256}",
                      "the signature is for other bytes; get the file the publisher signed")
    return signed.signer


def attestation(model_id: str, ref: Any, origin: str, sha256: str, trusted_root: Path | None) -> dict[str, Any]:
    """A pre-signed attestation reference (what `vetted-admin attest` writes): schema-valid,
    verified against its signer, about this very file, with a predicate Vetted accepts."""
    from vetted.cards.attest import verify
    from vetted.cards.predicates import KINDS

    try:
        parsed = AttestationRef.model_validate(ref, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(reference)"
        raise InputError(f"model {model_id}: attestation {origin}", f"{where}: {first['msg']}",
                         "pass the JSON file vetted-admin attest wrote") from None
    try:
        verify(parsed.bundle, parsed.signer.spec(trusted_root), sha256, KINDS[parsed.kind])
    except Refused as exc:
        raise Refused(f"attestation {origin} ({parsed.kind}) of model {model_id}", f"{exc.checked}: {exc.found}",
                      exc.action or "it cannot be attached to this file") from None
    return parsed.model_dump(mode="json", exclude_none=True)


def signed_by(catalog_path: Path, raw: bytes, trust: dict[str, Any]) -> None:
    """Before re-signing a catalog (a mirror, an OCI push): its bytes must carry a valid
    detached signature by the signer about to re-sign it. Otherwise whoever can write the
    build folder could slip a model in, and the organisation's signature would vouch for it."""
    from vetted.catalog.signed import signature_location, verify_catalog_bytes
    from vetted.errors import CatalogError
    from vetted.net.http import read_local
    from vetted.trust.identity import from_json

    sig = Path(signature_location(str(catalog_path)))
    try:
        bundle = read_local(sig, 1024 * 1024)
    except Exception as exc:
        raise Refused(f"signature of catalog {catalog_path}", f"{sig} is missing or unreadable "
                      f"({getattr(exc, 'found', exc)})", "re-sign only a catalog you built and signed") from None
    try:
        verify_catalog_bytes(raw, bundle, from_json(trust), str(catalog_path))
    except CatalogError as exc:
        raise Refused(exc.checked, exc.found, "this catalog is not the one you signed: rebuild it with "
                      "vetted-admin build-catalog rather than re-sign what is in the folder") from None
