"""OpenSSF Model Signing (OMS) manifests: what a publisher's `model.sig` vouches for.

Verification has two halves, kept apart so the installer can skip the second one:
`signed_manifest` checks the signature and returns the per-file digests it covers (a
few kilobytes of work); `compare` checks those digests against files on disk, or
against digests computed while the bytes were downloading (DESIGN.md invariant 4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from vetted.errors import Refused
from vetted.trust import backend
from vetted.trust.envelopes import VerifiedEnvelope, verify_dsse
from vetted.trust.identity import TrustSpec

OMS_PREDICATES = ("https://model_signing/signature/v1.0", "https://model_signing/Digests/v0.1")


@dataclass(frozen=True)
class SignedManifest:
    """Per-resource digests covered by a verified OMS signature."""

    model_name: str
    digests: dict[str, str]  # resource identifier ("file" or "file:start:end") -> hex
    hash_type: str
    method: str  # "files" or "shards"
    serialization: dict[str, Any]
    signer: str

    def file_digest(self, name: str) -> str | None:
        """The sha256 of a whole file, when the signature was made per file."""
        if self.method != "files" or self.hash_type != "sha256":
            return None
        return self.digests.get(name)


def is_oms_statement(statement: dict[str, Any]) -> bool:
    return statement.get("predicateType") in OMS_PREDICATES


def manifest_from_envelope(env: VerifiedEnvelope) -> backend.OmsManifest:
    """The OMS manifest a verified envelope carries; any other predicate is refused."""
    statement = env.statement()
    if not is_oms_statement(statement):
        raise Refused(
            "model signature predicate",
            f"expected an OpenSSF Model Signing manifest, found {statement.get('predicateType')!r}",
        )
    return backend.parse_oms_statement(statement)


def signed_manifest(bundle: bytes, spec: TrustSpec, at: datetime | None = None) -> SignedManifest:
    """Verifies the bundle against `spec` (as of `at`, see `verify_dsse`); the digests it covers."""
    env = verify_dsse(bundle, spec, at)
    manifest = manifest_from_envelope(env)
    params = dict(manifest.serialization)
    digests = dict(manifest.digests)
    for ident in digests:
        _check_identifier(ident.split(":")[0] if params.get("method") == "shards" else ident)
    return SignedManifest(
        model_name=manifest.model_name,
        digests=digests,
        hash_type=str(params.get("hash_type", "sha256")),
        method=str(params.get("method", "files")),
        serialization=params,
        signer=env.signer,
    )


def _check_identifier(name: str) -> None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or "\\" in name:
        raise Refused("signed file name", f"{name!r} escapes the model folder")


def hash_on_disk(path: Path, signed: SignedManifest, ignore: list[str]) -> dict[str, str]:
    """Hashes a model folder (or single file) the way its signature was made."""
    return backend.hash_model(path, signed.serialization, ignore)


def compare(signed: SignedManifest, actual: dict[str, str]) -> None:
    """Refuses unless the files are exactly the signed ones, byte for byte."""
    expected = signed.digests
    problems: list[str] = []
    extra = sorted(set(actual) - set(expected))
    missing = sorted(set(expected) - set(actual))
    changed = sorted(k for k in set(actual) & set(expected) if actual[k] != expected[k])
    if changed:
        problems.append("changed: " + ", ".join(changed))
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if extra:
        problems.append("not signed: " + ", ".join(extra))
    if problems:
        raise Refused(
            f"model files against the signature by {signed.signer}",
            "; ".join(problems),
            "the files differ from what was signed; do not use them",
        )


def ignore_for(model_dir: Path, signature: Path, extra: list[str]) -> list[str]:
    """The signature file inside the model folder is not part of the model."""
    ignore = list(extra)
    try:
        ignore.append(str(signature.resolve().relative_to(model_dir.resolve())))
    except ValueError:
        pass
    return ignore


def peek_statement(bundle: bytes) -> dict[str, Any] | None:
    """The unverified in-toto statement, only to choose which verifier applies."""
    import base64

    try:
        env = json.loads(bundle).get("dsseEnvelope")
        if not env:
            return None
        statement = json.loads(base64.b64decode(env["payload"]))
    except Exception:
        return None
    return statement if isinstance(statement, dict) else None
