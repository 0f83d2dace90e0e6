"""Certificate-chain signers: who the signing certificate is, and whether it may sign.

`model_signing` 1.1.1 checks an OMS certificate chain at the leaf's own notBefore, accepts
any leaf whose KeyUsage allows digital signatures (so a TLS server certificate signs
models) and never looks at who the leaf is. An organisation's PKI issues many kinds of
certificates under one CA, so Vetted adds three checks of its own here:

- the whole chain is validated by `cryptography`'s X.509 verifier (a maintained path
  builder, not ours) *as of a given time*: the time the signature was first verified,
  which is now for a new verification. A model installed while its certificate was valid
  keeps running after the certificate expires; a fresh verification after expiry is
  refused;
- the signing certificate must carry the code-signing extended key usage;
- the pinned identity is compared *by type*: an e-mail identity only with the leaf's
  e-mail (RFC 822) SANs, a URI only with URI SANs, a DNS name only with DNS SANs, and a
  subject DN only with a certificate that has no SANs at all. Flattening SAN types let a
  DNS SAN that literally reads `alice@example.com` pass for the person alice@example.com.

Every refusal says what was checked, what was found and what the user can do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from vetted.errors import InputError, Refused

if TYPE_CHECKING:
    from cryptography.x509.verification import Policy

Kind = Literal["email", "uri", "dns", "dn"]

_PREFIXES: dict[str, Kind] = {"email": "email", "uri": "uri", "dns": "dns", "dn": "dn"}
_KIND_NAMES: dict[Kind, str] = {"email": "e-mail", "uri": "URI", "dns": "DNS", "dn": "subject DN"}
_SAN_TYPES: dict[Kind, type] = {
    "email": x509.RFC822Name, "uri": x509.UniformResourceIdentifier, "dns": x509.DNSName,
}
# "CN=…", "emailAddress=…", "2.5.4.3=…": a DN even when a value holds an "@"
_DN_START = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)\s*=")

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: ("serverAuth", "a TLS server certificate"),
    ExtendedKeyUsageOID.CLIENT_AUTH: ("clientAuth", "a TLS client certificate"),
    ExtendedKeyUsageOID.EMAIL_PROTECTION: ("emailProtection", "an S/MIME e-mail certificate"),
    ExtendedKeyUsageOID.TIME_STAMPING: ("timeStamping", "a time-stamping certificate"),
    ExtendedKeyUsageOID.OCSP_SIGNING: ("OCSPSigning", "an OCSP responder certificate"),
    ExtendedKeyUsageOID.CODE_SIGNING: ("codeSigning", "a code-signing certificate"),
}


@dataclass(frozen=True)
class CertIdentity:
    """A pinned leaf identity with its type, so it is only compared with names of that type.

    Written as `email:…`, `uri:…`, `dns:…` or `dn:…`, or without a prefix, when the type is
    inferred: contains "://" → URI; starts like a DN attribute ("CN=…", "O=…") → DN;
    contains "@" → e-mail; contains "=" → DN; anything else → DNS name. An identity that
    is inferred wrongly fails closed (it matches nothing), and the refusal says how to
    write it explicitly.
    """

    kind: Kind
    value: str

    @classmethod
    def parse(cls, text: str) -> "CertIdentity":
        raw = (text or "").strip()
        if not raw:
            raise InputError("certificate identity", "empty",
                             "give the signing certificate's e-mail, URI, DNS name or subject DN")
        head, sep, rest = raw.partition(":")
        kind: Kind
        if sep and head.lower() in _PREFIXES and not rest.startswith("//"):
            kind, value = _PREFIXES[head.lower()], rest.strip()
        else:
            kind, value = _infer(raw), raw
        if not value:
            raise InputError("certificate identity", f"{raw!r} names no {_KIND_NAMES[kind]} value")
        if kind == "email" and (value.count("@") != 1 or value.startswith("@") or value.endswith("@")):
            raise InputError("certificate identity", f"{value!r} is not an e-mail address",
                             "write email:NAME@DOMAIN, or use uri:, dns: or dn: for another type")
        if kind == "dn":
            value = canonical_dn(value)
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    def describe(self) -> str:
        """E.g. "e-mail identity alice@example.com", "subject DN CN=intermediate-ca"."""
        if self.kind == "dn":
            return f"subject DN {self.value}"
        return f"{_KIND_NAMES[self.kind]} identity {self.value}"


def _infer(raw: str) -> Kind:
    if "://" in raw:
        return "uri"
    if _DN_START.match(raw):
        return "dn"
    if "@" in raw:
        return "email"
    if "=" in raw:
        return "dn"
    return "dns"


def canonical_dn(text: str) -> str:
    """An RFC 4514 DN as `cryptography` writes a certificate's subject (for exact comparison)."""
    try:
        return x509.Name.from_rfc4514_string(text.strip()).rfc4514_string()
    except ValueError:
        raise InputError("certificate identity", f"{text!r} is not an RFC 4514 distinguished name",
                         "write it as the certificate prints it, e.g. CN=signer,O=Example Org"
                         " (no space after the commas)") from None


