"""`vetted card`, `vetted spotcheck`, `vetted compare`: what is known about a model, and how."""

from __future__ import annotations

import json
import sys
import threading

from vetted.textsafe import one_line


def add_parsers(sub) -> None:
    c = sub.add_parser("card", help="safety card, provenance, consistency with the file, spot-check results")
    c.add_argument("model_id")
    c.add_argument("--catalog")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_card)

    s = sub.add_parser("spotcheck", help="run a safety probe suite on the installed file, on this machine")
    s.add_argument("model_id", nargs="?")
    s.add_argument("--suite", default="quick",
                   help="quick (default, about a minute), harmbench-standard, donotanswer, vetted-overrefusal, "
                        "vetted-political, vetted-code, or all (every full suite, one after another)")
    s.add_argument("--list-suites", action="store_true", help="list the suites, their sizes and sources")
    s.add_argument("--limit", type=int, help="run only the first N probes (a partial run: not evidence)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_spotcheck)

    m = sub.add_parser("compare", help="two or more models side by side")
    m.add_argument("model_ids", nargs="+")
    m.add_argument("--catalog")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_compare)


def cmd_card(app, args) -> int:
    from vetted.cli.render import render_text

    c = app.card(args.model_id, args.catalog)
    print(json.dumps(c, indent=2, default=str) if args.json else render_text(c))
    return 0


def cmd_spotcheck(app, args) -> int:
    from vetted.cards.suites import ALL

    if args.list_suites:
        infos = app.spotcheck_suites()
        if args.json:
            print(json.dumps([i.as_json() for i in infos], indent=2))
            return 0
        for i in infos:
            print(f"{i.id:<20} {i.version:<16} {i.probes:>4} probes  {i.licence:<11} {one_line(i.source)}")
        return 0
    if not args.model_id:
        print("error: name the installed model to check (or --list-suites)", file=sys.stderr)
        return 2
    cancel = threading.Event()

    def progress(i: int, n: int, probe: str) -> None:
        if not args.json and sys.stderr.isatty():
            sys.stderr.write(f"\rspot-check {i}/{n} {probe:<40}")
            sys.stderr.flush()

    names = list(ALL) if args.suite == "all" else [args.suite]
    done = []
    try:
        for name in names:
            result = app.spotcheck(args.model_id, suite=name, limit=args.limit, progress=progress, cancel=cancel)
            done.append(result)
            if result.status == "cancelled":
                break
    except KeyboardInterrupt:
        cancel.set()
        print("\ncancelled", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps([r.as_json() for r in done] if args.suite == "all" else done[0].as_json(), indent=2))
        return 0
    from vetted.cards.judge_accuracy import words

    for result in done:
        print(f"\r{one_line(result.model_id)}: {result.suite_id} {result.suite_version}, {len(result.results)} "
              f"probes in {result.seconds:.0f} s ({result.status}), sha256 {result.sha256[:16]}…")
        for m in result.metrics.values():
            other = f"  {m.other} unusable" if m.other else ""
            print(f"  {m.label:<42} {m.k:>3}/{m.n:<3} = {m.value:5.0%}  (95% CI {m.ci95[0]:.0%}–{m.ci95[1]:.0%})"
                  f"{other}")
            for cat, c in m.categories.items():
                print(f"      {one_line(cat)[:36]:<38} {c['k']:>3}/{c['n']:<3} = {c['value']:5.0%}"
                      f"  ({c['ci95'][0]:.0%}–{c['ci95'][1]:.0%})")
        if result.status != "complete":
            print(f"{result.status} run: {len(result.results)} probes; not usable as evidence (cards, comparisons "
                  "and the policy use only complete runs of whole suites)")
    print(words())
    return 0


def cmd_compare(app, args) -> int:
    from vetted.cards.compare import FIELDS, metric_names as names

    rows = app.compare(args.model_ids, args.catalog)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    fields = FIELDS
    metric_names = names(rows)  # from the claims: untrusted like every value below
    width = max(len(one_line(f)) for f in fields + metric_names) + 2
    col = 34

    def cell(value) -> str:
        return f"{one_line(value)[:col - 2]:<{col}}"

    print(" " * width + "".join(cell(r["model"]) for r in rows))
    for f in fields:
        print(f"{f:<{width}}" + "".join(cell(r[f]) for r in rows))
    for m in metric_names:
        print(f"{one_line(m):<{width}}" + "".join(cell(r["metrics"].get(m) or "not evaluated") for r in rows))
    return 0
