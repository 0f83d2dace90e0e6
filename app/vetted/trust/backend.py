"""The one module that talks to the signature libraries, so an upgrade touches one file.

Written against sigstore 4.5.1 and model-signing 1.1.1 (with what they bring:
sigstore-models 0.0.6, in-toto-attestation 0.9.3, protobuf 7). Nothing else in Vetted
imports `sigstore`, `model_signing`, `sigstore_models`, `google.protobuf` or
`in_toto_attestation` (tests/test_architecture.py checks it): the rest of `vetted.trust`,
`vetted.cards.attest` and `vetted.authoring.publish` call the small, typed functions below, in
Vetted's terms (trust specs, bytes, hex digests, dicts), and never see a library object.

Verification never lets a library exception out: each becomes a `Refused` saying what
was checked, what the library found (its first line and exception type) and what the user
can do. Library imports stay inside the functions, so importing Vetted stays fast.
Signing (the publisher's side, `vetted-admin`) lets the libraries' `OSError` and
`ValueError` through unchanged, which `vetted-admin` reports as unreadable input.

Private APIs, and why (each is a place to look first when upgrading):

- `model_signing._signing.sign_sigstore_pb.Signature.read` and the key and certificate
  verifiers' `_verify_signed_content` (`sign_ec_key.Verifier`,
  `sign_certificate.Verifier`): model-signing's public verifier
  (`model_signing.verifying.Config().verify`) checks the signature *and* re-hashes the
  model folder in one call, and accepts only OMS manifests. Vetted needs the signed
  payload on its own: to compare digests computed while a download streams in, before
  any file is in place (DESIGN.md invariant 4), and to verify DSSE payloads that are not
  OMS manifests (provenance and safety-card attestations) with the same key and
  certificate verifiers. sigstore's public `Verifier.verify_dsse` does this for keyless
  bundles, but rejects the bundles model-signing writes in key and certificate mode.
- `model_signing._signing.signing.dsse_payload_to_manifest`: turns a verified OMS
  statement into per-file digests and serialization parameters (incl. the pre-1.0
  "Digests/v0.1" form), the half of the public `verify` that comes after the signature.
- `model_signing._signing.sign_ec_key.Signer.sign` and `sign_certificate.Signer.sign`
  with a hand-made payload: the public signing API signs only OMS manifests of a folder
  it hashes; attestations sign an in-toto statement Vetted builds, in the same bundle
  shape, so one verifier serves both.

sigstore itself is used only through its public API (`Bundle`, `TrustedRoot.from_file`,
`Verifier`, `policy.Identity`, `Hashed`). Known library behaviours this module works
around are written down in tests/fixtures/README.md and at each use.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vetted.errors import Refused
from vetted.trust.identity import CertificateChain, PublicKey, SigstoreIdentity

if TYPE_CHECKING:
    from model_signing import hashing
    from model_signing._signing import sign_sigstore_pb
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- errors


def refusal(what: str, exc: BaseException, action: str) -> Refused:
    """A library's exception as a `Refused`: its first line and its type, Vetted's advice."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Refused(what, f"{detail} [{type(exc).__name__}]", action)


@contextlib.contextmanager
def _quiet_library() -> Iterator[None]:
    """model_signing prints warnings to stdout; keep the CLI's one-line contract."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    if buf.getvalue().strip():
        log.warning("signature library said: %s", buf.getvalue().strip())


# --------------------------------------------------------------------------- Sigstore (keyless)


@dataclass(frozen=True)
class SigstoreBundle:
    """A parsed Sigstore bundle; only this module looks inside."""

    _bundle: Bundle = field(repr=False)

    def is_dsse(self) -> bool:
        """True for a DSSE envelope (an in-toto statement), False for a hashedrekord
        (a signature over one artifact's digest). Read from the public JSON form: the
        `Bundle` attribute holding it is private in sigstore 4.5.1."""
        return json.loads(self._bundle.to_json()).get("dsseEnvelope") is not None


def load_sigstore_bundle(raw: bytes) -> SigstoreBundle:
    """Parses a Sigstore bundle (JSON); a malformed one is `Refused`."""
    from sigstore.models import Bundle

    try:
        return SigstoreBundle(Bundle.from_json(raw))
    except Exception as exc:  # the library raises many types for malformed bundles
        raise refusal("reading the Sigstore bundle", exc, "the signature file is malformed") from None


def _sigstore_verifier(spec: SigstoreIdentity) -> Verifier:
    """A verifier over the spec's trusted root: always a file (sigstore 4.5.1 builds a
    `TrustedRoot` only from one), never sigstore's TUF cache or network."""
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    try:
        root = TrustedRoot.from_file(str(spec.root_path()))
    except Exception as exc:
        raise refusal(f"trusted root {spec.root_path()}", exc, "pass a valid trusted_root.json") from None
    return Verifier(trusted_root=root)


