"""The shipped Sigstore public-good trusted root is pinned by digest in code: no
environment variable and no file swap can replace it (a private Sigstore comes only
through an explicit --trusted-root)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from local_sigstore import LocalSigstore
from vetted.errors import Refused
from vetted.trust.identity import SigstoreIdentity
from vetted.trust.verify import verify_path

IDENTITY = "release@models.example"
ISSUER = "https://issuer.models.example"
ROOT_NAME = "sigstore-public-good.trusted_root.json"
SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "trust" / ROOT_NAME


@pytest.fixture
def other_sigstore(tmp_path: Path):
    """A keyless signature from another Sigstore, and a resources folder holding that
    Sigstore's root under the name of the shipped one."""
    store = LocalSigstore("other")
    fake_resources = tmp_path / "fake-resources"
    (fake_resources / "trust").mkdir(parents=True)
    store.trusted_root(fake_resources / "trust" / ROOT_NAME)
    artifact = tmp_path / "model.gguf"
    artifact.write_bytes(b"GGUF" + bytes(range(256)) * 100)
    signed = store.sign(artifact, IDENTITY, ISSUER, tmp_path / "model.gguf.sigstore.json")
    # the signature is good against its own root, given explicitly
    assert verify_path(signed.artifact, signed.bundle,
                       SigstoreIdentity(IDENTITY, ISSUER, fake_resources / "trust" / ROOT_NAME))
    return signed, fake_resources


def test_vetted_resources_cannot_replace_the_public_good_root(other_sigstore, monkeypatch) -> None:
    signed, fake_resources = other_sigstore
    monkeypatch.setenv("VETTED_RESOURCES", str(fake_resources))
    with pytest.raises(Refused, match=r"Sigstore signature for release@models\.example .*certificate chain"):
        verify_path(signed.artifact, signed.bundle, SigstoreIdentity(IDENTITY, ISSUER))


def test_vetted_resources_ignored_by_the_cli(other_sigstore, cli) -> None:
    signed, fake_resources = other_sigstore
    r = cli("verify", str(signed.artifact), "--signature", str(signed.bundle), "--identity", IDENTITY,
            "--issuer", ISSUER, env={"VETTED_RESOURCES": str(fake_resources)})
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("refused: Sigstore signature for release@models.example"), r.stdout
    # the explicit, documented way still selects a private Sigstore
    ok = cli("verify", str(signed.artifact), "--signature", str(signed.bundle), "--identity", IDENTITY,
             "--issuer", ISSUER, "--trusted-root", str(fake_resources / "trust" / ROOT_NAME))
    assert ok.returncode == 0, ok.stdout + ok.stderr


def _copy_of_resources(tmp_path: Path) -> Path:
    copy = tmp_path / "resources-copy"
    shutil.copytree(SHIPPED.parents[1], copy)
    return copy / "trust" / ROOT_NAME


def test_tampered_shipped_root_is_refused_with_both_digests(other_sigstore, tmp_path, monkeypatch) -> None:
    from vetted.trust import roots

    signed, fake_resources = other_sigstore
    copy = _copy_of_resources(tmp_path)
    # still a valid trusted root, plus the other Sigstore's CA: what a swap would add
    import json

    doc = json.loads(copy.read_text())
    other = json.loads((fake_resources / "trust" / ROOT_NAME).read_text())
    doc["certificateAuthorities"] += other["certificateAuthorities"]
    doc["tlogs"] += other["tlogs"]
    doc["ctlogs"] += other["ctlogs"]
    copy.write_text(json.dumps(doc, indent=2))
    found = hashlib.sha256(copy.read_bytes()).hexdigest()
    monkeypatch.setattr(roots, "SHIPPED_ROOT", copy)
    expected = f"expected sha256 {roots.PUBLIC_GOOD_SHA256}, found {found}"
    with pytest.raises(Refused, match=expected):
        roots.public_good_bytes()
    with pytest.raises(Refused, match=expected):
        verify_path(signed.artifact, signed.bundle, SigstoreIdentity(IDENTITY, ISSUER))


def test_pinned_digest_is_the_shipped_file() -> None:
    from vetted.trust import roots

    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == roots.PUBLIC_GOOD_SHA256


def test_sigstore_reads_a_private_copy_of_the_checked_bytes(tmp_path, monkeypatch) -> None:
    from vetted.trust import roots

    copy = _copy_of_resources(tmp_path)
    monkeypatch.setattr(roots, "SHIPPED_ROOT", copy)
    path = SigstoreIdentity(IDENTITY, ISSUER).root_path()
    assert path != copy and path.read_bytes() == SHIPPED.read_bytes()
    # a swap after the check changes nothing: the checked bytes were kept
    copy.write_text("{}")
    assert SigstoreIdentity(IDENTITY, ISSUER).root_path().read_bytes() == SHIPPED.read_bytes()
    # and the private copy is rewritten if it is altered
    path.write_text("{}")
    again = SigstoreIdentity(IDENTITY, ISSUER).root_path()
    assert again.read_bytes() == SHIPPED.read_bytes()
    assert (again.parent.stat().st_mode & 0o077) == 0  # a folder only this user can enter
