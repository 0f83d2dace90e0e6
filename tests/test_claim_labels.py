"""One labelling function for every view (DESIGN.md invariant 8): the same safety-card
claim reads the same in Discover's Safety column, on the model page (card()), in Compare
and in `vetted card` — unsigned: unverified; signed and checking out: declared; signed
but tampered: unverified; absent: missing."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from catalog_kit import build, rewrite_and_resign
from tiny_gguf import write_gguf
from vetted.core.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

CARD = {"evaluator": "Eval Lab", "evaluated_at": "2026-11-01", "assurance": "third-party",
        "results": [{"benchmark": "HarmBench", "metric": "attack_success_rate", "value": 0.05,
                     "direction": "lower_is_better", "sample_size": 400, "ci95": [0.03, 0.08]}],
        "not_evaluated": ["XSTest"], "flags": []}

EXPECTED = {"unsigned": "unverified", "signed": "declared", "tampered": "unverified", "none": "missing"}


@pytest.fixture
def catalog(tmp_path: Path, signing_key, loc):
    (tmp_path / "src").mkdir()
    model = write_gguf(tmp_path / "src" / "tiny.gguf")
    base = {"publisher": "Test Pub", "license": "MIT", "path": str(model)}
    models = [
        {**base, "id": "unsigned", "name": "Unsigned card", "file_name": "a.gguf", "safety_card": CARD},
        {**base, "id": "signed", "name": "Signed card", "file_name": "b.gguf", "attest": {"safety_card": CARD}},
        {**base, "id": "tampered", "name": "Tampered card", "file_name": "c.gguf",
         "attest": {"safety_card": CARD}},
        {**base, "id": "none", "name": "No card", "file_name": "d.gguf"},
    ]
    cat = build(tmp_path / "cat", signing_key[0], models=models)

    def tamper(doc):
        m = next(m for m in doc["models"] if m["id"] == "tampered")
        sig = m["attestations"][0]["bundle"]["dsseEnvelope"]["signatures"][0]
        raw = bytearray(base64.b64decode(sig["sig"]))
        raw[-1] ^= 0x01
        sig["sig"] = base64.b64encode(bytes(raw)).decode()

    rewrite_and_resign(cat, signing_key[0], tamper)  # the catalog itself is still signed
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    return cat


def _rows(loc, db):
    from vetted.core import Vetted

    app = Vetted(loc)
    states = app.catalogs()
    assert [s.error for s in states] == [None]
    return {r.entry.id: r for r in app.model_rows(states)}


def test_every_view_gives_the_same_label(catalog, loc, db) -> None:
    from vetted.cards.compare import compare_rows
    from vetted.cards.view import card

    rows = _rows(loc, db)
    compared = {r["model"]: r for r in compare_rows([rows[m].entry for m in EXPECTED], db)}
    for model_id, label in EXPECTED.items():
        row = rows[model_id]
        assert row.safety_summary.split(":")[0] == label, (model_id, row.safety_summary)
        claims = card(row.entry, db, row.catalog.trusted_root)["safety_card"]
        assert [c["label"] for c in claims] == ([] if label == "missing" else [label]), (model_id, claims)
        assert compared[model_id]["safety_card"].split(" ")[0] == label, (model_id, compared[model_id])
    assert rows["signed"].safety_summary == "declared: 1 result(s)"
    assert rows["none"].safety_summary == "missing: not evaluated"
    assert compared["signed"]["safety_card"].startswith("declared by public key sha256:")
    assert compared["unsigned"]["safety_card"] == "unverified (not signed)"
    assert "signature" in compared["tampered"]["safety_card"]
    # a published metric name is shown under the metric it aliases, so a local result sits beside it
    assert compared["signed"]["metrics"]["harmbench_attack_success_rate"] == "5% (declared)"
    assert compared["unsigned"]["metrics"]["harmbench_attack_success_rate"] == "5% (unverified)"


def test_cli_card_and_compare_give_the_same_label(catalog, cli) -> None:
    for model_id, label in EXPECTED.items():
        r = cli("card", model_id)
        assert r.returncode == 0, r.stderr
        safety = r.stdout.split("Safety card:\n", 1)[1].splitlines()[0]
        assert safety.startswith(f"  [{label}"), (model_id, safety)
    r = cli("compare", *EXPECTED)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("safety_card"))
    assert re.findall(r"\b(declared|unverified|missing)\b", line) == list(EXPECTED.values()), line


def test_discover_and_compare_pages_show_the_same_label(catalog, loc, qtbot) -> None:
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    w = MainWindow(Vetted(loc))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.discover.model.rowCount() == 4, timeout=30_000)
    from vetted.gui.discover import SAFETY

    model = w.discover.model
    # the Safety column is the plain-language summary (cards/summary.py): an unsigned or
    # tampered card is never turned into a risk level
    column = {"signed": "Low risk", "unsigned": "Unverified", "tampered": "Unverified", "none": "Not evaluated"}
    safety = {model.rows[i].entry.id: model.data(model.index(i, SAFETY)) for i in range(4)}
    for model_id, label in EXPECTED.items():
        assert safety[model_id].startswith(column[model_id]), (model_id, safety[model_id])
        assert w.discover.select_id(model_id)
        qtbot.waitUntil(lambda: not w.discover.page.pending, timeout=10_000)  # the card is read off the UI thread
        assert w.discover.page.summary.short == safety[model_id]  # the page's headline is the column's
        page = w.discover.page.view.toPlainText().split("Safety card", 1)[1]
        shown = "[missing]" if label == "missing" else f"[{label}]"
        assert page.lstrip().startswith(shown), (model_id, page[:80])
    with qtbot.waitSignal(w.compare.compared, timeout=10_000):  # compared off the UI thread
        w.compare.compare(list(EXPECTED))
    t = w.compare.table
    i = w.compare.keys.index("safety_card")
    assert t.verticalHeaderItem(i).text() == "Safety card"
    assert [t.item(i, j).text().split(" ")[0] for j in range(4)] == list(EXPECTED.values())
    w.close()


def test_signature_results_are_cached_by_bundle_and_signer(catalog, loc, db, monkeypatch, signing_key,
                                                           tmp_path) -> None:
    from vetted.cards import attest, labels
    from vetted.authoring.publish import generate_key

    labels.clear_cache()
    calls: list[str] = []
    real = attest.verify
    monkeypatch.setattr(attest, "verify", lambda raw, signer, sha, pt: (calls.append(signer.describe()),
                                                                        real(raw, signer, sha, pt))[1])
    rows = _rows(loc, db)  # open_catalogs checks each claim once, off the UI thread
    assert len(calls) == 2  # "signed" and "tampered"
    for _ in range(3):  # repaints, page views and compare: no new verification
        for r in rows.values():
            r.safety_summary
        labels.claims_for(rows["tampered"].entry)
    assert len(calls) == 2
    # another signer for the same bundle is another question
    _, other_pub = generate_key(tmp_path / "other")
    ref = rows["signed"].entry.attestations[0]
    import json

    raw = json.dumps(ref.bundle).encode()
    with pytest.raises(labels.Refused, match="signature against public key"):
        labels.verify_attestation(raw, PublicKey(other_pub.read_bytes()), rows["signed"].entry.files[0].sha256,
                                  "https://vetted.dev/attestations/safety-card/v1")
    assert len(calls) == 3
