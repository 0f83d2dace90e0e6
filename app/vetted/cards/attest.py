"""Signing and verifying attestations (in-toto statements about one GGUF file).

Key-mode signing writes the same Sigstore bundle shape `model_signing` writes, so the
one verification path (`trust.envelopes.verify_dsse`) serves model signatures and
attestations, in all three trust modes. The signature libraries are reached only
through `vetted.trust.backend`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vetted.cards.predicates import PREDICATES
from vetted.errors import Refused
from vetted.trust import backend
from vetted.trust.envelopes import verify_dsse
from vetted.trust.identity import TrustSpec


def statement(predicate_type: str, predicate: dict[str, Any], subject_name: str, sha256: str) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject_name, "digest": {"sha256": sha256}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def sign_key(stmt: dict[str, Any], private_key: Path) -> dict[str, Any]:
    """Signs a statement with an EC private key; returns the bundle as a JSON object."""
    return backend.sign_statement(stmt, private_key)


@dataclass(frozen=True)
class VerifiedClaim:
    kind: str
    predicate_type: str
    data: Any  # the parsed predicate model
    signer: str


def verify(bundle: dict[str, Any] | bytes, signer: TrustSpec, sha256: str, predicate_type: str) -> VerifiedClaim:
    raw = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    env = verify_dsse(raw, signer)
    stmt = env.statement()
    if stmt.get("predicateType") != predicate_type:
        raise Refused("attestation type", f"expected {predicate_type}, found {stmt.get('predicateType')!r}")
    digests = [s.get("digest", {}).get("sha256") for s in stmt.get("subject", []) if isinstance(s, dict)]
    if sha256 not in digests:
        raise Refused(f"attestation by {env.signer}", "is about a different file (subject sha256 differs)",
                      "the claim cannot be attached to this model")
    try:
        data = PREDICATES[predicate_type].model_validate(stmt.get("predicate"))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Refused(f"attestation by {env.signer}",
                      f"predicate field {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    kind = "provenance" if predicate_type.endswith("/provenance/v1") else "safety_card"
    return VerifiedClaim(kind, predicate_type, data, env.signer)
