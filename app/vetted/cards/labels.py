"""How each claim about a model is known: decided once, here, for every view.

DESIGN.md invariant 8 (and the table in docs/predicates.md): a provenance or safety-card
claim is *declared* when its signature verifies against the signer the catalog names and
its subject is this file; *unverified* when it is unsigned catalog data, or signed but
the signature does not check out (shown as sent, never promoted); *missing* when nothing
is published. *Verified* is kept for what Vetted checks itself (digests, the consistency
check against the file, the local spot-check) and never comes from a claim.

The model page, Discover's Safety column, Compare and `vetted card` all read their labels
from `claims_for`, so no two views can word the same claim differently. Discover asks
for every row of every catalog, so signature results are cached in memory, keyed by the
digest of the exact bundle bytes verified, the signer (trust spec, including any private
trusted root), the file's digest and the predicate type: the same inputs always give
the same answer, and a changed bundle or signer is a different key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from vetted.cards import attest
from vetted.cards.predicates import KINDS
from vetted.catalog.schema import AttestationRef, ModelEntry
from vetted.errors import Refused, VettedError

VERIFIED, DECLARED, UNVERIFIED, MISSING = "verified", "declared", "unverified", "missing"
LABELS = (VERIFIED, DECLARED, UNVERIFIED, MISSING)  # strongest first
CLAIM_KINDS = ("provenance", "safety_card")


@dataclass(frozen=True)
class Claim:
    kind: str  # "provenance" or "safety_card"
    label: str  # declared / unverified (a claim is never "verified")
    by: str | None  # who signed it (declared), or who was expected to (unverified signature)
    why: str | None  # for unverified: why it is not declared
    data: Any  # the predicate as verified, or as sent

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "by": self.by}
        if self.why is not None:
            out["why"] = self.why
        out["data"] = self.data
        return out


_CACHE_SIZE = 4096
_cache: OrderedDict[tuple, tuple[attest.VerifiedClaim | None, Refused | None]] = OrderedDict()
_cache_lock = threading.Lock()


def verify_attestation(raw: bytes, signer: Any, sha256: str, predicate_type: str) -> attest.VerifiedClaim:
    """`attest.verify`, remembered per (bundle digest, signer, file digest, predicate type).

    Refusals are remembered too: a bundle that did not verify will not verify on the next
    repaint either. Raises `Refused` exactly as `attest.verify` does."""
    key = (hashlib.sha256(raw).hexdigest(), signer, sha256, predicate_type)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None:
        try:
            hit = (attest.verify(raw, signer, sha256, predicate_type), None)
        except Refused as exc:
            hit = (None, exc)
        with _cache_lock:
            _cache[key] = hit
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    claim, refusal = hit
    if refusal is not None:
        raise refusal
    assert claim is not None
    return claim


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _attested(ref: AttestationRef, sha256: str, trusted_root: Any) -> Claim:
    raw = json.dumps(ref.bundle).encode()
    try:
        spec = ref.signer.spec(trusted_root)
    except VettedError as exc:  # a signer that cannot even be read verifies nothing
        return Claim(ref.kind, UNVERIFIED, None, exc.line(), _predicate_as_sent(raw))
    try:
        claim = verify_attestation(raw, spec, sha256, KINDS[ref.kind])
    except Refused as exc:
        return Claim(ref.kind, UNVERIFIED, _describe(spec), exc.line(), _predicate_as_sent(raw))
    return Claim(ref.kind, DECLARED, claim.signer, None, claim.data.model_dump(exclude_none=True))


def _describe(spec: Any) -> str:
    try:
        return spec.describe()
    except Exception:  # e.g. a certificate chain whose PEM does not parse
        return "an unreadable signer"


def _predicate_as_sent(raw: bytes) -> Any:
    """The claim's content as sent, for display only, when its signature does not verify."""
    from vetted.trust.oms import peek_statement

    st = peek_statement(raw)
    return st.get("predicate") if isinstance(st, dict) else None


def claims_for(entry: ModelEntry, trusted_root: Any = None) -> dict[str, list[Claim]]:
    """Every claim the catalog carries about `entry`'s file, labelled; per kind, signed
    attestations first (in catalog order), then unsigned inline data."""
    sha = entry.files[0].sha256
    out: dict[str, list[Claim]] = {k: [] for k in CLAIM_KINDS}
    for ref in entry.attestations:
        out[ref.kind].append(_attested(ref, sha, trusted_root))
    for kind, data in (("provenance", entry.provenance), ("safety_card", entry.safety_card)):
        if data:
            out[kind].append(Claim(kind, UNVERIFIED, None, "not signed", data))
    return out


def overall(claims: list[Claim]) -> str:
    """The one label a summary shows for a kind: the strongest label among its claims,
    or missing when there is none."""
    present = {c.label for c in claims}
    return next((lab for lab in LABELS if lab in present), MISSING)


def best(claims: list[Claim]) -> Claim | None:
    """The first claim carrying the `overall` label (the one a summary describes)."""
    label = overall(claims)
    return next((c for c in claims if c.label == label), None)


def headline(claims: list[Claim]) -> str:
    """Label plus who: "declared by …", "unverified (not signed)", "missing"."""
    c = best(claims)
    if c is None:
        return MISSING
    if c.label == DECLARED:
        return f"{DECLARED} by {c.by}"
    return f"{c.label} ({c.why})" if c.why else c.label


def safety_summary(claims: list[Claim]) -> str:
    """Discover's Safety cell: the label first, then how many results the claim holds."""
    c = best(claims)
    if c is None:
        return f"{MISSING}: not evaluated"
    results = c.data.get("results") if isinstance(c.data, dict) else None
    n = len(results) if isinstance(results, list) else 0
    return f"{c.label}: {n} result(s)" if n else f"{c.label}: card without results"
