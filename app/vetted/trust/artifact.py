"""Plain Sigstore bundles over a single file (hashedrekord, or DSSE in-toto).

What `vetted verify FILE` accepts besides OMS: a keyless signature over the file's
digest, or a signed in-toto statement (any trust mode) naming the file's sha256 among
its subjects.
"""

from __future__ import annotations

from vetted.errors import Refused
from vetted.trust import backend
from vetted.trust.envelopes import verify_dsse
from vetted.trust.identity import SigstoreIdentity, TrustSpec


def verify_artifact_digest(sha256_hex: str, bundle: bytes, spec: TrustSpec) -> str:
    """Checks that `bundle` signs a file with this sha256; returns who signed it."""
    if isinstance(spec, SigstoreIdentity):
        parsed = backend.load_sigstore_bundle(bundle)
        if not parsed.is_dsse():
            backend.verify_sigstore_digest(parsed, sha256_hex, spec)
            return spec.describe()
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