def sans(cert: x509.Certificate) -> dict[Kind, list[str]] | None:
    """The leaf's SAN values by type; None when it has no SubjectAlternativeName at all."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return {kind: [str(v) for v in ext.get_values_for_type(t)] for kind, t in _SAN_TYPES.items()}


def _same(kind: Kind, expected: str, found: str) -> bool:
    """URIs compare exactly; DNS names case-insensitively; e-mail domains case-insensitively."""
    if kind == "dns":
        return expected.lower() == found.lower()
    if kind == "email":
        el, _, ed = expected.rpartition("@")
        fl, _, fd = found.rpartition("@")
        return el == fl and ed.lower() == fd.lower()
    return expected == found


def subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def match_identity(leaf: x509.Certificate, ident: CertIdentity) -> str:
    """Refuses unless the leaf carries `ident` as a name of the same type; returns it."""
    found = sans(leaf)
    checked = f"signing certificate identity (certificate {subject(leaf)})"
    action = "someone else under the same CA signed it; do not trust it"
    if ident.kind == "dn":
        if found is not None:
            listed = _fmt({k: v for k, v in found.items() if v}) or "of other types only"
            raise Refused(checked,
                          f"expected {ident.describe()}, but the certificate has SANs ({listed}): a subject"
                          " DN is only compared for certificates without SANs",
                          "pin one of its SANs instead, if that is who you trust")
        if subject(leaf) != ident.value:
            raise Refused(checked, f"expected {ident.describe()}, the certificate's subject is"
                          f" {subject(leaf)} (no SANs)", action)
        return ident.value
    same_type = (found or {}).get(ident.kind, [])
    if any(_same(ident.kind, ident.value, v) for v in same_type):
        return ident.value
    name = _KIND_NAMES[ident.kind]
    if found is None:
        raise Refused(checked, f"expected {ident.describe()}, the certificate has no SANs (subject"
                      f" {subject(leaf)})", f"{action}; if that subject is who you trust, pin it with dn:")
    detail = f"the certificate's {name} SANs are {same_type}"
    others = {k: v for k, v in found.items() if k != ident.kind and v}
    if others:
        article = "an" if ident.kind == "email" else "a"
        detail += f" (its {_fmt(others)} are not compared with {article} {name} identity)"
        action += "; if the identity's type was guessed wrong, write it as email:, uri:, dns: or dn:"
    raise Refused(checked, f"expected {ident.describe()}, {detail}", action)


def _fmt(by_kind: dict[Kind, list[str]]) -> str:
    return ", ".join(f"{_KIND_NAMES[k]} SANs {v}" for k, v in by_kind.items())


def _when(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _window(cert: x509.Certificate) -> str:
    return f"valid {_when(cert.not_valid_before_utc)} – {_when(cert.not_valid_after_utc)}"


def verification_time(at: datetime | None) -> datetime:
    """`at` (the first verification) or now; naive times are UTC. A first verification in
    the future is not believable (a wrong clock, an edited database), so it is capped at now."""
    now = _now()
    if at is None:
        return now
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return min(at, now)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def check_validity(cert: x509.Certificate, at: datetime, role: str = "signing certificate") -> None:
    checked = f"{role} {subject(cert)}"
    as_of = f"checked as of {_when(at)}"
    if at > cert.not_valid_after_utc:
        raise Refused(checked, f"expired on {_when(cert.not_valid_after_utc)} ({_window(cert)}; {as_of})",
                      "ask the publisher to sign again with a current certificate; a model installed while"
                      " it was valid keeps running")
    if at < cert.not_valid_before_utc:
        raise Refused(checked, f"not valid until {_when(cert.not_valid_before_utc)} ({_window(cert)}; {as_of})",
                      "check this computer's clock; otherwise the certificate was issued for a later date")


def check_code_signing(cert: x509.Certificate) -> None:
    """Only a certificate issued for code signing may sign models (not a TLS certificate)."""
    checked = f"signing certificate {subject(cert)}"
    action = "only a code-signing certificate may sign models; ask the publisher to sign with one"
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise Refused(checked, "has no extended key usage at all (code signing is required)", action) from None
    if ExtendedKeyUsageOID.CODE_SIGNING in eku:
        return
    names = [_EKU_NAMES.get(o, (o.dotted_string, ""))[0] for o in eku]
    kinds = [_EKU_NAMES[o][1] for o in eku if o in _EKU_NAMES]
    what = f"it is {kinds[0]}: {', '.join(names)}" if kinds else f"its extended key usages: {', '.join(names)}"
    raise Refused(checked, f"has no code-signing EKU ({what})", action)


def _ca_constraints(_policy: Policy, cert: x509.Certificate, bc: x509.BasicConstraints | None) -> None:
    if bc is None or not bc.ca:
        raise ValueError(f"{subject(cert)} issues certificates but is not a CA (BasicConstraints CA:FALSE)")


def _ca_key_usage(_policy: Policy, cert: x509.Certificate, ku: x509.KeyUsage | None) -> None:
    if ku is not None and not ku.key_cert_sign:
        raise ValueError(f"{subject(cert)} issues certificates but its KeyUsage lacks keyCertSign")


def _ee_code_signing(_policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    if eku is None or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise ValueError(f"{subject(cert)} has no code-signing EKU")


def check_chain(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                anchors: list[x509.Certificate], at: datetime) -> None:
    """Validates leaf → intermediates → one of `anchors` at `at`, with `cryptography`.

    Anchors are every certificate the user pinned (model_signing's semantics: pinning an
    intermediate trusts what it issues). Every certificate on the path must be valid at
    `at`; issuers must be CAs; the leaf must carry the code-signing EKU.
    """
    from cryptography.x509.verification import (
        Criticality,
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    ca_policy = (ExtensionPolicy.permit_all()
                 .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _ca_constraints)
                 .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage))
    ee_policy = ExtensionPolicy.permit_all().require_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ee_code_signing)
    pinned = ", ".join(subject(a) for a in anchors)
    checked = f"certificate chain of {subject(leaf)} to the pinned CA(s) {pinned}"
    try:
        verifier = (PolicyBuilder().store(Store(anchors)).time(at)
                    .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy).build_client_verifier())
        verifier.verify(leaf, intermediates)
    except (VerificationError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        unique = {c.fingerprint(hashes.SHA256()): c for c in intermediates + anchors}
        outside = [c for c in unique.values() if not c.not_valid_before_utc <= at <= c.not_valid_after_utc]
        if outside:
            detail += "; outside their validity then: " + "; ".join(
                f"{subject(c)} ({_window(c)})" for c in outside)
        raise Refused(checked, f"{detail} (checked as of {_when(at)})",
                      "the signing certificate does not chain to the pinned CA(s) at that time;"
                      " pin the organisation's current CA, or do not trust the model") from None
