"""Checking a DSSE signature bundle against a pinned trust spec.

This is the one place that talks to `sigstore` and `model_signing`'s signature
verifiers. Every exception they raise becomes a `Refused` naming what was checked, so
callers (CLI, GUI, installer) see one error type with a reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from vetted.errors import Refused
from vetted.trust.identity import CertificateChain, PublicKey, SigstoreIdentity, TrustSpec

log = logging.getLogger(__name__)

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class VerifiedEnvelope:
    payload_type: str
    payload: bytes
    signer: str  # who, as verified (identity + issuer, certificate SAN, key fingerprint)

    def statement(self) -> dict:
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


@contextlib.contextmanager
def _quiet_library():
    """model_signing prints warnings to stdout; keep the CLI's one-line contract."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    if buf.getvalue().strip():
        log.warning("signature library said: %s", buf.getvalue().strip())


def _refusal(what: str, exc: BaseException, action: str) -> Refused:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Refused(what, f"{detail} [{type(exc).__name__}]", action)


def load_sigstore_bundle(raw: bytes):
    from sigstore.models import Bundle

    try:
        return Bundle.from_json(raw)
    except Exception as exc:  # the library raises many types for malformed bundles
        raise _refusal("reading the Sigstore bundle", exc, "the signature file is malformed") from None


def verify_sigstore_dsse(raw: bytes, spec: SigstoreIdentity) -> VerifiedEnvelope:
    from sigstore.verify import Verifier, policy

    bundle = load_sigstore_bundle(raw)
    verifier = sigstore_verifier(spec)
    try:
        with _quiet_library():
            payload_type, payload = verifier.verify_dsse(
                bundle, policy.Identity(identity=spec.identity, issuer=spec.issuer)
            )
    except Exception as exc:
        raise _refusal(
            f"Sigstore signature for {spec.describe()}",
            exc,
            "the file was not signed by this identity, or the bundle was altered",
        ) from None
    return VerifiedEnvelope(payload_type, payload, spec.describe())


def sigstore_verifier(spec: SigstoreIdentity):
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    try:
        root = TrustedRoot.from_file(str(spec.root_path()))
    except Exception as exc:
        raise _refusal(
            f"trusted root {spec.root_path()}", exc, "pass a valid trusted_root.json"
        ) from None
    return Verifier(trusted_root=root)


def _read_pb_signature(raw: bytes):
    from model_signing._signing import sign_sigstore_pb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.json"
        path.write_bytes(raw)
        try:
            return sign_sigstore_pb.Signature.read(path)
        except Exception as exc:
            raise _refusal("reading the signature bundle", exc, "the signature file is malformed") from None


def _pb_verify(make_verifier, pem: bytes, loading: str, loading_action: str, signature,
               checked: str, action: str) -> tuple[str, bytes]:
    """model_signing's key and certificate verifiers read PEM from a path; give them one."""
    with tempfile.TemporaryDirectory() as tmp:
        pem_path = Path(tmp) / "trust.pem"
        pem_path.write_bytes(pem)
        try:
            verifier = make_verifier(pem_path)
        except Exception as exc:
            raise _refusal(loading, exc, loading_action) from None
    try:
        with _quiet_library():
            return verifier._verify_signed_content(signature)
    except Exception as exc:
        raise _refusal(checked, exc, action) from None


def verify_key_dsse(raw: bytes, spec: PublicKey) -> VerifiedEnvelope:
    from model_signing._signing import sign_ec_key

    payload_type, payload = _pb_verify(
        sign_ec_key.Verifier, spec.key_pem, "loading the public key", "pass an EC public key in PEM form",
        _read_pb_signature(raw), f"signature against {spec.describe()}",
        "the file was not signed with this key, or the bundle was altered")
    return VerifiedEnvelope(payload_type, payload, spec.describe())


def verify_certificate_dsse(raw: bytes, spec: CertificateChain, at: datetime | None = None) -> VerifiedEnvelope:
    """Checks a certificate-mode OMS signature as of `at` (the first verification; None: now).

    model_signing checks the DSSE signature and (at the leaf's notBefore) the chain; then
    `vetted.trust.certs` checks what it does not: the leaf is valid at `at` and issued for
    code signing, the whole chain validates at `at`, and the leaf carries the pinned
    identity as a name of the same type.
    """
    from model_signing._signing import sign_certificate

    from vetted.trust import certs

    if not spec.chain_pem.strip():
        raise Refused(
            "certificate chain", "none given", "pass the organisation's CA certificate(s)"
        )
    ident = spec.cert_identity()
    try:
        anchors = x509.load_pem_x509_certificates(spec.chain_pem)
    except ValueError as exc:
        raise _refusal("loading the certificate chain", exc, "pass PEM certificates") from None
    signature = _read_pb_signature(raw)
    payload_type, payload = _pb_verify(
        lambda path: sign_certificate.Verifier([path]), spec.chain_pem, "loading the certificate chain",
        "pass PEM certificates", signature, f"certificate signature against {spec.describe()}",
        "the signing certificate does not chain to the pinned CA, or the bundle was altered")
    try:
        material = signature.bundle.verification_material.x509_certificate_chain.certificates
        leaf, *intermediates = [x509.load_der_x509_certificate(c.raw_bytes) for c in material]
    except (ValueError, TypeError, AttributeError) as exc:
        raise _refusal("reading the bundle's certificates", exc, "the signature file is malformed") from None
    when = certs.verification_time(at)
    certs.check_validity(leaf, when)
    certs.check_code_signing(leaf)
    certs.check_chain(leaf, intermediates, anchors, when)
    who = certs.match_identity(leaf, ident)
    return VerifiedEnvelope(payload_type, payload, f"{who} (certificate chain)")


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
