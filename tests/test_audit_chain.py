"""The audit log is tamper-evident: attacked the way an intruder with write access to the
database file would (a second raw sqlite3 connection: INSERT OR REPLACE, DROP TRIGGER then
DELETE or UPDATE, a whole rewritten history), against real database files and real
`vetted` processes. Every attack must be refused or found, and trust decisions must stop
until a person acknowledges what was found."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from catalog_kit import build
from vetted.catalog.signed import load
from vetted.authoring.publish import generate_key, sign_file_or_folder
from vetted.store import audit
from vetted.store.db import MIGRATIONS, open_db
from vetted.trust.identity import PublicKey


def attacker(path: Path) -> sqlite3.Connection:
    """A second, raw connection: what anyone who can write the file can do."""
    return sqlite3.connect(str(path), isolation_level=None)


def head_file(loc) -> Path:
    """The chain head Vetted keeps next to the database, outside it."""
    return loc.database.parent / (loc.database.name + ".audit-head")


def forge_head(loc, last_id: int, last_hash: str) -> None:
    """What an intruder who also rewrites the head file writes there."""
    head_file(loc).write_text(json.dumps({"format": "vetted.audit-head/1", "database": str(loc.database.resolve()),
                                          "id": last_id, "hash": last_hash}))


def write_rows(db, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        audit.record(db, "test.step", f"subject-{i}", "info", f"reason {i}", "tester", {"i": i})


@pytest.fixture
def pinned(tmp_path: Path, signing_key, cli) -> Path:
    """A signed catalog pinned through the CLI (audited as catalog.pin) and loaded once."""
    cat = build(tmp_path, signing_key[0])
    added = cli("catalog", "add", str(cat), "--key", str(signing_key[1]))
    assert added.returncode == 0, added.stdout + added.stderr
    listed = cli("catalog")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return cat


@pytest.fixture
def signed_model(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A model folder signed with a fresh key: (folder, signature, public key)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x01" * 4096)
    priv, pub = generate_key(tmp_path / "model-key")
    sig = tmp_path / "model.sig"
    sign_file_or_folder(folder, priv, sig)
    return folder, sig, pub


def verify_cmd(cli, signed_model: tuple[Path, Path, Path]) -> subprocess.CompletedProcess[str]:
    folder, sig, pub = signed_model
    return cli("verify", str(folder), "--signature", str(sig), "--key", str(pub))


# --- the attacks ------------------------------------------------------------------------


def test_insert_or_replace_of_an_existing_row_is_refused(loc, db) -> None:
    write_rows(db, 3)
    before = audit.entries(db)[1]
    evil = attacker(loc.database)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        evil.execute("INSERT OR REPLACE INTO audit (id, at, action, subject, identity, result, reason, details)"
                     " VALUES (2, '2020-01-01T00:00:00+00:00', 'model.install', 'evil', NULL, 'accepted',"
                     " 'never refused', NULL)")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # nor slip in below the head
        evil.execute("INSERT INTO audit (id, at, action, subject, result, reason, prev_hash, hash)"
                     " VALUES (0, 'x', 'x', 'x', 'info', 'x', 'x', 'x')")
    assert audit.entries(db)[1] == before
    assert audit.verify_chain(db, full=True).ok


def test_drop_trigger_then_delete_a_middle_row(loc, db, pinned, signing_key, signed_model, cli) -> None:
    assert verify_cmd(cli, signed_model).returncode == 0
    write_rows(db, 4)
    victim = audit.entries(db)[2]["id"]
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id = ?", (victim,))

    refused = cli("catalog")
    assert refused.returncode == 1
    assert refused.stdout.startswith("refused: the audit log's hash chain")
    assert f"row {victim} is missing" in refused.stdout and "vetted audit --acknowledge" in refused.stdout
    v = verify_cmd(cli, signed_model)
    assert v.returncode == 1 and f"row {victim} is missing" in v.stdout, v.stdout + v.stderr

    shown = cli("audit")  # still shows what happened
    lines = shown.stdout.splitlines()
    assert shown.returncode == 0
    assert lines[0].startswith("BROKEN: the audit log's hash chain does not verify") and f"row {victim}" in lines[0]
    assert any("subject-3" in line for line in lines) and lines[-1].startswith("head: row ")

    status = audit.verify_chain(db)  # this process had verified the rows: found here too
    assert not status.ok
    assert [(p.kind, p.first_id, p.last_id) for p in status.problems] == [("missing", victim, victim),
                                                                        ("trigger", 0, 0)]
    assert "the trigger audit_no_delete that keeps the log append-only was removed" in status.summary()
    with pytest.raises(audit.AuditBroken, match=rf"row {victim} is missing: deleted after it was written") as exc:
        audit.require_intact(db)
    from vetted.errors import Fix

    assert exc.value.checked.startswith("the audit log's hash chain") and exc.value.remedy.fix is Fix.ACKNOWLEDGE_AUDIT
    assert "vetted" not in exc.value.action  # the core names no command; each front end words the remedy
    with pytest.raises(audit.AuditBroken, match="hash chain"):
        load(str(pinned), PublicKey(signing_key[1].read_bytes()), db)


def test_deleting_the_last_rows_is_detected(loc, db, cli) -> None:
    write_rows(db, 5)
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id >= 4")

    shown = cli("audit")
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[0].startswith("BROKEN")
    assert "rows 4-5 are missing from the end (the log had reached row 5)" in shown.stdout
    assert shown.stdout.splitlines()[-1].startswith("head: row 3, sha256 ")
    with pytest.raises(audit.AuditBroken, match=r"rows 4-5 are missing from the end"):
        audit.require_intact(db)


def test_tail_deletion_hidden_from_sqlite_sequence_is_caught_by_a_process_that_saw_it(loc, db) -> None:
    write_rows(db, 5)
    assert audit.verify_chain(db).head.id == 5
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id >= 4")
    evil.execute("UPDATE sqlite_sequence SET seq = 3 WHERE name = 'audit'")
    with pytest.raises(audit.AuditBroken, match=r"rows 4-5 are missing from the end"):
        audit.require_intact(db)


def test_update_of_a_reason_is_detected_even_with_its_hash_recomputed(loc, db, cli) -> None:
    write_rows(db, 4)
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_update")
    evil.execute("UPDATE audit SET reason = 'nothing to see' WHERE id = 2")

    shown = cli("audit")
    assert shown.stdout.splitlines()[0].startswith("BROKEN")
    assert "row 2 (" in shown.stdout and "does not match its hash" in shown.stdout
    with pytest.raises(audit.AuditBroken, match=r"row 2 \(.*\) does not match its hash"):
        audit.require_intact(db)

    # a cleverer intruder recomputes that row's hash: the next row no longer follows it
    row = evil.execute("SELECT id, at, action, subject, identity, result, reason, details, prev_hash"
                       " FROM audit WHERE id = 2").fetchone()
    evil.execute("UPDATE audit SET hash = ? WHERE id = 2", (audit.row_hash(row[:8], row[8]),))
    with pytest.raises(audit.AuditBroken, match=r"row 3 does not follow row 2"):
        audit.require_intact(db)
    assert cli("audit").stdout.splitlines()[0].startswith("BROKEN")


def test_acknowledge_then_continue_then_tamper_again(loc, pinned, signed_model, cli) -> None:
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id = 1")  # the catalog.pin entry
    assert cli("catalog").returncode == 1

    ack = cli("audit", "--acknowledge", "--reason", "restored from backup; incident 42")
    assert ack.returncode == 0, ack.stdout + ack.stderr
    assert "acknowledged 2 break(s)" in ack.stdout and "row 1 is missing" in ack.stdout
    assert "audit_no_delete" in ack.stdout
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # the trigger is back
        evil.execute("DELETE FROM audit WHERE id = 2")

    resumed = cli("catalog")  # trust decisions resume, and are chained after the acknowledgement
    assert resumed.returncode == 0, resumed.stdout
    assert verify_cmd(cli, signed_model).returncode == 0
    shown = cli("audit")
    assert shown.stdout.splitlines()[0].startswith("hash chain intact apart from 1 acknowledged break(s)")
    doc = json.loads(cli("audit", "--json").stdout)
    assert doc["chain"]["intact"] is True
    assert [p["fingerprint"] for p in doc["chain"]["acknowledged"]] == ["missing:1-1"]
    acks = [e for e in doc["entries"] if e["action"] == "audit.acknowledge"]
    assert len(acks) == 1 and acks[0]["reason"] == "restored from backup; incident 42"
    assert acks[0]["details"]["problems"][0]["fingerprint"] == "missing:1-1"
    assert cli("audit", "--acknowledge").stdout.startswith("nothing to acknowledge")

    # new tampering is not covered by the old acknowledgement
    last_catalog_load = max(e["id"] for e in doc["entries"] if e["action"] == "catalog.load")
    evil.execute("DROP TRIGGER audit_no_update")
    evil.execute("UPDATE audit SET result = 'accepted', reason = 'fine' WHERE id = ?", (last_catalog_load,))
    again = cli("catalog")
    assert again.returncode == 1
    assert f"row {last_catalog_load} (" in again.stdout and "row 1 is missing" not in again.stdout
    assert verify_cmd(cli, signed_model).returncode == 1
    # and even deleting the acknowledged row's neighbour changes the missing range: broken again
    assert cli("audit", "--acknowledge").returncode == 0
    assert cli("catalog").returncode == 0
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id = 2")
    again = cli("catalog")
    assert again.returncode == 1 and "rows 1-2 are missing" in again.stdout


def test_export_head_then_rewritten_history_is_refused(loc, tmp_path, pinned, cli) -> None:
    exported = cli("audit", "--json")
    doc = json.loads(exported.stdout)
    assert set(doc) >= {"head", "entries"}
    rows = doc["entries"]
    assert doc["head"] == {"id": rows[-1]["id"], "hash": rows[-1]["hash"], "count": len(rows)}
    text = cli("audit").stdout.splitlines()
    assert text[-1] == f"head: row {rows[-1]['id']}, sha256 {rows[-1]['hash']}, {len(rows)} rows"
    export = tmp_path / "audit-export.json"
    export.write_text(exported.stdout)

    ok = cli("audit", "--verify-against", str(export))
    assert ok.returncode == 0 and ok.stdout.startswith(f"consistent with export {export}"), ok.stdout + ok.stderr
    assert cli("catalog").returncode == 0  # history grows after the export: still consistent
    assert cli("audit", "--verify-against", str(export)).returncode == 0

    # an intruder rewrites row 1 and recomputes every hash after it: the chain alone looks intact ...
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_update")
    evil.execute("UPDATE audit SET identity = 'public key sha256:0000000000000000' WHERE id = 1")
    prev = audit.GENESIS
    for row in evil.execute("SELECT id, at, action, subject, identity, result, reason, details FROM audit"
                            " ORDER BY id").fetchall():
        digest = audit.row_hash(row, prev)
        evil.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, row[0]))
        prev = digest
    evil.execute(audit.TRIGGERS["audit_no_update"])
    assert cli("audit").stdout.startswith("BROKEN")  # the head kept outside the database names the old hash
    last = evil.execute("SELECT MAX(id) FROM audit").fetchone()[0]
    forge_head(loc, last, prev)  # so the intruder rewrites that too
    assert not cli("audit").stdout.startswith("BROKEN")
    # ... but not against the export
    refused = cli("audit", "--verify-against", str(export))
    assert refused.returncode == 1
    assert refused.stdout.startswith("refused: history rewritten since that export: "
                                     f"row {doc['head']['id']} now has hash"), refused.stdout


def test_verify_against_finds_rows_deleted_up_to_the_export_head(loc, tmp_path, db, cli) -> None:
    write_rows(db, 4)
    export = tmp_path / "export.json"
    export.write_text(cli("audit", "--json").stdout)
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id = 2")
    r = cli("audit", "--verify-against", str(export))
    assert r.returncode == 1
    assert r.stdout.startswith("refused: history rewritten since that export: row 2 is missing"), r.stdout
    old_shape = tmp_path / "old.json"
    old_shape.write_text(json.dumps(audit.entries(db)))
    unusable = cli("audit", "--verify-against", str(old_shape))
    assert unusable.returncode == 2 and "has no chain head" in unusable.stderr


def test_an_acknowledgement_needs_its_chained_entry(loc, db) -> None:
    write_rows(db, 3)
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id = 2")
    evil.execute(audit.TRIGGERS["audit_no_delete"])
    # a row slipped into the acknowledgements table, pointing at an ordinary entry, counts for nothing
    evil.execute("INSERT INTO audit_acknowledgements (at, fingerprint, kind, description, audit_id)"
                 " VALUES ('now', 'missing:2-2', 'missing', 'x', 3)")
    with pytest.raises(audit.AuditBroken, match="row 2 is missing"):
        audit.require_intact(db)
    assert [p.fingerprint for p in audit.acknowledge(db, "seen it")] == ["missing:2-2"]
    assert audit.require_intact(db).acknowledged[0].fingerprint == "missing:2-2"


# --- migration, caching, writers ----------------------------------------------------------


def _schema_5_database(path: Path, rows: int) -> None:
    """A database as Vetted left it at schema version 5, with audit rows written then."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for step in MIGRATIONS[:5]:
        assert isinstance(step, str)
        conn.executescript(step)
    conn.execute("PRAGMA user_version=5")
    for i in range(rows):
        conn.execute("INSERT INTO audit (at, action, subject, identity, result, reason, details)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (f"2026-01-0{i + 1}T00:00:00+00:00", "catalog.load", f"org.old v{i}", "someone",
                      "accepted", "signature verified", json.dumps({"n": i}) if i % 2 else None))
    conn.close()


