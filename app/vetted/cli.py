"""`vetted`: the command line over the same core the GUI uses.

Exit codes everywhere: 0 done, 1 refused (a trust or integrity check said no, or an
operation failed with a reason), 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from vetted.errors import InputError, Refused, VettedError
from vetted.units import human_size

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def add_trust_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    g = p.add_argument_group("trust (exactly one mode)")
    g.add_argument(f"--{prefix}identity", help="Sigstore keyless: the signer's identity (certificate SAN)")
    g.add_argument(f"--{prefix}issuer", help="Sigstore keyless: the OIDC issuer URL")
    g.add_argument(f"--{prefix}cert-chain", action="append", type=Path, default=[],
                   help="certificate chain PEM (repeatable): the organisation's CA(s)")
    g.add_argument(f"--{prefix}cert-identity", help="with --cert-chain: the SAN the signing certificate must carry")
    g.add_argument(f"--{prefix}key", type=Path, help="public key PEM")
    g.add_argument(f"--{prefix}trusted-root", type=Path,
                   help="Sigstore trusted_root.json (default: the pinned public-good root)")


def trust_from_args(args: argparse.Namespace, prefix: str = ""):
    from vetted.trust.identity import CertificateChain, PublicKey, SigstoreIdentity, read_pem_files

    a = prefix.replace("-", "_")
    ident, issuer = getattr(args, f"{a}identity"), getattr(args, f"{a}issuer")
    chain, cert_ident = getattr(args, f"{a}cert_chain"), getattr(args, f"{a}cert_identity")
    key, root = getattr(args, f"{a}key"), getattr(args, f"{a}trusted_root")
    modes = [bool(ident or issuer), bool(chain), bool(key)]
    if sum(modes) != 1:
        raise InputError("trust", "give exactly one of: --identity with --issuer; --cert-chain; --key")
    if cert_ident and not chain:
        raise InputError("trust", "--cert-identity needs --cert-chain")
    if ident or issuer:
        if not (ident and issuer):
            raise InputError("trust", "Sigstore keyless needs both --identity and --issuer")
        if root is not None and not root.is_file():
            raise InputError("trusted root", f"{root} is not a readable file")
        return SigstoreIdentity(ident, issuer, root)
    if chain:
        return CertificateChain(read_pem_files(chain), cert_ident)
    try:
        return PublicKey(key.read_bytes())
    except OSError as exc:
        raise InputError("public key", f"{key}: {exc.strerror}") from None


class Context:
    """Opened lazily: `vetted verify` must work without a writable data dir."""

    def __init__(self) -> None:
        from vetted.paths import locations

        self.loc = locations()
        self._db = None

    @property
    def db(self):
        if self._db is None:
            from vetted.store.db import open_db

            self.loc.ensure()
            self._db = open_db(self.loc.database)
        return self._db

    def catalog(self, location: str | None):
        from vetted.catalog.signed import load
        from vetted.settings import Settings

        sub = Settings.load(self.loc).find(location)
        return load(sub.location, sub.signer, self.db, trusted_root=sub.root_path)


def cmd_verify(ctx: Context, args) -> int:
    from vetted.trust.verify import verify_path

    spec = trust_from_args(args)
    try:
        verdict = verify_path(args.path, args.signature, spec, args.ignore_path)
    except Refused as exc:
        _audit_best_effort(ctx, str(args.path), "refused", exc.line(), spec)
        print(f"refused: {exc.line()}")
        return EXIT_REFUSED
    _audit_best_effort(ctx, str(args.path), "accepted", verdict.kind, spec)
    print(verdict.line())
    return EXIT_OK


def _audit_best_effort(ctx: Context, subject: str, result: str, reason: str, spec) -> None:
    """`vetted verify` is also a scripting tool; a read-only data dir must not break it."""
    try:
        from vetted.store import audit

        audit.record(ctx.db, "verify", subject, result, reason, spec.describe())
    except Exception:
        pass


def cmd_catalog(ctx: Context, args) -> int:
    from vetted.catalog.signed import search

    if args.action == "add":
        return cmd_catalog_add(ctx, args)
    cat = ctx.catalog(args.catalog)
    c = cat.catalog
    models = search(c, " ".join(args.text)) if args.action == "search" else list(c.models)
    if args.json:
        print(json.dumps({"catalog": c.id, "version": c.version, "signer": cat.signer, "expired": cat.expired,
                          "models": [m.model_dump(mode="json", exclude_none=True) for m in models]}, indent=2))
        return EXIT_OK
    state = "EXPIRED (new downloads refused)" if cat.expired else f"valid until {c.expires:%Y-%m-%d}"
    print(f"{c.name} ({c.id}) v{c.version}, signed by {cat.signer}; {state}")
    installed_ids = _installed_ids(ctx)
    for m in models:
        mark = "installed" if m.id in installed_ids else ""
        print(f"  {m.id:<34} {m.name:<28} {human_size(m.size):>9}  {m.license:<20} {m.publisher}  {mark}")
    if not models:
        print("  (no models match)")
    return EXIT_OK


def cmd_catalog_add(ctx: Context, args) -> int:
    from vetted.settings import CatalogSubscription, Settings, normalise_location

    spec = trust_from_args(args)
    location = normalise_location(args.location)
    settings = Settings.load(ctx.loc)
    settings.subscribe(CatalogSubscription(location, spec, str(args.trusted_root) if args.trusted_root else None))
    settings.save(ctx.loc)
    from vetted.store import audit

    audit.record(ctx.db, "catalog.pin", location, "info", "signer pinned by user", spec.describe())
    print(f"pinned {location}: must be signed by {spec.describe()}")
    return EXIT_OK


def _installed_ids(ctx: Context) -> set[str]:
    from vetted.store import installed

    return {m.model_id for m in installed.all_models(ctx.db)}




def cmd_pull(ctx: Context, args) -> int:
    from vetted.fetch.install import pull
    from vetted.fetch.progress import TerminalProgress

    cat = ctx.catalog(args.catalog)
    bar = TerminalProgress(sys.stderr)
    cancel = threading.Event()
    try:
        result = pull(ctx.loc, ctx.db, cat, args.model_id, progress=bar.update, cancel=cancel,
                      timeout=args.timeout, log=lambda m: print(m, file=sys.stderr))
    except KeyboardInterrupt:
        cancel.set()
        bar.done()
        print(f"cancelled: the partial download is kept; `vetted pull {args.model_id}` resumes it", file=sys.stderr)
        return 130
    finally:
        bar.done()
    m = result.model
    if result.already:
        print(f"already installed and verified: {m.model_id}")
        return EXIT_OK
    for f in m.files:
        print(f"verified: {f.name} sha256 {f.sha256} ({f.size} bytes) matches catalog {m.catalog_id} v{m.catalog_version}")
    print(f"verified: publisher signature by {m.signer}")
    print(f"installed: {m.model_id} from {result.source}")
    return EXIT_OK


def cmd_models(ctx: Context, args) -> int:
    from vetted.store import installed

    models = installed.all_models(ctx.db)
    if args.json:
        print(json.dumps([{"id": m.model_id, "name": m.name, "state": m.state, "reason": m.state_reason,
                           "signer": m.signer, "verified_at": m.verified_at, "size": m.size,
                           "files": {f.name: f.sha256 for f in m.files}} for m in models], indent=2))
        return EXIT_OK
    if not models:
        print("no models installed; see `vetted catalog` and `vetted pull MODEL_ID`")
    for m in models:
        state = "verified" if m.state == "verified" else f"REFUSED: {m.state_reason}"
        print(f"{m.model_id:<34} {human_size(m.size):>9}  {state}  (signed by {m.signer}; checked {m.verified_at})")
    return EXIT_OK


def cmd_check(ctx: Context, args) -> int:
    from vetted.store import installed

    try:
        r = installed.check(ctx.db, args.model_id, full=args.full)
    except Refused as exc:
        print(f"refused: {exc.line()}")
        return EXIT_REFUSED
    how = "re-hashed" if r.rehashed else "unchanged since verification (size, mtime, inode)"
    print(f"verified: {r.model_id} ({how}), signed by {r.signer}")
    return EXIT_OK


def cmd_remove(ctx: Context, args) -> int:
    from vetted.store import installed

    installed.purge(ctx.db, args.model_id)
    print(f"removed {args.model_id}")
    return EXIT_OK


def cmd_audit(ctx: Context, args) -> int:
    from vetted.store import audit

    rows = audit.entries(ctx.db, args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for r in rows:
        who = f" [{r['identity']}]" if r["identity"] else ""
        print(f"{r['at']}  {r['result']:<8} {r['action']:<14} {r['subject']}{who}: {r['reason']}")
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
    c.set_defaults(func=cmd_catalog)

    pl = sub.add_parser("pull", help="download, verify and install a model")
    pl.add_argument("model_id")
    pl.add_argument("--catalog", help="catalog file or URL (default: the first pinned one)")
    pl.add_argument("--timeout", type=float, default=30.0, help="seconds without data before a source counts as stalled")
    pl.set_defaults(func=cmd_pull)

    m = sub.add_parser("models", help="installed models and their verification state")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    ck = sub.add_parser("check", help="re-verify an installed model")
    ck.add_argument("model_id")
    ck.add_argument("--full", action="store_true", help="re-hash even if size, mtime and inode are unchanged")
    ck.set_defaults(func=cmd_check)

    r = sub.add_parser("remove", help="remove an installed model")
    r.add_argument("model_id")
    r.set_defaults(func=cmd_remove)

    a = sub.add_parser("audit", help="the trust decisions log")
    a.add_argument("--json", action="store_true")
    a.add_argument("--limit", type=int)
    a.set_defaults(func=cmd_audit)

    from vetted import cli_cards, cli_chat

    cli_chat.add_parsers(sub)
    cli_cards.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        try:
            from vetted.gui.app import main as gui_main
        except ImportError as exc:  # a headless install without the GUI extra
            print(f"error: the desktop app needs PySide6 ({exc}); see `vetted --help`", file=sys.stderr)
            return EXIT_USAGE
        return gui_main()
    if args.cmd == "catalog" and args.action == "add":
        if len(args.text) != 1:
            parser.error("catalog add takes exactly one LOCATION")
        args.location = args.text[0]
    ctx = Context()
    try:
        return args.func(ctx, args)
    except InputError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return EXIT_USAGE
    except VettedError as exc:
        print(f"refused: {exc.line()}" if isinstance(exc, Refused) else f"error: {exc.line()}")
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