def verify_sigstore_dsse(bundle: SigstoreBundle, spec: SigstoreIdentity) -> tuple[str, bytes]:
    """Checks a keyless DSSE bundle against the spec's identity, issuer and trusted root;
    returns the signed (payload type, payload)."""
    from sigstore.verify import policy

    verifier = _sigstore_verifier(spec)
    try:
        with _quiet_library():
            return verifier.verify_dsse(
                bundle._bundle, policy.Identity(identity=spec.identity, issuer=spec.issuer)
            )
    except Exception as exc:
        raise refusal(
            f"Sigstore signature for {spec.describe()}",
            exc,
            "the file was not signed by this identity, or the bundle was altered",
        ) from None


def verify_sigstore_digest(bundle: SigstoreBundle, sha256_hex: str, spec: SigstoreIdentity) -> None:
    """Checks a keyless hashedrekord bundle: signed by the spec's identity, over a file
    whose sha256 is `sha256_hex` (the file itself is not needed)."""
    from sigstore.hashes import Hashed
    from sigstore.verify import policy
    from sigstore_models.common.v1 import HashAlgorithm

    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(sha256_hex))
    try:
        # the verifier is made inside the try, so a trusted-root refusal reads as one of
        # this signature (as it always has on this path)
        _sigstore_verifier(spec).verify_artifact(
            hashed, bundle._bundle, policy.Identity(identity=spec.identity, issuer=spec.issuer)
        )
    except Exception as exc:
        raise refusal(
            f"Sigstore signature for {spec.describe()}",
            exc,
            "the file was not signed by this identity, or file or bundle was altered",
        ) from None


# --------------------------------------------------------------------------- key and certificate modes


def _read_pb_signature(raw: bytes) -> sign_sigstore_pb.Signature:
    """The bundle as model_signing's key and certificate verifiers read it (from a path)."""
    from model_signing._signing import sign_sigstore_pb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.json"
        path.write_bytes(raw)
        try:
            return sign_sigstore_pb.Signature.read(path)
        except Exception as exc:
            raise refusal("reading the signature bundle", exc, "the signature file is malformed") from None


def _pb_verify(make_verifier: Callable[[Path], sign_sigstore_pb.Verifier], pem: bytes, loading: str,
               loading_action: str, signature: sign_sigstore_pb.Signature, checked: str,
               action: str) -> tuple[str, bytes]:
    """model_signing's key and certificate verifiers read PEM from a path; give them one."""
    with tempfile.TemporaryDirectory() as tmp:
        pem_path = Path(tmp) / "trust.pem"
        pem_path.write_bytes(pem)
        try:
            verifier = make_verifier(pem_path)
        except Exception as exc:
            raise refusal(loading, exc, loading_action) from None
    try:
        with _quiet_library():
            # private: the public verify() insists on an OMS manifest and re-hashes the model
            return verifier._verify_signed_content(signature)
    except Exception as exc:
        raise refusal(checked, exc, action) from None


def verify_key_dsse(raw: bytes, spec: PublicKey) -> tuple[str, bytes]:
    """Checks a key-mode bundle (what `model_signing sign key` writes) against the spec's
    public key; returns the signed (payload type, payload)."""
    from model_signing._signing import sign_ec_key

    signature = _read_pb_signature(raw)
    checked = f"signature against {spec.describe()}"
    return _pb_verify(
        sign_ec_key.Verifier, spec.key_pem, "loading the public key", "pass an EC public key in PEM form",
        signature, checked, "the file was not signed with this key, or the bundle was altered")


