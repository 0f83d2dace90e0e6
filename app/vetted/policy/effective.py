"""The policy in force: the machine's document, tightened (never loosened) by the extra one,
with every rule remembering where it came from so each refusal can name it.

Merging is tighten-only: allowed catalogs and their signers intersect, blocked digests
and requirements add up, thresholds take the lower value, the network takes the stricter
mode, and a setting the machine locks stays at the machine's value. A document that
cannot be trusted or parsed does not make the app unmanaged: `load()` returns a policy
that is `broken`, and every decision that would download, import or run refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vetted.errors import Refused
from vetted.paths import normalise_location
from vetted.policy import sources
from vetted.policy.schema import METRICS, Policy, PolicyInvalid, parse
from vetted.trust.identity import TrustSpec, spec_key

_STRICTNESS = {"offline": 0, "catalog_sources": 1, "any": 2}


class PolicyRefused(Refused):
    """A rule of the organisation's policy said no (the message names the rule and its source)."""


@dataclass(frozen=True)
class Rule:
    name: str
    value: Any
    source: str


@dataclass(frozen=True)
class AllowedCatalog:
    location: str
    signers: tuple[TrustSpec, ...]
    trusted_root: Path | None
    source: str
    # The organisation provides it (the first document in force listed it). A catalog only
    # a later, tightening document lists restricts but grants nothing: it is used only as
    # a person's own catalog would be (if users may add catalogs, under the network rule).
    granted: bool = True

    def keys(self) -> set[str]:
        return {spec_key(s) for s in self.signers}


@dataclass
class EffectivePolicy:
    """What is in force. `managed` is False when no document exists anywhere."""

    managed: bool = False
    broken: sources.PolicyError | None = None
    documents: list[str] = field(default_factory=list)
    allowed: list[AllowedCatalog] | None = None
    users_may_add: Rule | None = None
    blocked: dict[str, str] = field(default_factory=dict)  # digest -> source
    require_publisher_signature: Rule | None = None
    require_signed_card: Rule | None = None
    require_spotcheck: Rule | None = None
    max: dict[str, Rule] = field(default_factory=dict)
    network: Rule | None = None
    hf_endpoint: Rule | None = None
    settings: dict[str, Rule] = field(default_factory=dict)
    audit_copies: list[Rule] = field(default_factory=list)
    imports_allowed: Rule | None = None  # set when a document forbids imports
    imports_only_catalog_signers: Rule | None = None
    # the local API server (`vetted serve`): forbidden; the non-loopback addresses it may
    # also listen on (granted by the first document, narrowed by later ones); the web
    # origins that may get CORS headers (narrowed by later documents)
    api_allowed: Rule | None = None  # set when a document forbids the server
    api_interfaces: Rule | None = None
    api_cors_origins: Rule | None = None

    # -- the rules, listed (for `vetted policy` and the Policy page)
    def rules(self) -> list[Rule]:
        out: list[Rule] = []
        if self.allowed is not None:
            for c in self.allowed:
                out.append(Rule("catalogs.allowed", {"location": c.location,
                                                     "signers": [s.describe() for s in c.signers],
                                                     "trusted_root": str(c.trusted_root) if c.trusted_root else None},
                                c.source))
        for r in (self.users_may_add, self.require_publisher_signature, self.require_signed_card,
                  self.require_spotcheck, self.network, self.hf_endpoint, self.imports_allowed,
                  self.imports_only_catalog_signers, self.api_allowed, self.api_interfaces,
                  self.api_cors_origins):
            if r is not None:
                out.append(r)
        out += [Rule("models.blocked_digests", d, s) for d, s in sorted(self.blocked.items())]
        out += [Rule(f"safety.max.{k}", r.value, r.source) for k, r in sorted(self.max.items())]
        out += [Rule(f"settings.{k}", r.value, r.source) for k, r in sorted(self.settings.items())]
        out += self.audit_copies
        return out

    def require_usable(self) -> None:
        """Fail closed: a broken policy stops everything that downloads, imports or runs."""
        if self.broken is not None:
            raise self.broken

    # -- decisions, each naming its rule and source
    def refuse(self, rule: str, source: str, checked: str, found: str, action: str = "") -> PolicyRefused:
        return PolicyRefused(checked, f"{found} (rule {rule}, from {source})",
                             action or "this is your organisation's policy; ask its administrator")

    def allowed_catalog(self, location: str) -> AllowedCatalog | None:
        """The organisation's own catalog at `location` (granted by the policy), if any."""
        norm = normalise_location(location)
        for c in self.allowed or []:
            if c.granted and normalise_location(c.location) == norm:
                return c
        return None

    def may_use_users_catalog(self) -> bool:
        return self.users_may_add is None or bool(self.users_may_add.value)

    def catalog_signers(self) -> list[TrustSpec]:
        """Every signer of every allowed catalog (an air-gapped bundle of the organisation's
        catalog is signed by one of them)."""
        return [s for c in self.allowed or [] if c.granted for s in c.signers]

    def import_signers_rule(self) -> Rule | None:
        """The rule that limits imports to the allowed catalogs' signers, if any does: the
        explicit one, or `catalogs.users_may_add` false (a bundle is a catalog, and a person
        may not bring their own)."""
        if self.imports_only_catalog_signers is not None:
            return self.imports_only_catalog_signers
        if not self.may_use_users_catalog():
            return self.users_may_add
        return None


