"""Who a signature must come from: the three pinned trust modes.

A trust spec is data (it lives in catalogs, settings and policies), so each mode carries
its key material inline as PEM rather than as a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from vetted.errors import InputError

if TYPE_CHECKING:
    from vetted.trust.certs import CertIdentity


@dataclass(frozen=True)
class SigstoreIdentity:
    """Sigstore keyless: the certificate's SAN and OIDC issuer must both match."""

    identity: str
    issuer: str
    trusted_root: Path | None = None  # None: the pinned public-good root

    def root_path(self) -> Path:
        """The private root given explicitly, else a private copy of the public-good root
        whose bytes matched the digest pinned in `vetted.trust.roots` (else `Refused`)."""
        if self.trusted_root is not None:
            return self.trusted_root
        from vetted.trust.roots import public_good_path

        return public_good_path()

    def describe(self) -> str:
        return f"{self.identity} (issuer {self.issuer})"


@dataclass(frozen=True)
class CertificateChain:
    """An organisation's PKI: chain up to a pinned CA *and* the leaf's identity (required:
    one CA issues many certificates, so the chain alone does not say who signed).

    `identity` is typed (see `vetted.trust.certs.CertIdentity`): an e-mail, URI or DNS SAN,
    or the exact subject DN of a certificate without SANs.
    """

    chain_pem: bytes
    identity: str

    def __post_init__(self) -> None:
        self.cert_identity()  # refuses a missing or malformed identity when the spec is made

    def cert_identity(self) -> "CertIdentity":
        from vetted.trust.certs import CertIdentity

        return CertIdentity.parse(self.identity)

    def describe(self) -> str:
        from cryptography import x509

        certs = x509.load_pem_x509_certificates(self.chain_pem)
        root = certs[-1].subject.rfc4514_string() if certs else "?"
        return f"{self.cert_identity().describe()} (certificate chain to {root})"


@dataclass(frozen=True)
class PublicKey:
    """A plain public key (PEM)."""

    key_pem: bytes = field(repr=False)

    def fingerprint(self) -> str:
        import hashlib

        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_public_key(self.key_pem)
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def describe(self) -> str:
        return f"public key sha256:{self.fingerprint()[:16]}"


TrustSpec = Union[SigstoreIdentity, CertificateChain, PublicKey]


def to_json(spec: TrustSpec) -> dict[str, Any]:
    if isinstance(spec, SigstoreIdentity):
        out: dict[str, Any] = {"kind": "sigstore", "identity": spec.identity, "issuer": spec.issuer}
        if spec.trusted_root:
            out["trusted_root"] = str(spec.trusted_root)
        return out
    if isinstance(spec, CertificateChain):
        return {"kind": "certificate", "chain_pem": spec.chain_pem.decode(), "identity": spec.identity}
    return {"kind": "key", "public_key_pem": spec.key_pem.decode()}


def from_json(data: dict[str, Any], trusted_root: Path | None = None) -> TrustSpec:
    """Builds a spec from catalog/settings data; unknown kinds are refused, not guessed."""
    kind = data.get("kind")
    try:
        if kind == "sigstore":
            root = trusted_root or (Path(data["trusted_root"]) if data.get("trusted_root") else None)
            return SigstoreIdentity(str(data["identity"]), str(data["issuer"]), root)
        if kind == "certificate":
            if not data.get("identity"):
                raise InputError("trust spec", "a 'certificate' signer is missing field 'identity'",
                                 "add the signing certificate's identity (e-mail, URI, DNS name or subject DN)")
            return CertificateChain(str(data["chain_pem"]).encode(), str(data["identity"]))
        if kind == "key":
            return PublicKey(str(data["public_key_pem"]).encode())
    except KeyError as exc:
        raise InputError("trust spec", f"'{kind}' is missing field {exc}") from None
    raise InputError(
        "trust spec", f"unknown kind {kind!r}", "use one of: sigstore, certificate, key"
    )


def read_pem_files(paths: list[Path]) -> bytes:
    try:
        return b"".join(Path(p).read_bytes() for p in paths)
    except OSError as exc:
        raise InputError("reading PEM", f"{exc.filename}: {exc.strerror}") from None


def spec_key(spec: TrustSpec) -> str:
    """A stable fingerprint of *who* a spec trusts, for state kept per signer (rollback
    floors) and for telling a re-pin from a repeat: the public key's DER fingerprint, not
    its PEM text (line endings, armour); the chain's certificates by DER fingerprint plus
    the typed identity; a Sigstore identity and issuer — not the trusted root's bytes, so
    an organisation that rotates its private root in place keeps its floors."""
    import hashlib
    import json

    data: dict[str, Any]
    if isinstance(spec, PublicKey):
        data = {"kind": "key", "spki_sha256": spec.fingerprint()}
    elif isinstance(spec, CertificateChain):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        certs = x509.load_pem_x509_certificates(spec.chain_pem)
        ders = sorted(hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in certs)
        data = {"kind": "certificate", "chain": ders, "identity": str(spec.cert_identity())}
    else:
        data = {"kind": "sigstore", "identity": spec.identity, "issuer": spec.issuer}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
