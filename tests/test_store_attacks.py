"""Attacks on installed files: in-place edits that hide from a size+mtime+inode check,
edits through hard links, symlinks planted in the store or in quarantine, a database row
pointing elsewhere, and refusals that must stick (DESIGN.md invariant 1).

Each test builds real files, installs them through the real `pull`, and attacks them the
way a local user or a piece of malware running as that user would.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from catalog_kit import build
from vetted.catalog.signed import load
from vetted.errors import Refused
from vetted.install.pull import pull, store_path
from vetted.store import audit, installed
from vetted.trust.identity import PublicKey


@pytest.fixture
def catalog(tmp_path, db, signing_key):
    cat = build(tmp_path / "cat", signing_key[0])
    return load(str(cat), PublicKey(signing_key[1].read_bytes()), db)


def _edit_in_place(path: Path, offset: int = 1000) -> None:
    """Flips one byte without changing the size, then puts the timestamps back (`touch -r`)."""
    st = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    os.chmod(path, st.st_mode & 0o777)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def test_same_size_edit_with_mtime_restored_is_refused(loc, db, catalog) -> None:
    path = pull(loc, db, catalog, "tiny").model.files[0].path
    _edit_in_place(path)
    with pytest.raises(Refused, match=r"installed file tiny\.gguf of tiny: sha256 is now [0-9a-f]{64}"):
        installed.check(db, "tiny")
    assert installed.get(db, "tiny").state == "refused"
    row = audit.entries(db)[-1]
    assert (row["action"], row["result"]) == ("model.check", "refused") and "sha256 is now" in row["reason"]


def test_edit_through_a_hard_link_is_refused(loc, db, catalog, tmp_path) -> None:
    path = pull(loc, db, catalog, "tiny").model.files[0].path
    link = tmp_path / "elsewhere.gguf"
    os.link(path, link)  # same inode, another name the store does not know about
    _edit_in_place(link, offset=4321)
    with pytest.raises(Refused, match="sha256 is now"):
        installed.check(db, "tiny")


def test_a_refusal_sticks_until_a_full_rehash_finds_the_verified_bytes(loc, db, catalog) -> None:
    path = pull(loc, db, catalog, "tiny").model.files[0].path
    good = path.read_bytes()
    _edit_in_place(path)
    with pytest.raises(Refused, match="sha256 is now"):
        installed.check(db, "tiny", full=True)
    with pytest.raises(Refused, match=r"stays refused since its last check \(installed file tiny\.gguf"):
        installed.check(db, "tiny")  # the fast path cannot undo a refusal
    _edit_in_place(path)  # flip the byte back: the bytes are the verified ones again
    assert path.read_bytes() == good
    with pytest.raises(Refused, match="stays refused"):
        installed.check(db, "tiny")
    assert installed.check(db, "tiny", full=True).rehashed == ["tiny.gguf"]
    assert installed.get(db, "tiny").state == "verified"
    assert installed.check(db, "tiny").fast_path == ["tiny.gguf"]


def test_a_symlink_swapped_into_the_store_is_refused(loc, db, catalog, tmp_path) -> None:
    path = pull(loc, db, catalog, "tiny").model.files[0].path
    copy = tmp_path / "attacker.gguf"
    copy.write_bytes(path.read_bytes())  # the right bytes today; the attacker can change them later
    os.unlink(path)
    os.symlink(copy, path)
    with pytest.raises(Refused, match="cannot be opened as a plain file"):
        installed.check(db, "tiny", full=True)


def test_a_symlink_planted_at_the_store_name_is_not_installed(loc, db, catalog, tmp_path) -> None:
    entry = catalog.catalog.models[0]
    target = store_path(loc, entry.files[0].sha256)
    target.parent.mkdir(parents=True)
    bait = tmp_path / "bait.gguf"
    bait.write_bytes((catalog_dir(catalog) / "mirror" / "tiny.gguf").read_bytes())
    os.symlink(bait, target)
    pull(loc, db, catalog, "tiny")
    assert not target.is_symlink() and target.is_file()
    _edit_in_place(bait)  # what the attacker controls no longer matters
    assert installed.check(db, "tiny", full=True).rehashed == ["tiny.gguf"]


def test_a_symlink_planted_as_the_partial_download_is_not_written_through(loc, db, catalog, tmp_path) -> None:
    entry = catalog.catalog.models[0]
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"someone's precious file")
    part = loc.quarantine / f"{entry.files[0].sha256}.part"
    os.symlink(victim, part)
    pull(loc, db, catalog, "tiny")
    assert victim.read_bytes() == b"someone's precious file"
    assert installed.get(db, "tiny").state == "verified"


def test_a_hard_link_planted_as_the_partial_download_is_not_written_through(loc, db, catalog, tmp_path) -> None:
    entry = catalog.catalog.models[0]
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"\x00" * 10)
    os.link(victim, loc.quarantine / f"{entry.files[0].sha256}.part")
    pull(loc, db, catalog, "tiny")
    assert victim.read_bytes() == b"\x00" * 10


def test_the_store_path_comes_from_the_digest_not_the_database_row(loc, db, catalog, tmp_path) -> None:
    m = pull(loc, db, catalog, "tiny").model
    real = m.files[0].path
    decoy = tmp_path / "decoy.gguf"
    decoy.write_bytes(real.read_bytes())
    st = os.stat(decoy)
    con = sqlite3.connect(loc.database)
    con.execute("UPDATE installed_files SET path=?, inode=?, mtime_ns=?, dev=?, ctime_ns=? WHERE model_id='tiny'",
                [str(decoy), st.st_ino, st.st_mtime_ns, st.st_dev, st.st_ctime_ns])
    con.commit()
    con.close()
    assert installed.get(db, "tiny").files[0].path == real == store_path(loc, m.files[0].sha256)
    with installed.open_checked(db, "tiny") as checked:
        assert (os.fstat(checked.files[0].fd).st_ino, os.fstat(checked.files[0].fd).st_dev) == \
            (os.stat(real).st_ino, os.stat(real).st_dev)
        assert checked.rehashed == ["tiny.gguf"]  # the row's identity was the decoy's: re-hashed


def test_rows_recorded_before_device_and_ctime_existed_are_rehashed_once(loc, db, catalog) -> None:
    pull(loc, db, catalog, "tiny")
    con = sqlite3.connect(loc.database)
    con.execute("UPDATE installed_files SET dev=NULL, ctime_ns=NULL")
    con.commit()
    con.close()
    assert installed.check(db, "tiny").rehashed == ["tiny.gguf"]
    assert installed.check(db, "tiny").fast_path == ["tiny.gguf"]


def catalog_dir(loaded) -> Path:
    return Path(loaded.base)


def test_bytes_written_into_the_partial_during_the_pull_never_run(tmp_path, loc, db, signing_key) -> None:
    """The digest is computed over the bytes as they arrive; a program writing into the
    quarantined file meanwhile is caught by the first check, which re-reads the disk."""
    import time

    from catalog_kit import make_model

    src = make_model(tmp_path / "src", "big.gguf", 3 * 1024 * 1024 + 17)
    cat = build(tmp_path / "cat", signing_key[0], models=[
        {"id": "big", "name": "Big", "publisher": "P", "license": "MIT", "path": str(src)}])
    loaded = load(str(cat), PublicKey(signing_key[1].read_bytes()), db)
    part = loc.quarantine / f"{loaded.catalog.models[0].files[0].sha256}.part"
    done: list[bool] = []

    def tamper(_name: str, received: int, _total: int) -> None:
        if done or received < 2 * 1024 * 1024:
            return
        deadline = time.monotonic() + 10
        while part.stat().st_size < 1024 * 1024 and time.monotonic() < deadline:
            time.sleep(0.001)  # until the first MiB is on disk
        with open(part, "r+b") as f:  # by name, as another program would
            f.write(b"EVILEVIL")
        done.append(True)

    pull(loc, db, loaded, "big", progress=tamper)
    assert done and store_path(loc, loaded.catalog.models[0].files[0].sha256).read_bytes()[:8] == b"EVILEVIL"
    with pytest.raises(Refused, match=r"installed file big\.gguf of big: sha256 is now"):
        installed.check(db, "big")


def test_a_fifo_at_the_store_entry_is_refused_not_waited_on(loc, db, catalog) -> None:
    import threading

    path = pull(loc, db, catalog, "tiny").model.files[0].path
    os.unlink(path)
    os.mkfifo(path)
    out: list = []
    t = threading.Thread(target=lambda: out.append(_raises(lambda: _check_in_thread(loc, full=True))),
                         daemon=True)
    t.start()
    t.join(30)
    assert out, "the check waited on a FIFO"
    assert isinstance(out[0], Refused) and "is not a regular file" in out[0].line(), out


def test_a_fifo_at_the_stored_signature_is_refused_not_waited_on(loc, db, catalog) -> None:
    import threading

    m = pull(loc, db, catalog, "tiny").model
    os.unlink(m.signature_path)
    os.mkfifo(m.signature_path)
    out: list = []
    t = threading.Thread(target=lambda: out.append(_raises(lambda: _check_in_thread(loc))), daemon=True)
    t.start()
    t.join(30)
    assert out, "the check waited on a FIFO"
    assert isinstance(out[0], Refused) and "stored signature bundle" in out[0].line(), out


def test_a_symlinked_quarantine_folder_is_refused(loc, db, catalog, tmp_path) -> None:
    from vetted.errors import StoreError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loc.quarantine.rmdir()
    os.symlink(elsewhere, loc.quarantine)
    with pytest.raises(StoreError, match="is a symbolic link or not a folder"):
        pull(loc, db, catalog, "tiny")
    assert list(elsewhere.iterdir()) == []


def test_a_damaged_signature_row_is_a_clear_error(loc, db, catalog) -> None:
    from vetted.errors import StoreError

    pull(loc, db, catalog, "tiny")
    con = sqlite3.connect(loc.database)
    con.execute("UPDATE installed_models SET signature_path='..'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="its signature file name '..' is not one Vetted writes"):
        installed.get(db, "tiny")


def _check_in_thread(loc, full: bool = False):
    from vetted.store.db import open_db

    db = open_db(loc.database)
    try:
        return installed.check(db, "tiny", full=full)
    finally:
        db.conn.close()


def _raises(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001  (returned to the test)
        return exc
    return None
