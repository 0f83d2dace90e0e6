"""`vetted audit`: the trust decisions log, its hash chain, acknowledgements, exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vetted.cli.common import EXIT_OK, EXIT_REFUSED
from vetted.core import Vetted
from vetted.errors import InputError
from vetted.textsafe import one_line


def add_parser(sub: Any) -> None:
    a = sub.add_parser("audit", help="the trust decisions log")
    a.add_argument("--json", action="store_true",
                   help='an export: {"head": {id, hash, count}, "chain": ..., "entries": [...]}')
    a.add_argument("--limit", type=int)
    how = a.add_mutually_exclusive_group()
    how.add_argument("--acknowledge", action="store_true",
                     help="record the breaks in the hash chain found now, so trust decisions resume")
    how.add_argument("--verify-against", type=Path, metavar="EXPORT.json",
                     help="check that the history an earlier export recorded is still here, unchanged")
    a.add_argument("--reason", help="with --acknowledge: why (kept in the audit entry)")
    a.set_defaults(func=cmd_audit)


def cmd_audit(app: Vetted, args) -> int:

    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be a positive whole number, not {args.limit}")
    if args.verify_against:
        return _audit_verify_against(app, args.verify_against)
    if args.acknowledge:
        return _audit_acknowledge(app, args.reason)
    # the rows are shown even when the chain is broken: a person needs to see what happened
    if args.json:
        print(json.dumps(app.audit_export(args.limit), indent=2))
        return EXIT_OK
    status = app.audit_status()
    if not status.ok:
        print(f"BROKEN: the audit log's hash chain does not verify: {one_line(status.summary())}. Trust decisions "
              "are refused until this is acknowledged with `vetted audit --acknowledge`.")
    elif status.acknowledged:
        print(f"hash chain intact apart from {len(status.acknowledged)} acknowledged break(s): "
              f"{one_line('; '.join(p.description for p in status.acknowledged[:3]))}")
    for r in app.audit_entries(args.limit):
        who = f" [{one_line(r['identity'])}]" if r["identity"] else ""
        print(f"{one_line(r['at'])}  {one_line(r['result']):<8} {one_line(r['action']):<14} "
              f"{one_line(r['subject'])}{who}: {one_line(r['reason'])}")
    print(status.head.line())
    return EXIT_OK


def _audit_acknowledge(app: Vetted, reason: str | None) -> int:
    from vetted.store import audit

    found = app.audit_acknowledge(reason)
    if not found:
        head = app.audit_status().head
        print(f"nothing to acknowledge: the audit log's hash chain is intact ({head.line()})")
        return EXIT_OK
    print(f"acknowledged {len(found)} break(s) in the audit log's hash chain, recorded as an audit.acknowledge "
          "entry; trust decisions resume, and any later change to the log breaks the chain again:")
    for p in found:
        done = "" if p.kind != "trigger" else (" (put back as Vetted created it)" if p.trigger in audit.TRIGGERS
                                                else " (removed)")
        print(f"  {one_line(p.description)}{done}")
    return EXIT_OK


def _audit_verify_against(app: Vetted, export: Path) -> int:
    from vetted.store import audit

    try:
        document = json.loads(export.read_bytes())
    except OSError as exc:
        raise InputError(f"audit export {export}", exc.strerror or str(exc)) from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than any export
        raise InputError(f"audit export {export}", f"is not JSON ({exc})",
                         "give a file written by `vetted audit --json` or the Audit page's export") from None
    try:
        print(one_line(app.audit_check_export(document, f"export {export}")))
    except audit.HistoryRewritten as exc:
        print(f"refused: history rewritten since that export: {one_line(exc.found)} "
              f"(checked {one_line(exc.checked)}; {one_line(exc.action)})")
        return EXIT_REFUSED
    return EXIT_OK
