"""The demo `make run` shows: real PyPI-shipped models in a catalog signed by a demo key
generated on first run, pulled through the full verification."""

from __future__ import annotations

import json
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
