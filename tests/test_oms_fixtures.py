"""Real OpenSSF Model Signing signatures (tests/fixtures/oms) verify with their
documented signer and are refused with any other signer or any change to the files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES
from vetted.errors import Refused
from vetted.trust.identity import CertificateChain, PublicKey, SigstoreIdentity
from vetted.trust.verify import verify_path

OMS = FIXTURES / "oms"
KEYS = OMS / "keys"
CASES = sorted(p.name for p in OMS.iterdir() if p.is_dir() and p.name.startswith("v"))

SIGSTORE_ID = SigstoreIdentity("stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2")


def right_spec(case: str):
    if case.endswith("sigstore"):
        return SIGSTORE_ID
    if case.endswith("certificate"):
        # the signing certificate has no SAN: its exact subject DN is the identity
        return CertificateChain((KEYS / "ca-cert.pem").read_bytes() + (KEYS / "int-ca-cert.pem").read_bytes(),
                                "CN=intermediate-ca")
    return PublicKey((KEYS / "signing-key-pub.pem").read_bytes())


def wrong_specs(case: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other_key = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if case.endswith("sigstore"):
        return [
            SigstoreIdentity("someone-else@us.ibm.com", SIGSTORE_ID.issuer),
            SigstoreIdentity(SIGSTORE_ID.identity, "https://accounts.google.com"),
        ]
    if case.endswith("certificate"):
        return [
            # a chain that does not lead to the signer (its own root only, without the intermediate
            # it is still the same PKI, so use an unrelated CA: the OMS key cert's issuer differs)
            CertificateChain(_unrelated_ca(), "CN=intermediate-ca"),
            # right chain, wrong leaf identity (model_signing does not check this; Vetted must)
            CertificateChain((KEYS / "ca-cert.pem").read_bytes() + (KEYS / "int-ca-cert.pem").read_bytes(),
                             "release-signer@example.com"),
        ]
    return [PublicKey(other_key)]


def _unrelated_ca() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unrelated-root")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=3650))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def copy_case(case: str, tmp_path: Path) -> Path:
    dest = tmp_path / case
    shutil.copytree(OMS / case, dest)
    return dest


@pytest.mark.parametrize("case", CASES)
def test_verifies_with_documented_signer(case: str) -> None:
    model = OMS / case
    verdict = verify_path(model, model / "model.sig", right_spec(case), ["ignore-me"])
    assert set(verdict.files) == {"signme-1", "signme-2"}
    assert verdict.line().startswith(f"verified: model {model}")


@pytest.mark.parametrize("case", CASES)
def test_refused_with_wrong_signer(case: str) -> None:
    model = OMS / case
    for spec in wrong_specs(case):
        with pytest.raises(Refused):
            verify_path(model, model / "model.sig", spec, ["ignore-me"])


@pytest.mark.parametrize("case", CASES)
def test_refused_after_a_changed_byte(case: str, tmp_path: Path) -> None:
    model = copy_case(case, tmp_path)
    data = bytearray((model / "signme-1").read_bytes())
    data[len(data) // 2] ^= 0x01
    (model / "signme-1").write_bytes(bytes(data))
    with pytest.raises(Refused, match="changed: signme-1"):
        verify_path(model, model / "model.sig", right_spec(case), ["ignore-me"])


@pytest.mark.parametrize("case", CASES)
def test_refused_with_an_extra_file(case: str, tmp_path: Path) -> None:
    model = copy_case(case, tmp_path)
    (model / "extra.bin").write_bytes(b"not signed")
    with pytest.raises(Refused, match="not signed: extra.bin"):
        verify_path(model, model / "model.sig", right_spec(case), ["ignore-me"])


@pytest.mark.parametrize("case", CASES)
def test_refused_with_a_missing_file(case: str, tmp_path: Path) -> None:
    model = copy_case(case, tmp_path)
    (model / "signme-2").unlink()
    with pytest.raises(Refused, match="missing: signme-2"):
        verify_path(model, model / "model.sig", right_spec(case), ["ignore-me"])


def test_unsigned_file_refused_without_ignore_path_when_signature_does_not_record_it() -> None:
    """v1.0.1 signatures do not record ignored paths: `ignore-me` must be named by the caller."""
    model = OMS / "v1.0.1-elliptic-key"
    with pytest.raises(Refused, match="not signed: ignore-me"):
        verify_path(model, model / "model.sig", right_spec(model.name))


def test_certificate_leaf_identity_is_checked() -> None:
    """The fixture's leaf has no SAN; its subject DN may be pinned, anything else is refused."""
    model = OMS / "v1.1.0-certificate"
    chain = (KEYS / "ca-cert.pem").read_bytes() + (KEYS / "int-ca-cert.pem").read_bytes()
    ok = verify_path(model, model / "model.sig", CertificateChain(chain, "CN=intermediate-ca"))
    assert "CN=intermediate-ca" in ok.signer
    with pytest.raises(Refused, match="signing certificate identity"):
        verify_path(model, model / "model.sig", CertificateChain(chain, "CN=someone-else"))
