"""The application object enforces each rule once, for every front end: the memory fit
before a download, each catalog's own trusted root for its claims, an audit entry per
decision, events for whoever shows the result, one connection per thread."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from catalog_kit import build, make_model, rewrite_and_resign
from local_sigstore import LocalSigstore
from vetted.cards.attest import statement
from vetted.cards.predicates import SAFETY_CARD_V1
from vetted.core import MemoryRefused, Vetted
from vetted.core import events as ev
from vetted.store import audit
from vetted.trust.identity import PublicKey

IDENTITY = "evaluator@lab.example"
ISSUER = "https://issuer.lab.example"
CARD = {"evaluator": "Eval Lab", "evaluated_at": "2026-11-01", "assurance": "third-party",
        "results": [{"benchmark": "HarmBench", "metric": "attack_success_rate", "value": 0.05,
                     "direction": "lower_is_better", "sample_size": 400, "ci95": [0.03, 0.08]}],
        "not_evaluated": [], "flags": []}


def _pinned(tmp_path: Path, key, cli, models=None) -> Path:
    cat = build(tmp_path / "cat", key[0], models=models)
    assert cli("catalog", "add", str(cat), "--key", str(key[1])).returncode == 0
    return cat


def test_pull_refuses_a_model_that_cannot_fit_as_the_app_does(tmp_path, loc, signing_key, cli) -> None:
    model = make_model(tmp_path / "src", "huge.gguf")
    _pinned(tmp_path, signing_key, cli, models=[{
        "id": "huge", "name": "Huge", "publisher": "P", "license": "MIT", "path": str(model),
        "runtime": {"ram_bytes": 1 << 50}}])  # a petabyte: no machine has it
    r = cli("pull", "huge")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("refused: memory for huge: needs about ") and "MiB available" in r.stdout
    assert "next: `vetted catalog (and pick a smaller model)`" in r.stdout
    assert not list((loc.store / "sha256").rglob("*")) if (loc.store / "sha256").exists() else True
    app = Vetted(loc)
    row = [x for x in app.audit_entries() if x["action"] == "model.pull"][-1]
    assert (row["subject"], row["result"]) == ("huge", "refused") and "memory for huge" in row["reason"]
    # the app's rows say the same thing: it cannot fit
    rows = app.model_rows(app.catalogs())
    assert [(x.entry.id, x.fit) for x in rows] == [("huge", "too_big")]
    with pytest.raises(MemoryRefused, match="memory for huge"):
        app.pull("huge")


def test_compare_shows_declared_for_a_claim_signed_through_a_catalogs_private_root(tmp_path, loc, signing_key,
                                                                                   cli) -> None:
    """A private Sigstore (the organisation's own) signs the safety card; the catalog is
    pinned with that root. Compare must check each model against its own catalog's root."""
    sigstore = LocalSigstore("org-private")
    root = sigstore.trusted_root(tmp_path / "org_root.json")
    models = [{"id": name, "name": name, "publisher": "P", "license": "MIT",
               "path": str(make_model(tmp_path / "src", f"{name}.gguf"))} for name in ("a", "b")]
    cat = build(tmp_path / "cat", signing_key[0], models=models)

    def attach(doc: dict) -> None:
        for m in doc["models"]:
            f = m["files"][0]
            bundle = sigstore.sign_statement(statement(SAFETY_CARD_V1, CARD, f["name"], f["sha256"]), IDENTITY,
                                             ISSUER, tmp_path / f"{m['id']}.card.json")
            m["attestations"] = [{"kind": "safety_card", "bundle": json.loads(bundle.read_text()),
                                  "signer": {"kind": "sigstore", "identity": IDENTITY, "issuer": ISSUER}}]

    rewrite_and_resign(cat, signing_key[0], attach)
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1]), "--trusted-root", str(root)).returncode == 0

    r = cli("compare", "a", "b", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["safety_card"] for row in rows] == [rows[0]["safety_card"]] * 2
    assert all(row["safety_card"].startswith("declared") for row in rows), rows
    app = Vetted(loc)
    assert all(r["safety_card"].startswith("declared") for r in app.compare(["a", "b"]))
    assert app.card("a")["safety_card"][0]["label"] == "declared"
    # and without the catalog's root the same claims are not promoted
    plain = app.compare_entries([app.entry("a")[0]], [None])
    assert plain[0]["safety_card"].startswith("unverified")


def test_core_events_announce_installs_and_removals_from_any_thread(tmp_path, loc, signing_key, cli) -> None:
    _pinned(tmp_path, signing_key, cli)
    app = Vetted(loc)
    seen: list[tuple[str, str, str]] = []
    app.events.subscribe(ev.MODEL_INSTALLED, lambda model_id: seen.append(("installed", model_id,
                                                                            threading.current_thread().name)))
    app.events.subscribe(ev.MODEL_REMOVED, lambda model_id: seen.append(("removed", model_id,
                                                                          threading.current_thread().name)))

    def pull_in_background() -> None:
        try:
            app.pull("tiny")
        finally:
            app.close_thread()

    t = threading.Thread(target=pull_in_background, name="bg-pull")
    t.start()
    t.join(60)
    app.remove("tiny")
    assert seen == [("installed", "tiny", "bg-pull"), ("removed", "tiny", threading.current_thread().name)]


def test_each_thread_gets_its_own_connection(loc) -> None:
    app = Vetted(loc)
    mine = app.db
    other: list = []
    t = threading.Thread(target=lambda: (other.append(app.db), app.close_thread()))
    t.start()
    t.join(30)
    assert other and other[0] is not mine and app.db is mine


def test_a_pin_is_audited_and_announced(tmp_path, loc, signing_key) -> None:
    cat = build(tmp_path / "cat", signing_key[0])
    app = Vetted(loc)
    changed: list[bool] = []
    app.events.subscribe(ev.CATALOGS_CHANGED, lambda: changed.append(True))
    result = app.pin_catalog(str(cat), PublicKey(signing_key[1].read_bytes()))
    assert result.replaced is None and changed == [True]
    assert [r["action"] for r in audit.entries(app.db)][-1] == "catalog.pin"


def test_discarding_a_partial_download_removes_its_list_of_written_parts(tmp_path, loc, signing_key, cli) -> None:
    """Cancel for good (Downloads' Cancel, `vetted discard`): a ranged download leaves its
    partial and `<sha256>.part.ranges` beside it; both go, and nothing else in quarantine."""
    cat = _pinned(tmp_path, signing_key, cli)
    sha = json.loads(cat.read_text())["models"][0]["files"][0]["sha256"]
    loc.quarantine.mkdir(parents=True, exist_ok=True)
    part, side = loc.quarantine / f"{sha}.part", loc.quarantine / f"{sha}.part.ranges"
    other = loc.quarantine / f"{'e' * 64}.part"
    for f in (part, side, other):
        f.write_bytes(b"x")
    app = Vetted(loc)
    model_id = json.loads(cat.read_text())["models"][0]["id"]
    assert app.discard_partial(model_id) == 1
    assert not part.exists() and not side.exists() and other.exists()
