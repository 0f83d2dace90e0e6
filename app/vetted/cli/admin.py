"""`vetted-admin`: tools for catalog authors (keys, model signatures, signed catalogs).

The commands an organisation uses to host and carry catalogs (mirror layouts, OCI
registries, air-gapped bundles) live in their own modules, each registering its
subcommand: `register(sub)` adds a parser whose `run` default is the handler
(`run(args) -> exit code`). They are listed in `COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from vetted.errors import VettedError
from vetted.authoring.publish import build_catalog, generate_key, sign_file_or_folder

# Modules that each add one subcommand (see the module docstring).
COMMAND_MODULES: tuple[str, ...] = ("vetted.cli.admin_bundle", "vetted.cli.admin_oci", "vetted.cli.admin_mirror",
                                     "vetted.cli.admin_judge")


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
    b.add_argument("spec", type=Path, help="JSON spec: catalog fields + models, each with a local 'path' or "
                   "'huggingface': {repo, commit, file}")
    b.add_argument("--out", type=Path, required=True, help="output folder: catalog.json(.sig) and mirror/")
    bs = b.add_argument_group("signer (exactly one mode; signs the catalog, the models without a publisher "
                              "signature and the 'attest' claims)")
    bs.add_argument("--key", type=Path, help="private key PEM")
    bs.add_argument("--cert-key", type=Path, help="the signing certificate's private key PEM")
    bs.add_argument("--cert-chain", type=Path, action="append", default=[],
                    help="repeatable: the signing (leaf) certificate first, then the intermediate(s) and root; "
                         "verifiers pin the certificates above the leaf")
    bs.add_argument("--cert-identity", help="who the leaf certificate names, as verifiers pin it "
                    "(e.g. email:catalog@example.org)")

    a = sub.add_parser("attest", help="sign a provenance or safety-card claim about a model file")
    a.add_argument("kind", choices=["provenance", "safety_card"])
    a.add_argument("--model", type=Path, required=True, help="the GGUF file the claim is about")
    a.add_argument("--predicate", type=Path, required=True, help="JSON predicate (see docs/predicates.md)")
    a.add_argument("--key", type=Path, required=True, help="private key PEM of whoever makes the claim")
    a.add_argument("--out", type=Path, required=True, help="where to write the catalog reference (JSON)")

    d = sub.add_parser("demo", help="build the demo catalog from the PyPI-shipped models")
    d.add_argument("--out", type=Path, default=None)

    pol = sub.add_parser("policy", help="organisation policy documents (vetted.policy/1)")
    pol_sub = pol.add_subparsers(dest="policy_cmd", required=True)
    chk = pol_sub.add_parser("check", help="validate a policy document before deploying it (exit 0 valid, 1 not)")
    chk.add_argument("file", type=Path)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)

    args = p.parse_args(argv)
    if getattr(args, "run", None) is not None:
        try:
            return int(args.run(args))
        except VettedError as exc:
            print(f"error: {exc.line()}", file=sys.stderr)
            return 1
    if args.cmd == "policy":
        return policy_check(args.file)
    try:
        if args.cmd == "keygen":
            priv, pub = generate_key(args.out)
            print(f"wrote {priv} and {pub}")
        elif args.cmd == "sign":
            sign_file_or_folder(args.path, args.key, args.out)
            print(f"signed {args.path} -> {args.out}")
        elif args.cmd == "build-catalog":
            spec = json.loads(args.spec.read_text("utf-8"))
            from vetted.authoring.signers import from_options
            from vetted.errors import InputError

            try:
                signer = from_options(args.key, args.cert_key, args.cert_chain, args.cert_identity)
            except InputError as exc:  # a usage error or an unreadable key: exit 2
                b.error(exc.line())
            out = build_catalog(spec, args.spec.parent, signer, args.out)
            print(f"wrote {out} and {out}.sig")
        elif args.cmd == "attest":
            from vetted.digest import sha256_file
            from vetted.authoring.publish import attestation_ref, public_pem

            ref = attestation_ref(args.kind, json.loads(args.predicate.read_text("utf-8")), args.model.name,
                                  sha256_file(args.model), args.key, public_pem(args.key).decode())
            args.out.write_text(json.dumps(ref, indent=2))
            print(f"signed {args.kind} about {args.model.name} -> {args.out} (add it to the model's attestations)")
        elif args.cmd == "demo":
            from vetted.authoring.demo import build_demo

            result = build_demo(args.out)
            print(f"demo catalog: {result.catalog}")
    except VettedError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def policy_check(path: Path) -> int:
    """Validates a document exactly as the app will read it (the same parser), naming the
    field that is wrong; also resolves every signer so a malformed key or chain shows now."""
    from vetted.policy.schema import PolicyInvalid, parse
    from vetted.textsafe import one_line

    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        policy = parse(raw)
        for i, c in enumerate(policy.catalogs.allowed or []):
            for j, s in enumerate(c.signers):
                try:
                    s.spec(Path(c.trusted_root) if c.trusted_root else None).describe()
                except (VettedError, ValueError) as exc:
                    found = exc.found if isinstance(exc, VettedError) else str(exc)
                    raise PolicyInvalid(f"catalogs.allowed.{i}.signers.{j}: {found}") from None
    except PolicyInvalid as exc:
        print(f"invalid: {one_line(path)}: {one_line(exc)}")
        return 1
    rules = sum(1 for _ in policy.model_dump(exclude_defaults=True)) - 1
    print(f"valid: {one_line(path)} is a vetted.policy/1 document ({max(rules, 0)} section(s) set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
