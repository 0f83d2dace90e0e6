"""`vetted-admin oci-push`: put a signed catalog's models into an organisation's OCI registry.

Prints, per model, the `oci` source to list in the catalog (the manifest pinned by
digest); with `--key --out --version` it also writes that catalog, re-signed. Exit 0
pushed, 1 the registry refused or failed, 2 usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vetted.errors import CatalogError, InputError, VettedError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(sub: Any) -> None:
    from pathlib import Path

    p = sub.add_parser("oci-push", help="push a catalog's models and their signatures to an OCI registry",
                       description="Pushes each model's file(s) and signature bundle (from its local folder "
                                   "source, e.g. the mirror/ build-catalog wrote) as one OCI artifact, pushed by "
                                   "digest and tagged with the model id, and prints the oci source to list in the "
                                   "catalog. Credentials, if the registry needs them: VETTED_OCI_USERNAME and "
                                   "VETTED_OCI_PASSWORD.")
    p.add_argument("--catalog", type=Path, required=True, help="the catalog.json whose models to push")
    p.add_argument("--registry", required=True, help="registry base URL, https:// (http only on loopback)")
    p.add_argument("--repository", required=True, help="OCI repository name, e.g. models/llm")
    p.add_argument("--models", nargs="+", metavar="ID", help="only these model ids (default: all)")
    p.add_argument("--key", type=Path, help="private key PEM: also write the catalog with the oci sources, signed")
    p.add_argument("--out", type=Path, help="with --key: folder for the new catalog.json and catalog.json.sig")
    p.add_argument("--version", type=int, help="with --key: the new catalog version (above the current one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vetted.authoring.oci_push import add_oci_sources, check_version, push_catalog

    if args.key is not None and (args.out is None or args.version is None):
        print("error: --key needs --out and --version (the re-signed catalog needs a higher version)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.key is None and (args.out is not None or args.version is not None):
        print("error: --out and --version only go with --key", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.key is not None:
            from vetted.authoring import checks
            from vetted.authoring.signers import as_signer

            check_version(args.catalog, args.version)
            # before anything is pushed: only a catalog this key signed is re-signed
            checks.signed_by(args.catalog, args.catalog.read_bytes(), as_signer(args.key).trust())
        pushed = push_catalog(args.catalog, args.registry, args.repository, args.models)
    except (InputError, CatalogError) as exc:  # unreadable input: the catalog, its files, the target
        print(f"error: {exc.line()}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VettedError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return EXIT_FAILED
    for p in pushed:
        print(f"{p.model_id}: {json.dumps(p.source.model_dump())}")
        print(f"  pushed {p.uploaded} new blob(s) to {p.source.registry} {p.source.repository}, "
              f"tagged {p.model_id}", file=sys.stderr)
    if args.key is None:
        return EXIT_OK
    try:
        out = add_oci_sources(args.catalog, pushed, args.key, args.out, args.version)
    except (InputError, CatalogError, OSError, VettedError) as exc:  # the models are pushed; the catalog is not
        print(f"error: writing the catalog: {exc.line() if isinstance(exc, VettedError) else exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, (InputError, CatalogError, OSError)) else EXIT_FAILED
    print(f"wrote {out} and {out}.sig (version {args.version})", file=sys.stderr)
    return EXIT_OK
