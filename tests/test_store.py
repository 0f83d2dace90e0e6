"""The model store: the only way in is a verified pull; a file changed later is refused."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog_kit import build, make_model
from vetted.catalog.signed import load
from vetted.errors import CatalogError, InputError, Refused, StoreError
from vetted.install.pull import pull, store_path
from vetted.authoring.publish import generate_key, sign_file_or_folder
from vetted.store import audit, installed
from vetted.store.db import MIGRATIONS, open_db
from vetted.trust.identity import PublicKey


@pytest.fixture
def catalog(tmp_path: Path, signing_key, db):
    cat = build(tmp_path, signing_key[0])
    return load(str(cat), PublicKey(signing_key[1].read_bytes()), db)


def test_pull_from_local_mirror_installs_verified(loc, db, catalog) -> None:
    result = pull(loc, db, catalog, "tiny")
    m = result.model
    f = m.files[0]
    assert m.state == "verified" and f.path == store_path(loc, f.sha256) and f.path.exists()
    assert "local folder" in result.source
    assert not list(loc.quarantine.glob("*.part"))
    assert audit.entries(db)[-1]["action"] == "model.install"
    again = pull(loc, db, catalog, "tiny")
    assert again.already


def test_check_fast_path_then_full_rehash(loc, db, catalog) -> None:
    pull(loc, db, catalog, "tiny")
    first = installed.check(db, "tiny")  # a fresh download is re-read from disk once
    assert first.rehashed == ["tiny.gguf"] and first.fast_path == []
    fast = installed.check(db, "tiny")
    assert fast.fast_path == ["tiny.gguf"] and fast.rehashed == []
    full = installed.check(db, "tiny", full=True)
    assert full.rehashed == ["tiny.gguf"]


def test_changed_file_after_install_is_refused_and_recorded(loc, db, catalog) -> None:
    m = pull(loc, db, catalog, "tiny").model
    path = m.files[0].path
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(Refused, match="sha256 is now"):
        installed.check(db, "tiny")
    assert installed.get(db, "tiny").state == "refused"
    assert audit.entries(db)[-1]["result"] == "refused"
    # the refusal sticks until the file is right again, even on the fast path
    with pytest.raises(Refused):
        installed.check(db, "tiny")


def test_same_bytes_touched_passes_after_rehash(loc, db, catalog) -> None:
    m = pull(loc, db, catalog, "tiny").model
    path = m.files[0].path
    os.utime(path, ns=(1, 1))
    r = installed.check(db, "tiny")
    assert r.rehashed == ["tiny.gguf"]  # mtime changed → full re-hash, bytes still right
    assert installed.check(db, "tiny").fast_path == ["tiny.gguf"]  # new stat recorded


def test_truncated_or_missing_file_refused(loc, db, catalog) -> None:
    m = pull(loc, db, catalog, "tiny").model
    path = m.files[0].path
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(Refused, match="size is 100 bytes"):
        installed.check(db, "tiny")
    with pytest.raises(Refused, match="stays refused since its last check"):
        installed.check(db, "tiny")  # a refusal sticks until a full re-hash
    path.unlink()
    with pytest.raises(Refused, match="is missing"):
        installed.check(db, "tiny", full=True)


def test_remove_deletes_only_unshared_files(loc, db, catalog, cli) -> None:
    pull(loc, db, catalog, "tiny")
    orphans = installed.remove(db, "tiny")
    assert store_path(loc, catalog.catalog.models[0].files[0].sha256) in orphans
    with pytest.raises(InputError):
        installed.get(db, "tiny")


def test_expired_catalog_refuses_new_downloads_keeps_installed(tmp_path, loc, db, signing_key) -> None:
    cat = build(tmp_path / "a", signing_key[0])
    fresh = load(str(cat), PublicKey(signing_key[1].read_bytes()), db)
    pull(loc, db, fresh, "tiny")
    past = datetime.now(timezone.utc) - timedelta(days=1)
    expired_cat = build(tmp_path / "b", signing_key[0], version=2,
                        issued=(past - timedelta(days=9)).isoformat(), expires=past.isoformat(),
                        models=[{"id": "other", "name": "Other", "publisher": "P", "license": "MIT",
                                 "path": str(make_model(tmp_path / "b" / "src", "other.gguf"))}])
    expired = load(str(expired_cat), PublicKey(signing_key[1].read_bytes()), db)
    with pytest.raises(CatalogError, match="expired"):
        pull(loc, db, expired, "other")
    assert installed.check(db, "tiny").model_id == "tiny"  # installed model still usable
    assert not store_path(loc, expired.catalog.models[0].files[0].sha256).exists()


def test_publisher_signature_from_another_key_refused(tmp_path, loc, db, signing_key) -> None:
    cat = build(tmp_path, signing_key[0])
    mirror = cat.parent / "mirror"
    other_priv, _ = generate_key(tmp_path / "mallory")
    sign_file_or_folder(mirror / "tiny.gguf", other_priv, mirror / "tiny.model.sig")
    loaded = load(str(cat), PublicKey(signing_key[1].read_bytes()), db)
    with pytest.raises(Refused, match="Key mismatch|signature against public key"):
        pull(loc, db, loaded, "tiny")
    assert not [p for p in loc.store.rglob("*") if p.is_file()]
    assert installed.all_models(db) == []


def test_tampered_local_mirror_refused_nothing_installed(tmp_path, loc, db, signing_key) -> None:
    cat = build(tmp_path, signing_key[0])
    f = cat.parent / "mirror" / "tiny.gguf"
    data = bytearray(f.read_bytes())
    os.unlink(f)  # the mirror file may be a hard link to the source
    data[5] ^= 1
    f.write_bytes(bytes(data))
    loaded = load(str(cat), PublicKey(signing_key[1].read_bytes()), db)
    with pytest.raises(Refused, match="the signed catalog says"):
        pull(loc, db, loaded, "tiny")
    assert installed.all_models(db) == []
    assert not list(loc.quarantine.glob("*.part"))  # wrong bytes are not kept for resume
    assert audit.entries(db)[-1]["result"] == "refused"


def test_audit_log_is_append_only(db) -> None:
    audit.record(db, "test", "x", "info", "one")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET reason = 'rewritten'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit")
    assert [r["reason"] for r in audit.entries(db)] == ["one"]


def test_database_from_the_future_refused(loc) -> None:
    db = open_db(loc.database)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.conn.close()
    with pytest.raises(StoreError, match="newer than this Vetted understands"):
        open_db(loc.database)


def test_wal_mode(db) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cli_pull_models_check_remove_audit(tmp_path, signing_key, cli) -> None:
    cat = build(tmp_path, signing_key[0])
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    r = cli("pull", "tiny")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified: tiny.gguf sha256" in r.stdout and "installed: tiny" in r.stdout
    models = cli("models")
    assert "tiny" in models.stdout and "verified" in models.stdout
    assert cli("check", "tiny", "--full").returncode == 0
    store_file = next(p for p in (Path(os.environ["VETTED_HOME"]) / "data" / "models" / "sha256").rglob("*") if p.is_file())
    os.chmod(store_file, 0o644)
    with open(store_file, "r+b") as f:
        f.seek(10)
        old = f.read(1)
        f.seek(10)
        f.write(bytes([old[0] ^ 0xFF]))
    bad = cli("check", "tiny")
    assert bad.returncode == 1 and "refused" in bad.stdout
    assert "REFUSED" in cli("models").stdout
    audit_out = cli("audit", "--json")
    assert '"result": "refused"' in audit_out.stdout
    assert cli("remove", "tiny").returncode == 0
    assert not store_file.exists()
    assert "no models installed" in cli("models").stdout


def test_file_verified_in_an_earlier_boot_is_rehashed_once(loc, db, catalog) -> None:
    pull(loc, db, catalog, "tiny")
    db.execute("UPDATE installed_files SET boot_id = 'an-earlier-boot'")
    assert installed.check(db, "tiny").rehashed == ["tiny.gguf"]
    assert installed.check(db, "tiny").fast_path == ["tiny.gguf"]  # re-verified in this boot
