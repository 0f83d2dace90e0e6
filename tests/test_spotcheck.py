"""The spot-check runs on the exact installed file, in the worker process, deterministically;
it can be cancelled; results are stored per digest and set beside the card's claims."""

from __future__ import annotations

import json
import os
import threading

import pytest

from runtime_kit import install_files, smollm2_copy
from vetted.cards import spotcheck
from vetted.runtime.chat import ChatSession

pytestmark = pytest.mark.slow


@pytest.fixture
def installed_smol(tmp_path, loc, db, signing_key):
    install_files(tmp_path / "cat", loc, db, signing_key, {"smol": smollm2_copy(tmp_path)})
    return db


def small_suite(*ids: str) -> dict:
    """The shipped suite (same id and version) cut down to a few probes."""
    suite = spotcheck.load_suite()
    return {**suite, "probes": [p for p in suite["probes"] if p["id"] in ids]}


def stored(db, sha256: str) -> list[tuple[str, int]]:
    """(status, probes run) of every stored run of this file, oldest first."""
    return [(r["status"], len(json.loads(r["results"])))
            for r in db.query("SELECT status, results FROM spotchecks WHERE sha256 = ? ORDER BY id", [sha256])]


def test_spotcheck_subset_is_deterministic_and_stored_as_partial(installed_smol) -> None:
    db = installed_smol
    suite = spotcheck.load_suite()
    subset = {**suite, "probes": [p for p in suite["probes"] if p["id"] in
                                  ("harmful-01", "benign-03", "political-01", "code-07")]}
    session = ChatSession(db)
    seen = []
    try:
        a = spotcheck.run(db, "smol", session=session, suite=subset,
                          progress=lambda i, n, pid: seen.append((i, n, pid)))
        assert session.engine.pid not in (None, os.getpid())  # the model ran in the worker
        b = spotcheck.run(db, "smol", session=session, suite=subset)
    finally:
        session.close()
    assert [r.reply for r in a.results] == [r.reply for r in b.results]  # temperature 0, fixed seed
    assert seen[0] == (0, 4, "harmful-01") and seen[-1] == (4, 4, "done")
    assert set(a.metrics) == set(spotcheck.METRICS)
    assert all(m.n == 1 for m in a.metrics.values())
    # four probes of the 52 under the suite's own id and version are not a run of the suite
    assert a.status == b.status == "partial"
    assert stored(db, a.sha256) == [("partial", 4), ("partial", 4)]
    assert spotcheck.latest(db, a.sha256) is None


def test_only_a_complete_run_of_the_whole_suite_is_latest(installed_smol, monkeypatch) -> None:
    """`latest()` (what cards show and the demo signs) skips newer partial, cancelled and
    other-suite runs and returns the newest complete run of the whole shipped suite."""
    db = installed_smol
    whole = small_suite("harmful-01", "harmful-02", "benign-03")
    monkeypatch.setattr(spotcheck, "load_suite", lambda path=None: whole)  # the shipped suite, made small
    complete = spotcheck.run(db, "smol")
    assert complete.status == "complete" and len(complete.results) == 3
    sha = complete.sha256

    limited = spotcheck.run(db, "smol", limit=2)  # `vetted spotcheck --limit 2`
    assert limited.status == "partial" and len(limited.results) == 2
    cancel = threading.Event()
    cancelled = spotcheck.run(db, "smol", cancel=cancel,
                              progress=lambda i, n, pid: cancel.set() if i == 1 else None)
    assert cancelled.status == "cancelled" and len(cancelled.results) == 1
    other = spotcheck.run(db, "smol", suite={**whole, "version": "0.9.0"})  # all of another version
    assert other.status == "complete"
    assert stored(db, sha) == [("complete", 3), ("partial", 2), ("cancelled", 1), ("complete", 3)]
    db.execute("INSERT INTO spotchecks (sha256, model_id, suite_id, suite_version, started_at, finished_at, status,"
               " metrics, results, settings) SELECT sha256, model_id, suite_id, suite_version, started_at,"
               " finished_at, 'complete', metrics, results, settings FROM spotchecks WHERE status = 'partial'")
    assert stored(db, sha)[-1] == ("complete", 2)  # a `--limit` run as an earlier version stored it

    found = spotcheck.latest(db, sha)
    assert found["suite"] == f"{whole['id']} {whole['version']}"
    assert found["metrics"]["harmful_compliance_rate"]["n"] == 2 and found["metrics"]["over_refusal_rate"]["n"] == 1
    first = next(db.query("SELECT finished_at FROM spotchecks WHERE sha256 = ? ORDER BY id LIMIT 1", [sha]))
    assert found["finished_at"] == first["finished_at"]

    # and nothing but partial runs is nothing at all
    db.execute("DELETE FROM spotchecks WHERE status = 'complete'")
    assert spotcheck.latest(db, sha) is None


