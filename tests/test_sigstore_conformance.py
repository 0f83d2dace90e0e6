"""The official Sigstore client conformance cases: `_fail` folders refused, the rest verified."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES
from vetted.errors import Refused
from vetted.trust.identity import SigstoreIdentity
from vetted.trust.verify import verify_path

CONF = FIXTURES / "sigstore-conformance"
DEFAULT_IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
                    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"

# Cases that need a managed key plus a transparency-log check, which sigstore-python 4.5.1
# cannot verify (it has no key-based bundle verification).
MANAGED_KEY = {"managed-key-and-trusted-root", "managed-key-happy-path",
               "managed-key-no-key_fail", "managed-key-wrong-key_fail"}
# Valid cases that sigstore-python 4.5.1 itself rejects (library limitations, named in the
# issue note). The test pins the library's exact reason, so an upgrade that fixes them shows up.
LIBRARY_FAILS = {
    "intoto-with-custom-trust-root": "Integrated time only supported for dsse/hashedrekord",
    "trust-root-tsa-validity-end-inclusive": "not enough sources of verified time",
}

CASES = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in MANAGED_KEY)


def _read(case: Path, name: str, default: str) -> str:
    f = case / name
    return f.read_text().strip() if f.exists() else default


@pytest.mark.parametrize("name", CASES)
def test_conformance_case(name: str) -> None:
    case = CONF / name
    artifact = case / "artifact" if (case / "artifact").exists() else CONF / "a.txt"
    root = case / "trusted_root.json" if (case / "trusted_root.json").exists() else None
    spec = SigstoreIdentity(_read(case, "identity", DEFAULT_IDENTITY), _read(case, "issuer", DEFAULT_ISSUER), root)
    if name in LIBRARY_FAILS:
        with pytest.raises(Refused, match=LIBRARY_FAILS[name]):
            verify_path(artifact, case / "bundle.sigstore.json", spec)
    elif name.endswith("_fail"):
        with pytest.raises(Refused):
            verify_path(artifact, case / "bundle.sigstore.json", spec)
    else:
        verdict = verify_path(artifact, case / "bundle.sigstore.json", spec)
        assert spec.identity in verdict.signer


def test_case_count_covers_the_suite() -> None:
    assert len(CASES) + len(MANAGED_KEY) == sum(1 for p in CONF.iterdir() if p.is_dir())
    assert len(CASES) >= 60


def test_real_rfc8785_wheel_verifies_against_its_release_workflow() -> None:
    wheel = FIXTURES / "sigstore-python" / "bundle_v3_github.whl"
    ident = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
    verdict = verify_path(wheel, Path(f"{wheel}.sigstore"), SigstoreIdentity(ident, DEFAULT_ISSUER))
    assert verdict.kind == "file" and ident in verdict.signer


def test_rfc8785_wheel_refused_for_another_workflow_or_tag() -> None:
    wheel = FIXTURES / "sigstore-python" / "bundle_v3_github.whl"
    other = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.3"
    with pytest.raises(Refused, match="rfc8785"):
        verify_path(wheel, Path(f"{wheel}.sigstore"), SigstoreIdentity(other, DEFAULT_ISSUER))


def test_rfc8785_wheel_refused_after_a_changed_byte(tmp_path: Path) -> None:
    wheel = FIXTURES / "sigstore-python" / "bundle_v3_github.whl"
    data = bytearray(wheel.read_bytes())
    data[100] ^= 0xFF
    copy = tmp_path / wheel.name
    copy.write_bytes(bytes(data))
    ident = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
    with pytest.raises(Refused):
        verify_path(copy, Path(f"{wheel}.sigstore"), SigstoreIdentity(ident, DEFAULT_ISSUER))