def load() -> EffectivePolicy:
    """Reads the machine's policy and the extra one; never raises: a broken policy is a
    policy that refuses (fail closed), reported by `require_usable()`."""
    eff = EffectivePolicy()
    try:
        docs = [s for s in (sources.machine_source(), sources.extra_source()) if s is not None and s.text is not None]
        parsed: list[tuple[Policy, str]] = []
        for s in docs:
            try:
                parsed.append((parse(s.text or b""), s.where))
            except PolicyInvalid as exc:
                raise sources.PolicyError(f"organisation policy {s.where}", f"is not a valid vetted.policy/1: {exc}",
                                          "models cannot be downloaded, imported or run until an administrator "
                                          "fixes it (`vetted-admin policy check FILE` names the problem)") from None
        for policy, where in parsed:
            _tighten(eff, policy, where)
    except sources.PolicyError as exc:
        eff.managed, eff.broken = True, exc
    return eff


def _tighten(eff: EffectivePolicy, p: Policy, where: str) -> None:
    first = not eff.documents  # the machine's document (or, with none, the only one in force)
    eff.managed = True
    eff.documents.append(where)
    if p.catalogs.allowed is not None:
        mine = [AllowedCatalog(c.location, tuple(s.spec(Path(c.trusted_root) if c.trusted_root else None)
                                                 for s in c.signers),
                               Path(c.trusted_root) if c.trusted_root else None, where, granted=first)
                for c in p.catalogs.allowed]
        if eff.allowed is None:
            eff.allowed = mine
        else:  # both restrict: a catalog must be allowed by both, with signers both accept
            kept = []
            for c in eff.allowed:
                other = next((m for m in mine if _same_location(m.location, c.location)), None)
                if other is None:
                    continue
                signers = tuple(s for s in c.signers if spec_key(s) in other.keys())
                if signers:
                    kept.append(AllowedCatalog(c.location, signers, c.trusted_root, f"{c.source} and {where}",
                                               c.granted))
            eff.allowed = kept
    if not p.catalogs.users_may_add:
        eff.users_may_add = Rule("catalogs.users_may_add", False, where)
    elif eff.users_may_add is None and "catalogs" in p.model_fields_set:
        eff.users_may_add = Rule("catalogs.users_may_add", True, where)
    for d in p.models.blocked_digests:
        eff.blocked.setdefault(d, where)
    if p.models.require_publisher_signature and eff.require_publisher_signature is None:
        eff.require_publisher_signature = Rule("models.require_publisher_signature", True, where)
    if p.safety.require_signed_card and eff.require_signed_card is None:
        eff.require_signed_card = Rule("safety.require_signed_card", True, where)
    if p.safety.require_spotcheck and eff.require_spotcheck is None:
        eff.require_spotcheck = Rule("safety.require_spotcheck", True, where)
    for metric, value in p.safety.max.items():
        if metric not in eff.max or value < eff.max[metric].value:
            eff.max[metric] = Rule(f"safety.max.{metric}", value, where)
    if p.network.mode != "any" and (eff.network is None or
                                    _STRICTNESS[p.network.mode] < _STRICTNESS[eff.network.value]):
        eff.network = Rule("network.mode", p.network.mode, where)
    if p.network.hf_endpoint and eff.hf_endpoint is None:
        eff.hf_endpoint = Rule("network.hf_endpoint", p.network.hf_endpoint, where)
    for key, value in p.settings.items():
        eff.settings.setdefault(key, Rule(key, value, where))  # the first (the machine's) lock stands
    if p.audit.copy_to:
        eff.audit_copies.append(Rule("audit.copy_to", p.audit.copy_to, where))
    if not p.imports.allowed and eff.imports_allowed is None:
        eff.imports_allowed = Rule("imports.allowed", False, where)
    if p.imports.only_catalog_signers and eff.imports_only_catalog_signers is None:
        eff.imports_only_catalog_signers = Rule("imports.only_catalog_signers", True, where)
    _tighten_api(eff, p, where, first)


def _tighten_api(eff: EffectivePolicy, p: Policy, where: str, first: bool) -> None:
    """Forbidding wins; interfaces are granted only by the first document (the machine's)
    and narrowed by later ones; origins intersect."""
    if not p.api.allowed and eff.api_allowed is None:
        eff.api_allowed = Rule("api.allowed", False, where)
    if p.api.interfaces is not None:
        import ipaddress

        mine = [str(ipaddress.ip_address(a)) for a in p.api.interfaces]  # one spelling per address
        if eff.api_interfaces is None:
            eff.api_interfaces = Rule("api.interfaces", mine if first else [], where)
        else:
            kept = [a for a in eff.api_interfaces.value if a in mine]
            eff.api_interfaces = Rule("api.interfaces", kept, f"{eff.api_interfaces.source} and {where}")
    if p.api.cors_origins is not None:
        mine = [o.lower() for o in p.api.cors_origins]
        if eff.api_cors_origins is None:
            eff.api_cors_origins = Rule("api.cors_origins", mine, where)
        else:
            kept = [o for o in eff.api_cors_origins.value if o in mine]
            eff.api_cors_origins = Rule("api.cors_origins", kept, f"{eff.api_cors_origins.source} and {where}")


def _same_location(a: str, b: str) -> bool:
    return normalise_location(a) == normalise_location(b)


__all__ = ["METRICS", "EffectivePolicy", "PolicyRefused", "Rule", "load"]
