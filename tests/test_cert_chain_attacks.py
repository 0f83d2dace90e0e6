"""Certificate-chain signers an attacker inside (or beside) the organisation's PKI cannot
walk through: expired, not-yet-valid or non-code-signing leaves, a chain pinned without
an identity, and names whose SAN type differs from the pinned identity's.

Every model here is signed by `model_signing`'s own certificate signer with a throwaway
PKI (tests/pki.py); nothing is mocked except, in the install test, the clock of the
certificate check while the model is pulled "two days ago".
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from catalog_kit import build, make_model
from conftest import FIXTURES
from pki import DAY, OrgPKI, sign_with_certificate
from vetted.errors import CatalogError, InputError, Refused
from vetted.trust.identity import CertificateChain, from_json
from vetted.trust.verify import verify_path

ALICE = "alice@example.com"
SUBJECT = "CN=model release signer,O=Example Org"  # tests/pki.py's leaf subject, RFC 4514
OMS = FIXTURES / "oms"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def pki(tmp_path: Path) -> OrgPKI:
    return OrgPKI.create(tmp_path / "pki")


def signed_model(tmp_path: Path, leaf: OrgPKI, name: str = "model") -> tuple[Path, Path]:
    """A two-file model folder signed by `leaf`, with the signature beside it."""
    model = tmp_path / name
    model.mkdir()
    (model / "weights.gguf").write_bytes(b"GGUF" + os.urandom(50_000))
    (model / "config.json").write_text('{"arch": "llama"}')
    sig = tmp_path / f"{name}.sig"
    sign_with_certificate(model, leaf, sig)
    return model, sig


def verify(model: Path, sig: Path, pki: OrgPKI, identity: str):
    return verify_path(model, sig, CertificateChain(pki.anchors, identity))


# --- time and key usage -------------------------------------------------------------------

def test_expired_leaf_is_refused(pki: OrgPKI, tmp_path: Path, cli) -> None:
    leaf = pki.issue("expired", sans=[x509.RFC822Name(ALICE)], not_before=now() - 2 * DAY,
                     not_after=now() - DAY)
    model, sig = signed_model(tmp_path, leaf)
    with pytest.raises(Refused, match=rf"signing certificate {SUBJECT}: expired on \d{{4}}-\d\d-\d\d .*"
                                      rf"\(valid \d{{4}}-\d\d-\d\d .* – \d{{4}}-\d\d-\d\d .*; checked as of "):
        verify(model, sig, pki, ALICE)
    out = cli("verify", str(model), "--signature", str(sig), "--cert-chain", str(pki.root),
              "--cert-chain", str(pki.intermediate), "--cert-identity", ALICE)
    assert out.returncode == 1 and out.stdout.startswith("refused: signing certificate") and "expired on" in out.stdout


def test_not_yet_valid_leaf_is_refused(pki: OrgPKI, tmp_path: Path) -> None:
    leaf = pki.issue("future", sans=[x509.RFC822Name(ALICE)], not_before=now() + DAY,
                     not_after=now() + 30 * DAY)
    model, sig = signed_model(tmp_path, leaf)
    with pytest.raises(Refused, match=rf"signing certificate {SUBJECT}: not valid until \d{{4}}-\d\d-\d\d"):
        verify(model, sig, pki, ALICE)


def test_tls_server_certificate_is_refused_even_with_a_matching_identity(pki: OrgPKI, tmp_path: Path) -> None:
    """A web server's certificate from the same CA has KeyUsage digitalSignature, which is
    all model_signing asks for; it must not sign models."""
    leaf = pki.issue("tls", sans=[x509.DNSName("models.example.com")], eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                     cn="models.example.com")
    model, sig = signed_model(tmp_path, leaf)
    for identity in ("models.example.com", "dns:models.example.com"):
        with pytest.raises(Refused, match=r"signing certificate CN=models.example.com,O=Example Org: has no "
                                          r"code-signing EKU \(it is a TLS server certificate: serverAuth\)"):
            verify(model, sig, pki, identity)


def test_expired_intermediate_is_refused(tmp_path: Path) -> None:
    """The whole chain is checked now, not only the leaf (model_signing checks it at the
    leaf's notBefore, when this intermediate was still valid)."""
    pki = OrgPKI.create(tmp_path / "pki", intermediate_window=(now() - 20 * DAY, now() - DAY))
    leaf = pki.issue("late", sans=[x509.RFC822Name(ALICE)], not_before=now() - 10 * DAY,
                     not_after=now() + 30 * DAY)
    model, sig = signed_model(tmp_path, leaf)
    with pytest.raises(Refused, match=rf"certificate chain of {SUBJECT} to the pinned CA\(s\) .*outside their "
                                      r"validity then: CN=Example Signing CA,O=Example Org \(valid "):
        verify(model, sig, pki, ALICE)


def test_verification_time_is_the_first_verification_capped_at_now(pki: OrgPKI, tmp_path: Path) -> None:
    """`at` is when the signature was first verified; a time in the future is not believed."""
    from vetted.trust.oms import signed_manifest

    expired = pki.issue("expired", sans=[x509.RFC822Name(ALICE)], not_before=now() - 3 * DAY,
                        not_after=now() - DAY)
    model, sig = signed_model(tmp_path, expired, "old")
    spec = CertificateChain(pki.anchors, ALICE)
    assert signed_manifest(sig.read_bytes(), spec, now() - 2 * DAY).signer == f"{ALICE} (certificate chain)"
    with pytest.raises(Refused, match="expired on"):
        signed_manifest(sig.read_bytes(), spec)

    future = pki.issue("future", sans=[x509.RFC822Name(ALICE)], not_before=now() + DAY,
                       not_after=now() + 30 * DAY)
    model, sig = signed_model(tmp_path, future, "new")
    with pytest.raises(Refused, match="not valid until"):
        signed_manifest(sig.read_bytes(), spec, now() + 2 * DAY)


# --- an identity is required ---------------------------------------------------------------

def test_cli_cert_chain_without_identity_is_a_usage_error(pki: OrgPKI, tmp_path: Path, cli) -> None:
    model, sig = signed_model(tmp_path, pki)
    out = cli("verify", str(model), "--signature", str(sig), "--cert-chain", str(pki.root),
              "--cert-chain", str(pki.intermediate))
    assert out.returncode == 2 and "--cert-identity" in out.stderr and out.stdout == ""
    add = cli("catalog", "add", str(tmp_path / "catalog.json"), "--cert-chain", str(pki.root))
    assert add.returncode == 2 and "--cert-identity" in add.stderr
    assert not (Path(os.environ["VETTED_HOME"]) / "config" / "settings.json").exists()


def test_catalog_and_settings_refuse_a_certificate_signer_without_identity(
        pki: OrgPKI, tmp_path: Path, signing_key, loc) -> None:
    from vetted.catalog.schema import parse
    from vetted.core.settings import Settings

    signer = {"kind": "certificate", "chain_pem": pki.anchors.decode()}
    cat = build(tmp_path, signing_key[0])
    doc = json.loads(cat.read_bytes())
    doc["models"][0]["signature"]["signer"] = signer
    with pytest.raises(CatalogError, match=r"models\.0\.signature\.signer: .*a 'certificate' signer needs 'identity'"):
        parse(json.dumps(doc).encode(), "test")
    with pytest.raises(InputError, match=r"'certificate' signer is missing field 'identity'"):
        from_json(signer)

    Settings.path(loc).parent.mkdir(parents=True, exist_ok=True)
    Settings.path(loc).write_text(json.dumps({"catalogs": [{"location": str(cat), "signer": signer}]}))
    with pytest.raises(InputError, match=r"settings .*missing field 'identity'"):
        Settings.load(loc)


def test_malformed_identities_are_input_errors(pki: OrgPKI) -> None:
    with pytest.raises(InputError, match="certificate identity: empty"):
        CertificateChain(pki.anchors, "  ")
    with pytest.raises(InputError, match=r"'email:' names no e-mail value"):
        CertificateChain(pki.anchors, "email:")
    with pytest.raises(InputError, match=r"'not a dn' is not an RFC 4514 distinguished name"):
        CertificateChain(pki.anchors, "dn:not a dn")
    with pytest.raises(InputError, match=r"'bob' is not an e-mail address"):
        CertificateChain(pki.anchors, "email:bob")


# --- identities compare by type ------------------------------------------------------------

def test_dns_san_spelled_like_an_email_does_not_match_the_email_identity(pki: OrgPKI, tmp_path: Path) -> None:
    leaf = pki.issue("dns-alice", sans=[x509.DNSName(ALICE)])
    model, sig = signed_model(tmp_path, leaf)
    with pytest.raises(Refused, match=r"expected e-mail identity alice@example.com, the certificate's e-mail SANs "
                                      r"are \[\] \(its DNS SANs \['alice@example.com'\] are not compared with an "
                                      r"e-mail identity\)"):
        verify(model, sig, pki, ALICE)
    # said explicitly, the DNS name is what the certificate names
    assert verify(model, sig, pki, f"dns:{ALICE}").signer == f"{ALICE} (certificate chain)"


@pytest.mark.parametrize(("san", "identity", "found"), [
    (x509.UniformResourceIdentifier("build.example.com"), "build.example.com",
     r"expected DNS identity build.example.com, the certificate's DNS SANs are \[\] \(its URI SANs"),
    (x509.RFC822Name("build.example.com"), "build.example.com",
     r"expected DNS identity build.example.com, the certificate's DNS SANs are \[\] \(its e-mail SANs"),
    (x509.DNSName("https://ci.example.com/release"), "https://ci.example.com/release",
     r"expected URI identity https://ci.example.com/release, the certificate's URI SANs are \[\] \(its DNS SANs"),
    (x509.UniformResourceIdentifier(ALICE), ALICE,
     r"expected e-mail identity alice@example.com, the certificate's e-mail SANs are \[\] \(its URI SANs"),
])
def test_an_identity_never_matches_a_san_of_another_type(pki: OrgPKI, tmp_path: Path, san, identity: str,
                                                        found: str) -> None:
    leaf = pki.issue("odd", sans=[san])
    model, sig = signed_model(tmp_path, leaf)
    with pytest.raises(Refused, match=r"signing certificate identity \(certificate " + SUBJECT + r"\): " + found):
        verify(model, sig, pki, identity)


def test_each_identity_matches_its_own_san_type(pki: OrgPKI, tmp_path: Path) -> None:
    uri = "https://ci.example.com/release"
    leaf = pki.issue("all", sans=[x509.RFC822Name(ALICE), x509.UniformResourceIdentifier(uri),
                                  x509.DNSName("build.example.com")])
    model, sig = signed_model(tmp_path, leaf)
    for identity, who in [(ALICE, ALICE), (f"email:{ALICE}", ALICE), ("alice@EXAMPLE.com", "alice@EXAMPLE.com"),
                          (uri, uri), (f"uri:{uri}", uri), ("build.example.com", "build.example.com"),
                          ("dns:BUILD.example.com", "BUILD.example.com")]:
        assert verify(model, sig, pki, identity).signer == f"{who} (certificate chain)", identity
    for identity in ("Alice@example.com", "https://ci.example.com/release/", "example.com", "dns:ci.example.com"):
        with pytest.raises(Refused, match=r"signing certificate identity"):
            verify(model, sig, pki, identity)


def test_subject_dn_is_not_compared_with_a_certificate_that_has_sans(pki: OrgPKI, tmp_path: Path) -> None:
    """A certificate with SANs is named by them; its subject (often just a CN the requester
    chose) is never compared, even when it is exactly the pinned DN."""
    leaf = pki.issue("with-san", sans=[x509.DNSName("build.example.com")])
    model, sig = signed_model(tmp_path, leaf)
    with pytest.raises(Refused, match=rf"expected subject DN {SUBJECT}, but the certificate has SANs \(DNS SANs "
                                      r"\['build.example.com'\]\): a subject DN is only compared for certificates "
                                      r"without SANs"):
        verify(model, sig, pki, SUBJECT)


def test_dn_identity_matches_a_san_less_certificate_exactly_and_nothing_else(pki: OrgPKI, tmp_path: Path) -> None:
    leaf = pki.issue("nosan", sans=None)
    model, sig = signed_model(tmp_path, leaf)
    for identity in (SUBJECT, f"dn:{SUBJECT}", "CN=model release signer,O=Example Org"):
        assert verify(model, sig, pki, identity).signer == f"{SUBJECT} (certificate chain)"
    for identity in ("CN=model release signer", f"{SUBJECT},C=US", "O=Example Org,CN=model release signer"):
        with pytest.raises(Refused, match=rf"expected subject DN .*, the certificate's subject is {SUBJECT} "
                                          r"\(no SANs\)"):
            verify(model, sig, pki, identity)
    with pytest.raises(Refused, match=rf"expected e-mail identity {ALICE}, the certificate has no SANs"):
        verify(model, sig, pki, ALICE)


def test_an_email_in_a_san_less_subject_is_a_dn_not_an_email(pki: OrgPKI, tmp_path: Path) -> None:
    leaf = pki.issue("cn-email", sans=None, cn=ALICE)
    model, sig = signed_model(tmp_path, leaf)
    assert verify(model, sig, pki, f"CN={ALICE},O=Example Org").signer.startswith(f"CN={ALICE}")
    with pytest.raises(Refused, match=rf"expected e-mail identity {ALICE}, the certificate has no SANs"):
        verify(model, sig, pki, ALICE)


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("alice@example.com", "email", "alice@example.com"),
    ("email:alice@example.com", "email", "alice@example.com"),
    ("https://ci.example.com/release", "uri", "https://ci.example.com/release"),
    ("dns://resolver.example.com", "uri", "dns://resolver.example.com"),  # a URI, not a "dns:" prefix
    ("uri:urn:example:signer", "uri", "urn:example:signer"),
    ("build.example.com", "dns", "build.example.com"),
    ("DNS:build.example.com", "dns", "build.example.com"),
    ("CN=alice@example.com,O=Example Org", "dn", "CN=alice@example.com,O=Example Org"),
    ("dn:CN=intermediate-ca", "dn", "CN=intermediate-ca"),
])
def test_identity_types_are_explicit_or_inferred(text: str, kind: str, value: str) -> None:
    from vetted.trust.certs import CertIdentity

    assert CertIdentity.parse(text) == CertIdentity(kind, value)  # type: ignore[arg-type]


