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
from typing import TYPE_CHECKING

from vetted.errors import InputError, Refused, VettedError
from vetted.textsafe import one_line
from vetted.units import human_size

if TYPE_CHECKING:
    from vetted.fetch.limits import TransferLimits

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_PIPE = 0, 1, 2, 141


def add_trust_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    g = p.add_argument_group("trust (exactly one mode)")
    g.add_argument(f"--{prefix}identity", help="Sigstore keyless: the signer's identity (certificate SAN)")
    g.add_argument(f"--{prefix}issuer", help="Sigstore keyless: the OIDC issuer URL")
    g.add_argument(f"--{prefix}cert-chain", action="append", type=Path, default=[],
                   help="certificate chain PEM (repeatable): the organisation's CA(s)")
    g.add_argument(f"--{prefix}cert-identity",
                   help="required with --cert-chain: who the signing certificate must name (email:, uri:, dns: SAN,"
                        " or dn: the subject DN of a certificate without SANs; the type is inferred if not given)")
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
    if chain and not cert_ident:
        raise InputError("trust", f"--{prefix}cert-chain needs --{prefix}cert-identity (who the signing certificate"
                         " must name: an e-mail, URI or DNS SAN, or the subject DN of a certificate without SANs)")
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

    def catalog(self, location: str | None, limits=None):
        from vetted.catalog.signed import load
        from vetted.settings import Settings

        settings = Settings.load(self.loc)
        sub = settings.find(location)
        return load(sub.location, sub.signer, self.db, limits or settings.transfers, trusted_root=sub.root_path)

    def limits(self, args) -> "TransferLimits":
        """The settings' transfer limits, with this command's flags on top."""
        from dataclasses import replace

        from vetted.settings import Settings

        limits = Settings.load(self.loc).transfers
        for flag, name in (("timeout", "stall_timeout"), ("rate_window", "window"), ("min_rate", "min_rate")):
            value = getattr(args, flag, None)
            if value is not None:
                if value <= 0:
                    raise InputError(f"--{flag.replace('_', '-')}", f"must be positive, not {value}")
                limits = replace(limits, **{name: value})
        return limits


def cmd_verify(ctx: Context, args) -> int:
    from vetted.trust.verify import verify_path

    spec = trust_from_args(args)
    _audit_intact_if_present(ctx)
    try:
        verdict = verify_path(args.path, args.signature, spec, args.ignore_path)
    except Refused as exc:
        _audit_best_effort(ctx, str(args.path), "refused", exc.line(), spec)
        print(f"refused: {one_line(exc.line())}")
        return EXIT_REFUSED
    _audit_best_effort(ctx, str(args.path), "accepted", verdict.kind, spec)
    print(one_line(verdict.line()))
    return EXIT_OK


def _audit_intact_if_present(ctx: Context) -> None:
    """Best effort about the data dir (no database, or one that cannot be opened, lets verify
    work), but a database that opens with a broken, unacknowledged audit chain refuses."""
    import sqlite3

    from vetted.store import audit

    try:
        db = ctx.db
    except (OSError, sqlite3.Error, VettedError):
        return
    audit.require_intact(db)


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
    print(f"{one_line(c.name)} ({c.id}) v{c.version}, signed by {one_line(cat.signer)}; {state}")
    installed_ids = _installed_ids(ctx)
    for m in models:
        mark = "installed" if m.id in installed_ids else ""
        print(f"  {m.id:<34} {one_line(m.name):<28} {human_size(m.size):>9}  {one_line(m.license):<20} "
              f"{one_line(m.publisher)}  {mark}")
    if not models:
        print("  (no models match)")
    return EXIT_OK


def cmd_catalog_add(ctx: Context, args) -> int:
    from vetted.settings import CatalogSubscription, Settings, normalise_location

    from vetted.settings import SignerConflict
    from vetted.store import audit

    spec = trust_from_args(args)
    location = normalise_location(args.location)
    settings = Settings.load(ctx.loc)
    sub = CatalogSubscription(location, spec, str(args.trusted_root) if args.trusted_root else None)
    try:
        old = settings.subscribe(sub, replace_signer=args.replace_signer)
    except SignerConflict as exc:
        audit.record(ctx.db, "catalog.pin", location, "refused", exc.line(), spec.describe())
        print(f"refused: {one_line(exc.line())}; to replace the signer, run the same command with --replace-signer")
        return EXIT_REFUSED
    settings.save(ctx.loc)
    from vetted.trust.identity import spec_key

    if old is not None and spec_key(old.signer) != spec_key(spec):
        audit.record(ctx.db, "catalog.repin", location, "accepted",
                     f"signer replaced on the user's confirmation: was {old.signer.describe()}", spec.describe())
        print(f"re-pinned {one_line(location)}: must now be signed by {one_line(spec.describe())} "
              f"(was {one_line(old.signer.describe())})")
        return EXIT_OK
    audit.record(ctx.db, "catalog.pin", location, "info", "signer pinned by user", spec.describe())
    print(f"pinned {one_line(location)}: must be signed by {one_line(spec.describe())}")
    return EXIT_OK


def _installed_ids(ctx: Context) -> set[str]:
    from vetted.store import installed

    return {m.model_id for m in installed.all_models(ctx.db)}