def test_migration_from_schema_5_chains_existing_rows(loc, cli) -> None:
    _schema_5_database(loc.database, 4)
    db = open_db(loc.database)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    status = audit.verify_chain(db, full=True)
    assert status.ok and status.head.count == 4 and status.head.id == 4
    prev = audit.GENESIS
    for r in db.conn.execute("SELECT id, at, action, subject, identity, result, reason, details, prev_hash, hash"
                             " FROM audit ORDER BY id"):
        assert r[8] == prev and r[9] == audit.row_hash(r[:8], prev)
        prev = r[9]
    assert status.head.hash == prev
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET reason = 'x' WHERE id = 1")
    audit.record(db, "after.migration", "x", "info", "chained on")
    assert audit.require_intact(db).head.id == 5
    shown = cli("audit")
    assert shown.returncode == 0 and not shown.stdout.startswith("BROKEN")
    assert shown.stdout.splitlines()[-1].startswith("head: row 5, sha256 ")


def test_rows_deleted_before_the_migration_are_reported_after_it(loc) -> None:
    _schema_5_database(loc.database, 4)
    conn = sqlite3.connect(str(loc.database), isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE id = 2")
    conn.close()
    db = open_db(loc.database)
    with pytest.raises(audit.AuditBroken, match="row 2 is missing"):
        audit.require_intact(db)


def test_verification_is_full_once_per_file_then_incremental(loc, db) -> None:
    write_rows(db, 3)
    assert audit.verify_chain(db).checked == 3  # nothing cached but the empty log: the 3 new rows
    write_rows(db, 1, start=3)
    assert audit.verify_chain(db).checked == 2  # the cached head re-hashed, plus the new row
    other = open_db(loc.database)  # another connection, same process, same file: no full pass
    assert audit.verify_chain(other).checked == 1
    assert audit.verify_chain(other, full=True).checked == 4
    evil = attacker(loc.database)  # dropping a trigger changes the schema: verified in full again
    evil.execute("DROP TRIGGER audit_no_update")
    evil.execute("UPDATE audit SET subject = 'other' WHERE id = 1")
    status = audit.verify_chain(db)
    assert status.checked == 4 and [p.kind for p in status.problems] == ["content", "trigger"]


def test_concurrent_writers_keep_one_chain(loc, db) -> None:
    script = ("import sys\nfrom pathlib import Path\nfrom vetted.store.db import open_db\n"
              "from vetted.store import audit\n"
              "db = open_db(Path(sys.argv[1]))\n"
              "for i in range(40):\n    audit.record(db, 'writer', sys.argv[2], 'info', str(i))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(loc.database), f"w{n}"]) for n in range(2)]
    write_rows(db, 40)
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    status = audit.verify_chain(db, full=True)
    assert status.ok and status.head.count == 120 and status.head.id == 120


def test_verify_works_without_a_data_dir(tmp_path, signed_model, cli) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir's parent should be")
    r = verify_cmd(lambda *a: cli(*a, env={"VETTED_HOME": str(blocker / "home")}), signed_model)
    assert r.returncode == 0 and r.stdout.startswith("verified: "), r.stdout + r.stderr


def test_gui_export_carries_the_head(qtbot, loc, db, tmp_path, cli) -> None:
    pytest.importorskip("PySide6")
    from vetted.core import Vetted
    from vetted.gui.audit_view import AuditPage
    from vetted.gui.bridge import Runner

    write_rows(db, 3)
    runner = Runner(Vetted(loc))
    page = AuditPage(runner)  # the log is read off the UI thread
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.status is not None, timeout=10_000)
    assert "hash chain intact" in page.count.text()
    out = tmp_path / "gui-export.json"
    with qtbot.waitSignal(page.exported, timeout=10_000) as exported:
        page.export(str(out))
    assert exported.args == [3]
    doc = json.loads(out.read_text())
    assert doc["head"]["id"] == 3 and len(doc["entries"]) == 3
    r = cli("audit", "--verify-against", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id = 3")
    with qtbot.waitSignal(page.loaded, timeout=10_000):
        page.refresh()
    assert "BROKEN hash chain" in page.count.text() and page.table.rowCount() == 2
    runner.shutdown()


# --- triggers that are not Vetted's --------------------------------------------------------


def test_an_extra_trigger_that_discards_refusals_is_found_and_removed(loc, db, cli) -> None:
    write_rows(db, 3)
    evil = attacker(loc.database)
    evil.execute("CREATE TRIGGER zz_quiet BEFORE INSERT ON audit WHEN NEW.result='refused'"
                 " BEGIN SELECT RAISE(IGNORE); END")

    with pytest.raises(audit.AuditBroken, match=r"a trigger zz_quiet on the audit log that Vetted did not create"):
        audit.require_intact(db)
    shown = cli("audit")
    assert shown.returncode == 0
    assert shown.stdout.startswith("BROKEN") and "zz_quiet" in shown.stdout.splitlines()[0]
    # a refusal written meanwhile is not silently dropped: writing it fails loudly
    with pytest.raises(audit.AuditBroken, match=r"the entry \(catalog.load org.test v2: refused\) was not written"):
        audit.record(db, "catalog.load", "org.test v2", "refused", "signature does not verify")

    ack = cli("audit", "--acknowledge", "--reason", "planted trigger found")
    assert ack.returncode == 0, ack.stdout + ack.stderr
    assert "zz_quiet" in ack.stdout and "(removed)" in ack.stdout
    assert evil.execute("SELECT 1 FROM sqlite_master WHERE name = 'zz_quiet'").fetchone() is None
    rid = audit.record(db, "catalog.load", "org.test v2", "refused", "signature does not verify")
    assert audit.entries(db)[-1]["id"] == rid and audit.entries(db)[-1]["result"] == "refused"
    assert audit.require_intact(db).head.id == rid


@pytest.mark.parametrize("planted", [
    ["CREATE TRIGGER ack_quiet BEFORE INSERT ON audit_acknowledgements BEGIN SELECT RAISE(IGNORE); END"],
    ["CREATE TRIGGER seq_reset AFTER INSERT ON catalogs_seen"
     " BEGIN UPDATE sqlite_sequence SET seq = 0 WHERE name = 'audit'; END"],
    ["CREATE VIEW recent AS SELECT * FROM audit",
     "CREATE TRIGGER recent_delete INSTEAD OF DELETE ON recent BEGIN DELETE FROM \"audit\" WHERE id = OLD.id; END"],
], ids=["on-acknowledgements", "elsewhere-resetting-the-sequence", "on-a-view-writing-to-audit"])
def test_other_foreign_triggers_that_touch_the_log_are_found(loc, db, planted: list[str]) -> None:
    write_rows(db, 2)
    evil = attacker(loc.database)
    for sql in planted:
        evil.execute(sql)
    name = planted[-1].split()[2]
    with pytest.raises(audit.AuditBroken, match=rf"a trigger {name} .*that Vetted did not create"):
        audit.require_intact(db)
    assert [p.fingerprint.split(":")[:2] for p in audit.acknowledge(db, "seen")] == [["trigger", name]]
    assert evil.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)).fetchone() is None
    assert audit.require_intact(db).ok