def test_limit_that_covers_the_suite_is_complete(installed_smol, monkeypatch) -> None:
    db = installed_smol
    whole = small_suite("harmful-01", "benign-03")
    monkeypatch.setattr(spotcheck, "load_suite", lambda path=None: whole)
    result = spotcheck.run(db, "smol", limit=5)
    assert result.status == "complete" and len(result.results) == 2
    assert spotcheck.latest(db, result.sha256)["metrics"]["harmful_compliance_rate"]["n"] == 1


def test_migration_keeps_runs_and_allows_partial(loc) -> None:
    """A database from before partial runs keeps its rows, ids and index, and takes 'partial'."""
    import sqlite3

    from vetted.store.db import MIGRATIONS, open_db

    conn = sqlite3.connect(str(loc.database), isolation_level=None)
    for step in MIGRATIONS[:5]:  # 6 chains the audit log; the rows below are spot-checks only
        conn.executescript(step)
    conn.execute("PRAGMA user_version=5")
    insert = ("INSERT INTO spotchecks (sha256, model_id, suite_id, suite_version, started_at, finished_at,"
              " status, metrics, results, settings) VALUES ('ab', 'm', 'vetted-spotcheck', '1.0.0',"
              " '2025-01-02T00:00:00+00:00', '2025-01-02T00:01:00+00:00', ?, '{}', '[]', '{}')")
    for status in ("complete", "cancelled", "complete"):
        conn.execute(insert, [status])
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        conn.execute(insert, ["partial"])
    conn.execute("DELETE FROM spotchecks WHERE id = 3")
    conn.close()

    db = open_db(loc.database)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT id, status FROM spotchecks ORDER BY id").fetchall() == [(1, "complete"), (2, "cancelled")]
    db.execute(insert, ["partial"])
    assert db.execute("SELECT max(id) FROM spotchecks").fetchone()[0] == 4  # id 3 is not handed out again
    assert db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'spotchecks'"
                      ).fetchall() == [("spotchecks_sha",)]
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        db.execute(insert, ["done"])


def test_spotcheck_can_be_cancelled(installed_smol) -> None:
    db = installed_smol
    cancel = threading.Event()

    def progress(i, n, pid):
        if i == 2:
            cancel.set()

    result = spotcheck.run(db, "smol", progress=progress, cancel=cancel)
    assert result.status == "cancelled" and len(result.results) == 2
    assert stored(db, result.sha256) == [("cancelled", 2)]
    assert spotcheck.latest(db, result.sha256) is None  # a cancelled run is never shown as a result


def test_cli_spotcheck_card_and_compare(installed_smol, cli) -> None:
    r = cli("spotcheck", "smol", "--limit", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "partial" and len(out["results"]) == 3
    text = cli("spotcheck", "smol", "--limit", "2")
    assert text.returncode == 0, text.stderr
    first = text.stdout.strip().splitlines()[0]  # (it starts with the \r that ends the progress line)
    assert first.startswith("smol: vetted-spotcheck 1.0.0, 2 probes in ") and "(partial)" in first
    assert ("partial run: 2 of the suite's 52 probes; not usable as evidence "
            "(cards and comparisons use only a complete run of the whole suite)") in text.stdout
    c = cli("card", "smol", "--json")
    assert c.returncode == 0, c.stderr
    data = json.loads(c.stdout)
    assert data["spotcheck"] is None  # partial runs are never shown as the measurement
    assert data["safety_card"] == [] and data["provenance"] == []
    text = cli("card", "smol").stdout
    assert "[missing] nothing published" in text and "measured here" not in text
    cmp = cli("compare", "smol", "smol", "--json")
    rows = json.loads(cmp.stdout)
    assert len(rows) == 2 and rows[0]["state"] == "verified"
