"""`vetted`: the command line over the same core the GUI uses.

Exit codes everywhere: 0 done, 1 refused (a trust or integrity check said no, or an
operation failed with a reason), 2 usage error or unreadable input, 141 (128 + SIGPIPE,
what a shell reports for a program stopped by a closed pipe) when whoever reads the output
stopped reading (`vetted audit | head -2`): the command ends quietly, and a script cannot
mistake it for a refusal.

Every value from outside (catalog fields, signer descriptions, audit rows, server and
library messages inside errors) is printed through `textsafe.one_line`, so none of it
can forge a line or send the terminal an escape sequence.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from vetted.cli.common import EXIT_OK, EXIT_PIPE, EXIT_REFUSED, EXIT_USAGE
from vetted.cli.remedies import hint
from vetted.cli.trust_args import add_trust_args, trust_from_args
from vetted.core import Vetted
from vetted.errors import InputError, Refused, VettedError
from vetted.textsafe import one_line
from vetted.units import human_size

__all__ = ["EXIT_OK", "EXIT_PIPE", "EXIT_REFUSED", "EXIT_USAGE", "build_parser", "main"]


def cmd_verify(app: Vetted, args: argparse.Namespace) -> int:
    spec = trust_from_args(args)
    try:
        verdict = app.verify(args.path, args.signature, spec, args.ignore_path)
    except Refused as exc:
        print(f"refused: {one_line(exc.line())}")
        return EXIT_REFUSED
    print(one_line(verdict.line()))
    return EXIT_OK


def cmd_catalog(app: Vetted, args: argparse.Namespace) -> int:
    from vetted.catalog.signed import search

    if args.action == "add":
        return cmd_catalog_add(app, args)
    cat = app.catalog(args.catalog)
    c = cat.catalog
    models = search(c, " ".join(args.text)) if args.action == "search" else list(c.models)
    if args.json:
        print(json.dumps({"catalog": c.id, "version": c.version, "signer": cat.signer, "expired": cat.expired,
                          "models": [m.model_dump(mode="json", exclude_none=True) for m in models]}, indent=2))
        return EXIT_OK
    state = "EXPIRED (new downloads refused)" if cat.expired else f"valid until {c.expires:%Y-%m-%d}"
    print(f"{one_line(c.name)} ({c.id}) v{c.version}, signed by {one_line(cat.signer)}; {state}")
    installed_ids = {m.model_id for m in app.models()}
    for m in models:
        mark = "installed" if m.id in installed_ids else ""
        print(f"  {m.id:<34} {one_line(m.name):<28} {human_size(m.size):>9}  {one_line(m.license):<20} "
              f"{one_line(m.publisher)}  {mark}")
    if not models:
        print("  (no models match)")
    return EXIT_OK


def cmd_catalog_add(app: Vetted, args: argparse.Namespace) -> int:
    from vetted.core.settings import SignerConflict

    spec = trust_from_args(args)
    try:
        pinned = app.pin_catalog(args.location, spec, args.trusted_root, replace_signer=args.replace_signer)
    except SignerConflict as exc:
        print(f"refused: {one_line(exc.line())}; to replace the signer, run the same command with --replace-signer")
        return EXIT_REFUSED
    if pinned.replaced is not None:
        print(f"re-pinned {one_line(pinned.location)}: must now be signed by {one_line(pinned.signer)} "
              f"(was {one_line(pinned.replaced)})")
    else:
        print(f"pinned {one_line(pinned.location)}: must be signed by {one_line(pinned.signer)}")
    return EXIT_OK


def cmd_pull(app: Vetted, args: argparse.Namespace) -> int:
    from vetted.cli.progress import TerminalProgress

    limits = app.transfer_limits(stall_timeout=args.timeout, window=args.rate_window, min_rate=args.min_rate,
                                 connections=args.connections)
    bar = TerminalProgress(sys.stderr)
    cancel = threading.Event()
    try:
        result = app.pull(args.model_id, args.catalog, progress=bar.update, cancel=cancel, limits=limits,
                          log=lambda m: print(one_line(m), file=sys.stderr))
    except KeyboardInterrupt:
        cancel.set()
        bar.done()
        print(f"cancelled: the partial download is kept; `vetted pull {one_line(args.model_id)}` resumes it",
              file=sys.stderr)
        return 130
    finally:
        bar.done()
    m = result.model
    if result.already:
        print(f"already installed and verified: {m.model_id}")
        return EXIT_OK
    for f in m.files:
        print(f"verified: {one_line(f.name)} sha256 {f.sha256} ({f.size} bytes) matches catalog {m.catalog_id} "
              f"v{m.catalog_version}")
    print(f"verified: publisher signature by {one_line(m.signer)}")
    print(f"installed: {m.model_id} from {one_line(result.source)}")
    return EXIT_OK


def cmd_models(app: Vetted, args: argparse.Namespace) -> int:
    models = app.models()
    if args.json:
        print(json.dumps([{"id": m.model_id, "name": m.name, "state": m.state, "reason": m.state_reason,
                           "signer": m.signer, "verified_at": m.verified_at, "size": m.size,
                           "files": {f.name: f.sha256 for f in m.files}} for m in models], indent=2))
        return EXIT_OK
    if not models:
        print("no models installed; see `vetted catalog` and `vetted pull MODEL_ID`")
    for m in models:
        state = "verified" if m.state == "verified" else f"REFUSED: {one_line(m.state_reason)}"
        print(f"{m.model_id:<34} {human_size(m.size):>9}  {state}  (signed by {one_line(m.signer)}; "
              f"checked {m.verified_at})")
    return EXIT_OK


def cmd_check(app: Vetted, args: argparse.Namespace) -> int:
    try:
        r = app.check(args.model_id, full=args.full)
    except Refused as exc:
        print(f"refused: {one_line(exc.line())}{hint(exc)}")
        return EXIT_REFUSED
    how = "re-hashed" if r.rehashed else "unchanged since verification (size, mtime, ctime, inode, device)"
    print(f"verified: {r.model_id} ({how}), signed by {one_line(r.signer)}")
    return EXIT_OK


def cmd_remove(app: Vetted, args: argparse.Namespace) -> int:
    app.remove(args.model_id)
    print(f"removed {one_line(args.model_id)}")
    return EXIT_OK


def cmd_discard(app: Vetted, args: argparse.Namespace) -> int:
    n = app.discard_partial(args.model_id, args.catalog)
    print(f"discarded {n} partial download(s) of {one_line(args.model_id)}" if n else
          f"no partial download of {one_line(args.model_id)} to discard")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vetted", description="Vetted: verified local language models.")
    sub = p.add_subparsers(dest="cmd")

    v = sub.add_parser("verify", help="check a model or file against a signature and a pinned signer")
    v.add_argument("path", type=Path, help="model folder or file")
    v.add_argument("--signature", type=Path, required=True, help="signature bundle (OMS model.sig or Sigstore bundle)")
    add_trust_args(v)
    v.add_argument("--ignore-path", action="append", default=[], help="path inside the model folder to leave out")
    v.set_defaults(func=cmd_verify)

    c = sub.add_parser("catalog", help="show, search or pin a catalog")
    c.add_argument("action", nargs="?", choices=["list", "search", "add"], default="list")
    c.add_argument("text", nargs="*", help="search words, or for 'add': the catalog LOCATION")
    c.add_argument("--catalog", help="catalog file or URL (default: the first pinned one)")
    c.add_argument("--json", action="store_true")
    add_trust_args(c)
    c.add_argument("--replace-signer", action="store_true",
                   help="with 'add': confirm replacing the signer a location is already pinned to")
    c.set_defaults(func=cmd_catalog)

    pl = sub.add_parser("pull", help="download, verify and install a model (if it fits in memory)")
    pl.add_argument("model_id")
    pl.add_argument("--catalog", help="catalog file or URL (default: the first pinned one)")
    pl.add_argument("--timeout", type=float, help="seconds without any data before a source counts as stalled "
                                                  "(default 30)")
    pl.add_argument("--min-rate", type=int, help="bytes per second a transfer must average over each window, "
                                                 "else the server counts as trickling (default 16384)")
    pl.add_argument("--rate-window", type=float, help="seconds over which --min-rate is measured (default 60)")
    pl.add_argument("--connections", type=int, help="ranged parts of a large file in flight at once, 1 to 32 "
                                                    "(default 8; 1: a single connection)")
    pl.set_defaults(func=cmd_pull)

    d = sub.add_parser("discard", help="delete a model's partial download (a pull would otherwise resume it)")
    d.add_argument("model_id")
    d.add_argument("--catalog", help="catalog file or URL (default: the first pinned one)")
    d.set_defaults(func=cmd_discard)

    m = sub.add_parser("models", help="installed models and their verification state")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    ck = sub.add_parser("check", help="re-verify an installed model")
    ck.add_argument("model_id")
    ck.add_argument("--full", action="store_true", help="re-hash even if nothing about the file changed; "
                    "the only way to clear an earlier refusal")
    ck.set_defaults(func=cmd_check)

    r = sub.add_parser("remove", help="remove an installed model")
    r.add_argument("model_id")
    r.set_defaults(func=cmd_remove)

    from vetted.cli import audit, cards, chat, imports, policy, serve

    imports.add_parser(sub)
    audit.add_parser(sub)
    policy.add_parser(sub)
    chat.add_parsers(sub)
    cards.add_parsers(sub)
    serve.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:  # `vetted` alone opens the desktop app (vetted/launch.py), not this parser
        parser.print_help()
        return EXIT_USAGE
    if args.cmd == "catalog" and args.action == "add":
        if len(args.text) != 1:
            parser.error("catalog add takes exactly one LOCATION")
        args.location = args.text[0]
    app = Vetted()
    try:
        try:
            code = args.func(app, args)
        except InputError as exc:
            print(f"error: {one_line(exc.line())}{hint(exc)}", file=sys.stderr)
            code = EXIT_USAGE
        except VettedError as exc:
            line = one_line(exc.line()) + hint(exc)
            print(f"refused: {line}" if isinstance(exc, Refused) else f"error: {line}")
            code = EXIT_REFUSED
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:  # a bug, not a refusal: one line, and the traceback on request
            import os
            import traceback

            if os.environ.get("VETTED_DEBUG"):
                traceback.print_exc()
            print(f"error: unexpected {type(exc).__name__}: {one_line(exc)} (a bug in Vetted; set VETTED_DEBUG=1 "
                  "for the traceback and report it)", file=sys.stderr)
            code = EXIT_REFUSED
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
        return code
    except BrokenPipeError:
        # the reader went away (`| head`): nothing more to say to it. Point stdout at devnull
        # so the interpreter's final flush of what is still buffered does not raise again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE


if __name__ == "__main__":
    sys.exit(main())