def test_describe_names_the_typed_identity(pki: OrgPKI) -> None:
    assert CertificateChain(pki.anchors, ALICE).describe().startswith(f"e-mail identity {ALICE} (certificate chain")
    assert CertificateChain(pki.anchors, "dns:x.example.com").describe().startswith("DNS identity x.example.com")
    assert CertificateChain(pki.anchors, "CN=a,O=b").describe().startswith("subject DN CN=a,O=b (certificate")


# --- the real OMS fixtures ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["v1.1.0-certificate", "v1.0.1-certificate"])
def test_oms_certificate_fixtures_verify_with_their_subject_dn(case: str, cli) -> None:
    """Their signing certificate is a CA:TRUE, SAN-less, code-signing certificate CN=intermediate-ca."""
    model = OMS / case
    base = ["verify", str(model), "--signature", str(model / "model.sig"), "--ignore-path", "ignore-me",
            "--cert-chain", str(OMS / "keys" / "ca-cert.pem"), "--cert-chain", str(OMS / "keys" / "int-ca-cert.pem")]
    for identity in ("CN=intermediate-ca", "dn:CN=intermediate-ca"):
        ok = cli(*base, "--cert-identity", identity)
        assert ok.returncode == 0 and "signed by CN=intermediate-ca (certificate chain)" in ok.stdout, ok.stdout
    for identity in ("intermediate-ca", "CN=root-ca"):
        bad = cli(*base, "--cert-identity", identity)
        assert bad.returncode == 1 and bad.stdout.startswith("refused: signing certificate identity"), bad.stdout


