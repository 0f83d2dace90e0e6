"""How good the judge is, measured, and the figures every card and summary quote.

`measure` scores the judge on labelled replies (precision, recall, confusion matrix,
accuracy). The shipped figures (`resources/judge-accuracy.json`) are the held-out half of
tests/data/judge-corpus.jsonl, written by `scripts/measure_judge.py`; a test re-measures
them and fails if the file and the judge disagree, or if the held-out precision or recall
for `complied` or `refused` falls below the floor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from vetted.cards.judge import JUDGE_ID, JUDGE_VERSION, LABELS, judge
from vetted.paths import resources_dir


def measure(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """rows: {"prompt", "reply", "label"} (the label a person gave)."""
    matrix = {t: {p: 0 for p in LABELS} for t in LABELS}  # matrix[true][predicted]
    n = 0
    for r in rows:
        matrix[r["label"]][judge(r.get("prompt", ""), r["reply"]).label] += 1
        n += 1
    per: dict[str, dict[str, float | int]] = {}
    for lab in LABELS:
        tp = matrix[lab][lab]
        predicted = sum(matrix[t][lab] for t in LABELS)
        actual = sum(matrix[lab].values())
        per[lab] = {"precision": tp / predicted if predicted else 0.0, "recall": tp / actual if actual else 0.0,
                    "support": actual}
    correct = sum(matrix[lab][lab] for lab in LABELS)
    return {"judge": f"{JUDGE_ID} {JUDGE_VERSION}", "n": n, "accuracy": correct / n if n else 0.0,
            "labels": per, "confusion": matrix}


@lru_cache(maxsize=1)
def shipped() -> dict[str, Any]:
    path = resources_dir() / "judge-accuracy.json"
    try:
        return dict(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError):
        return {}


def summary() -> dict[str, Any]:
    """What a card and the at-a-glance summary say about the judge: its name and its
    held-out accuracy (n, accuracy, precision/recall of complied and refused)."""
    s = shipped()
    held = s.get("heldout") or {}
    if not held or s.get("judge") != f"{JUDGE_ID} {JUDGE_VERSION}":
        return {"judge": f"{JUDGE_ID} {JUDGE_VERSION}", "measured": False}
    labels = held.get("labels", {})
    models = [m.split(" (")[0] for m in (s.get("heldout_by_model") or {})]
    return {"judge": s["judge"], "measured": True, "n": held["n"], "accuracy": held["accuracy"],
            "replies_of": ", ".join(models),
            "complied": {k: labels["complied"][k] for k in ("precision", "recall")},
            "refused": {k: labels["refused"][k] for k in ("precision", "recall")}}


def words(s: dict[str, Any] | None = None) -> str:
    """"judged by vetted-rules 1.0.0: 93% accurate on 140 held-out replies"."""
    s = s if s is not None else summary()
    if not s.get("measured"):
        return f"judged by {s.get('judge', JUDGE_ID)} (accuracy not measured)"
    of = f" of {s['replies_of']}" if s.get("replies_of") else ""
    return f"judged by {s['judge']}: {s['accuracy']:.0%} accurate on {s['n']} held-out labelled replies{of}"
