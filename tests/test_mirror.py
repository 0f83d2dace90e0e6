"""`vetted-admin mirror`: a catalog laid out for a plain web server, served by Python's own
`http.server` (no Range, no logic: what nginx, IIS or S3 would do with a folder), pinned
and pulled with the real `vetted` command.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog_kit import make_model
from pki import OrgPKI
from vetted.authoring.publish import generate_key, sign_file_or_folder

ORG = "catalog@example.org"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        self.server.seen.append(self.path)  # type: ignore[attr-defined]


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """A plain static web server for `folder` on 127.0.0.1: (base URL, paths requested)."""
    folder.mkdir(parents=True, exist_ok=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    httpd.daemon_threads = True
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.seen  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def build(tmp_path: Path, key: Path, cli, models: list[dict] | None = None, signer: list[str] | None = None) -> Path:
    """A catalog as an organisation builds it: catalog.json(.sig) and mirror/ in tmp/out."""
    models = models or [{"id": "m", "name": "M", "publisher": "P", "license": "MIT",
                         "path": str(make_model(tmp_path / "src", "tiny.gguf"))}]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"id": "org.example.approved", "name": "Approved", "publisher": "Example Org",
                                "version": 1, "models": models}))
    r = cli("build-catalog", str(spec), "--out", str(tmp_path / "out"), *(signer or ["--key", str(key)]),
            tool="vetted-admin")
    assert r.returncode == 0, r.stderr
    return tmp_path / "out" / "catalog.json"


def mirror(cli, catalog: Path, site: Path, url: str, version: int, *signer: str):
    return cli("mirror", "--catalog", str(catalog), "--out", str(site), "--url", url, "--version", str(version),
               *signer, tool="vetted-admin")


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("mode", ["key", "certificate"])
def test_a_mirror_served_by_a_plain_web_server_installs(tmp_path, cli, signing_key, loc, mode) -> None:
    site = tmp_path / "site"
    if mode == "key":
        sign = ["--key", str(signing_key[0])]
        pin = ["--key", str(signing_key[1])]
        who = "public key sha256:"
    else:
        pki = OrgPKI.create(tmp_path / "pki", san_email=ORG)
        sign = ["--cert-key", str(pki.leaf_key), "--cert-chain", str(pki.leaf_chain), "--cert-chain", str(pki.root),
                "--cert-identity", f"email:{ORG}"]
        pin = ["--cert-chain", str(pki.root), "--cert-chain", str(pki.intermediate), "--cert-identity", f"email:{ORG}"]
        who = f"{ORG} (certificate chain)"
    catalog = build(tmp_path, signing_key[0], cli, signer=sign)  # mirror re-signs only what its signer signed
    with static_server(site) as (url, seen):
        made = mirror(cli, catalog, site, url, 2, *sign)
        assert made.returncode == 0, made.stdout + made.stderr
        assert "mirrored 1 model(s), 1 file(s)" in made.stdout
        assert files_under(site) == ["catalog.json", "catalog.json.sig", "models/m/m.model.sig", "models/m/tiny.gguf"]
        original = json.loads(catalog.read_text())
        doc = json.loads((site / "catalog.json").read_text())
        assert doc["version"] == 2
        assert doc["models"][0]["sources"] == {"local": ["models/m"], "mirrors": [f"{url}/models/m"]}
        assert doc["models"][0]["files"] == original["models"][0]["files"]
        assert doc["models"][0]["signature"] == original["models"][0]["signature"]

        assert cli("catalog", "add", f"{url}/catalog.json", *pin).returncode == 0
        listed = cli("catalog")
        assert listed.returncode == 0 and f"v2, signed by {who}" in listed.stdout, listed.stdout
        pulled = cli("pull", "m")
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert f"installed: m from mirror {url}/models/m" in pulled.stdout
        assert "/models/m/tiny.gguf" in seen
        audit = json.loads(cli("audit", "--json").stdout)["entries"]
        install = [e for e in audit if e["action"] == "model.install"]
        assert [(e["result"], e["details"]["source"]) for e in install] == [("accepted", f"mirror {url}/models/m")]

        # the next issue goes over the same folder; the server keeps serving it
        again = mirror(cli, site / "catalog.json", site, url, 3, *sign)
        assert again.returncode == 0, again.stderr
        assert "v3" in cli("catalog").stdout
    assert not [p for p in site.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_mirror_serving_a_changed_file_is_refused_and_nothing_is_installed(tmp_path, cli, signing_key, loc) -> None:
    catalog = build(tmp_path, signing_key[0], cli)
    site = tmp_path / "site"
    with static_server(site) as (url, _):
        assert mirror(cli, catalog, site, url, 2, "--key", str(signing_key[0])).returncode == 0
        served = site / "models" / "m" / "tiny.gguf"
        altered = bytearray(served.read_bytes())
        altered[-1] ^= 0xFF
        swap = served.with_name("swap")
        swap.write_bytes(bytes(altered))
        os.replace(swap, served)  # a new file: the hard-linked original stays as built
        assert cli("catalog", "add", f"{url}/catalog.json", "--key", str(signing_key[1])).returncode == 0
        r = cli("pull", "m")
    assert r.returncode == 1
    signed_sha = json.loads(catalog.read_text())["models"][0]["files"][0]["sha256"]
    assert f"downloaded tiny.gguf from mirror {url}/models/m: sha256 {hashlib.sha256(altered).hexdigest()}" in r.stdout
    assert f"the signed catalog says {signed_sha}" in r.stdout, r.stdout
    assert json.loads(cli("models", "--json").stdout) == []
    assert files_under(loc.store) == []
    assert [p for p in files_under(loc.quarantine) if not p.endswith(".lock")] == []  # the wrong bytes are gone


def test_mirroring_a_file_that_differs_from_the_catalog_publishes_nothing(tmp_path, cli, signing_key) -> None:
    catalog = build(tmp_path, signing_key[0], cli)
    built = catalog.parent / "mirror" / "tiny.gguf"
    data = bytearray(built.read_bytes())
    data[10] ^= 0x01
    built.unlink()
    built.write_bytes(bytes(data))
    site = tmp_path / "site"
    r = mirror(cli, catalog, site, "https://models.example.org", 2, "--key", str(signing_key[0]))
    assert r.returncode == 1
    signed_sha = json.loads(catalog.read_text())["models"][0]["files"][0]["sha256"]
    assert f"model m: file tiny.gguf at {built}: sha256 {hashlib.sha256(data).hexdigest()}" in r.stderr, r.stderr
    assert f"the catalog says {signed_sha}" in r.stderr
    assert files_under(site) == []


def test_mirroring_a_signature_that_does_not_vouch_for_the_file_publishes_nothing(tmp_path, cli, signing_key) -> None:
    catalog = build(tmp_path, signing_key[0], cli)
    other = make_model(tmp_path / "other", "tiny.gguf")
    sign_file_or_folder(other, signing_key[0], catalog.parent / "mirror" / "m.model.sig")
    site = tmp_path / "site"
    r = mirror(cli, catalog, site, "https://models.example.org", 2, "--key", str(signing_key[0]))
    assert r.returncode == 1
    assert "publisher signature of model m by public key sha256:" in r.stderr
    assert f"signs tiny.gguf as sha256 {hashlib.sha256(other.read_bytes()).hexdigest()}" in r.stderr, r.stderr
    assert files_under(site) == []


@pytest.mark.parametrize("version, url, says", [
    (1, "https://models.example.org", "--version: 1 is not greater than the input catalog's v1"),
    (2, "http://models.example.org", "must be an https:// URL (plain http only on loopback)"),
])
def test_the_mirror_needs_a_higher_version_and_an_https_url(tmp_path, cli, signing_key, version, url, says) -> None:
    catalog = build(tmp_path, signing_key[0], cli)
    site = tmp_path / "site"
    r = mirror(cli, catalog, site, url, version, "--key", str(signing_key[0]))
    assert r.returncode == 1 and says in r.stderr, r.stderr
    assert files_under(site) == []


def test_a_mirrored_folder_also_works_as_a_local_catalog(tmp_path, cli, signing_key, loc) -> None:
    """Copied to an air-gapped machine, the same folder is a catalog with local sources."""
    catalog = build(tmp_path, signing_key[0], cli)
    site = tmp_path / "site"
    nowhere = "http://127.0.0.1:9"  # the mirror's public address is out of reach from there
    assert mirror(cli, catalog, site, nowhere, 2, "--key", str(signing_key[0])).returncode == 0
    assert cli("catalog", "add", str(site / "catalog.json"), "--key", str(signing_key[1])).returncode == 0
    r = cli("pull", "m")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"installed: m from local folder {site / 'models' / 'm'}" in r.stdout


def test_mirror_re_signs_only_a_catalog_its_signer_signed(tmp_path, signing_key, cli) -> None:
    """Review finding: mirror re-signed whatever catalog.json lay in the build folder. Someone
    who could write that folder added a model signed by their own key, and the next mirror
    run published it under the organisation's signature."""
    from catalog_kit import build

    cat = build(tmp_path / "build", signing_key[0])
    doc = json.loads(cat.read_text())
    intruder = generate_key(tmp_path / "intruder")
    evil = make_model(tmp_path / "build" / "out" / "mirror", name="evil.gguf")
    sign_file_or_folder(evil, intruder[0], evil.parent / "evil.model.sig")
    doc["models"].append({**doc["models"][0], "id": "evil", "name": "Evil",
                          "files": [{"name": "evil.gguf", "size": evil.stat().st_size,
                                     "sha256": hashlib.sha256(evil.read_bytes()).hexdigest()}],
                          "signature": {"bundle": "evil.model.sig",
                                        "signer": {"kind": "key", "public_key_pem": intruder[1].read_text()}}})
    cat.write_text(json.dumps(doc))  # the organisation's signature no longer covers it
    out = tmp_path / "site"
    r = cli("mirror", "--catalog", str(cat), "--out", str(out), "--url", "https://models.example.org",
            "--version", "2", "--key", str(signing_key[0]), tool="vetted-admin")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"catalog {cat}" in r.stderr and "not the one you signed" in r.stderr
    assert not (out / "catalog.json").exists() and not (out / "models" / "evil").exists()


def test_only_a_file_the_publisher_alone_can_change_is_hard_linked(tmp_path) -> None:
    """Review finding: a published file hard-linked to someone else's input shares its inode:
    its owner could change the served bytes after the catalog was signed. Theirs is copied."""
    from vetted.authoring.files import place

    mine = make_model(tmp_path / "in", "mine.gguf")
    theirs = make_model(tmp_path / "in", "theirs.gguf")
    os.chown(theirs, 1000, 1000)
    shared = make_model(tmp_path / "in", "shared.gguf")
    os.chmod(shared, 0o664)
    placed = {p.name: place(p, tmp_path / "out" / p.name) for p in (mine, theirs, shared)}
    assert [placed[n].linked for n in ("mine.gguf", "theirs.gguf", "shared.gguf")] == [True, False, False]
    for name in ("theirs.gguf", "shared.gguf"):
        st = (tmp_path / "out" / name).stat()
        assert (st.st_nlink, st.st_uid, st.st_mode & 0o777) == (1, os.getuid(), 0o644)