def cmd_pull(ctx: Context, args) -> int:
    from vetted.fetch.install import pull
    from vetted.fetch.progress import TerminalProgress

    limits = ctx.limits(args)
    cat = ctx.catalog(args.catalog, limits)
    bar = TerminalProgress(sys.stderr)
    cancel = threading.Event()
    try:
        result = pull(ctx.loc, ctx.db, cat, args.model_id, progress=bar.update, cancel=cancel,
                      limits=limits, log=lambda m: print(one_line(m), file=sys.stderr))
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
        print(f"verified: {one_line(f.name)} sha256 {f.sha256} ({f.size} bytes) matches catalog {m.catalog_id} "
              f"v{m.catalog_version}")
    print(f"verified: publisher signature by {one_line(m.signer)}")
    print(f"installed: {m.model_id} from {one_line(result.source)}")
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
        state = "verified" if m.state == "verified" else f"REFUSED: {one_line(m.state_reason)}"
        print(f"{m.model_id:<34} {human_size(m.size):>9}  {state}  (signed by {one_line(m.signer)}; "
              f"checked {m.verified_at})")
    return EXIT_OK


def cmd_check(ctx: Context, args) -> int:
    from vetted.store import installed

    try:
        r = installed.check(ctx.db, args.model_id, full=args.full)
    except Refused as exc:
        print(f"refused: {one_line(exc.line())}")
        return EXIT_REFUSED
    how = "re-hashed" if r.rehashed else "unchanged since verification (size, mtime, ctime, inode, device)"
    print(f"verified: {r.model_id} ({how}), signed by {one_line(r.signer)}")
    return EXIT_OK


def cmd_remove(ctx: Context, args) -> int:
    from vetted.store import installed

    installed.purge(ctx.db, args.model_id)
    print(f"removed {one_line(args.model_id)}")
    return EXIT_OK


def cmd_audit(ctx: Context, args) -> int:
    from vetted.store import audit

    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be a positive whole number, not {args.limit}")
    if args.verify_against:
        return _audit_verify_against(ctx, args.verify_against)
    if args.acknowledge:
        return _audit_acknowledge(ctx, args.reason)
    # the rows are shown even when the chain is broken: a person needs to see what happened
    if args.json:
        print(json.dumps(audit.export_document(ctx.db, limit=args.limit), indent=2))
        return EXIT_OK
    status = audit.verify_chain(ctx.db)
    if not status.ok:
        print(f"BROKEN: the audit log's hash chain does not verify: {one_line(status.summary())}. Trust decisions "
              "are refused until this is acknowledged with `vetted audit --acknowledge`.")
    elif status.acknowledged:
        print(f"hash chain intact apart from {len(status.acknowledged)} acknowledged break(s): "
              f"{one_line('; '.join(p.description for p in status.acknowledged[:3]))}")
    for r in audit.entries(ctx.db, args.limit):
        who = f" [{one_line(r['identity'])}]" if r["identity"] else ""
        print(f"{one_line(r['at'])}  {one_line(r['result']):<8} {one_line(r['action']):<14} "
              f"{one_line(r['subject'])}{who}: {one_line(r['reason'])}")
    print(status.head.line())
    return EXIT_OK


def _audit_acknowledge(ctx: Context, reason: str | None) -> int:
    from vetted.store import audit

    found = audit.acknowledge(ctx.db, reason)
    if not found:
        head = audit.verify_chain(ctx.db).head
        print(f"nothing to acknowledge: the audit log's hash chain is intact ({head.line()})")
        return EXIT_OK
    print(f"acknowledged {len(found)} break(s) in the audit log's hash chain, recorded as an audit.acknowledge "
          "entry; trust decisions resume, and any later change to the log breaks the chain again:")
    for p in found:
        done = "" if p.kind != "trigger" else (" (put back as Vetted created it)" if p.trigger in audit.TRIGGERS
                                                else " (removed)")
        print(f"  {one_line(p.description)}{done}")
    return EXIT_OK


def _audit_verify_against(ctx: Context, export: Path) -> int:
    from vetted.store import audit

    try:
        document = json.loads(export.read_bytes())
    except OSError as exc:
        raise InputError(f"audit export {export}", exc.strerror or str(exc)) from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than any export
        raise InputError(f"audit export {export}", f"is not JSON ({exc})",
                         "give a file written by `vetted audit --json` or the Audit page's export") from None
    try:
        print(one_line(audit.check_export(ctx.db, document, f"export {export}")))
    except audit.HistoryRewritten as exc:
        print(f"refused: history rewritten since that export: {one_line(exc.found)} "
              f"(checked {one_line(exc.checked)}; {one_line(exc.action)})")
        return EXIT_REFUSED
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

    pl = sub.add_parser("pull", help="download, verify and install a model")
    pl.add_argument("model_id")
    pl.add_argument("--catalog", help="catalog file or URL (default: the first pinned one)")
    pl.add_argument("--timeout", type=float, help="seconds without any data before a source counts as stalled "
                                                  "(default 30)")
    pl.add_argument("--min-rate", type=int, help="bytes per second a transfer must average over each window, "
                                                 "else the server counts as trickling (default 16384)")
    pl.add_argument("--rate-window", type=float, help="seconds over which --min-rate is measured (default 60)")
    pl.set_defaults(func=cmd_pull)

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
            print(f"error: the desktop app needs PySide6 ({one_line(exc)}); see `vetted --help`", file=sys.stderr)
            return EXIT_USAGE
        return gui_main()
    if args.cmd == "catalog" and args.action == "add":
        if len(args.text) != 1:
            parser.error("catalog add takes exactly one LOCATION")
        args.location = args.text[0]
    ctx = Context()
    try:
        try:
            code = args.func(ctx, args)
        except InputError as exc:
            print(f"error: {one_line(exc.line())}", file=sys.stderr)
            code = EXIT_USAGE
        except VettedError as exc:
            line = one_line(exc.line())
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