@dataclass(frozen=True)
class CertificateSigned:
    """A certificate-mode DSSE signature model_signing accepted against a chain."""

    payload_type: str
    payload: bytes
    chain_der: tuple[bytes, ...]  # the bundle's certificates (DER), signing certificate first


def verify_certificate_dsse(raw: bytes, spec: CertificateChain) -> CertificateSigned:
    """Checks a certificate-mode bundle's DSSE signature and its chain to the spec's PEM
    certificates, as model_signing 1.1.1 does: at the leaf's notBefore, with no identity
    check. The caller must check the rest (`vetted.trust.certs`) on `chain_der`."""
    from model_signing._signing import sign_certificate

    signature = _read_pb_signature(raw)
    material = getattr(signature.bundle, "verification_material", None)
    if getattr(material, "x509_certificate_chain", None) is None:
        raise Refused(f"certificate signature against {spec.describe()}",
                      "the signature carries no certificate chain (it was made with a key or keyless)",
                      "the pinned signer is a certificate chain: this was signed by someone else, or another way")
    payload_type, payload = _pb_verify(
        lambda path: sign_certificate.Verifier([path]), spec.chain_pem, "loading the certificate chain",
        "pass PEM certificates", signature, f"certificate signature against {spec.describe()}",
        "the signing certificate does not chain to the pinned CA, or the bundle was altered")
    try:
        chain_pb = signature.bundle.verification_material.x509_certificate_chain
        chain = tuple(bytes(c.raw_bytes) for c in chain_pb.certificates)  # type: ignore[union-attr]
    except (ValueError, TypeError, AttributeError) as exc:
        raise refusal("reading the bundle's certificates", exc, "the signature file is malformed") from None
    return CertificateSigned(payload_type, payload, chain)


# --------------------------------------------------------------------------- OMS manifests and hashing


@dataclass(frozen=True)
class OmsManifest:
    """What a (verified) OMS statement says: per-resource digests and how they were made."""

    model_name: str
    digests: dict[str, str]  # resource identifier ("file" or "file:start:end") -> hex
    serialization: dict[str, Any]  # method, hash_type, allow_symlinks, ignore_paths, shard_size…


def parse_oms_statement(statement: Mapping[str, Any]) -> OmsManifest:
    """Reads an OMS in-toto statement (v1.0, or the pre-1.0 Digests/v0.1 form); a
    statement model_signing cannot read is `Refused`. Checks no signature: verify first."""
    from model_signing._signing.signing import dsse_payload_to_manifest

    try:
        manifest = dsse_payload_to_manifest(dict(statement))
        return OmsManifest(
            model_name=manifest.model_name,
            digests={rd.identifier: rd.digest.digest_hex for rd in manifest.resource_descriptors()},
            serialization=dict(manifest.serialization_type),
        )
    except Exception as exc:
        raise Refused("model signature manifest", f"{exc} [{type(exc).__name__}]") from None


def _hashing_config(params: Mapping[str, Any], ignore: Sequence[str]) -> hashing.Config:
    from model_signing import hashing

    # model_signing writes shard_size as a float and then cannot use it (fixtures/README).
    ignore_all = list(params.get("ignore_paths", [])) + list(ignore)
    symlinks = bool(params.get("allow_symlinks", False))
    if params.get("method") == "shards":
        config = hashing.Config().use_shard_serialization(  # type: ignore[no-untyped-call]
            hashing_algorithm=params["hash_type"],
            shard_size=int(params["shard_size"]),
            allow_symlinks=symlinks,
        )
    else:
        config = hashing.Config().use_file_serialization(  # type: ignore[no-untyped-call]
            hashing_algorithm=params.get("hash_type", "sha256"), allow_symlinks=symlinks
        )
    return config.set_ignored_paths(paths=ignore_all)


def hash_model(path: Path, serialization: Mapping[str, Any], ignore: Sequence[str]) -> dict[str, str]:
    """Hashes a model folder (or single file) the way its signature was made
    (`serialization` as in `OmsManifest`), leaving out `ignore` (paths relative to it)."""
    try:
        actual = _hashing_config(serialization, ignore).hash(path)
    except Exception as exc:
        raise Refused(f"hashing {path}", f"{exc} [{type(exc).__name__}]") from None
    return {rd.identifier: rd.digest.digest_hex for rd in actual.resource_descriptors()}


