"""A spot-check on this machine: a named suite (`cards.suites`), run deterministically on
the exact installed file in the worker process, each reply labelled by the judge
(`cards.judge`), scored with Wilson 95% intervals per suite and per category, and stored
per file digest beside the card's claims.

Only a complete run of a whole suite is evidence (the quick suite counts as one). A run
of part of one (`limit`, or a suite cut down under the same id and version) is stored as
'partial', a stopped one as 'cancelled'; `latest()`, which cards, comparisons, the policy
and the demo's signed card read, never returns either.

Speed: each probe generates at most the tokens its judge needs (`suites.MAX_TOKENS`); the
prompts share the template's opening, which llama.cpp keeps in its KV cache between
probes (no `fresh` reset); the engine streams in batches, so the harness adds little to
plain generation (bench/spotcheck.py measures the ratio). llama-cpp-python's high-level
API decodes one sequence at a time, so probes are not batched.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from vetted.cards import suites
from vetted.cards.classify import insecure_findings
from vetted.cards.judge import COMPLIED, JUDGE_ID, JUDGE_VERSION, OTHER, REFUSED, judge
from vetted.cards.stats import wilson
from vetted.cards.suites import ALIASES, METRICS, MetricSpec, Probe, Suite
from vetted.runtime.chat import ChatSession
from vetted.store import audit, installed

__all__ = ["ALIASES", "METRICS", "wilson", "run", "latest", "score", "SpotCheck", "ProbeResult", "Metric"]


@dataclass
class ProbeResult:
    id: str
    kind: str
    category: str
    reply: str
    label: str  # refused | complied | other
    reason: str
    insecure: list[str] = field(default_factory=list)
    tokens: int = 0
    suite: str = ""

    @property
    def refused(self) -> bool:
        return self.label == REFUSED


@dataclass
class Metric:
    name: str
    label: str
    k: int
    n: int
    value: float
    ci95: tuple[float, float]
    direction: str
    suite: str = ""  # "harmbench-standard 1.0.0" or the quick suite's name
    other: int = 0  # replies labelled other (counted in n, never in k)
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SpotCheck:
    model_id: str
    sha256: str
    suite_id: str
    suite_version: str
    status: str
    metrics: dict[str, Metric]
    results: list[ProbeResult]
    seconds: float
    settings: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = {k: asdict(v) for k, v in self.metrics.items()}
        return d


def _counts(r: ProbeResult, spec: MetricSpec) -> bool:
    if spec.counts == "insecure":
        return bool(r.insecure)
    return r.label == spec.counts


def score(results: list[ProbeResult], suite_name: str = "") -> dict[str, Metric]:
    """One metric per suite the results come from; k/n with its interval, the `other`
    count, and the same per category where the probes have one."""
    by_metric: dict[str, list[ProbeResult]] = {}
    for r in results:
        probe = Probe(r.id, r.suite, r.kind, r.category, "")
        by_metric.setdefault(suites.metric_for(probe), []).append(r)
    out = {}
    for name, rs in by_metric.items():
        spec = METRICS[name]
        k, n = sum(1 for r in rs if _counts(r, spec)), len(rs)
        cats: dict[str, dict[str, Any]] = {}
        for cat in dict.fromkeys(r.category for r in rs if r.category):
            cr = [r for r in rs if r.category == cat]
            ck = sum(1 for r in cr if _counts(r, spec))
            cats[cat] = {"k": ck, "n": len(cr), "value": ck / len(cr), "ci95": wilson(ck, len(cr)),
                         "other": sum(1 for r in cr if r.label == OTHER)}
        out[name] = Metric(name, spec.label, k, n, k / n, wilson(k, n), spec.direction, suite_name,
                           sum(1 for r in rs if r.label == OTHER), cats)
    return out


def _resolve(suite: str | Suite) -> tuple[Suite, Suite | None]:
    """(the suite to run, the whole current suite under its id and version, or None)."""
    if isinstance(suite, Suite):
        try:
            whole = suites.load(suite.id)
        except Exception:
            return suite, None
        return suite, whole if whole.version == suite.version else None
    s = suites.load(suite)
    return s, s


def run(db: sqlite_utils.Database, model_id: str, suite: str | Suite = suites.QUICK,
        session: ChatSession | None = None, progress: Callable[[int, int, str], None] | None = None,
        cancel: threading.Event | None = None, limit: int | None = None) -> SpotCheck:
    """Runs one suite on the installed, re-verified file; stores and returns the result.

    The status is 'complete' only when every probe of the whole current suite ran;
    fewer probes (`limit`, a cut-down suite) make it 'partial', and a cancel 'cancelled'."""
    from vetted.runtime.chat import ChatSession
    from vetted.store.chats import Conversation

    chosen, whole = _resolve(suite)
    gen = suites.GENERATION
    own = session is None
    session = session or ChatSession(db)
    model = installed.get(db, model_id)
    sha = model.files[0].sha256
    conv = Conversation(0, "spot-check", model_id, "", {"n_ctx": gen["n_ctx"], "seed": gen["seed"]}, "", "")
    probes = list(chosen.probes[:limit] if limit else chosen.probes)
    covers = whole is not None and probes == list(whole.probes)  # ids, suites, kinds, categories, prompts
    status = "complete" if covers else "partial"
    results: list[ProbeResult] = []
    started, t0 = audit.now(), time.perf_counter()
    try:
        session.ensure_model(conv)  # re-check before load, memory check, template choice
        assert session._template is not None  # ensure_model chose one or refused
        template = session._template[0]
        base = {"temperature": gen["temperature"], "seed": gen["seed"], "top_k": 1, "top_p": 1.0,
                "repeat_penalty": 1.0}
        for i, p in enumerate(probes):
            if progress:
                progress(i, len(probes), p.id)
            if cancel is not None and cancel.is_set():
                status = "cancelled"
                break
            prompt, _ = session.engine.render_prompt(template, [{"role": "user", "content": p.prompt}],
                                                     count=False)
            reply = session.engine.generate(prompt, {**base, "max_tokens": suites.max_tokens(p)})
            if cancel is not None and cancel.is_set():  # a reply cut short is not scored
                status = "cancelled"
                break
            verdict = judge(p.prompt, reply.text)
            insecure = [f.rule for f in insecure_findings(reply.text)] \
                if p.kind == "code" and verdict.label == COMPLIED else []
            results.append(ProbeResult(p.id, p.kind, p.category, reply.text, verdict.label, verdict.reason,
                                       insecure, int((reply.usage or {}).get("completion_tokens", 0)), p.suite))
        if progress and status != "cancelled":
            progress(len(probes), len(probes), "done")
    finally:
        if own:
            session.close()
    settings = {**gen, "max_tokens": dict(suites.MAX_TOKENS), "judge": f"{JUDGE_ID} {JUDGE_VERSION}",
                "template": session._template[1] if session._template else None}
    check = SpotCheck(model_id, sha, chosen.id, chosen.version, status, score(results, chosen.name), results,
                      time.perf_counter() - t0, settings)
    db.execute(
        "INSERT INTO spotchecks (sha256, model_id, suite_id, suite_version, started_at, finished_at, status,"
        " metrics, results, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sha, model_id, check.suite_id, check.suite_version, started, audit.now(), status,
         json.dumps({k: asdict(v) for k, v in check.metrics.items()}),
         json.dumps([asdict(r) for r in results]), json.dumps(settings)])
    audit.record(db, "spotcheck", model_id, "info",
                 f"{chosen.name} {status}: {len(results)} probes in {check.seconds:.0f} s; " +
                 ", ".join(f"{m.name}={m.k}/{m.n}" for m in check.metrics.values()), None, {"sha256": sha})
    return check


def _current() -> dict[str, Suite]:
    """Every suite that can be loaded now (a missing prompt-set wheel leaves out the
    published suites and the quick one: their runs cannot be checked against them)."""
    out = {}
    for sid in (suites.QUICK,) + suites.ALL:
        try:
            out[sid] = suites.load(sid)
        except Exception:
            continue
    return out


def _settings_current(settings: dict[str, Any]) -> bool:
    """Was the run made as runs are made now (greedy, the seed, the context, the token caps)?"""
    return all(settings.get(k) == v for k, v in suites.GENERATION.items()) and \
        settings.get("max_tokens") == suites.MAX_TOKENS


_rejudged: dict[tuple[str, str, str], dict[str, Metric]] = {}


def _measured(results_json: str, suite: Suite) -> dict[str, Metric] | None:
    """The row's metrics, recomputed from its kept replies: each probe's suite, kind and
    category from the current suite (never from the row), each reply labelled by the judge
    as it is now. None when the replies are not the suite's probes, in order."""
    import hashlib

    stored = json.loads(results_json)
    if not isinstance(stored, list) or [r.get("id") if isinstance(r, dict) else None for r in stored] \
            != suite.probe_ids():
        return None
    # remembered by what was judged (the kept replies, the suite, the judge), never by row id:
    # row ids repeat across databases
    key = (hashlib.sha256(results_json.encode()).hexdigest(), f"{suite.name} {suite.content_digest()}",
           f"{JUDGE_ID} {JUDGE_VERSION}")
    if key not in _rejudged:
        results = []
        for p, r in zip(suite.probes, stored):
            reply = str(r.get("reply") or "")
            verdict = judge(p.prompt, reply)
            insecure = [f.rule for f in insecure_findings(reply)] if p.kind == "code" and verdict.label == COMPLIED \
                else []
            results.append(ProbeResult(p.id, p.kind, p.category, reply, verdict.label, verdict.reason, insecure,
                                       0, p.suite))
        if len(_rejudged) > 256:
            _rejudged.clear()
        _rejudged[key] = score(results, suite.name)
    return _rejudged[key]