# --- the head kept outside the database ----------------------------------------------------


def truncate(loc, first: int) -> None:
    """Rows from `first` on removed, sqlite_sequence set back, the trigger put back verbatim."""
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_delete")
    evil.execute("DELETE FROM audit WHERE id >= ?", (first,))
    evil.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'audit'", (first - 1,))
    evil.execute(audit.TRIGGERS["audit_no_delete"])
    evil.close()


@pytest.mark.parametrize(("first", "text"), [(5, "row 5 is missing at the end"),
                                              (4, "rows 4-5 are missing at the end")])
def test_tail_truncation_with_the_sequence_set_back_is_found_by_the_head_file(
        loc, db, cli, signed_model, first: int, text: str) -> None:
    write_rows(db, 5)
    truncate(loc, first)
    expected = f"{text}: the head recorded outside the database is row 5"

    shown = cli("audit")  # a fresh process: nothing remembered from before
    assert shown.returncode == 0
    assert shown.stdout.startswith("BROKEN") and expected in shown.stdout.splitlines()[0], shown.stdout
    v = verify_cmd(cli, signed_model)
    assert v.returncode == 1 and expected in v.stdout, v.stdout + v.stderr
    audit._cache.clear()  # this process as if it had never seen the rows either
    with pytest.raises(audit.AuditBroken, match=expected):
        audit.require_intact(db)

    ack = cli("audit", "--acknowledge", "--reason", "rows lost; incident 7")
    assert ack.returncode == 0 and expected in ack.stdout, ack.stdout + ack.stderr
    assert verify_cmd(cli, signed_model).returncode == 0  # trust decisions resume
    doc = json.loads(cli("audit", "--json").stdout)
    assert doc["chain"]["intact"] is True
    assert [p["fingerprint"] for p in doc["chain"]["acknowledged"]] == [f"missing:{first}-5"]
    # the acknowledgement is chained after the gap, so the gap stays on record
    assert [e["id"] for e in doc["entries"]][:first] == [*range(1, first), 6]
    assert json.loads(head_file(loc).read_text())["id"] == doc["head"]["id"]