# --------------------------------------------------------------------------- signing (publisher side)


def sign_model(path: Path, private_key: Path, out: Path, ignore: Sequence[str] = ()) -> None:
    """Writes an OMS signature of a file or folder with an EC private key (PEM) to `out`,
    exactly as `model_signing sign key` would; `ignore`: paths inside a folder left out."""
    import model_signing

    cfg = model_signing.signing.Config()  # type: ignore[no-untyped-call]
    cfg.use_elliptic_key_signer(private_key=private_key)
    if ignore:
        cfg.set_hashing_config(
            model_signing.hashing.Config().set_ignored_paths(paths=list(ignore))  # type: ignore[no-untyped-call]
        )
    cfg.sign(path, out)


def sign_statement(statement: Mapping[str, Any], private_key: Path) -> dict[str, Any]:
    """Signs an in-toto statement with an EC private key (PEM); returns the bundle as a
    JSON object, in the shape key-mode model signatures have (`verify_key_dsse` reads it)."""
    from model_signing._signing import sign_ec_key

    return _sign_statement_with(sign_ec_key.Signer(private_key), statement)


def _sign_statement_with(signer: Any, statement: Mapping[str, Any]) -> dict[str, Any]:
    """A model_signing key or certificate signer over a hand-made in-toto statement."""
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from in_toto_attestation.v1 import statement_pb2  # type: ignore[import-untyped]
    from model_signing._signing import signing

    pb = statement_pb2.Statement()
    json_format.ParseDict(dict(statement), pb)
    # what the signer reads: an object whose `.statement.pb` is the statement message
    payload = cast(signing.Payload, types.SimpleNamespace(statement=types.SimpleNamespace(pb=pb)))
    signature = cast("sign_sigstore_pb.Signature", signer.sign(payload))
    bundle: dict[str, Any] = json.loads(signature.bundle.to_json())
    return bundle


# An organisation's PKI signs in certificate mode: the bundle carries the signing
# certificate and the certificates linking it to the CA; a verifier pins the CA and the
# leaf's identity (vetted.trust.certs). model_signing reads PEM from paths; give it some.


@contextlib.contextmanager
def _certificate_files(certificate_pem: bytes, chain_pem: bytes) -> Iterator[tuple[Path, list[Path]]]:
    with tempfile.TemporaryDirectory() as tmp:
        leaf = Path(tmp) / "signing-certificate.pem"
        leaf.write_bytes(certificate_pem)
        chain: list[Path] = []
        if chain_pem.strip():
            chain.append(Path(tmp) / "chain.pem")
            chain[0].write_bytes(chain_pem)
        yield leaf, chain


def sign_model_certificate(path: Path, private_key: Path, certificate_pem: bytes, chain_pem: bytes, out: Path,
                           ignore: Sequence[str] = ()) -> None:
    """Writes an OMS signature of a file or folder in certificate mode, exactly as
    `model_signing sign certificate` would: `certificate_pem` is the signing (leaf)
    certificate alone, `chain_pem` the intermediates that go into the bundle with it."""
    import model_signing

    with _certificate_files(certificate_pem, chain_pem) as (leaf, chain):
        cfg = model_signing.signing.Config()  # type: ignore[no-untyped-call]
        cfg.use_certificate_signer(private_key=private_key, signing_certificate=leaf, certificate_chain=chain)
        if ignore:
            cfg.set_hashing_config(
                model_signing.hashing.Config().set_ignored_paths(paths=list(ignore))  # type: ignore[no-untyped-call]
            )
        cfg.sign(path, out)


def sign_statement_certificate(statement: Mapping[str, Any], private_key: Path, certificate_pem: bytes,
                               chain_pem: bytes) -> dict[str, Any]:
    """Signs an in-toto statement in certificate mode; the bundle has the shape
    certificate-mode model signatures have (`verify_certificate_dsse` reads it)."""
    from model_signing._signing import sign_certificate

    with _certificate_files(certificate_pem, chain_pem) as (leaf, chain):
        signer = sign_certificate.Signer(private_key, leaf, chain)
    return _sign_statement_with(signer, statement)
