"""The signed catalog: strict schema, pinned signer, rollback, freeze, caps."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog_kit import build, rewrite_and_resign
from vetted.catalog.schema import MAX_CATALOG_BYTES, parse
from vetted.catalog.signed import load
from vetted.errors import CatalogError
from vetted.authoring.publish import generate_key
from vetted.store import audit
from vetted.trust.identity import PublicKey


def pub(key_pair) -> PublicKey:
    return PublicKey(key_pair[1].read_bytes())


def test_signed_catalog_loads_and_is_audited(tmp_path: Path, signing_key, db) -> None:
    cat = build(tmp_path, signing_key[0])
    loaded = load(str(cat), pub(signing_key), db)
    assert loaded.catalog.id == "org.test.catalog" and loaded.catalog.models[0].id == "tiny"
    assert not loaded.expired
    rows = audit.entries(db)
    assert rows[-1]["action"] == "catalog.load" and rows[-1]["result"] == "accepted"


def test_wrong_signer_refused(tmp_path: Path, signing_key, db) -> None:
    cat = build(tmp_path, signing_key[0])
    other = generate_key(tmp_path / "other")
    with pytest.raises(CatalogError, match="signature of catalog"):
        load(str(cat), pub(other), db)
    assert audit.entries(db)[-1]["result"] == "refused"


def test_tampered_catalog_refused(tmp_path: Path, signing_key, db) -> None:
    cat = build(tmp_path, signing_key[0])
    doc = json.loads(cat.read_bytes())
    doc["models"][0]["license"] = "Proprietary"
    cat.write_text(json.dumps(doc, indent=2))
    with pytest.raises(CatalogError, match="altered after signing"):
        load(str(cat), pub(signing_key), db)


def test_missing_signature_refused(tmp_path: Path, signing_key, db, cli) -> None:
    from vetted.store import audit

    cat = build(tmp_path, signing_key[0])
    cat.with_name("catalog.json.sig").unlink()
    with pytest.raises(CatalogError, match=r"signature of catalog .*catalog\.json: .*catalog\.json\.sig is missing "
                                           r"or unreadable \(No such file or directory\)"):
        load(str(cat), pub(signing_key), db)
    row = audit.entries(db)[-1]
    assert (row["action"], row["result"]) == ("catalog.load", "refused") and "missing or unreadable" in row["reason"]
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    r = cli("catalog", "list")
    assert r.returncode == 1 and r.stdout.startswith("refused: signature of catalog "), r.stdout + r.stderr
    assert "catalog.json.sig is missing or unreadable" in r.stdout


def test_missing_signature_over_http_is_refused_and_audited(tmp_path: Path, signing_key, db) -> None:
    import functools
    import http.server
    import threading

    from vetted.store import audit

    cat = build(tmp_path, signing_key[0])
    cat.with_name("catalog.json.sig").unlink()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(cat.parent))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/catalog.json"
        with pytest.raises(CatalogError, match=r"catalog\.json\.sig is missing or unreadable \(HTTP 404"):
            load(url, pub(signing_key), db)
    finally:
        srv.shutdown()
        srv.server_close()
    row = audit.entries(db)[-1]
    assert (row["action"], row["result"], row["subject"]) == ("catalog.load", "refused", url)


def test_rollback_refused_and_newer_accepted(tmp_path: Path, signing_key, db) -> None:
    cat = build(tmp_path, signing_key[0], version=5)
    load(str(cat), pub(signing_key), db)
    rewrite_and_resign(cat, signing_key[0], lambda d: d.update(version=4))
    with pytest.raises(CatalogError, match=r"v4 is older than v5 already seen from this signer \(rollback\)"):
        load(str(cat), pub(signing_key), db)
    rewrite_and_resign(cat, signing_key[0], lambda d: d.update(version=6))
    assert load(str(cat), pub(signing_key), db).catalog.version == 6


def test_rollback_floor_spans_every_signer_pinned_for_the_catalog(tmp_path: Path, signing_key, db) -> None:
    """Key rotation: while old and new keys are both pinned, the old key's v1 replayed after
    the new key's v2 is a rollback, and so is an old-key catalog reusing v2's number."""
    new = generate_key(tmp_path / "new-key")
    both = [pub(signing_key), pub(new)]
    cat = build(tmp_path, signing_key[0], version=1)
    old_v1 = (cat.read_bytes(), cat.with_name("catalog.json.sig").read_bytes())
    assert load(str(cat), both, db).catalog.version == 1
    rewrite_and_resign(cat, new[0], lambda d: d.update(version=2))
    assert load(str(cat), both, db).catalog.version == 2
    cat.write_bytes(old_v1[0])
    cat.with_name("catalog.json.sig").write_bytes(old_v1[1])
    with pytest.raises(CatalogError, match=r"v1 is older than v2 already seen from a signer pinned for this "
                                           r"catalog \(rollback\)"):
        load(str(cat), both, db)
    rewrite_and_resign(cat, signing_key[0], lambda d: d.update(version=2, name="Old key, v2 reused"))
    with pytest.raises(CatalogError, match="same version number"):
        load(str(cat), both, db)
    rewrite_and_resign(cat, new[0], lambda d: d.update(version=3))
    assert load(str(cat), both, db).catalog.version == 3


def test_same_version_different_content_refused(tmp_path: Path, signing_key, db) -> None:
    cat = build(tmp_path, signing_key[0], version=3)
    load(str(cat), pub(signing_key), db)
    rewrite_and_resign(cat, signing_key[0], lambda d: d.update(name="Changed without a new version"))
    with pytest.raises(CatalogError, match="same version number"):
        load(str(cat), pub(signing_key), db)


def test_expired_catalog_loads_but_is_marked(tmp_path: Path, signing_key, db) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=10)
    cat = build(tmp_path, signing_key[0], issued=(past - timedelta(days=30)).isoformat(),
                expires=past.isoformat())
    loaded = load(str(cat), pub(signing_key), db)
    assert loaded.expired
    assert "EXPIRED" in audit.entries(db)[-1]["reason"]


def _doc() -> dict:
    return {
        "schema": "vetted.catalog/1", "id": "c", "name": "C", "publisher": "P", "version": 1,
        "issued": "2026-01-01T00:00:00Z", "expires": "2027-01-01T00:00:00Z",
        "models": [{
            "id": "m", "name": "M", "publisher": "P", "license": "MIT",
            "files": [{"name": "m.gguf", "size": 10, "sha256": "a" * 64}],
            "sources": {"local": ["mirror"]},
            "signature": {"bundle": "m.sig", "signer": {"kind": "key", "public_key_pem": "PEM"}},
        }],
    }


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["models"][0]["files"][0].update(name="../../etc/passwd"), "models.0.files.0.name"),
    (lambda d: d["models"][0]["files"][0].update(name="sub/dir.gguf"), "models.0.files.0.name"),
    (lambda d: d["models"][0]["files"][0].update(name="C:\\evil.gguf"), "models.0.files.0.name"),
    (lambda d: d["models"][0]["signature"].update(bundle="../model.sig"), "models.0.signature.bundle"),
    (lambda d: d["models"][0]["files"][0].update(size="ten"), "models.0.files.0.size"),
    (lambda d: d["models"][0]["files"][0].update(sha256="xyz"), "models.0.files.0.sha256"),
    (lambda d: d["models"][0].pop("license"), "models.0.license"),
    (lambda d: d.pop("expires"), "expires"),
    (lambda d: d.update(version="1"), "version"),
    (lambda d: d.update(unexpected=True), "unexpected"),
    (lambda d: d["models"][0]["sources"].update(mirrors=["http://example.com/m"]), "models.0.sources.mirrors"),
    (lambda d: d["models"][0]["signature"]["signer"].update(kind="any"), "models.0.signature.signer.kind"),
    (lambda d: d["models"].append(d["models"][0]), "duplicate model ids"),
])
def test_malformed_catalog_names_the_field(mutate, field: str) -> None:
    doc = _doc()
    parse(json.dumps(doc).encode(), "ok")  # the base document is valid
    mutate(doc)
    with pytest.raises(CatalogError) as exc:
        parse(json.dumps(doc).encode(), "t")
    assert field in str(exc.value)


def test_wrong_schema_and_garbage_and_size_cap() -> None:
    with pytest.raises(CatalogError, match="expected 'vetted.catalog/1'"):
        parse(json.dumps({**_doc(), "schema": "vetted.catalog/2"}).encode(), "t")
    with pytest.raises(CatalogError, match="not valid JSON"):
        parse(b"{nope", "t")
    with pytest.raises(CatalogError, match="cap"):
        parse(b" " * (MAX_CATALOG_BYTES + 1), "t")


def test_oversized_catalog_not_read_past_cap(tmp_path: Path, signing_key, db) -> None:
    huge = tmp_path / "catalog.json"
    with open(huge, "wb") as f:
        f.truncate(MAX_CATALOG_BYTES + 10)
    (tmp_path / "catalog.json.sig").write_text("{}")
    with pytest.raises(Exception, match="cap"):
        load(str(huge), pub(signing_key), db)


def test_cli_catalog_needs_a_pinned_signer(tmp_path: Path, signing_key, cli) -> None:
    cat = build(tmp_path, signing_key[0])
    r = cli("catalog", "--catalog", str(cat))
    assert r.returncode == 2 and "no signer is pinned" in r.stderr
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    listed = cli("catalog", "--catalog", str(cat))
    assert listed.returncode == 0 and "tiny" in listed.stdout and "signed by public key" in listed.stdout
    found = cli("catalog", "search", "tiny", "--json")
    assert json.loads(found.stdout)["models"][0]["id"] == "tiny"
    none = cli("catalog", "search", "no-such-model")
    assert "(no models match)" in none.stdout


def test_a_location_keeps_serving_the_catalog_it_served(tmp_path: Path, signing_key, cli) -> None:
    """Review finding: floors are per signer and catalog id, so a pinned location could be
    served another (older, withdrawn) catalog the same signer once made. A location is bound
    to the catalog id it first served, until the person pins it again."""
    site = build(tmp_path / "site", signing_key[0], version=5)
    withdrawn = build(tmp_path / "old", signing_key[0], version=1, id="org.withdrawn")
    assert cli("catalog", "add", str(site), "--key", str(signing_key[1])).returncode == 0
    assert cli("catalog").returncode == 0
    site.write_bytes(withdrawn.read_bytes())
    site.with_name("catalog.json.sig").write_bytes(withdrawn.with_name("catalog.json.sig").read_bytes())
    swapped = cli("catalog")
    assert swapped.returncode == 1
    assert (f"catalog at {site}: serves org.withdrawn v1, but it served catalog org.test.catalog before"
            in swapped.stdout), swapped.stdout
    # the person pins it again: their choice, and the new catalog is accepted (and audited)
    assert cli("catalog", "add", str(site), "--key", str(signing_key[1])).returncode == 0
    assert cli("catalog").returncode == 0
