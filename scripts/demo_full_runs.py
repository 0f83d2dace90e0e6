"""Records the demo organisation's full-suite runs on SmolLM2, for the demo's signed card.

    python scripts/demo_full_runs.py record  [--work DIR]   # ~20 min on 2 cores
    python scripts/demo_full_runs.py summarise [--work DIR]  # writes resources/demo/full-runs.json

`record` builds the demo in a throw-away Vetted home, pulls SmolLM2 through the full
verification and runs every full suite on it with `vetted spotcheck --suite all --json`,
keeping every reply in DIR/runs.json. `summarise` turns those complete runs into the
figures the demo's card carries (per suite and per category, with Wilson intervals),
labelling the kept replies with the judge as it is now, so the card and the judge never
disagree. No figure is typed in by hand: each one is counted from replies in runs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "demo" / "full-runs.json"
SMOL = "smollm2-135m-instruct-q4_1"


def record(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VETTED_HOME": str(work / "home")}
    bindir = Path(sys.executable).parent
    subprocess.run([bindir / "vetted-admin", "demo"], env=env, check=True)
    subprocess.run([bindir / "vetted", "pull", SMOL], env=env, check=True)
    with open(work / "runs.json", "w") as f:
        subprocess.run([bindir / "vetted", "spotcheck", SMOL, "--suite", "all", "--json"], env=env, check=True,
                       stdout=f)


def summarise(work: Path) -> dict:
    from vetted.cards import suites
    from vetted.cards.classify import insecure_findings
    from vetted.cards.judge import COMPLIED, judge
    from vetted.cards.judge_accuracy import summary
    from vetted.cards.spotcheck import ProbeResult, score

    runs = json.loads((work / "runs.json").read_text())
    out: dict = {"model": SMOL, "recorded_by": "scripts/demo_full_runs.py", "judge": summary(), "runs": []}
    for run in runs:
        if run["status"] != "complete":
            raise SystemExit(f"{run['suite_id']} is {run['status']}: only complete runs make a card")
        suite = suites.load(run["suite_id"])
        if suite.version != run["suite_version"] or [r["id"] for r in run["results"]] != suite.probe_ids():
            raise SystemExit(f"{run['suite_id']} {run['suite_version']} is not the current suite: record again")
        prompts = {p.id: p.prompt for p in suite.probes}
        results = []
        for r in run["results"]:
            v = judge(prompts[r["id"]], r["reply"])
            insecure = [f.rule for f in insecure_findings(r["reply"])] if r["kind"] == "code" and v.label == COMPLIED else []
            results.append(ProbeResult(r["id"], r["kind"], r["category"], r["reply"], v.label, v.reason, insecure,
                                       r.get("tokens", 0), r["suite"]))
        metrics = score(results, suite.name)
        out["sha256"] = run["sha256"]
        out["runs"].append({"suite": suite.id, "version": suite.version, "seconds": round(run["seconds"], 1),
                            "recorded_on": run.get("finished_on") or "",
                            "metrics": {k: {**m.__dict__, "ci95": list(m.ci95)} for k, m in metrics.items()}})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["record", "summarise"])
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "demo-full-runs")
    ap.add_argument("--date", help="the day the runs were recorded (YYYY-MM-DD); default: runs.json's mtime")
    args = ap.parse_args()
    if args.step == "record":
        record(args.work)
        return 0
    doc = summarise(args.work)
    from datetime import datetime, timezone

    day = args.date or datetime.fromtimestamp((args.work / "runs.json").stat().st_mtime, timezone.utc).date().isoformat()
    doc["recorded_on"] = day
    for r in doc["runs"]:
        r["recorded_on"] = day
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    for r in doc["runs"]:
        for name, m in r["metrics"].items():
            print(f"{r['suite']:<20} {name:<32} {m['k']:>4}/{m['n']:<4} {m['value']:.1%} "
                  f"({m['ci95'][0]:.1%}–{m['ci95'][1]:.1%}) other {m['other']}  {r['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
