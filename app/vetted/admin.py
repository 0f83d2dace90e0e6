"""`vetted-admin`: tools for catalog authors (keys, model signatures, signed catalogs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vetted.errors import VettedError
from vetted.publish import build_catalog, generate_key, sign_file_or_folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vetted-admin", description="Build and sign Vetted catalogs.")
    sub = p.add_subparsers(dest="cmd", required=True)

    k = sub.add_parser("keygen", help="create an EC P-256 signing key pair")
    k.add_argument("--out", type=Path, required=True, help="folder for signing-key.pem and signing-key.pub.pem")

    s = sub.add_parser("sign", help="sign a model file or folder (OpenSSF Model Signing, key mode)")
    s.add_argument("path", type=Path)
    s.add_argument("--key", type=Path, required=True, help="private key PEM")
    s.add_argument("--out", type=Path, required=True, help="where to write the signature bundle")

    b = sub.add_parser("build-catalog", help="build and sign a catalog and its mirror folder from a spec")
    b.add_argument("spec", type=Path, help="JSON spec: catalog fields + models with local 'path's")
    b.add_argument("--key", type=Path, required=True, help="private key PEM (signs models and catalog)")
    b.add_argument("--out", type=Path, required=True, help="output folder: catalog.json(.sig) and mirror/")

    d = sub.add_parser("demo", help="build the demo catalog from the PyPI-shipped models")
    d.add_argument("--out", type=Path, default=None)

    args = p.parse_args(argv)
    try:
        if args.cmd == "keygen":
            priv, pub = generate_key(args.out)
            print(f"wrote {priv} and {pub}")
        elif args.cmd == "sign":
            sign_file_or_folder(args.path, args.key, args.out)
            print(f"signed {args.path} -> {args.out}")
        elif args.cmd == "build-catalog":
            spec = json.loads(args.spec.read_text("utf-8"))
            out = build_catalog(spec, args.spec.parent, args.key, args.out)
            print(f"wrote {out} and {out}.sig")
        elif args.cmd == "demo":
            from vetted.demo import build_demo

            result = build_demo(args.out)
            print(f"demo catalog: {result.catalog}")
    except VettedError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
