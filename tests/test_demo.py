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
    # building the demo ran the quick suite here: that is the local measurement beside the card
    from vetted.cards import suites
    from vetted.authoring.demo import recorded_runs

    quick = suites.load("quick")
    measured = smol["spotcheck"]["metrics"]
    assert {m["suite"] for m in measured.values()} == {quick.name}
    assert "measured here" in cli("card", "smollm2-135m-instruct-q4_1").stdout
    recorded = recorded_runs(smol["sha256"])
    assert recorded is not None, "resources/demo/full-runs.json is not about this SmolLM2 file or these suites"
    # the card carries the demo organisation's complete runs of every full suite, each figure as recorded
    assert card["data"]["evaluated_at"] == recorded["recorded_on"]
    on_card = {(r["benchmark"], r["metric"]): r for r in card["data"]["results"]}
    assert {b for b, _ in on_card} == set(suites.ALL)
    for run in recorded["runs"]:
        for name, m in run["metrics"].items():
            r = on_card[(run["suite"], name)]
            assert (r["value"], r["sample_size"], r["other"]) == (m["value"], m["n"], m["other"])
            assert r["benchmark_version"] == run["version"] and r["judge"]["name"] == recorded["judge"]["judge"]
    assert on_card[("harmbench-standard", "harmbench_attack_success_rate")]["sample_size"] == 200
    assert on_card[("donotanswer", "donotanswer_answer_rate")]["sample_size"] == 939
    # each claim is compared with the local quick run by a named test
    assert smol["comparisons"] and all("Fisher's exact test" in c["local"] for c in smol["comparisons"])
    assert smol["consistency"]["checks"][0]["mismatches"] == []
    gemma_card = json.loads(cli("card", "gemma-3-270m-q4_k_m", "--json").stdout)
    assert gemma_card["safety_card"][0]["data"]["results"] == []
    assert any("spot-check suites" in b for b in gemma_card["safety_card"][0]["data"]["not_evaluated"])
    assert gemma_card["consistency"]["checks"][0]["mismatches"] == []

    # a second run reuses the catalog (same version), so the rollback guard is not tripped
    again = cli("demo", tool="vetted-admin", timeout=300)
    assert again.returncode == 0 and cli("catalog").returncode == 0


SMOL = "smollm2-135m-instruct-q4_1"


def whole_quick_of_three(monkeypatch: pytest.MonkeyPatch):
    """Makes the quick suite three probes long (a whole suite under its own, changed
    version) and hides the recorded full runs, so the demo signs its card from the quick run."""
    from vetted.authoring import demo
    from vetted.cards import suites

    monkeypatch.setattr(suites, "QUICK_DRAW", {"harmbench-standard": (1, None), "vetted-overrefusal": (1, None),
                                               "vetted-code": (1, None)})
    monkeypatch.setattr(demo, "recorded_runs", lambda sha256: None)
    return suites.load("quick")


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

    quick = whole_quick_of_three(monkeypatch)
    real_run = spotcheck.run
    # every run the demo starts stops after two probes, as a run with `--limit 2` does
    monkeypatch.setattr(spotcheck, "run", lambda db, model_id, **kw: real_run(db, model_id, **{**kw, "limit": 2}))
    reason = ("safety card for SmolLM2 135M Instruct: the spot-check did not complete the whole suite "
              f"quick {quick.version} (partial: 2 of its 3 probes ran); a card is signed only from a "
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
    assert stored_runs(vetted_home) == [("partial", 2), ("partial", 2), ("complete", 3)]
    card = json.loads(cli("card", SMOL, "--json").stdout)["safety_card"][0]["data"]
    assert {r["metric"]: (r["benchmark"], r["sample_size"]) for r in card["results"]} == {
        "harmbench_attack_success_rate": ("quick", 1), "over_refusal_rate": ("quick", 1),
        "insecure_code_rate": ("quick", 1)}
    assert all(r["benchmark_version"] == quick.version and r["judge"]["name"].startswith("vetted-rules")
               for r in card["results"])


def test_card_date_is_the_run_date(monkeypatch, vetted_home: Path, cli) -> None:
    """A demo built again later reuses the complete run it has, and dates the card by it."""
    from vetted.authoring.demo import build_demo
    from vetted.store.db import open_db

    whole_quick_of_three(monkeypatch)
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
        "harmbench_attack_success_rate": 1, "over_refusal_rate": 1, "insecure_code_rate": 1}


def test_the_recorded_full_runs_are_counted_from_kept_replies_and_tied_to_the_file() -> None:
    """resources/demo/full-runs.json: complete runs of all five suites on the demo SmolLM2
    file, figures consistent with their own counts, and never used for another file."""
    from vetted.authoring.demo import recorded_runs, smollm2_path
    from vetted.cards import suites
    from vetted.cards.stats import wilson
    from vetted.digest import sha256_file

    sha = sha256_file(smollm2_path())
    doc = recorded_runs(sha)
    assert doc is not None and doc["model"] == SMOL
    assert [r["suite"] for r in doc["runs"]] == list(suites.ALL)
    for run in doc["runs"]:
        suite = suites.load(run["suite"])
        for m in run["metrics"].values():
            assert m["n"] == len(suite.probes) and m["suite"] == suite.name
            assert m["value"] == m["k"] / m["n"] and tuple(m["ci95"]) == wilson(m["k"], m["n"])
            assert 0 <= m["other"] <= m["n"] - (m["k"] if m["name"] != "insecure_code_rate" else 0)
            if m["categories"]:
                assert sum(c["n"] for c in m["categories"].values()) == m["n"]
    assert recorded_runs("0" * 64) is None  # another file: the demo signs from its own run instead
