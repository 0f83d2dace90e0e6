"""Keyless signatures made inside the test suite by a local test Sigstore verify with the
right identity and issuer, and are refused with a wrong identity, a wrong issuer,
another trusted root, or a changed byte — through the API and through `vetted verify`."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_sigstore import LocalSigstore
from vetted.errors import Refused
from vetted.trust.identity import SigstoreIdentity
from vetted.trust.verify import verify_path

IDENTITY = "release@models.example"
ISSUER = "https://issuer.models.example"


@pytest.fixture
def signed(tmp_path: Path):
    store = LocalSigstore("one")
    root = store.trusted_root(tmp_path / "trusted_root.json")
    artifact = tmp_path / "model.gguf"
    artifact.write_bytes(b"GGUF" + bytes(range(256)) * 400)
    s = store.sign(artifact, IDENTITY, ISSUER, tmp_path / "model.gguf.sigstore.json")
    return s, root


def test_verifies_with_the_right_identity_and_issuer(signed) -> None:
    s, root = signed
    verdict = verify_path(s.artifact, s.bundle, SigstoreIdentity(IDENTITY, ISSUER, root))
    assert verdict.kind == "file" and IDENTITY in verdict.signer


def test_uri_identity_like_a_ci_workflow(tmp_path: Path) -> None:
    store = LocalSigstore("ci")
    root = store.trusted_root(tmp_path / "root.json")
    art = tmp_path / "a.bin"
    art.write_bytes(b"x" * 1000)
    wf = "https://github.com/example/models/.github/workflows/release.yml@refs/tags/v1"
    s = store.sign(art, wf, "https://token.actions.githubusercontent.com", tmp_path / "a.sig")
    assert verify_path(art, s.bundle, SigstoreIdentity(wf, "https://token.actions.githubusercontent.com", root))


@pytest.mark.parametrize("identity, issuer, match", [
    ("mallory@models.example", ISSUER, "SANs do not match"),
    (IDENTITY, "https://accounts.evil.example", "OIDCIssuer does not match"),
])
def test_wrong_identity_or_issuer_refused(signed, identity, issuer, match) -> None:
    s, root = signed
    with pytest.raises(Refused, match=match):
        verify_path(s.artifact, s.bundle, SigstoreIdentity(identity, issuer, root))


def test_another_trusted_root_refused(signed, tmp_path: Path) -> None:
    s, _root = signed
    other = LocalSigstore("two").trusted_root(tmp_path / "other_root.json")
    with pytest.raises(Refused, match="certificate chain"):
        verify_path(s.artifact, s.bundle, SigstoreIdentity(IDENTITY, ISSUER, other))
    with pytest.raises(Refused, match="certificate chain"):  # nor does the public-good root
        verify_path(s.artifact, s.bundle, SigstoreIdentity(IDENTITY, ISSUER))


def test_changed_byte_refused(signed) -> None:
    s, root = signed
    data = bytearray(s.artifact.read_bytes())
    data[500] ^= 0x01
    s.artifact.write_bytes(bytes(data))
    with pytest.raises(Refused, match="message digest mismatch"):
        verify_path(s.artifact, s.bundle, SigstoreIdentity(IDENTITY, ISSUER, root))


def test_cli(signed, cli, tmp_path: Path) -> None:
    s, root = signed

    def verify(artifact: Path, trusted_root: Path, identity: str = IDENTITY):
        return cli("verify", str(artifact), "--signature", str(s.bundle), "--identity", identity,
                   "--issuer", ISSUER, "--trusted-root", str(trusted_root))

    ok = verify(s.artifact, root)
    assert ok.returncode == 0 and ok.stdout.startswith("verified:") and IDENTITY in ok.stdout
    other = LocalSigstore("two").trusted_root(tmp_path / "other_root.json")
    changed = tmp_path / "changed.gguf"
    data = bytearray(s.artifact.read_bytes())
    data[-1] ^= 0x01
    changed.write_bytes(bytes(data))
    for bad, names in [(verify(s.artifact, root, "mallory@models.example"), "SANs do not match"),
                       (verify(s.artifact, other), "certificate chain"),
                       (verify(changed, root), "digest mismatch")]:
        assert bad.returncode == 1 and bad.stdout.startswith("refused:"), bad
        assert bad.stdout.count("\n") == 1 and names in bad.stdout, bad.stdout


def test_leaf_carries_what_fulcio_puts_there(tmp_path: Path) -> None:
    """The OIDC issuer in both Fulcio extensions (1.1 raw, 1.8 DER UTF8String, here longer
    than 127 bytes so DER needs the long length form), code signing, and an embedded SCT."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from sigstore.verify.policy import OIDCIssuer, OIDCIssuerV2

    issuer = "https://issuer.models.example/" + "tenant/" * 20
    cert = LocalSigstore("x").issue(IDENTITY, issuer, ec.generate_private_key(ec.SECP256R1()))
    OIDCIssuer(issuer).verify(cert)
    OIDCIssuerV2(issuer).verify(cert)
    assert x509.ExtendedKeyUsageOID.CODE_SIGNING in cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    scts = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert [sct.entry_type for sct in scts] == [x509.certificate_transparency.LogEntryType.PRE_CERTIFICATE]


