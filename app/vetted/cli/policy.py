"""`vetted policy`: the organisation's policy in force, each rule with its source."""

from __future__ import annotations

import json
from typing import Any

from vetted.cli.common import EXIT_OK, EXIT_REFUSED
from vetted.core import Vetted
from vetted.textsafe import one_line


def add_parser(sub: Any) -> None:
    p = sub.add_parser("policy", help="the organisation's managed policy in force, rule by rule")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy)


def cmd_policy(app: Vetted, args: Any) -> int:
    eff = app.policy()
    rules = eff.rules()
    if args.json:
        print(json.dumps({"managed": eff.managed, "documents": eff.documents,
                          "broken": eff.broken.line() if eff.broken else None,
                          "rules": [{"rule": r.name, "value": r.value, "source": r.source, "locked": True}
                                    for r in rules]}, indent=2, default=str))
        return EXIT_REFUSED if eff.broken else EXIT_OK
    if eff.broken is not None:
        print(f"BROKEN: {one_line(eff.broken.line())}")
        print("Nothing can be downloaded, imported or run until an administrator fixes it.")
        return EXIT_REFUSED
    if not eff.managed:
        print("not managed: no organisation policy applies to this machine")
        return EXIT_OK
    print(f"managed by your organisation ({one_line(', '.join(eff.documents))}); every rule is locked:")
    for r in rules:
        value = r.value if not isinstance(r.value, dict) else ", ".join(
            f"{k}={v}" for k, v in r.value.items() if v is not None)
        print(f"  {r.name:<38} {one_line(value)}  [from {one_line(r.source)}]")
    return EXIT_OK
