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


def test_spotcheck_subset_is_deterministic_and_stored(installed_smol) -> None:
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
    stored = spotcheck.latest(db, a.sha256)
    assert stored["metrics"]["harmful_compliance_rate"]["n"] == 1


def test_spotcheck_can_be_cancelled(installed_smol) -> None:
    db = installed_smol
    cancel = threading.Event()

    def progress(i, n, pid):
        if i == 2:
            cancel.set()

    result = spotcheck.run(db, "smol", progress=progress, cancel=cancel)
    assert result.status == "cancelled" and len(result.results) == 2
    assert spotcheck.latest(db, result.sha256) is None  # a cancelled run is never shown as a result


def test_cli_spotcheck_card_and_compare(installed_smol, cli) -> None:
    r = cli("spotcheck", "smol", "--limit", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "complete" and len(out["results"]) == 3
    c = cli("card", "smol", "--json")
    assert c.returncode == 0, c.stderr
    data = json.loads(c.stdout)
    assert data["spotcheck"]["metrics"]["harmful_compliance_rate"]["n"] == 3
    assert data["safety_card"] == [] and data["provenance"] == []
    text = cli("card", "smol").stdout
    assert "[missing] nothing published" in text and "measured here" in text
    cmp = cli("compare", "smol", "smol", "--json")
    rows = json.loads(cmp.stdout)
    assert len(rows) == 2 and rows[0]["state"] == "verified"
