"""Signatures made by the `model_signing` library itself (what publishers run) verify in
Vetted, through the API and through `vetted verify` with its documented exit codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pki import OrgPKI, sign_with_certificate
from vetted.errors import Refused
from vetted.authoring.publish import generate_key, sign_file_or_folder
from vetted.trust.identity import CertificateChain, PublicKey
from vetted.trust.verify import verify_path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    m = tmp_path / "model"
    m.mkdir()
    (m / "weights.gguf").write_bytes(os.urandom(300_000))
    (m / "config.json").write_text('{"arch": "llama"}')
    return m


def test_key_mode_signature_verifies_and_is_bound_to_the_key(model_dir: Path, tmp_path: Path) -> None:
    priv, pub = generate_key(tmp_path / "k1")
    sign_file_or_folder(model_dir, priv, model_dir / "model.sig")
    verdict = verify_path(model_dir, model_dir / "model.sig", PublicKey(pub.read_bytes()))
    assert set(verdict.files) == {"weights.gguf", "config.json"}

    _, other_pub = generate_key(tmp_path / "k2")
    with pytest.raises(Refused, match="Key mismatch|signature"):
        verify_path(model_dir, model_dir / "model.sig", PublicKey(other_pub.read_bytes()))


def test_single_file_key_signature(model_dir: Path, tmp_path: Path) -> None:
    priv, pub = generate_key(tmp_path / "k")
    f = model_dir / "weights.gguf"
    sign_file_or_folder(f, priv, tmp_path / "weights.sig")
    assert verify_path(f, tmp_path / "weights.sig", PublicKey(pub.read_bytes())).files
    f.write_bytes(f.read_bytes()[:-1] + b"\x00")
    with pytest.raises(Refused, match="changed"):
        verify_path(f, tmp_path / "weights.sig", PublicKey(pub.read_bytes()))


def test_certificate_mode_checks_chain_and_leaf_identity(model_dir: Path, tmp_path: Path) -> None:
    pki = OrgPKI.create(tmp_path / "pki")
    sign_with_certificate(model_dir, pki, model_dir / "model.sig")
    chain = pki.root.read_bytes() + pki.intermediate.read_bytes()

    ok = verify_path(model_dir, model_dir / "model.sig", CertificateChain(chain, "release-signer@example.com"))
    assert "release-signer@example.com" in ok.signer

    with pytest.raises(Refused, match=r"expected e-mail identity intern@example.com, the certificate's e-mail SANs"
                                      r" are \['release-signer@example.com'\]"):
        verify_path(model_dir, model_dir / "model.sig", CertificateChain(chain, "intern@example.com"))

    other = OrgPKI.create(tmp_path / "other-pki")
    with pytest.raises(Refused, match="certificate signature"):
        verify_path(model_dir, model_dir / "model.sig",
                    CertificateChain(other.root.read_bytes() + other.intermediate.read_bytes(),
                                     "release-signer@example.com"))


def test_cli_exit_codes(model_dir: Path, tmp_path: Path, cli) -> None:
    priv, pub = generate_key(tmp_path / "k")
    sign_file_or_folder(model_dir, priv, model_dir / "model.sig")

    ok = cli("verify", str(model_dir), "--signature", str(model_dir / "model.sig"), "--key", str(pub))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("\n") == 1 and ok.stdout.startswith("verified: model")

    (model_dir / "config.json").write_text('{"arch": "evil"}')
    bad = cli("verify", str(model_dir), "--signature", str(model_dir / "model.sig"), "--key", str(pub))
    assert bad.returncode == 1
    assert bad.stdout.count("\n") == 1 and "changed: config.json" in bad.stdout

    usage = cli("verify", str(model_dir), "--signature", str(model_dir / "model.sig"))
    assert usage.returncode == 2 and "exactly one of" in usage.stderr
    two = cli("verify", str(model_dir), "--signature", str(model_dir / "model.sig"), "--key", str(pub),
              "--identity", "a", "--issuer", "b")
    assert two.returncode == 2
    missing = cli("verify", str(tmp_path / "nope"), "--signature", str(model_dir / "model.sig"), "--key", str(pub))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unreadable_sig = cli("verify", str(model_dir), "--signature", str(tmp_path / "nope.sig"), "--key", str(pub))
    assert unreadable_sig.returncode == 2


def test_cli_cert_chain_and_ignore_path(model_dir: Path, tmp_path: Path, cli) -> None:
    pki = OrgPKI.create(tmp_path / "pki")
    sig = tmp_path / "model.sig"
    sign_with_certificate(model_dir, pki, sig)
    (model_dir / "notes.txt").write_text("added later, not signed")
    args = ["verify", str(model_dir), "--signature", str(sig),
            "--cert-chain", str(pki.root), "--cert-chain", str(pki.intermediate),
            "--cert-identity", "release-signer@example.com"]
    refused = cli(*args)
    assert refused.returncode == 1 and "not signed: notes.txt" in refused.stdout
    ok = cli(*args, "--ignore-path", "notes.txt")
    assert ok.returncode == 0 and "release-signer@example.com" in ok.stdout
    wrong = cli(*args[:-1], "someone@example.com", "--ignore-path", "notes.txt")
    assert wrong.returncode == 1 and "signing certificate identity" in wrong.stdout


def test_cli_on_real_fixtures(cli) -> None:
    from conftest import FIXTURES

    m = FIXTURES / "oms" / "v1.1.0-sigstore"
    ok = cli("verify", str(m), "--signature", str(m / "model.sig"),
             "--identity", "stefanb@us.ibm.com", "--issuer", "https://sigstore.verify.ibm.com/oauth2")
    assert ok.returncode == 0 and "stefanb@us.ibm.com" in ok.stdout
    bad = cli("verify", str(m), "--signature", str(m / "model.sig"),
              "--identity", "mallory@example.com", "--issuer", "https://sigstore.verify.ibm.com/oauth2")
    assert bad.returncode == 1 and bad.stdout.startswith("refused:")
    garbage = cli("verify", str(m), "--signature", str(FIXTURES / "README.md"), "--key",
                  str(FIXTURES / "oms" / "keys" / "signing-key-pub.pem"))
    assert garbage.returncode == 1 and "malformed" in garbage.stdout
