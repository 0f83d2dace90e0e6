"""`vetted-admin bundle`: pack a signed catalog and some of its models into one file for
sites with no network (read by `vetted import`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vetted.textsafe import one_line


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bundle", help="pack a signed catalog and models into one file for air-gapped sites")
    p.add_argument("--catalog", type=Path, required=True, help="the signed catalog.json (its .sig beside it)")
    p.add_argument("--models", nargs="+", required=True, metavar="ID", help="the models to carry")
    p.add_argument("--out", type=Path, required=True, help="the bundle file to write")
    p.add_argument("--files", type=Path, action="append", default=[],
                   help="a folder holding model files (NAME or ID/NAME); default: the catalog's local sources")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vetted.authoring.bundle import write_bundle
    from vetted.errors import InputError

    start = time.monotonic()
    try:
        written = write_bundle(args.catalog, args.models, args.out, args.files,
                               log=lambda m: print(one_line(m), file=sys.stderr))
    except InputError as exc:
        print(f"error: {one_line(exc.line())}", file=sys.stderr)
        return 2
    print(f"wrote {one_line(written.path)}: {len(written.models)} model(s), {written.size} bytes "
          f"in {time.monotonic() - start:.1f} s")
    return 0