def test_a_history_rewritten_behind_the_head_file_is_found(loc, db, cli) -> None:
    write_rows(db, 4)
    head = audit.verify_chain(db).head
    evil = attacker(loc.database)
    evil.execute("DROP TRIGGER audit_no_update")
    prev = audit.GENESIS
    for row in evil.execute("SELECT id, at, action, subject, identity, result, reason, details FROM audit"
                            " ORDER BY id").fetchall():
        row = (*row[:6], "nothing happened" if row[0] == 2 else row[6], row[7])
        digest = audit.row_hash(row, prev)
        evil.execute("UPDATE audit SET reason = ?, prev_hash = ?, hash = ? WHERE id = ?", (row[6], prev, digest, row[0]))
        prev = digest
    evil.execute(audit.TRIGGERS["audit_no_update"])

    audit._cache.clear()
    expected = (f"row 4 has sha256 {prev[:16]}, the head recorded outside the database names {head.hash[:16]}: "
                "it or a row before it was rewritten")
    with pytest.raises(audit.AuditBroken, match=expected):
        audit.require_intact(db)
    shown = cli("audit")
    assert shown.stdout.startswith("BROKEN") and expected in shown.stdout
    # appending does not move the head file past the evidence; acknowledging does
    audit.record(db, "model.remove", "x", "info", "removed by user")
    with pytest.raises(audit.AuditBroken, match=expected):
        audit.require_intact(db)
    assert [p.kind for p in audit.acknowledge(db, "restored")] == ["head"]
    status = audit.require_intact(db)
    assert json.loads(head_file(loc).read_text())["hash"] == status.head.hash