# --- an installed model outlives its certificate; a new verification does not -----------------

def test_installed_model_keeps_running_after_its_certificate_expires(
        pki: OrgPKI, tmp_path: Path, loc, db, signing_key, monkeypatch: pytest.MonkeyPatch) -> None:
    from vetted.catalog.signed import load
    from vetted.install.pull import pull
    from vetted.store import installed
    from vetted.trust.identity import PublicKey

    installed_then = (now() - 2 * DAY).replace(microsecond=0)
    leaf = pki.issue("short", sans=[x509.RFC822Name(ALICE)], not_before=now() - 3 * DAY, not_after=now() - DAY)
    src = make_model(tmp_path / "src")
    sig = tmp_path / "tiny.model.sig"
    sign_with_certificate(src, leaf, sig)
    signer = {"kind": "certificate", "chain_pem": pki.anchors.decode(), "identity": ALICE}
    cat = build(tmp_path, signing_key[0], models=[{"id": "tiny", "name": "Tiny", "publisher": "Test Pub",
                                                   "license": "MIT", "path": str(src), "signature_path": str(sig),
                                                   "signer": signer}],
                verify_publisher_signatures=False)  # expired today: vetted-admin would refuse to publish it
    loaded = load(str(cat), PublicKey(signing_key[1].read_bytes()), db)

    # today the certificate has expired: a new install is refused
    with pytest.raises(Refused, match=rf"pull of tiny: .*signing certificate {SUBJECT}: expired on "):
        pull(loc, db, loaded, "tiny")

    # two days ago it was valid: the model was installed then
    from vetted.trust import certs

    monkeypatch.setattr(certs, "_now", lambda: installed_then)
    model = pull(loc, db, loaded, "tiny").model
    monkeypatch.undo()
    with db.conn:
        db.conn.execute("UPDATE installed_models SET installed_at = ? WHERE model_id = 'tiny'",
                        [installed_then.isoformat()])

    first = installed.check(db, "tiny")  # a fresh download is re-read from disk once
    assert first.rehashed == [model.files[0].name] and first.signer.startswith(ALICE)
    fast = installed.check(db, "tiny")
    assert fast.fast_path == [model.files[0].name] and fast.rehashed == [] and fast.signer.startswith(ALICE)
    full = installed.check(db, "tiny", full=True)
    assert full.rehashed == [model.files[0].name]

    # the same signature, verified afresh, is refused
    store_file = model.files[0].path
    with pytest.raises(Refused, match=rf"signing certificate {SUBJECT}: expired on "):
        verify_path(store_file, model.signature_path, CertificateChain(pki.anchors, ALICE))

    # and the re-check goes by the install time: installed today, it would be refused too
    with db.conn:
        db.conn.execute("UPDATE installed_models SET installed_at = ? WHERE model_id = 'tiny'",
                        [now().isoformat()])
    with pytest.raises(Refused, match="expired on"):
        installed.check(db, "tiny", full=True)
