"""`vetted-admin build-catalog` as an organisation runs it: signed with a key or with a
certificate from its own PKI, models from local files or from a Hugging Face repo pinned
to a commit, publishers' signatures and pre-signed attestations checked before they go in.
Everything goes through the real `vetted-admin` and `vetted` commands.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hub_server import hub_server_factory  # noqa: F401  (the fixture)
from pki import OrgPKI
from tiny_gguf import write_gguf
from vetted.authoring.publish import generate_key, sign_file_or_folder
from vetted.policy import sources as policy_sources

ORG = "catalog@example.org"
COMMIT = "0123456789abcdef" * 2 + "01234567"
REPO = "example/tiny-chat"
PROV = {"publisher": "Test Pub", "model_name": "tiny", "license": "MIT", "architecture": "llama",
        "base_models": [{"name": "Tiny Base", "relation": "finetune"}]}


pytestmark = pytest.mark.usefixtures("no_machine_policy")  # conftest: policies come only from the tests


@pytest.fixture
def pki(tmp_path: Path) -> OrgPKI:
    return OrgPKI.create(tmp_path / "pki", san_email=ORG)


def gguf(folder: Path, name: str = "tiny.gguf", template: str = "{{ messages }}") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_gguf(folder / name, chat_template=template)


def write_spec(tmp_path: Path, models: list[dict], version: int = 1, name: str = "spec.json", **fields) -> Path:
    spec = {"id": "org.example.approved", "name": "Approved models", "publisher": "Example Org",
            "version": version, "models": models, **fields}
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def entry(model_id: str = "m", **fields) -> dict:
    return {"id": model_id, "name": model_id.upper(), "publisher": "Test Pub", "license": "MIT", **fields}


def cert_args(pki: OrgPKI, identity: str = f"email:{ORG}") -> list[str]:
    """The leaf certificate (followed by its intermediate, as issued) and the root."""
    return ["--cert-key", str(pki.leaf_key), "--cert-chain", str(pki.leaf_chain), "--cert-chain", str(pki.root),
            "--cert-identity", identity]


def pin_args(pki: OrgPKI, identity: str = f"email:{ORG}") -> list[str]:
    return ["--cert-chain", str(pki.root), "--cert-chain", str(pki.intermediate), "--cert-identity", identity]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def policy(tmp_path: Path, doc: dict, name: str) -> dict[str, str]:
    p = tmp_path / "policies" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"schema": "vetted.policy/1", **doc}))
    os.chmod(p, 0o600)
    return {policy_sources.EXTRA_ENV: str(p)}


# -- signing with the organisation's certificate chain ------------------------------------------


def test_a_catalog_signed_with_the_organisations_certificate_verifies_pinned_to_its_identity(
        tmp_path, pki, cli, loc) -> None:
    spec = write_spec(tmp_path, [entry(path=str(gguf(tmp_path / "src")), attest={"provenance": PROV})])
    out = tmp_path / "out"
    built = cli("build-catalog", str(spec), "--out", str(out), *cert_args(pki), tool="vetted-admin")
    assert built.returncode == 0, built.stdout + built.stderr
    doc = json.loads((out / "catalog.json").read_text())
    m = doc["models"][0]
    # what a verifier pins: the CA chain above the leaf, and who the leaf is
    assert m["signature"]["signer"] == {"kind": "certificate", "identity": f"email:{ORG}",
                                        "chain_pem": (pki.intermediate.read_bytes() + pki.root.read_bytes()).decode()}
    assert m["attestations"][0]["signer"] == m["signature"]["signer"]
    assert m["files"] == [{"name": "tiny.gguf", "size": (tmp_path / "src" / "tiny.gguf").stat().st_size,
                           "sha256": sha256(tmp_path / "src" / "tiny.gguf")}]

    added = cli("catalog", "add", str(out / "catalog.json"), *pin_args(pki))
    assert added.returncode == 0, added.stdout + added.stderr
    listed = cli("catalog")
    assert listed.returncode == 0 and f"v1, signed by {ORG} (certificate chain)" in listed.stdout, listed.stdout
    pulled = cli("pull", "m")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert f"verified: publisher signature by {ORG} (certificate chain)" in pulled.stdout
    card = cli("card", "m")
    assert f"[declared by {ORG} (certificate chain)]" in card.stdout, card.stdout

    # the same catalog elsewhere, pinned to another identity of the same CA: refused, named
    other = tmp_path / "elsewhere"
    other.mkdir()
    for name in ("catalog.json", "catalog.json.sig"):
        (other / name).write_bytes((out / name).read_bytes())
    assert cli("catalog", "add", str(other / "catalog.json"), *pin_args(pki, "email:other@example.org")).returncode == 0
    refused = cli("catalog", "--catalog", str(other / "catalog.json"))
    assert refused.returncode == 1
    assert (f"expected e-mail identity other@example.org, the certificate's e-mail SANs are ['{ORG}'] "
            "(someone else under the same CA signed it") in refused.stdout, refused.stdout


def test_a_policy_pins_the_organisations_certificate_signer(tmp_path, pki, cli, loc) -> None:
    spec = write_spec(tmp_path, [entry(path=str(gguf(tmp_path / "src")))])
    out = tmp_path / "out"
    assert cli("build-catalog", str(spec), "--out", str(out), *cert_args(pki), tool="vetted-admin").returncode == 0
    location = str(out / "catalog.json")

    def allow(identity: str, name: str) -> dict[str, str]:
        return policy(tmp_path, {"catalogs": {"allowed": [{"location": location, "signers": [
            {"kind": "certificate", "chain_pem": pki.anchors.decode(), "identity": identity}]}],
            "users_may_add": False}}, name)

    ours = allow(f"email:{ORG}", "ours.json")
    listed = cli("catalog", env=ours)
    assert listed.returncode == 0 and f"signed by {ORG} (certificate chain)" in listed.stdout, listed.stdout
    assert cli("pull", "m", env=ours).returncode == 0

    theirs = cli("catalog", env=allow("email:other@example.org", "theirs.json"))
    assert theirs.returncode == 1
    assert "expected e-mail identity other@example.org" in theirs.stdout, theirs.stdout


def test_a_certificate_that_does_not_name_the_given_identity_signs_nothing(tmp_path, pki, cli) -> None:
    spec = write_spec(tmp_path, [entry(path=str(gguf(tmp_path / "src")))])
    out = tmp_path / "out"
    r = cli("build-catalog", str(spec), "--out", str(out), *cert_args(pki, "email:someone@example.org"),
            tool="vetted-admin")
    assert r.returncode == 1
    assert "expected e-mail identity someone@example.org" in r.stderr, r.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


@pytest.mark.parametrize("args, says", [
    (["--cert-key", "K"], "certificate mode needs --cert-key, --cert-chain and --cert-identity"),
    (["--key", "K", "--cert-key", "K"], "give exactly one of: --key PRIVATE_PEM; --cert-key"),
    ([], "give exactly one of: --key PRIVATE_PEM; --cert-key"),
])
def test_the_signer_is_one_complete_mode(tmp_path, pki, cli, args, says) -> None:
    spec = write_spec(tmp_path, [entry(path=str(gguf(tmp_path / "src")))])
    args = [str(pki.leaf_key) if a == "K" else a for a in args]
    r = cli("build-catalog", str(spec), "--out", str(tmp_path / "out"), *args, tool="vetted-admin")
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_a_leaf_without_the_chain_above_it_is_refused(tmp_path, pki, cli) -> None:
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(pki.leaf_chain.read_bytes().split(b"-----END CERTIFICATE-----")[0]
                          + b"-----END CERTIFICATE-----\n")
    spec = write_spec(tmp_path, [entry(path=str(gguf(tmp_path / "src")))])
    r = cli("build-catalog", str(spec), "--out", str(tmp_path / "out"), "--cert-key", str(pki.leaf_key),
            "--cert-chain", str(leaf_only), "--cert-identity", f"email:{ORG}", tool="vetted-admin")
    assert r.returncode == 1 and "only the leaf certificate was given" in r.stderr, r.stderr
    wrong_key = cli("build-catalog", str(spec), "--out", str(tmp_path / "out"), "--cert-key",
                    str(generate_key(tmp_path / "k")[0]), "--cert-chain", str(pki.leaf_chain),
                    "--cert-identity", f"email:{ORG}", tool="vetted-admin")
    assert wrong_key.returncode == 2 and "is not the key of the first certificate given" in wrong_key.stderr
    assert not (tmp_path / "out").exists()


# -- models from a Hugging Face repo pinned to a commit ---------------------------------------


def hub_repo(tmp_path: Path, publisher_key: Path) -> tuple[Path, Path]:
    """The repo's files at COMMIT: the model and its publisher's signature."""
    repo = tmp_path / "hub"
    model = gguf(repo, "tiny-chat.gguf")
    sign_file_or_folder(model, publisher_key, repo / "model.sig")
    return repo, model


def test_a_model_from_a_hugging_face_repo_pinned_to_a_commit(tmp_path, cli, signing_key, loc,
                                                             hub_server_factory) -> None:
    pub_priv, pub_pub = generate_key(tmp_path / "publisher")
    repo, model = hub_repo(tmp_path, pub_priv)
    hub = hub_server_factory(repo, COMMIT, REPO)
    publisher = {"kind": "key", "public_key_pem": pub_pub.read_text()}
    spec = write_spec(tmp_path, [entry(huggingface={"repo": REPO, "commit": COMMIT, "file": "tiny-chat.gguf"},
                                       signature_file="model.sig", signer=publisher)])
    out = tmp_path / "out"
    env = {"HF_ENDPOINT": hub.url}
    built = cli("build-catalog", str(spec), "--out", str(out), "--key", str(signing_key[0]), env=env,
                tool="vetted-admin")
    assert built.returncode == 0, built.stdout + built.stderr
    m = json.loads((out / "catalog.json").read_text())["models"][0]
    assert m["files"] == [{"name": "tiny-chat.gguf", "size": model.stat().st_size, "sha256": sha256(model)}]
    assert m["sources"] == {"local": ["mirror"], "huggingface": {"repo": REPO, "commit": COMMIT}}
    assert m["signature"] == {"bundle": "model.sig", "signer": publisher}
    assert (out / "mirror" / "tiny-chat.gguf").read_bytes() == model.read_bytes()
    assert (out / "mirror" / "model.sig").read_bytes() == (repo / "model.sig").read_bytes()
    asked = {r.path for r in hub.requests}
    assert asked == {hub.resolve_path("tiny-chat.gguf"), hub.resolve_path("model.sig")}  # only at the pinned commit

    assert cli("catalog", "add", str(out / "catalog.json"), "--key", str(signing_key[1])).returncode == 0
    pulled = cli("pull", "m", env=env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert f"installed: m from huggingface {REPO}@{COMMIT[:12]}" in pulled.stdout


def test_a_hugging_face_signature_that_does_not_cover_the_file_fails_the_build(tmp_path, cli, signing_key,
                                                                              hub_server_factory) -> None:
    pub_priv, pub_pub = generate_key(tmp_path / "publisher")
    repo, model = hub_repo(tmp_path, pub_priv)
    sign_file_or_folder(gguf(tmp_path / "other", "other.gguf", "{{ other }}"), pub_priv, repo / "model.sig")
    hub = hub_server_factory(repo, COMMIT, REPO)
    spec = write_spec(tmp_path, [entry("chat", huggingface={"repo": REPO, "commit": COMMIT, "file": "tiny-chat.gguf"},
                                       signature_file="model.sig",
                                       signer={"kind": "key", "public_key_pem": pub_pub.read_text()})])
    out = tmp_path / "out"
    r = cli("build-catalog", str(spec), "--out", str(out), "--key", str(signing_key[0]), env={"HF_ENDPOINT": hub.url},
            tool="vetted-admin")
    assert r.returncode == 1
    assert "publisher signature of model chat by public key sha256:" in r.stderr
    assert f"signs tiny-chat.gguf as sha256 {sha256(tmp_path / 'other' / 'other.gguf')}, the file is " \
           f"{sha256(model)}" in r.stderr, r.stderr
    assert not out.exists()


def test_a_hub_answering_for_another_commit_fails_the_build(tmp_path, cli, signing_key, hub_server_factory) -> None:
    repo, _ = hub_repo(tmp_path, signing_key[0])
    hub = hub_server_factory(repo, COMMIT, REPO)
    hub.bad.wrong_commit = "f" * 40
    spec = write_spec(tmp_path, [entry(huggingface={"repo": REPO, "commit": COMMIT, "file": "tiny-chat.gguf"})])
    r = cli("build-catalog", str(spec), "--out", str(tmp_path / "out"), "--key", str(signing_key[0]),
            env={"HF_ENDPOINT": hub.url}, tool="vetted-admin")
    assert r.returncode == 1
    assert f"model m: Hugging Face commit of {REPO}: server answered for commit {'f' * 40}, the catalog pins " \
           f"{COMMIT}" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_an_organisation_signs_a_hugging_face_model_itself(tmp_path, cli, signing_key, pki, loc,
                                                          hub_server_factory) -> None:
    repo, model = hub_repo(tmp_path, signing_key[0])
    hub = hub_server_factory(repo, COMMIT, REPO)
    spec = write_spec(tmp_path, [entry(huggingface={"repo": REPO, "commit": COMMIT, "file": "tiny-chat.gguf"},
                                       sources={"mirrors": ["https://models.example.org/mirror"]})])
    out = tmp_path / "out"
    built = cli("build-catalog", str(spec), "--out", str(out), *cert_args(pki), env={"HF_ENDPOINT": hub.url},
                tool="vetted-admin")
    assert built.returncode == 0, built.stderr
    m = json.loads((out / "catalog.json").read_text())["models"][0]
    assert m["sources"] == {"mirrors": ["https://models.example.org/mirror"],
                            "huggingface": {"repo": REPO, "commit": COMMIT}}
    assert m["signature"]["bundle"] == "m.model.sig" and m["signature"]["signer"]["identity"] == f"email:{ORG}"
    assert sha256(out / "mirror" / "tiny-chat.gguf") == sha256(model)
    verified = cli("verify", str(out / "mirror" / "tiny-chat.gguf"), "--signature", str(out / "mirror" / "m.model.sig"),
                   *pin_args(pki))
    assert verified.returncode == 0 and f"signed by {ORG} (certificate chain)" in verified.stdout, verified.stdout


# -- publishers' signatures and attestations: checked before they go in -----------------------


def test_a_local_publisher_signature_is_verified_before_it_is_recorded(tmp_path, cli, signing_key, loc) -> None:
    pub_priv, pub_pub = generate_key(tmp_path / "publisher")
    mallory_priv, _ = generate_key(tmp_path / "mallory")
    model = gguf(tmp_path / "src")
    good, forged, stale = tmp_path / "good.sig", tmp_path / "forged.sig", tmp_path / "stale.sig"
    sign_file_or_folder(model, pub_priv, good)
    sign_file_or_folder(model, mallory_priv, forged)
    sign_file_or_folder(gguf(tmp_path / "old", "tiny.gguf", "{{ old }}"), pub_priv, stale)
    publisher = {"kind": "key", "public_key_pem": pub_pub.read_text()}
    out = tmp_path / "out"

    def build(sig: Path, version: int) -> object:
        spec = write_spec(tmp_path, [entry(path=str(model)), entry("pub", path=str(model), file_name="pub.gguf",
                                                                    signature_path=str(sig), signer=publisher)],
                          version=version)
        return cli("build-catalog", str(spec), "--out", str(out), "--key", str(signing_key[0]), tool="vetted-admin")

    ok = build(good, 1)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads((out / "catalog.json").read_text())
    assert doc["models"][1]["signature"] == {"bundle": "pub.model.sig", "signer": publisher}
    before = snapshot(out)

    r = build(forged, 2)
    assert r.returncode == 1
    assert "publisher signature of model pub: signature against public key sha256:" in r.stderr, r.stderr
    assert "(it does not verify against the declared signer" in r.stderr
    r = build(stale, 2)
    assert r.returncode == 1
    assert "publisher signature of model pub by public key sha256:" in r.stderr
    assert f"the file is {sha256(model)}" in r.stderr, r.stderr
    assert snapshot(out) == before  # nothing was written: v1 is still what is published

    assert cli("catalog", "add", str(out / "catalog.json"), "--key", str(signing_key[1])).returncode == 0
    pulled = cli("pull", "pub")
    assert pulled.returncode == 0 and "verified: publisher signature by public key sha256:" in pulled.stdout


def test_a_signer_without_its_signature_is_refused(tmp_path, cli, signing_key) -> None:
    _, pub_pub = generate_key(tmp_path / "publisher")
    spec = write_spec(tmp_path, [entry(path=str(gguf(tmp_path / "src")),
                                       signer={"kind": "key", "public_key_pem": pub_pub.read_text()})])
    r = cli("build-catalog", str(spec), "--out", str(tmp_path / "out"), "--key", str(signing_key[0]),
            tool="vetted-admin")
    assert r.returncode == 1 and "model m: signer: is given without the publisher's signature" in r.stderr, r.stderr


def test_presigned_attestations_are_checked_before_they_go_in(tmp_path, cli, signing_key, loc) -> None:
    lab_priv, lab_pub = generate_key(tmp_path / "lab")
    model = gguf(tmp_path / "src")
    other = gguf(tmp_path / "other", "other.gguf", "{{ other }}")
    (tmp_path / "prov.json").write_text(json.dumps(PROV))
    for name, subject in (("ours.ref.json", model), ("theirs.ref.json", other)):
        made = cli("attest", "provenance", "--model", str(subject), "--predicate", str(tmp_path / "prov.json"),
                   "--key", str(lab_priv), "--out", str(tmp_path / name), tool="vetted-admin")
        assert made.returncode == 0, made.stderr
    out = tmp_path / "out"
    spec = write_spec(tmp_path, [entry(path=str(model), attestations=["ours.ref.json"])])
    built = cli("build-catalog", str(spec), "--out", str(out), "--key", str(signing_key[0]), tool="vetted-admin")
    assert built.returncode == 0, built.stderr
    att = json.loads((out / "catalog.json").read_text())["models"][0]["attestations"]
    assert att == [json.loads((tmp_path / "ours.ref.json").read_text())]
    assert att[0]["signer"] == {"kind": "key", "public_key_pem": lab_pub.read_text()}
    assert cli("catalog", "add", str(out / "catalog.json"), "--key", str(signing_key[1])).returncode == 0
    card = cli("card", "m")
    assert "[declared by public key sha256:" in card.stdout and "Test Pub" in card.stdout, card.stdout

    before = snapshot(out)
    spec = write_spec(tmp_path, [entry(path=str(model), attestations=["ours.ref.json", "theirs.ref.json"])],
                      version=2)
    r = cli("build-catalog", str(spec), "--out", str(out), "--key", str(signing_key[0]), tool="vetted-admin")
    assert r.returncode == 1
    assert "attestation theirs.ref.json (provenance) of model m: attestation by public key sha256:" in r.stderr
    assert "is about a different file (subject sha256 differs)" in r.stderr, r.stderr
    assert snapshot(out) == before


@pytest.mark.parametrize("field,value", [("file_name", "../../../victim/dropped"), ("file_name", "/tmp/vetted-abs-drop"),
                                         ("id", "../../../victim/dropped-by-id")])
def test_a_hostile_spec_writes_nothing_outside_out(tmp_path, signing_key, cli, field, value) -> None:
    """Review finding: the spec's file_name and model id were used as paths inside the
    staging folder before the catalog was validated: '../' or an absolute name left a file
    of the spec author's choosing outside --out."""
    src = tmp_path / "src" / "m.gguf"
    src.parent.mkdir()
    src.write_bytes(b"GGUF" + b"\0" * 1000)
    model = {"id": "m", "name": "M", "publisher": "P", "license": "MIT", "path": str(src), field: value}
    spec = tmp_path / "deep" / "er" / "spec.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps({"id": "org.c", "name": "C", "publisher": "O", "version": 1, "models": [model]}))
    before = {p for p in tmp_path.rglob("*")}
    r = cli("build-catalog", str(spec), "--key", str(signing_key[0]), "--out", str(tmp_path / "deep" / "er" / "out"),
            tool="vetted-admin")
    assert r.returncode in (1, 2) and field.replace("_", " ") in r.stderr.replace("_", " ")
    assert {p for p in tmp_path.rglob("*")} == before
    assert not Path("/tmp/vetted-abs-drop").exists()