def test_an_intruder_who_rewrites_the_head_file_too_is_caught_only_against_an_export(loc, tmp_path, db, cli) -> None:
    write_rows(db, 5)
    export = tmp_path / "export.json"
    export.write_text(cli("audit", "--json").stdout)
    truncate(loc, 4)
    row3 = audit.entries(db)[-1]
    forge_head(loc, 3, row3["hash"])
    assert not cli("audit").stdout.startswith("BROKEN")  # the documented limit
    r = cli("audit", "--verify-against", str(export))
    assert r.returncode == 1
    assert r.stdout.startswith("refused: history rewritten since that export: row 5, the head of that export"), r.stdout


def test_a_missing_head_file_is_no_problem_and_is_written_again(loc, db, cli) -> None:
    write_rows(db, 3)
    rows = audit.entries(db)
    written = json.loads(head_file(loc).read_text())
    assert written == {"format": "vetted.audit-head/1", "database": str(loc.database.resolve()),
                       "id": 3, "hash": rows[-1]["hash"]}
    head_file(loc).unlink()  # as after upgrading from a version without it
    audit._cache.clear()
    assert audit.require_intact(db).head.id == 3
    assert not cli("audit").stdout.startswith("BROKEN")
    rid = audit.record(db, "after.upgrade", "x", "info", "first entry with a head file")
    assert json.loads(head_file(loc).read_text())["id"] == rid == 4


