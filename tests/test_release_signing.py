"""Signed releases, verified by Vetted (issue 12): the release workflow signs each installer
with Sigstore keyless under its own GitHub Actions identity, and anyone checks a download with
`vetted verify FILE --signature FILE.sigstore.json --identity <workflow> --issuer <GitHub>`.
Here a local test Sigstore (tests/local_sigstore.py) plays Fulcio and Rekor for that identity,
over the real .deb when `make package` has built one (tests/test_packaging.py runs first), else
over a stand-in file."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT
from local_sigstore import LocalSigstore

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
WORKFLOW = ".github/workflows/release.yml"
IDENTITY = f"https://github.com/vetted-dev/vetted/{WORKFLOW}@refs/tags/v{VERSION}"
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture
def release(tmp_path: Path):
    """An installer and its `.sigstore.json`, signed as the release workflow signs it."""
    built = ROOT / "dist" / f"vetted_{VERSION}_amd64.deb"
    artifact = tmp_path / built.name
    if built.is_file():
        shutil.copyfile(built, artifact)
    else:  # no build here: a stand-in of the same name
        artifact.write_bytes(b"!<arch>\ndebian-binary   " + bytes(range(256)) * 4096)
    store = LocalSigstore("release")
    root = store.trusted_root(tmp_path / "trusted_root.json")
    signed = store.sign(artifact, IDENTITY, ISSUER, tmp_path / f"{artifact.name}.sigstore.json")
    return signed.artifact, signed.bundle, root


def verify(cli, artifact: Path, bundle: Path, root: Path | None, identity: str = IDENTITY, issuer: str = ISSUER):
    extra = ["--trusted-root", str(root)] if root else []
    return cli("verify", str(artifact), "--signature", str(bundle), "--identity", identity, "--issuer", issuer, *extra)


def test_release_artifact_verifies_with_the_workflow_identity(release, cli) -> None:
    artifact, bundle, root = release
    ok = verify(cli, artifact, bundle, root)
    assert ok.returncode == 0, ok
    assert ok.stdout.startswith("verified: ") and IDENTITY in ok.stdout and ok.stdout.count("\n") == 1


@pytest.mark.parametrize("identity, issuer", [
    (IDENTITY.replace("refs/tags/", "refs/heads/"), ISSUER),             # the same workflow on a branch
    (IDENTITY.replace("vetted-dev/vetted", "vetted-dev/vetted-fork"), ISSUER),  # another repository
    (IDENTITY.replace("release.yml", "ci.yml"), ISSUER),                 # another workflow
    (IDENTITY, "https://accounts.google.com"),                           # another issuer
])
def test_another_identity_or_issuer_is_refused(release, cli, identity: str, issuer: str) -> None:
    artifact, bundle, root = release
    bad = verify(cli, artifact, bundle, root, identity, issuer)
    assert bad.returncode == 1 and bad.stdout.startswith("refused: "), bad


def test_tampered_artifact_is_refused(release, cli) -> None:
    artifact, bundle, root = release
    with open(artifact, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0x01]))
    bad = verify(cli, artifact, bundle, root)
    assert bad.returncode == 1 and bad.stdout.startswith("refused: ") and "digest mismatch" in bad.stdout, bad


def test_a_test_sigstore_signature_is_not_a_public_good_one(release, cli) -> None:
    """Without --trusted-root, Vetted checks against the pinned public-good root only."""
    artifact, bundle, _root = release
    bad = verify(cli, artifact, bundle, None)
    assert bad.returncode == 1 and "certificate chain" in bad.stdout, bad


def test_release_workflow_signs_with_the_identity_users_are_told_to_check() -> None:
    """The workflow documented for users exists at the path its identity names, may request an
    OIDC token, and signs every artifact with Sigstore into FILE.sigstore.json."""
    text = (ROOT / WORKFLOW).read_text("utf-8")
    assert re.search(r"^\s*id-token:\s*write\s*(#.*)?$", text, re.M)
    assert re.search(r"^\s*tags:\s*\[?\s*[\"']?v\*", text, re.M)  # releases are tags vX.Y.Z
    assert "sigstore sign" in text and ".sigstore.json" in text
    notes = ROOT / "packaging" / "README.md"
    assert "token.actions.githubusercontent.com" in notes.read_text("utf-8")
