"""The TRUST options (exactly one mode) shared by `vetted verify` and `vetted catalog add`.

DESIGN.md invariant 2: every signature is checked against an identity someone chose;
there is no "any valid signature" mode, so exactly one mode must be given, completely.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vetted.errors import InputError
from vetted.trust.identity import TrustSpec


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


def trust_from_args(args: argparse.Namespace, prefix: str = "") -> TrustSpec:
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
