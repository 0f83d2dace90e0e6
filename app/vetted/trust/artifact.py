"""Plain Sigstore bundles over a single file (hashedrekord, or DSSE in-toto)."""

from __future__ import annotations

from vetted.errors import Refused
from vetted.trust.envelopes import (
    _refusal,
    load_sigstore_bundle,
    sigstore_verifier,
    verify_dsse,
)
from vetted.trust.identity import SigstoreIdentity, TrustSpec


def verify_artifact_digest(sha256_hex: str, bundle: bytes, spec: TrustSpec) -> str:
    """Checks that `bundle` signs a file with this sha256; returns who signed it."""
    parsed = load_sigstore_bundle(bundle) if isinstance(spec, SigstoreIdentity) else None
    if parsed is not None and parsed._dsse_envelope is None:
        return _verify_hashedrekord(sha256_hex, parsed, spec)  # type: ignore[arg-type]
    env = verify_dsse(bundle, spec)
    statement = env.statement()
    subjects = statement.get("subject") or []
    digests = [
        s.get("digest", {}).get("sha256") for s in subjects if isinstance(s, dict)
    ]
    if sha256_hex not in digests:
        raise Refused(
            f"in-toto subject signed by {env.signer}",
            f"file sha256 {sha256_hex[:16]}… is not among the signed subjects "
            f"{[d[:16] + '…' for d in digests if d]}",
            "the signature is for a different file",
        )
    return env.signer


def _verify_hashedrekord(sha256_hex: str, bundle, spec: SigstoreIdentity) -> str:
    from sigstore.hashes import Hashed
    from sigstore.verify import policy
    from sigstore_models.common.v1 import HashAlgorithm  # type: ignore[import-untyped]

    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(sha256_hex))
    try:
        sigstore_verifier(spec).verify_artifact(
            hashed, bundle, policy.Identity(identity=spec.identity, issuer=spec.issuer)
        )
    except Exception as exc:
        raise _refusal(
            f"Sigstore signature for {spec.describe()}",
            exc,
            "the file was not signed by this identity, or file or bundle was altered",
        ) from None
    return spec.describe()