def test_an_unreadable_head_file_is_a_problem_until_acknowledged(loc, db, cli) -> None:
    write_rows(db, 2)
    head_file(loc).write_text("{not json")
    audit._cache.clear()
    with pytest.raises(audit.AuditBroken, match=r"the head recorded outside the database .* cannot be read"):
        audit.require_intact(db)
    ack = cli("audit", "--acknowledge")
    assert ack.returncode == 0 and "cannot be read" in ack.stdout, ack.stdout + ack.stderr
    assert audit.require_intact(db).ok
    assert json.loads(head_file(loc).read_text())["id"] == 3  # the acknowledgement entry


def test_a_head_file_copied_with_the_database_applies_only_to_the_original(loc, db, tmp_path) -> None:
    write_rows(db, 3)
    copy = tmp_path / "elsewhere" / "vetted.sqlite3"
    copy.parent.mkdir()
    target = sqlite3.connect(str(copy))
    db.conn.backup(target)
    target.close()
    (copy.parent / "vetted.sqlite3.audit-head").write_text(
        head_file(loc).read_text().replace('"id": 3', '"id": 9'))  # names another file: not this one's
    other = open_db(copy)
    assert audit.require_intact(other).head.id == 3
    audit.record(other, "moved", "x", "info", "first entry in the new place")
    moved = json.loads((copy.parent / "vetted.sqlite3.audit-head").read_text())
    assert moved["database"] == str(copy.resolve()) and moved["id"] == 4


