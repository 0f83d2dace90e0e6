"""The spot-check runs a named suite on the exact installed file, in the worker process,
deterministically; it can be cancelled; only complete runs of whole suites are evidence;
results are stored per digest, per suite, and set beside the card's claims."""

from __future__ import annotations

import json
import os
import threading

import pytest

from runtime_kit import install_files, smollm2_copy
from vetted.cards import spotcheck, suites
from vetted.runtime.chat import ChatSession

pytestmark = pytest.mark.slow


@pytest.fixture
def installed_smol(tmp_path, loc, db, signing_key):
    install_files(tmp_path / "cat", loc, db, signing_key, {"smol": smollm2_copy(tmp_path)})
    return db


def cut(suite_id: str, *ids: str) -> suites.Suite:
    """A suite cut down to a few probes under its own id and version (not a run of it)."""
    s = suites.load(suite_id)
    return suites.Suite(**{**s.__dict__, "probes": tuple(p for p in s.probes if p.id in ids)})


def stored(db, sha256: str) -> list[tuple[str, str, int]]:
    """(suite, status, probes run) of every stored run of this file, oldest first."""
    return [(r["suite_id"], r["status"], len(json.loads(r["results"])))
            for r in db.query("SELECT suite_id, status, results FROM spotchecks WHERE sha256 = ? ORDER BY id",
                              [sha256])]


def test_a_subset_is_deterministic_judged_and_stored_as_partial(installed_smol) -> None:
    db = installed_smol
    subset = cut("harmbench-standard", "harmbench-001", "harmbench-002", "harmbench-003")
    session = ChatSession(db)
    seen = []
    try:
        a = spotcheck.run(db, "smol", suite=subset, session=session,
                          progress=lambda i, n, pid: seen.append((i, n, pid)))
        assert session.engine.pid not in (None, os.getpid())  # the model ran in the worker
        b = spotcheck.run(db, "smol", suite=subset, session=session)
    finally:
        session.close()
    assert [r.reply for r in a.results] == [r.reply for r in b.results]  # temperature 0, fixed seed
    assert seen[0] == (0, 3, "harmbench-001") and seen[-1] == (3, 3, "done")
    assert set(a.metrics) == {"harmbench_attack_success_rate"}
    assert all(r.label in ("refused", "complied", "other") and r.reason for r in a.results)
    assert all(0 < r.tokens <= suites.MAX_TOKENS["harmful"] for r in a.results)  # capped at what the judge needs
    assert a.settings["judge"].startswith("vetted-rules ")
    # three probes of the 200 under the suite's own id and version are not a run of the suite
    assert a.status == b.status == "partial"
    assert stored(db, a.sha256) == [("harmbench-standard", "partial", 3)] * 2
    assert spotcheck.latest(db, a.sha256) is None


