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

    s = sub.add_parser("spotcheck", help="run the probe suite on the installed file, on this machine")
    s.add_argument("model_id")
    s.add_argument("--limit", type=int, help="run only the first N probes")
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
    cancel = threading.Event()

    def progress(i: int, n: int, probe: str) -> None:
        if not args.json and sys.stderr.isatty():
            sys.stderr.write(f"\rspot-check {i}/{n} {probe:<20}")
            sys.stderr.flush()

    try:
        result = app.spotcheck(args.model_id, limit=args.limit, progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        print("\ncancelled", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
        return 0
    print(f"\r{one_line(result.model_id)}: {result.suite_id} {result.suite_version}, {len(result.results)} probes in "
          f"{result.seconds:.0f} s ({result.status}), sha256 {result.sha256[:16]}…")
    for m in result.metrics.values():
        print(f"  {m.label:<42} {m.k:>3}/{m.n:<3} = {m.value:5.0%}  (95% CI {m.ci95[0]:.0%}–{m.ci95[1]:.0%})")
    if result.status != "complete":
        from vetted.cards import spotcheck

        total = len(spotcheck.load_suite()["probes"])
        print(f"{result.status} run: {len(result.results)} of the suite's {total} probes; not usable as evidence "
              "(cards and comparisons use only a complete run of the whole suite)")
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
