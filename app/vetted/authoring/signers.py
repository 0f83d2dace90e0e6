"""Who signs what an organisation publishes: a plain key, or a certificate from its PKI.

A catalog, the models the organisation signs itself and the attestations it makes are
all signed by one party, in one of two modes (both verified offline by Vetted): an EC key
(`--key`), or a leaf certificate issued by the organisation's CA (`--cert-key`,
`--cert-chain`, `--cert-identity`). Each signer also says how a verifier must pin it (the
TRUST object that goes into catalog entries and policies), so what `vetted-admin` writes
is exactly what `vetted catalog add ... --cert-chain CA.pem --cert-identity ...` checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from vetted.errors import InputError
from vetted.trust.identity import TrustSpec, from_json


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"reading the {what} {path}", exc.strerror or str(exc)) from None


def _private_key(path: Path) -> Any:
    try:
        return serialization.load_pem_private_key(_read(path, "private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"private key {path}", f"not an unencrypted PEM private key ({exc})",
                         "pass the PEM file written by vetted-admin keygen or issued by your PKI") from None


@dataclass(frozen=True)
class KeySigner:
    """Key mode: an EC private key (PEM); verifiers pin its public key."""

    private_key: Path

    def public_pem(self) -> str:
        key = _private_key(self.private_key)
        return key.public_key().public_bytes(serialization.Encoding.PEM,  # type: ignore[no-any-return]
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def trust(self) -> dict[str, Any]:
        return {"kind": "key", "public_key_pem": self.public_pem()}

    def sign_path(self, path: Path, out: Path, ignore: Sequence[str] = ()) -> None:
        from vetted.trust.backend import sign_model

        sign_model(path, self.private_key, out, ignore)

    def sign_statement(self, statement: Mapping[str, Any]) -> dict[str, Any]:
        from vetted.trust.backend import sign_statement

        return sign_statement(statement, self.private_key)

    def describe(self) -> str:
        return f"key {self.private_key}"


@dataclass(frozen=True)
class CertSigner:
    """Certificate mode: the leaf's private key, the leaf certificate, the certificates
    above it, and the identity a verifier must pin (one CA issues many certificates, so
    the chain alone does not say who signed).

    `certificates` is every certificate given, leaf first. Into each bundle go the leaf and
    the intermediates; verifiers pin everything above the leaf (`anchors_pem`): the
    intermediates and, when given, the root.
    """

    private_key: Path
    certificates: tuple[bytes, ...]  # PEM, one certificate each, the leaf first
    identity: str

    @classmethod
    def load(cls, private_key: Path, chain_files: Sequence[Path], identity: str | None) -> "CertSigner":
        if not identity:
            raise InputError("certificate signer", "--cert-identity is missing",
                             "give who the leaf certificate names, e.g. email:catalog@example.org")
        from vetted.trust.certs import CertIdentity

        CertIdentity.parse(identity)  # a malformed identity is refused before anything is signed
        certs: list[x509.Certificate] = []
        for path in chain_files:
            try:
                certs += x509.load_pem_x509_certificates(_read(path, "certificate chain"))
            except ValueError as exc:
                raise InputError(f"certificate chain {path}", f"not PEM certificates ({exc})") from None
        if not certs:
            raise InputError("certificate signer", "no certificate given",
                             "pass --cert-chain LEAF.pem, then the intermediate(s) and root")
        leaf_public = certs[0].public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        key_public = _private_key(private_key).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if leaf_public != key_public:
            raise InputError("certificate signer", f"{private_key} is not the key of the first certificate given "
                             f"({certs[0].subject.rfc4514_string()})",
                             "the first --cert-chain file must start with the leaf certificate of --cert-key")
        unique: list[x509.Certificate] = []
        for c in certs:
            if c not in unique:
                unique.append(c)
        pems = tuple(c.public_bytes(serialization.Encoding.PEM) for c in unique)
        return cls(private_key, pems, identity)

    def _above_leaf(self) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate(p) for p in self.certificates[1:]]

    def anchors_pem(self) -> bytes:
        """What a verifier pins: every certificate above the leaf."""
        return b"".join(self.certificates[1:])

    def _bundle_chain(self) -> bytes:
        """The intermediates: a self-signed root does not travel in the bundle."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self._above_leaf()
                        if c.issuer != c.subject)

    def trust(self) -> dict[str, Any]:
        if not self.anchors_pem():
            raise InputError("certificate signer", "only the leaf certificate was given",
                             "add --cert-chain for the intermediate(s) and root: verifiers pin them")
        return {"kind": "certificate", "chain_pem": self.anchors_pem().decode(), "identity": self.identity}

    def sign_path(self, path: Path, out: Path, ignore: Sequence[str] = ()) -> None:
        from vetted.trust.backend import sign_model_certificate

        sign_model_certificate(path, self.private_key, self.certificates[0], self._bundle_chain(), out, ignore)

    def sign_statement(self, statement: Mapping[str, Any]) -> dict[str, Any]:
        from vetted.trust.backend import sign_statement_certificate

        return sign_statement_certificate(statement, self.private_key, self.certificates[0], self._bundle_chain())

    def describe(self) -> str:
        return f"certificate {x509.load_pem_x509_certificate(self.certificates[0]).subject.rfc4514_string()}"


Signer = Union[KeySigner, CertSigner]


def as_signer(signer: "Signer | Path") -> Signer:
    """A bare path is a key-mode private key (what the Python API always took)."""
    return KeySigner(signer) if isinstance(signer, Path) else signer


def from_options(key: Path | None, cert_key: Path | None, cert_chain: Sequence[Path],
                 cert_identity: str | None) -> Signer:
    """Exactly one mode, completely: `--key`, or `--cert-key` with `--cert-chain` and `--cert-identity`."""
    if bool(key) == bool(cert_key or cert_chain or cert_identity):
        raise InputError("signer", "give exactly one of: --key PRIVATE_PEM; --cert-key with --cert-chain "
                         "and --cert-identity")
    if key:
        _private_key(key)
        return KeySigner(key)
    if not cert_key or not cert_chain:
        raise InputError("signer", "certificate mode needs --cert-key, --cert-chain and --cert-identity")
    return CertSigner.load(cert_key, cert_chain, cert_identity)


def trust_spec(signer: Signer) -> TrustSpec:
    """The pinned signer a verifier would use for what `signer` signs."""
    return from_json(signer.trust())
