"""Catalog state an attacker could poison: the rollback floor is kept per pinned signer
and catalog id, and a location cannot silently change hands."""

from __future__ import annotations

import json

import pytest

from catalog_kit import build
from vetted.catalog.signed import load
from vetted.errors import CatalogError
from vetted.authoring.publish import generate_key
from vetted.store import audit
from vetted.trust.identity import PublicKey


def test_another_signer_reusing_the_id_cannot_lock_a_catalog_out(tmp_path, db, signing_key) -> None:
    alice = PublicKey(signing_key[1].read_bytes())
    load(str(build(tmp_path / "a1", signing_key[0], version=1)), alice, db)
    # Mallory pins her own catalog under the same id at a huge version...
    m_priv, m_pub = generate_key(tmp_path / "mallory")
    load(str(build(tmp_path / "m", m_priv, version=999_999)), PublicKey(m_pub.read_bytes()), db)
    # ...and Alice's next issue still loads
    assert load(str(build(tmp_path / "a2", signing_key[0], version=2)), alice, db).catalog.version == 2


def test_the_rollback_floor_follows_the_signer_not_the_location(tmp_path, db, signing_key) -> None:
    alice = PublicKey(signing_key[1].read_bytes())
    load(str(build(tmp_path / "new", signing_key[0], version=5)), alice, db)
    old_copy = build(tmp_path / "elsewhere", signing_key[0], version=4)  # a replay from another place
    with pytest.raises(CatalogError, match="v4 is older than v5 already seen"):
        load(str(old_copy), alice, db)


def test_repinning_a_location_to_another_signer_needs_confirmation(tmp_path, loc, signing_key, cli) -> None:
    cat = build(tmp_path / "cat", signing_key[0])
    _m_priv, m_pub = generate_key(tmp_path / "mallory")
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    settings = loc.config / "settings.json"
    before = settings.read_text()

    r = cli("catalog", "add", str(cat), "--key", str(m_pub))
    assert r.returncode == 1 and r.stdout.startswith("refused: catalog ") and "--replace-signer" in r.stdout
    assert "is pinned to public key sha256:" in r.stdout
    assert settings.read_text() == before  # nothing changed
    r = cli("catalog", "add", str(cat), "--key", str(signing_key[1]))  # the same signer again: fine
    assert r.returncode == 0 and r.stdout.startswith("pinned ")

    r = cli("catalog", "add", str(cat), "--key", str(m_pub), "--replace-signer")
    assert r.returncode == 0 and r.stdout.startswith("re-pinned "), r.stdout + r.stderr
    pinned = json.loads(settings.read_text())["catalogs"][0]["signer"]["public_key_pem"]
    assert pinned == m_pub.read_text()
    from vetted.store.db import open_db

    rows = audit.entries(open_db(loc.database))
    refused = [r for r in rows if r["action"] == "catalog.pin" and r["result"] == "refused"]
    repinned = [r for r in rows if r["action"] == "catalog.repin"]
    assert len(refused) == 1 and len(repinned) == 1
    assert repinned[0]["result"] == "accepted" and "was public key sha256:" in repinned[0]["reason"]
    assert repinned[0]["identity"] == PublicKey(m_pub.read_bytes()).describe()


def test_the_same_key_written_differently_is_the_same_signer(tmp_path, db, loc, signing_key, cli) -> None:
    """Rollback floors and pins follow the key itself, not its PEM text: re-pinning the
    same key with CRLF line endings is no conflict and cannot reset the floor."""
    cat = build(tmp_path / "v2", signing_key[0], version=2)
    crlf = tmp_path / "same-key-crlf.pem"
    crlf.write_bytes(signing_key[1].read_bytes().replace(b"\n", b"\r\n"))
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    assert cli("catalog", "list", "--catalog", str(cat)).returncode == 0  # v2 seen
    r = cli("catalog", "add", str(cat), "--key", str(crlf))
    assert r.returncode == 0 and r.stdout.startswith("pinned "), r.stdout + r.stderr
    old = build(tmp_path / "v1", signing_key[0], version=1)
    from vetted.store.db import open_db

    with pytest.raises(CatalogError, match="v1 is older than v2 already seen from this signer"):
        load(str(old), PublicKey(crlf.read_bytes()), open_db(loc.database))
