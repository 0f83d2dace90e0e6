"""`vetted-admin judge`: the spot-check's judge on anyone's replies, one JSON line each.

Reads JSON lines `{"prompt": …, "reply": …}` on standard input and prints, per line,
`{"label": "refused"|"complied"|"other", "reason": …, "judge": …}` (with `--json`, the
input's other fields are kept beside them, a person's own `label` as `given_label`). Lines that also carry a person's `"label"`
can be scored with `--score`: precision, recall and the confusion matrix go to standard
error at the end, so anyone can audit the judge on their own labelled data.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vetted.cards.judge import JUDGE_ID, JUDGE_VERSION, LABELS, judge


def register(sub: Any) -> None:
    p = sub.add_parser("judge", help="label replies refused / complied / other, as the spot-check does "
                                     "(JSON lines on standard input)")
    p.add_argument("--json", action="store_true", help="echo each input object with the verdict added")
    p.add_argument("--score", action="store_true",
                   help="inputs carry a person's \"label\": print precision, recall and the confusion matrix")
    p.set_defaults(run=run)


def _bad(line_no: int, why: str) -> int:
    print(f"error: standard input line {line_no}: {why}; expected a JSON object "
          '{"prompt": "...", "reply": "..."}', file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    labelled: list[dict[str, Any]] = []
    name = f"{JUDGE_ID} {JUDGE_VERSION}"
    for i, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            return _bad(i, f"not JSON ({exc.msg})")
        if not isinstance(obj, dict) or not isinstance(obj.get("reply"), str) \
                or not isinstance(obj.get("prompt", ""), str):
            return _bad(i, "no string \"reply\" (and \"prompt\", if given, must be a string)")
        verdict = judge(obj.get("prompt", ""), obj["reply"])
        out = {"label": verdict.label, "reason": verdict.reason, "judge": name}
        if args.json:  # the input kept beside the verdict; a person's own label moves to "given_label"
            kept = {k: v for k, v in obj.items() if k not in ("label", "reason", "judge")}
            if "label" in obj:
                kept["given_label"] = obj["label"]
            out = {**kept, **out}
        print(json.dumps(out), flush=True)  # ASCII escapes: any string JSON can carry prints
        if args.score:
            if obj.get("label") not in LABELS:
                return _bad(i, f"--score needs a \"label\" of {', '.join(LABELS)}")
            labelled.append(obj)
    if args.score:
        from vetted.cards.judge_accuracy import measure

        m = measure(labelled)
        print(f"{m['judge']} on {m['n']} labelled replies: accuracy {m['accuracy']:.1%}", file=sys.stderr)
        for lab, v in m["labels"].items():
            print(f"  {lab:<9} precision {v['precision']:.1%}  recall {v['recall']:.1%}  (n={v['support']})",
                  file=sys.stderr)
        print("  confusion (rows: your label, columns: judge): " + json.dumps(m["confusion"]), file=sys.stderr)
    return 0