def test_only_complete_runs_of_whole_suites_are_latest(installed_smol, small_quick, monkeypatch) -> None:
    """`latest()` (what cards show, the policy reads and the demo signs) skips partial,
    cancelled and other-version runs; a full suite's figure wins over the quick one's."""
    db = installed_smol
    complete = spotcheck.run(db, "smol")  # the quick suite, made three probes long
    assert complete.status == "complete" and len(complete.results) == 3
    assert complete.suite_id == "quick" and complete.suite_version == small_quick.version
    sha = complete.sha256

    limited = spotcheck.run(db, "smol", limit=2)  # `vetted spotcheck --limit 2`
    assert limited.status == "partial" and len(limited.results) == 2
    cancel = threading.Event()
    cancelled = spotcheck.run(db, "smol", cancel=cancel,
                              progress=lambda i, n, pid: cancel.set() if i == 1 else None)
    assert cancelled.status == "cancelled" and len(cancelled.results) == 1
    other = spotcheck.run(db, "smol", suite=suites.Suite(**{**small_quick.__dict__, "version": "0.9.0"}))
    assert other.status == "partial"  # not the current suite under that name: not evidence
    found = spotcheck.latest(db, sha)
    assert found["suite"] == small_quick.name and found["finished_at"]
    assert {k: (m["n"], m["suite"]) for k, m in found["metrics"].items()} == {
        "harmbench_attack_success_rate": (1, small_quick.name), "over_refusal_rate": (1, small_quick.name),
        "insecure_code_rate": (1, small_quick.name)}
    assert found["judge"]["judge"].startswith("vetted-rules ")

    # a whole full suite adds its metric and wins over the quick suite's figure for it
    # (the shipped suites made two probes long, so the run stays short)
    real_load = suites.load
    drawn = next(p.id for p in small_quick.probes if p.suite == "vetted-overrefusal")  # the quick suite keeps it
    other = next(p.id for p in suites.load("vetted-overrefusal").probes if p.id != drawn)
    small = {"vetted-political": cut("vetted-political", "political-01", "political-02"),
             "vetted-overrefusal": cut("vetted-overrefusal", drawn, other)}
    monkeypatch.setattr(suites, "load", lambda sid: small.get(sid) or real_load(sid))
    assert spotcheck.run(db, "smol", suite="vetted-political").status == "complete"
    assert spotcheck.run(db, "smol", suite="vetted-overrefusal").status == "complete"
    found = spotcheck.latest(db, sha)
    assert found["metrics"]["political_refusal_rate"]["suite"] == "vetted-political 1.0.0"
    assert found["metrics"]["over_refusal_rate"]["suite"] == "vetted-overrefusal 1.0.0"
    assert found["metrics"]["over_refusal_rate"]["n"] == 2
    assert found["metrics"]["harmbench_attack_success_rate"]["suite"] == small_quick.name
    assert stored(db, sha) == [("quick", "complete", 3), ("quick", "partial", 2), ("quick", "cancelled", 1),
                               ("quick", "partial", 3), ("vetted-political", "complete", 2),
                               ("vetted-overrefusal", "complete", 2)]
    monkeypatch.setattr(suites, "load", real_load)

    # a row stored 'complete' that does not hold the suite's probes, in order, is passed over
    db.execute("UPDATE spotchecks SET status = 'complete' WHERE status = 'partial'")
    db.execute("DELETE FROM spotchecks WHERE suite_id != 'quick' OR id = 1")
    assert spotcheck.latest(db, sha) is None


def test_a_limit_that_covers_the_suite_is_complete(installed_smol, small_quick) -> None:
    result = spotcheck.run(installed_smol, "smol", limit=5)
    assert result.status == "complete" and len(result.results) == 3
    assert spotcheck.latest(installed_smol, result.sha256)["metrics"]["over_refusal_rate"]["n"] == 1


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


def test_spotcheck_can_be_cancelled(installed_smol, small_quick) -> None:
    db = installed_smol
    cancel = threading.Event()

    def progress(i, n, pid):
        if i == 2:
            cancel.set()

    result = spotcheck.run(db, "smol", progress=progress, cancel=cancel)
    assert result.status == "cancelled" and len(result.results) == 2
    assert stored(db, result.sha256) == [("quick", "cancelled", 2)]
    assert spotcheck.latest(db, result.sha256) is None  # a cancelled run is never shown as a result


def test_cli_spotcheck_card_and_compare(installed_smol, cli) -> None:
    listed = json.loads(cli("spotcheck", "--list-suites", "--json").stdout)
    assert [s["id"] for s in listed] == ["quick", "harmbench-standard", "donotanswer", "vetted-overrefusal",
                                         "vetted-political", "vetted-code"]
    assert {s["id"]: s["probes"] for s in listed}["harmbench-standard"] == 200
    assert {s["id"]: s["probes"] for s in listed}["donotanswer"] == 939
    r = cli("spotcheck", "smol", "--limit", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "partial" and len(out["results"]) == 3
    text = cli("spotcheck", "smol", "--limit", "2")
    assert text.returncode == 0, text.stderr
    first = text.stdout.strip().splitlines()[0]  # (it starts with the \r that ends the progress line)
    quick = suites.load("quick")
    assert first.startswith(f"smol: quick {quick.version}, 2 probes in ") and "(partial)" in first
    assert ("partial run: 2 probes; not usable as evidence (cards, comparisons and the policy use only complete "
            "runs of whole suites)") in text.stdout
    bad = cli("spotcheck", "smol", "--suite", "nonesuch")
    assert bad.returncode == 2 and "suite 'nonesuch': is not a spot-check suite" in bad.stdout + bad.stderr
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
