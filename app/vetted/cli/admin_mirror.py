"""`vetted-admin mirror`: lay a signed catalog out as a static mirror and sign it again.

The layout and its checks are in `vetted.authoring.mirror`; this module only reads the
options (the same signer options as `build-catalog`) and words the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vetted.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("mirror", help="lay a catalog out for a plain web server (nginx, IIS, S3) and re-sign it",
                       description="Writes DIR/catalog.json(.sig) and DIR/models/<id>/<file> + <signature>, "
                                   "the catalog listing BASE_URL/models/<id> first among each model's mirrors.")
    p.add_argument("--catalog", type=Path, required=True,
                   help="the catalog.json to mirror (its models' files in its local folders, e.g. mirror/)")
    p.add_argument("--out", type=Path, required=True, help="the folder the web server serves")
    p.add_argument("--url", required=True, help="the public base URL of that folder (https://...)")
    p.add_argument("--version", type=int, required=True, help="the new catalog version (above the input's)")
    p.add_argument("--valid-days", type=int, help="a new expiry, this many days from now (default: the input's)")
    p.add_argument("--trusted-root", type=Path,
                   help="a private Sigstore's trusted_root.json, to verify keyless publishers' signatures")
    g = p.add_argument_group("signer (exactly one mode)")
    g.add_argument("--key", type=Path, help="private key PEM")
    g.add_argument("--cert-key", type=Path, help="the signing certificate's private key PEM")
    g.add_argument("--cert-chain", type=Path, action="append", default=[],
                   help="repeatable: the signing (leaf) certificate first, then the intermediate(s) and root")
    g.add_argument("--cert-identity", help="who the leaf certificate names, as verifiers pin it")
    p.set_defaults(run=run, _parser=p)


def run(args: argparse.Namespace) -> int:
    from vetted.authoring.mirror import build_mirror
    from vetted.authoring.signers import from_options

    try:
        signer = from_options(args.key, args.cert_key, args.cert_chain, args.cert_identity)
    except InputError as exc:  # a usage error or an unreadable key: exit 2
        args._parser.error(exc.line())
    try:
        done = build_mirror(args.catalog, args.out, args.url, signer, args.version, args.trusted_root,
                            args.valid_days)
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"mirrored {done.models} model(s), {done.files} file(s) ({done.linked} hard-linked) into {args.out}")
    print(f"wrote {done.catalog} and {done.catalog}.sig (version {done.version}); serve {args.out} at {args.url}")
    return 0