def test_keyless_in_toto_statement_over_a_file(signed, tmp_path: Path) -> None:
    """A DSSE bundle whose in-toto subject is the file's sha256 verifies like a plain one."""
    import hashlib

    s, root = signed
    digest = hashlib.sha256(s.artifact.read_bytes()).hexdigest()
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": s.artifact.name, "digest": {"sha256": digest}}],
                 "predicateType": "https://vetted.test/release/v1", "predicate": {}}
    store = LocalSigstore("one-dsse")
    root = store.trusted_root(tmp_path / "dsse_root.json")
    bundle = store.sign_statement(statement, IDENTITY, ISSUER, tmp_path / "model.gguf.intoto.json")
    verdict = verify_path(s.artifact, bundle, SigstoreIdentity(IDENTITY, ISSUER, root))
    assert verdict.kind == "file" and verdict.files == {s.artifact.name: digest}
    with pytest.raises(Refused, match="SANs do not match"):
        verify_path(s.artifact, bundle, SigstoreIdentity("mallory@models.example", ISSUER, root))
    s.artifact.write_bytes(s.artifact.read_bytes() + b"\x00")
    with pytest.raises(Refused, match="not among the signed subjects"):
        verify_path(s.artifact, bundle, SigstoreIdentity(IDENTITY, ISSUER, root))


@pytest.mark.parametrize("field, match", [
    ("integratedTime", "SET: invalid inclusion promise"),
    ("checkpoint", "checkpoint"),
])
def test_tampered_log_entry_refused(signed, field, match) -> None:
    import json

    s, root = signed
    doc = json.loads(s.bundle.read_text())
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    if field == "integratedTime":
        entry["integratedTime"] = str(int(entry["integratedTime"]) + 60)
    else:
        env = entry["inclusionProof"]["checkpoint"]["envelope"]
        entry["inclusionProof"]["checkpoint"]["envelope"] = env.replace("\n1\n", "\n2\n", 1)
    s.bundle.write_text(json.dumps(doc))
    with pytest.raises(Refused, match=match):
        verify_path(s.artifact, s.bundle, SigstoreIdentity(IDENTITY, ISSUER, root))


def test_keyless_oms_model_signature_from_a_private_sigstore(tmp_path: Path) -> None:
    from local_sigstore import oms_statement

    store = LocalSigstore("org")
    root = store.trusted_root(tmp_path / "org_root.json")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.gguf").write_bytes(b"GGUF" + b"\x01" * 5000)
    sig = store.sign_statement(oms_statement(model), IDENTITY, ISSUER, tmp_path / "model.sig")
    verdict = verify_path(model, sig, SigstoreIdentity(IDENTITY, ISSUER, root))
    assert verdict.kind == "model (OMS)" and set(verdict.files) == {"weights.gguf"}
    (model / "weights.gguf").write_bytes(b"GGUF" + b"\x02" * 5000)
    with pytest.raises(Refused, match="changed: weights.gguf"):
        verify_path(model, sig, SigstoreIdentity(IDENTITY, ISSUER, root))


def test_catalog_with_a_private_sigstore_root_installs_keyless_signed_models(tmp_path: Path, loc, db,
                                                                               signing_key) -> None:
    """An organisation's catalog names keyless publishers of its own Sigstore; the catalog's
    subscription carries that trusted root, and pulls verify against it (and only it)."""
    from catalog_kit import build, make_model
    from local_sigstore import oms_statement
    from vetted.catalog.signed import load
    from vetted.install.pull import pull
    from vetted.store import installed
    from vetted.trust.identity import PublicKey

    store = LocalSigstore("corp")
    root = store.trusted_root(tmp_path / "corp_root.json")
    weights = make_model(tmp_path / "src", "corp.gguf", 300_000)
    sig = store.sign_statement(oms_statement(weights), IDENTITY, ISSUER, tmp_path / "corp.sig")
    cat = build(tmp_path / "cat", signing_key[0], models=[{
        "id": "corp", "name": "Corp", "publisher": "Corp", "license": "MIT", "path": str(weights),
        "signature_path": str(sig), "signer": {"kind": "sigstore", "identity": IDENTITY, "issuer": ISSUER}}],
        trusted_root=str(root))  # the build verifies the publisher's signature against the private root
    catalog_key = PublicKey(signing_key[1].read_bytes())

    with pytest.raises(Refused, match="Sigstore signature"):  # the public-good root does not vouch for it
        pull(loc, db, load(str(cat), catalog_key, db), "corp")
    result = pull(loc, db, load(str(cat), catalog_key, db, trusted_root=root), "corp")
    assert IDENTITY in result.model.signer
    assert installed.check(db, "corp", full=True).rehashed == ["corp.gguf"]  # re-check uses the same root
