"""Review of issue 15: cards whose figures name one metric twice (an alias and the
canonical name, a declared and a cited figure), figures outside [0, 1], and malformed
unsigned cards, through the summary, the policy gate, the model page and Compare.

Each test failed on the code the outside review of issue 15 was given, and holds its fix."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

import pytest

from catalog_kit import build
from tiny_gguf import write_gguf
from vetted.cards import suites
from vetted.cards.spotcheck import ProbeResult, score
from vetted.cards.summary import HIGH, LOW, summarise
from vetted.catalog.signed import load
from vetted.trust.identity import PublicKey

CITE = {"source": "Cisco, Evaluating Security Risk in DeepSeek", "published": "2025-01-31"}


def res(metric: str, value: float, **extra) -> dict:
    return {"benchmark": "HarmBench", "metric": metric, "value": value, "direction": "lower_is_better",
            "sample_size": 400, **extra}


def card_doc(*results: dict) -> dict:
    return {"evaluator": "Eval Lab", "evaluated_at": "2026-11-01", "assurance": "third-party",
            "results": list(results), "not_evaluated": [], "flags": []}


def declared(*results: dict) -> list[dict]:
    return [{"label": "declared", "by": "Eval Lab", "data": card_doc(*results)}]


# -- the summary ---------------------------------------------------------------------------------


def test_a_card_naming_the_harmful_metric_twice_is_not_low_risk() -> None:
    """A signed card with the canonical name at 2% and the earlier name
    (harmful_compliance_rate) at 60%: the policy gate takes the worse (60%, refused) but
    the summary takes whichever comes first and says "Low risk"."""
    s = summarise(declared(res("harmbench_attack_success_rate", 0.02), res("harmful_compliance_rate", 0.60)), None)
    assert s.level != LOW, s.headline


def test_the_level_does_not_depend_on_the_order_of_a_declared_and_a_cited_figure() -> None:
    """docs/safety-summary.md: a cited figure "can raise the level to High risk". With the
    cited 90% listed first the card reads High risk; with the same two figures in the
    other order it reads Low risk."""
    a = summarise(declared(res("harmbench_asr", 0.90, citation=CITE), res("harmbench_attack_success_rate", 0.02)),
                  None)
    b = summarise(declared(res("harmbench_attack_success_rate", 0.02), res("harmbench_asr", 0.90, citation=CITE)),
                  None)
    assert a.level == HIGH
    assert b.level == a.level, (a.headline, b.headline)


# -- signed cards through the real catalog: the gate, the page, Compare ---------------------------


def _catalog(tmp_path: Path, key, signed: dict | None = None, unsigned: dict | None = None) -> Path:
    (tmp_path / "src").mkdir(parents=True, exist_ok=True)
    model = write_gguf(tmp_path / "src" / "tiny.gguf",
                       chat_template="{% for m in messages %}{{ m.content }}{% endfor %}")
    m = {"id": "tiny", "name": "Tiny", "publisher": "P", "license": "MIT", "path": str(model),
         "attest": {"safety_card": signed} if signed else {}}
    if unsigned:
        m["safety_card"] = unsigned
    return build(tmp_path / "cat", key[0], models=[m])


def _entry(cat: Path, key, db):
    return load(str(cat), PublicKey(key[1].read_bytes()), db).catalog.model("tiny")


def _quick_run(loc, sha: str, answered: int) -> None:
    """A complete run of the whole quick suite stored as `spotcheck.run` stores one."""
    quick = suites.load("quick")
    hb = [p.id for p in quick.probes if p.suite == "harmbench-standard"][:answered]
    results = [ProbeResult(p.id, p.kind, p.category, "x", "complied" if p.id in hb else "refused", "", [], 0, p.suite)
               for p in quick.probes]
    con = sqlite3.connect(loc.database)
    con.execute("INSERT INTO spotchecks (sha256, model_id, suite_id, suite_version, started_at, finished_at, status,"
                " metrics, results, settings) VALUES (?, 'tiny', ?, ?, '2026-11-23T00:00:00+00:00',"
                " '2026-11-23T00:01:00+00:00', 'complete', ?, ?, ?)",
                [sha, quick.id, quick.version, json.dumps({k: asdict(v) for k, v in score(results, quick.name).items()}),
                 json.dumps([asdict(r) for r in results]),
                 json.dumps({**suites.GENERATION, "max_tokens": suites.MAX_TOKENS})])
    con.commit()
    con.close()


@pytest.mark.usefixtures("no_machine_policy")
def test_a_cited_figure_over_the_threshold_blocks_even_beside_a_declared_one(tmp_path, loc, signing_key, cli,
                                                                             monkeypatch) -> None:
    """docs/safety-summary.md: "a policy threshold can be broken by a cited figure but never
    met by one". The gate reads a cited figure only when no declared figure names the
    metric: a card citing a published 90% attack success and declaring its own 5% is
    admitted under a 20% threshold."""
    from vetted.policy import sources

    cat = _catalog(tmp_path, signing_key, signed=card_doc(res("harmbench_attack_success_rate", 0.05),
                                                          res("harmbench_asr", 0.90, citation=CITE)))
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    pol = tmp_path / "policies" / "p.json"
    pol.parent.mkdir()
    pol.write_text(json.dumps({"schema": "vetted.policy/1", "safety": {"max": {"harmbench_attack_success_rate": 0.2}}}))
    pol.chmod(0o600)
    r = cli("pull", "tiny", env={sources.EXTRA_ENV: str(pol)})
    assert r.returncode == 1 and "cites" in r.stdout, r.stdout + r.stderr


def test_a_figure_outside_0_1_is_refused_when_signed_and_never_crashes_the_summary(tmp_path, loc, signing_key,
                                                                                   db) -> None:
    """docs/predicates.md: `value` is a rate in [0, 1]. The predicate did not enforce it, so
    a signed card could say 1.5; once the file had a local run, `summarise` (Discover's
    Safety column, the model page's headline) raised ValueError from Fisher's test on a
    negative cell. Now the predicate refuses it (a card signed outside Vetted's tools with
    such a value does not verify: it is unverified), and the summary passes over a
    figure that is not a rate wherever it comes from."""
    from pydantic import ValidationError

    from vetted.cards.predicates import SafetyCard
    from vetted.cards.view import card
    from vetted.gui.safety_view import render_card

    for bad in ({"value": 1.5}, {"value": -0.5}, {"sample_size": 0}, {"ci95": [0.9, 0.1]}, {"other": -1}):
        with pytest.raises(ValidationError):
            SafetyCard.model_validate(card_doc(res("harmbench_attack_success_rate", 0.5, **{
                k: v for k, v in bad.items() if k != "value"}) | ({"value": bad["value"]} if "value" in bad else {})))
    cat = _catalog(tmp_path, signing_key, unsigned=card_doc(res("harmbench_attack_success_rate", 1.5)))
    entry = _entry(cat, signing_key, db)
    _quick_run(loc, entry.files[0].sha256, answered=3)
    c = card(entry, db)
    assert c["safety_card"][0]["label"] == "unverified"
    summarise(c["safety_card"], c["spotcheck"])
    summarise(declared(res("harmbench_attack_success_rate", 1.5)), c["spotcheck"])  # a dict from anywhere
    summarise(declared(res("harmbench_attack_success_rate", 1.5)), None)
    render_card(c)


def test_compare_survives_a_malformed_unsigned_card(tmp_path, loc, signing_key, db) -> None:
    """An unsigned inline card (a dict of anything, shown as unverified) with a metric that
    is a list: `canonical()` raises TypeError (unhashable) and Compare fails for every
    model in the table; a value that is a string fails the same way (`:.0%`)."""
    from vetted.cards.compare import compare_rows

    cat = _catalog(tmp_path, signing_key, unsigned={"evaluator": "x", "results": [
        {"metric": ["harmbench_asr"], "value": 0.5}, {"metric": "harmbench_asr", "value": "low"}]})
    compare_rows([_entry(cat, signing_key, db)], db)


def test_compare_does_not_let_an_unsigned_figure_hide_the_signed_one(tmp_path, loc, signing_key, db) -> None:
    """Compare keeps one cell per metric and the last figure wins; with aliases folded
    together, an unsigned inline card's 1% (listed after the signed card) replaces the
    signed card's 90% attack success in the table."""
    from vetted.cards.compare import compare_rows

    cat = _catalog(tmp_path, signing_key, signed=card_doc(res("harmbench_attack_success_rate", 0.90)),
                   unsigned=card_doc(res("attack_success_rate", 0.01)))
    row = compare_rows([_entry(cat, signing_key, db)], db)[0]
    assert "90%" in row["metrics"]["harmbench_attack_success_rate"], row["metrics"]


@pytest.mark.usefixtures("no_machine_policy")
@pytest.mark.parametrize(("doc", "worst"), [
    (card_doc(res("harmbench_asr", 0.90, citation=CITE)), "is 90% (a published figure"),
    (card_doc(res("harmbench_attack_success_rate", 0.02), res("harmful_compliance_rate", 0.60)), "is 60%")])
def test_control_the_gate_refuses_a_cited_only_figure_and_takes_the_worse_of_two_names(tmp_path, loc, signing_key,
                                                                                      cli, doc, worst) -> None:
    """Control (passes): what the failing tests above compare against."""
    from vetted.policy import sources

    pol = tmp_path / "policies" / "p.json"
    pol.parent.mkdir()
    pol.write_text(json.dumps({"schema": "vetted.policy/1", "safety": {"max": {"harmbench_attack_success_rate": 0.2}}}))
    pol.chmod(0o600)
    cat = _catalog(tmp_path, signing_key, signed=doc)
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    r = cli("pull", "tiny", env={sources.EXTRA_ENV: str(pol)})
    assert r.returncode == 1 and worst in r.stdout and "the policy allows at most 20%" in r.stdout, r.stdout


def test_a_local_do_not_answer_rate_is_not_held_against_a_cards_harmbench_figure() -> None:
    """`summarise` takes the local harmful metric (HarmBench, else Do-Not-Answer) and the
    card's (HarmBench, else Do-Not-Answer) independently, then runs Fisher's test between
    them: after `vetted spotcheck --suite donotanswer`, a signed card's HarmBench 2% is
    "contradicted" by the Do-Not-Answer answer rate, a different quantity (docs: it counts
    advice questions answered carefully as answered)."""
    from vetted.cards.stats import wilson

    k, n = 470, 939
    local = {"suite": "donotanswer 1.0.0", "metrics": {"donotanswer_answer_rate": {
        "name": "donotanswer_answer_rate", "k": k, "n": n, "value": k / n, "ci95": list(wilson(k, n)),
        "direction": "lower_is_better", "suite": "donotanswer 1.0.0", "other": 0}}}
    s = summarise(declared(res("harmbench_attack_success_rate", 0.02)), local)
    assert not any("contradicts" in note for note in s.notes), s.notes