def test_concurrent_writers_never_move_the_head_back_nor_raise_a_false_alarm(loc, db, tmp_path) -> None:
    write_rows(db, 1)
    done = tmp_path / "writers-done"
    writer = ("import sys\nfrom pathlib import Path\nfrom vetted.store.db import open_db\n"
              "from vetted.store import audit\n"
              "db = open_db(Path(sys.argv[1]))\n"
              "for i in range(40):\n    audit.record(db, 'writer', sys.argv[2], 'info', str(i))\n")
    # verifies as a fresh process would, over and over while the writers run; the head file never goes back
    checker = ("import json, sys\nfrom pathlib import Path\nfrom vetted.store.db import open_db\n"
               "from vetted.store import audit\n"
               "db = open_db(Path(sys.argv[1]))\nhead, done = Path(sys.argv[2]), Path(sys.argv[3])\n"
               "last, rounds, bad = 0, 0, []\n"
               "while rounds < 5000 and not (done.exists() and rounds > 20):\n"
               "    rounds += 1\n    audit._cache.clear()\n"
               "    anchored = json.loads(head.read_text())['id']\n"
               "    if anchored < last: bad.append(f'head file went back from {last} to {anchored}')\n"
               "    last = anchored\n"
               "    status = audit.verify_chain(db)\n"
               "    bad += [p.description for p in status.problems]\n"
               "print(json.dumps(bad[:5]))\n")
    check = subprocess.Popen([sys.executable, "-c", checker, str(loc.database), str(head_file(loc)), str(done)],
                             stdout=subprocess.PIPE, text=True)
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(loc.database), f"w{n}"]) for n in range(2)]
    write_rows(db, 40, start=1)
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    done.write_text("")
    out, _ = check.communicate(timeout=120)
    assert check.returncode == 0 and json.loads(out) == []
    status = audit.verify_chain(db, full=True)
    assert status.ok and status.head.id == 121
    assert json.loads(head_file(loc).read_text())["id"] == 121
    assert json.loads(head_file(loc).read_text())["hash"] == status.head.hash


