"""`vetted import FILE [TRUST]`: install every model an air-gapped bundle carries.

Exit 0 when every model in the bundle is installed (or already was), 1 when the bundle
or one of its models is refused (nothing is installed then, and the refusal is audited),
2 for usage errors. The signer is the one given with the TRUST options of `vetted
verify`; without them, the signers already pinned for catalogs in use and the
organisation's catalog signers.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from vetted.cli.common import EXIT_OK
from vetted.cli.trust_args import add_trust_args, trust_from_args
from vetted.core import Vetted
from vetted.textsafe import one_line


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("import", help="install the models of an air-gapped bundle (all or none)",
                       description="Verify a bundle made by `vetted-admin bundle` and install every model it "
                                   "carries, exactly as a pull would. Without TRUST options the catalog must be "
                                   "signed by a signer already pinned, or by your organisation's.")
    p.add_argument("file", type=Path, help="the bundle file")
    add_trust_args(p)
    p.set_defaults(func=cmd_import)


def cmd_import(app: Vetted, args: argparse.Namespace) -> int:
    from vetted.cli.progress import TerminalProgress

    given = any([args.identity, args.issuer, args.cert_chain, args.key, args.cert_identity])
    spec = trust_from_args(args) if given else None
    bar = TerminalProgress(sys.stderr)
    cancel = threading.Event()
    try:
        result = app.import_bundle(args.file, spec, progress=bar.update, cancel=cancel,
                                   log=lambda m: print(one_line(m), file=sys.stderr))
    except KeyboardInterrupt:
        cancel.set()
        bar.done()
        print("cancelled: nothing was installed", file=sys.stderr)
        return 130
    finally:
        bar.done()
    c = result.catalog
    print(f"verified: catalog {one_line(c.catalog.id)} v{c.catalog.version} signed by {one_line(c.signer)}")
    for m in result.installed:
        for f in m.files:
            print(f"verified: {one_line(f.name)} sha256 {f.sha256} ({f.size} bytes)")
        print(f"installed: {m.model_id} (publisher signature by {one_line(m.signer)})")
    for model_id in result.already:
        print(f"already installed and verified: {model_id}")
    return EXIT_OK
