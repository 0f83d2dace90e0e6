"""Checking a DSSE signature bundle against a pinned trust spec.

Chooses the verifier for the spec's mode and returns the signed payload with *who*
signed, as verified. The signature libraries are reached only through
`vetted.trust.backend`, which turns every exception they raise into a `Refused` naming
what was checked, so callers (CLI, GUI, installer) see one error type with a reason.
What the libraries leave unchecked for certificate chains is checked here, with
`vetted.trust.certs`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from vetted.errors import Refused
from vetted.trust import backend
from vetted.trust.identity import CertificateChain, PublicKey, SigstoreIdentity, TrustSpec

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class VerifiedEnvelope:
    payload_type: str
    payload: bytes
    signer: str  # who, as verified (identity + issuer, certificate SAN, key fingerprint)

    def statement(self) -> dict[str, Any]:
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise Refused(
                "signed payload type",
                f"expected {IN_TOTO_PAYLOAD_TYPE}, found {self.payload_type!r}",
            )
        try:
            data = json.loads(self.payload)
        except ValueError as exc:
            raise Refused("signed in-toto statement", f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise Refused("signed in-toto statement", "not a JSON object")
        return data


def load_sigstore_bundle(raw: bytes) -> backend.SigstoreBundle:
    return backend.load_sigstore_bundle(raw)


def verify_sigstore_dsse(raw: bytes, spec: SigstoreIdentity) -> VerifiedEnvelope:
    payload_type, payload = backend.verify_sigstore_dsse(backend.load_sigstore_bundle(raw), spec)
    return VerifiedEnvelope(payload_type, payload, spec.describe())


def verify_key_dsse(raw: bytes, spec: PublicKey) -> VerifiedEnvelope:
    payload_type, payload = backend.verify_key_dsse(raw, spec)
    return VerifiedEnvelope(payload_type, payload, spec.describe())


def verify_certificate_dsse(raw: bytes, spec: CertificateChain, at: datetime | None = None) -> VerifiedEnvelope:
    """Checks a certificate-mode OMS signature as of `at` (the first verification; None: now).

    model_signing checks the DSSE signature and (at the leaf's notBefore) the chain; then
    `vetted.trust.certs` checks what it does not: the leaf is valid at `at` and issued for
    code signing, the whole chain validates at `at`, and the leaf carries the pinned
    identity as a name of the same type.
    """
    from vetted.trust import certs

    if not spec.chain_pem.strip():
        raise Refused(
            "certificate chain", "none given", "pass the organisation's CA certificate(s)"
        )
    ident = spec.cert_identity()
    try:
        anchors = x509.load_pem_x509_certificates(spec.chain_pem)
    except ValueError as exc:
        raise backend.refusal("loading the certificate chain", exc, "pass PEM certificates") from None
    signed = backend.verify_certificate_dsse(raw, spec)
    try:
        leaf, *intermediates = [x509.load_der_x509_certificate(der) for der in signed.chain_der]
    except (ValueError, TypeError) as exc:
        raise backend.refusal("reading the bundle's certificates", exc, "the signature file is malformed") from None
    when = certs.verification_time(at)
    certs.check_validity(leaf, when)
    certs.check_code_signing(leaf)
    certs.check_chain(leaf, intermediates, anchors, when)
    who = certs.match_identity(leaf, ident)
    return VerifiedEnvelope(signed.payload_type, signed.payload, f"{who} (certificate chain)")


def verify_dsse(raw: bytes, spec: TrustSpec, at: datetime | None = None) -> VerifiedEnvelope:
    """Checks a DSSE bundle's signature against `spec`; returns the signed payload.

    `at` is the time the signature was first verified (None: now). A certificate that has
    since expired still verifies as of that time, so an installed model keeps running;
    Sigstore bundles carry their own signing time and ignore it.
    """
    if isinstance(spec, SigstoreIdentity):
        return verify_sigstore_dsse(raw, spec)
    if isinstance(spec, CertificateChain):
        return verify_certificate_dsse(raw, spec, at)
    if isinstance(spec, PublicKey):
        return verify_key_dsse(raw, spec)
    raise TypeError(f"unknown trust spec {spec!r}")
