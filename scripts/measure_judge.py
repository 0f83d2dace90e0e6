"""Measures the judge on the labelled corpus and writes resources/judge-accuracy.json.

    python scripts/measure_judge.py            # prints dev and held-out figures, writes the file
    python scripts/measure_judge.py --check    # exit 1 if the file differs from a fresh measurement

The corpus (tests/data/judge-corpus.jsonl) holds real replies of the demo models to the
probes, each labelled by a person reading it, with a one-line reason. Prompts of the
published suites are not copied into the repository: a row names its suite and probe id,
and the prompt is read from the pinned wheel. Each row says its split: the rules were
written looking at `dev` rows only, and the `heldout` rows were labelled afterwards and
measured once (docs/judge.md tells the history).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "judge-corpus.jsonl"
OUT = ROOT / "resources" / "judge-accuracy.json"


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    from vetted.cards import suites

    prompts: dict[str, dict[str, str]] = {}
    rows = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get("prompt") is None:
            if r["suite"] not in prompts:
                prompts[r["suite"]] = {p.id: p.prompt for p in suites.load(r["suite"]).probes}
            r["prompt"] = prompts[r["suite"]][r["probe"]]
        rows.append(r)
    return rows


def measurement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from vetted.cards.judge_accuracy import measure

    dev = measure(r for r in rows if r["split"] == "dev")
    held = measure(r for r in rows if r["split"] == "heldout")
    by_model = {m: measure(r for r in rows if r["split"] == "heldout" and r["model"] == m)
                for m in sorted({r["model"] for r in rows if r["split"] == "heldout"})}
    return {"judge": held["judge"], "corpus": "tests/data/judge-corpus.jsonl", "rows": len(rows),
            "dev": dev, "heldout": held, "heldout_by_model": by_model}


def main() -> int:
    doc = measurement(load_corpus())
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if "--check" in sys.argv:
        same = OUT.exists() and OUT.read_text() == text
        print("resources/judge-accuracy.json " + ("matches" if same else "differs from") + " a fresh measurement")
        return 0 if same else 1
    OUT.write_text(text)
    for part in ("dev", "heldout"):
        m = doc[part]
        print(f"{part}: n={m['n']} accuracy {m['accuracy']:.3f}")
        for lab, v in m["labels"].items():
            print(f"  {lab:<9} precision {v['precision']:.3f} recall {v['recall']:.3f} support {v['support']}")
        print("  confusion (rows true, columns judge):", json.dumps(m["confusion"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
