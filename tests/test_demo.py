"""The demo `make run` shows: real PyPI-shipped models in a catalog signed by a demo key
generated on first run, pulled through the full verification."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_catalog_pull_and_check(cli, vetted_home: Path) -> None:
    built = cli("demo", tool="vetted-admin", timeout=300)
    assert built.returncode == 0, built.stderr
    key = vetted_home / "data" / "keys" / "demo-org" / "signing-key.pem"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"

    listing = cli("catalog", "--json")
    doc = json.loads(listing.stdout)
    ids = {m["id"] for m in doc["models"]}
    assert ids == {"smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"}
    gemma = next(m for m in doc["models"] if m["id"] == "gemma-3-270m-q4_k_m")
    assert gemma["files"][0]["sha256"] == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

    # building the demo ran the spot-check on SmolLM2 through the store: it is installed
    assert "already installed and verified" in cli("pull", "smollm2-135m-instruct-q4_1").stdout
    assert cli("check", "smollm2-135m-instruct-q4_1", "--full").returncode == 0
    pulled = cli("pull", "gemma-3-270m-q4_k_m")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "verified: publisher signature by public key" in pulled.stdout

    smol = json.loads(cli("card", "smollm2-135m-instruct-q4_1", "--json").stdout)
    assert [p["label"] for p in smol["provenance"]] == ["declared"]
    card = smol["safety_card"][0]
    assert card["label"] == "declared" and card["data"]["assurance"] == "self-attested"
    measured = smol["spotcheck"]["metrics"]
    assert card["data"]["evaluated_at"] == smol["spotcheck"]["finished_at"][:10]  # the run's date
    assert "measured here" in cli("card", "smollm2-135m-instruct-q4_1").stdout
    for r in card["data"]["results"]:  # every number on the card is one the spot-check measured
        assert r["value"] == measured[r["metric"]]["value"] and r["sample_size"] == measured[r["metric"]]["n"]
    assert {c["verdict"] for c in smol["comparisons"]} == {"consistent"}
    assert smol["consistency"]["checks"][0]["mismatches"] == []
    gemma_card = json.loads(cli("card", "gemma-3-270m-q4_k_m", "--json").stdout)
    assert gemma_card["safety_card"][0]["data"]["results"] == []
    assert any("vetted-spotcheck" in b for b in gemma_card["safety_card"][0]["data"]["not_evaluated"])
    assert gemma_card["consistency"]["checks"][0]["mismatches"] == []

    # a second run reuses the catalog (same version), so the rollback guard is not tripped
    again = cli("demo", tool="vetted-admin", timeout=300)
    assert again.returncode == 0 and cli("catalog").returncode == 0


SMOL = "smollm2-135m-instruct-q4_1"


def whole_suite_of(monkeypatch: pytest.MonkeyPatch, *ids: str) -> dict:
    """Makes the shipped suite (same id and version) these few probes, so runs stay short."""
    from vetted.cards import spotcheck

    suite = spotcheck.load_suite()
    small = {**suite, "probes": [p for p in suite["probes"] if p["id"] in ids]}
    monkeypatch.setattr(spotcheck, "load_suite", lambda path=None: small)
    return small


def attestation_kinds(vetted_home: Path) -> dict[str, set[str]]:
    doc = json.loads((vetted_home / "data" / "demo-catalog" / "catalog.json").read_bytes())
    return {m["id"]: {a["kind"] for a in m.get("attestations", [])} for m in doc["models"]}


def stored_runs(vetted_home: Path) -> list[tuple[str, int]]:
    from vetted.store.db import open_db

    db = open_db(vetted_home / "data" / "vetted.sqlite3")
    try:
        return [(r["status"], len(json.loads(r["results"])))
                for r in db.query("SELECT status, results FROM spotchecks ORDER BY id")]
    finally:
        db.conn.close()


def quiet(*_args) -> None:
    pass


def test_demo_refuses_to_sign_a_card_from_a_partial_run(monkeypatch, capsys, vetted_home: Path, cli) -> None:
    from vetted.cli import admin
    from vetted.cards import spotcheck
    from vetted.authoring.demo import DemoError, build_demo

    whole_suite_of(monkeypatch, "harmful-01", "harmful-02", "benign-01", "benign-02", "political-01", "code-07")
    real_run = spotcheck.run
    # every run the demo starts stops after two probes, as a run with `--limit 2` does
    monkeypatch.setattr(spotcheck, "run", lambda db, model_id, **kw: real_run(db, model_id, **{**kw, "limit": 2}))
    reason = ("safety card for SmolLM2 135M Instruct: the spot-check did not complete the whole suite "
              "vetted-spotcheck 1.0.0 (partial: 2 of its 6 probes ran); a card is signed only from a "
              "complete run (no card was signed; build the demo again)")
    with pytest.raises(DemoError, match=f"^{re.escape(reason)}$"):
        build_demo(log=quiet)
    assert admin.main(["demo"]) == 1  # `vetted-admin demo` passes over the partial run, and its own stops short
    assert capsys.readouterr().err == f"error: {reason}\n"
    assert attestation_kinds(vetted_home)[SMOL] == {"provenance"}  # nothing signed from partial runs
    assert stored_runs(vetted_home) == [("partial", 2), ("partial", 2)]

    # with whole runs again, the partial ones are passed over and a complete one is made and signed
    monkeypatch.setattr(spotcheck, "run", real_run)
    build_demo(log=quiet)
    assert stored_runs(vetted_home) == [("partial", 2), ("partial", 2), ("complete", 6)]
    card = json.loads(cli("card", SMOL, "--json").stdout)["safety_card"][0]["data"]
    assert {r["metric"]: r["sample_size"] for r in card["results"]} == {
        "harmful_compliance_rate": 2, "over_refusal_rate": 2, "political_refusal_rate": 1, "insecure_code_rate": 1}


def test_card_date_is_the_run_date(monkeypatch, vetted_home: Path, cli) -> None:
    """A demo built again later reuses the complete run it has, and dates the card by it."""
    from vetted.authoring.demo import build_demo
    from vetted.store.db import open_db

    whole_suite_of(monkeypatch, "harmful-01", "benign-01", "code-07")
    build_demo(log=quiet)
    db = open_db(vetted_home / "data" / "vetted.sqlite3")
    db.execute("UPDATE spotchecks SET started_at = ?, finished_at = ?",  # the run was made on an earlier day
               ["2025-01-02T23:58:00+00:00", "2025-01-02T23:59:30+00:00"])
    db.conn.close()
    (vetted_home / "data" / "demo-catalog" / "catalog.json.sig").unlink()  # the catalog must be built again
    build_demo(log=quiet)
    assert stored_runs(vetted_home) == [("complete", 3)]  # reused, not run again
    card = json.loads(cli("card", SMOL, "--json").stdout)["safety_card"][0]["data"]
    assert card["evaluated_at"] == "2025-01-02"
    assert {r["metric"]: r["sample_size"] for r in card["results"]} == {
        "harmful_compliance_rate": 1, "over_refusal_rate": 1, "insecure_code_rate": 1}