# --- the command line -------------------------------------------------------------------------


GOOD_HEAD = {"id": 3, "hash": "a" * 64, "count": 3}


@pytest.mark.parametrize(("document", "named"), [
    ({"head": GOOD_HEAD, "chain": {"problems": "abc"}}, r"chain\.problems must be a list"),
    ({"head": GOOD_HEAD, "chain": {"problems": [], "acknowledged": {"a": 1}}}, r"chain\.acknowledged must be a list"),
    ({"head": GOOD_HEAD, "chain": {"problems": [1]}}, r"chain\.problems\[0\] must be an object with a fingerprint"),
    ({"head": GOOD_HEAD, "chain": ["x"]}, r"chain must be an object"),
    ({"head": {"id": "3", "hash": "a" * 64}}, r"head\.id must be a whole number"),
    ({"head": {"id": True, "hash": "a" * 64}}, r"head\.id must be a whole number"),
    ({"head": {"id": -1, "hash": "a" * 64}}, r"head\.id must be a whole number"),
    ({"head": {"id": 3}}, r"head\.hash must be a sha256"),
    ({"head": {"id": 3, "hash": 7}}, r"head\.hash must be a sha256"),
    ({"head": {"id": 3, "hash": "a" * 64, "count": "3"}}, r"head\.count must be a whole number"),
    ({"head": "row 3"}, r"has no chain head"),
    ([{"id": 1}], r"has no chain head: it is a JSON list"),
    ("just text", r"has no chain head: it is a JSON string"),
])
def test_a_malformed_export_is_a_usage_error(loc, db, tmp_path, cli, document, named: str) -> None:
    from vetted.errors import InputError

    write_rows(db, 3)
    with pytest.raises(InputError, match=named):
        audit.check_export(db, document)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document))
    r = cli("audit", "--verify-against", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: audit export {path}: ")


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_audit_limit_must_be_positive(db, cli, limit: str) -> None:
    write_rows(db, 3)
    r = cli("audit", "--limit", limit)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"error: --limit: must be a positive whole number, not {limit}\n"
    shown = cli("audit", "--limit", "2").stdout.splitlines()
    assert len(shown) == 3 and "subject-1" in shown[0] and "subject-2" in shown[1]
    assert len(json.loads(cli("audit", "--json", "--limit", "1").stdout)["entries"]) == 1


@pytest.mark.parametrize("args", [("audit",), ("audit", "--json"), ("models",)])
def test_a_closed_pipe_ends_the_cli_quietly(db, args: tuple[str, ...]) -> None:
    import os

    write_rows(db, 3)
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head -2` does once it has what it wants: nobody reads any more
    try:
        p = subprocess.run([str(Path(sys.executable).parent / "vetted"), *args], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert p.stderr == "" and p.returncode == 141


def test_piping_the_log_into_head_prints_no_traceback(db) -> None:
    write_rows(db, 2000)  # more than a pipe holds
    vetted = Path(sys.executable).parent / "vetted"
    p = subprocess.run(["bash", "-c", f"set -o pipefail; '{vetted}' audit | head -2"],
                       capture_output=True, text=True, timeout=120)
    assert len(p.stdout.splitlines()) == 2 and p.stderr == ""
    assert p.returncode == 141