def latest(db: sqlite_utils.Database, sha256: str) -> dict[str, Any] | None:
    """What is measured here about this file: per metric, the newest complete run of the
    whole current suite that measures it, a full suite before the quick one (more probes,
    the same quantity); None when there is none.

    Partial and cancelled runs, runs of another suite version, runs made with other
    generation settings or token caps, and rows whose replies are not exactly the suite's
    probes, in order, are never used. The stored figures are not trusted: each used run's
    kept replies are labelled again by the current judge against the current suite."""
    from vetted.cards.judge_accuracy import summary as judge_summary

    current = _current()
    rows = list(db.query("SELECT * FROM spotchecks WHERE sha256 = ? AND status = 'complete' ORDER BY id DESC",
                         [sha256]))
    chosen: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {}  # metric -> (rank, metric, row)
    for r in rows:
        s = current.get(r["suite_id"])
        if s is None or s.version != r["suite_version"]:
            continue
        try:
            settings = json.loads(r["settings"])
            measured = _measured(r["results"], s) if isinstance(settings, dict) and _settings_current(settings) \
                else None
        except (ValueError, TypeError, AttributeError):
            measured = None
        if measured is None:
            continue
        rank = 1 if s.id == suites.QUICK else 0
        for name, m in measured.items():
            if name not in chosen or rank < chosen[name][0]:
                chosen[name] = (rank, {**asdict(m), "finished_at": r["finished_at"]}, r)
    if not chosen:
        return None
    used = {id(row): row for _, _, row in chosen.values()}.values()
    newest = max(used, key=lambda row: row["finished_at"])
    settings = {**json.loads(newest["settings"]), "judge": f"{JUDGE_ID} {JUDGE_VERSION}"}
    return {"suite": ", ".join(sorted({m["suite"] for _, m, _ in chosen.values()})),
            "finished_at": newest["finished_at"],
            "metrics": {name: m for name, (_, m, _) in sorted(chosen.items())},
            "settings": settings, "judge": judge_summary()}


def compare(claim_metric: str, claim_value: float, claim_ci: tuple[float, float] | None,
            local: dict[str, Any] | None, sample_size: int | None = None) -> tuple[str, str]:
    """("consistent" | "contradicted by a local spot-check" | "not checked locally", detail);
    the detail names the local figure and the statistical test used (`cards.stats.agree`)."""
    from vetted.cards.stats import agree

    name = ALIASES.get(claim_metric, claim_metric)
    if not local or name not in local["metrics"]:
        return "not checked locally", ""
    m = local["metrics"][name]
    lo, hi = m["ci95"]
    result = agree(claim_value, claim_ci, sample_size, int(m["k"]), int(m["n"]))
    where = f" ({m['suite']})" if m.get("suite") else ""
    detail = f"local {m['k']}/{m['n']} = {m['value']:.0%} (95% CI {lo:.0%}–{hi:.0%}){where}; {result.test}"
    return ("contradicted by a local spot-check" if result.contradicts else "consistent"), detail
