"""The organisation's policy, enforced once for every front end.

The application object consults this gate before each decision the policy governs:
which catalogs may be used (and with which signers), whether a person may pin their
own, what may be downloaded (blocked digests, a publisher's own signature, safety gates
on the signed card), what may be loaded (the same, plus the catalog still being allowed,
local spot-check figures, a spot-check before first use), where the network may go, and
which settings are locked. Every refusal names the rule and the document it came from,
and every decision under a policy is audited. A policy that cannot be read or trusted
stops everything it governs (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import sqlite_utils

from vetted.catalog.schema import ModelEntry
from vetted.catalog.signed import LoadedCatalog
from vetted.errors import Refused
from vetted.net.limits import TransferLimits
from vetted.paths import normalise_location
from vetted.policy.effective import EffectivePolicy, PolicyRefused, Rule
from vetted.store import audit, installed
from vetted.trust.identity import TrustSpec, from_json, spec_key

# How an installed model's catalog location says it came from an air-gapped bundle.
BUNDLE_PREFIX = "bundle:"


@dataclass(frozen=True)
class CatalogUse:
    """A catalog the app may load now: where, whose signature it needs, and why."""

    location: str
    signers: list[TrustSpec]
    trusted_root: Path | None
    managed_by: str | None  # the policy document that put it here; None: the person pinned it


class PolicyGate:
    def __init__(self, policy: EffectivePolicy) -> None:
        self.policy = policy

    # -- audit --------------------------------------------------------------------------

    def _refused(self, db: sqlite_utils.Database, action: str, subject: str, rule: str, source: str,
                 checked: str, found: str, action_text: str = "") -> PolicyRefused:
        exc = self.policy.refuse(rule, source, checked, found, action_text)
        audit.record(db, f"policy.{action}", subject, "refused", exc.line(), None, {"rule": rule, "source": source})
        return exc

    def _accepted(self, db: sqlite_utils.Database, action: str, subject: str) -> None:
        if self.policy.managed:
            rules = self.policy.rules()
            audit.record(db, f"policy.{action}", subject, "accepted",
                         f"allowed by the {len(rules)} rule(s) in force ({', '.join(self.policy.documents)})",
                         None, {"documents": self.policy.documents})

    def usable(self, db: sqlite_utils.Database, action: str, subject: str) -> None:
        broken = self.policy.broken
        if broken is not None:
            audit.record(db, f"policy.{action}", subject, "refused", broken.line())
            raise broken

    # -- catalogs -----------------------------------------------------------------------

    def catalogs(self, user_pins: list[Any]) -> list[CatalogUse]:
        """The policy's catalogs (its signers win), then the person's own where allowed."""
        p = self.policy
        out = [CatalogUse(c.location, list(c.signers), c.trusted_root, c.source) for c in p.allowed or []
               if c.granted]
        if p.may_use_users_catalog():  # what a tightening document lists is used as the person's own
            out += [CatalogUse(c.location, list(c.signers), c.trusted_root, None) for c in p.allowed or []
                    if not c.granted]
            managed = {normalise_location(c.location) for c in out}
            for sub in user_pins:
                if normalise_location(sub.location) not in managed:
                    out.append(CatalogUse(sub.location, [sub.signer], sub.root_path, None))
        return out

    def check_pin(self, db: sqlite_utils.Database, location: str) -> None:
        p = self.policy
        self.usable(db, "pin", location)
        c = p.allowed_catalog(location)
        if c is not None:
            raise self._refused(db, "pin", location, "catalogs.allowed", c.source, f"catalog {location}",
                                "is managed by your organisation: its signers are set by the policy")
        if not p.may_use_users_catalog():
            assert p.users_may_add is not None
            raise self._refused(db, "pin", location, "catalogs.users_may_add", p.users_may_add.source,
                                f"catalog {location}", "your organisation does not allow adding catalogs")

    def check_fetch(self, db: sqlite_utils.Database, use: CatalogUse) -> None:
        """The network rule, for a catalog about to be fetched."""
        net = self.policy.network
        remote = use.location.startswith(("http://", "https://"))
        if net is None or not remote:
            return
        if net.value == "offline":
            raise self._refused(db, "network", use.location, "network.mode", net.source, f"catalog {use.location}",
                                "the organisation keeps this app offline; only catalogs on this machine load")
        if net.value == "catalog_sources" and use.managed_by is None:
            raise self._refused(db, "network", use.location, "network.mode", net.source, f"catalog {use.location}",
                                "only the organisation's own catalogs may be fetched over the network")

    def pull_network(self, cat: LoadedCatalog) -> tuple[str | None, str | None]:
        """(local_only reason, pinned Hub endpoint) for a pull from `cat`."""
        net, hf = self.policy.network, self.policy.hf_endpoint
        endpoint = str(hf.value) if hf is not None else None
        if net is None:
            return None, endpoint
        if net.value == "offline":
            return f"the organisation keeps this app offline (rule network.mode, from {net.source})", endpoint
        if net.value == "catalog_sources" and self.policy.allowed_catalog(cat.location) is None:
            return (f"only the organisation's catalogs may use the network (rule network.mode, from {net.source})",
                    endpoint)
        return None, endpoint

    # -- air-gapped bundles -------------------------------------------------------------

    def import_signers(self, db: sqlite_utils.Database, subject: str, given: TrustSpec | None,
                       pinned: list[TrustSpec]) -> list[TrustSpec]:
        """Whom a bundle's catalog may be signed by: the signer a person names (or, if none,
        the signers already pinned for catalogs in use), plus the organisation's catalog
        signers; only the latter when the policy limits imports to them. A policy that
        forbids imports refuses here."""
        self.usable(db, "import", subject)
        p = self.policy
        if p.imports_allowed is not None:
            r = p.imports_allowed
            raise self._refused(db, "import", subject, r.name, r.source, f"bundle {subject}",
                                "your organisation does not allow importing model bundles")
        org = p.catalog_signers()
        restrict = p.import_signers_rule()
        if restrict is not None:
            if not org:
                raise self._refused(db, "import", subject, restrict.name, restrict.source, f"bundle {subject}",
                                    "only bundles signed by the organisation's catalog signers may be imported, "
                                    "and the policy allows no catalog")
            return list(org)
        mine = [given] if given is not None else list(pinned)
        return mine + [s for s in org if spec_key(s) not in {spec_key(m) for m in mine}]

    def record_import(self, db: sqlite_utils.Database, subject: str) -> None:
        """An import the policy let through (its signer was one `import_signers` allowed)."""
        self._accepted(db, "import", subject)

    # -- models -------------------------------------------------------------------------

    def check_pull(self, db: sqlite_utils.Database, cat: LoadedCatalog, entry: ModelEntry) -> None:
        """Before any byte is downloaded."""
        self.usable(db, "pull", entry.id)
        p = self.policy
        for f in entry.files:
            if f.sha256 in p.blocked:
                raise self._refused(db, "pull", entry.id, "models.blocked_digests", p.blocked[f.sha256],
                                    f"model {entry.id}", f"its file {f.name} (sha256 {f.sha256}) is blocked")
        if p.require_publisher_signature is not None:
            model_key = spec_key(entry.signature.signer.spec(cat.trusted_root))
            if model_key == cat.signer_key:
                r = p.require_publisher_signature
                raise self._refused(db, "pull", entry.id, r.name, r.source, f"publisher signature of {entry.id}",
                                    "is made by the catalog's own signer, not by a separate publisher")
        self._safety(db, entry, cat.trusted_root, local=None, action="pull")
        self._accepted(db, "pull", entry.id)

    def gate_load(self, db: sqlite_utils.Database, model_id: str, purpose: str) -> None:
        """Before every load (chat, spot-check): the same rules, judged again now."""
        self.usable(db, "load", model_id)
        p = self.policy
        if not p.managed:
            return
        model = installed.get(db, model_id)
        for f in model.files:
            if f.sha256 in p.blocked:
                raise self._refused(db, "load", model_id, "models.blocked_digests", p.blocked[f.sha256],
                                    f"model {model_id}", f"its file {f.name} (sha256 {f.sha256}) is blocked")
        self._catalog_still_allowed(db, model)
        if p.require_publisher_signature is not None:
            try:
                model_key = spec_key(from_json(model.signer_spec))
            except Exception:
                model_key = None
            if model_key is None or model_key == model.catalog_signer_key:
                r = p.require_publisher_signature
                raise self._refused(db, "load", model_id, r.name, r.source, f"publisher signature of {model_id}",
                                    "is made by the catalog's own signer, not by a separate publisher")
        from vetted.cards import spotcheck

        entry = ModelEntry.model_validate(model.entry)
        local = spotcheck.latest(db, model.files[0].sha256)
        root = model.signer_spec.get("trusted_root") if model.signer_spec.get("kind") == "sigstore" else None
        self._safety(db, entry, Path(root) if root else None, local=local, action="load",
                     measuring=purpose == "spotcheck")
        harmful_measured = "harmbench_attack_success_rate" in (local or {}).get("metrics", {})
        if p.require_spotcheck is not None and purpose != "spotcheck" and not harmful_measured:
            r = p.require_spotcheck
            raise self._refused(db, "load", model_id, r.name, r.source, f"model {model_id}",
                                "has not been spot-checked on this machine yet: no complete run of the quick "
                                "suite or of HarmBench measured its answers to harmful requests",
                                "run the spot-check on it first (the quick one; it is allowed before first use)")
        self._accepted(db, "load", model_id)

    def _catalog_still_allowed(self, db: sqlite_utils.Database, model: installed.InstalledModel) -> None:
        p = self.policy
        loc = model.catalog_location
        if loc and loc.startswith(BUNDLE_PREFIX):
            self._import_still_allowed(db, model)
            return
        if p.allowed is None and p.may_use_users_catalog():
            return
        listed = p.allowed_catalog(loc) if loc else None
        if listed is not None and model.catalog_signer_key in listed.keys():
            return
        if loc and listed is None and p.may_use_users_catalog():
            return
        rule: Rule | None = None
        if p.allowed is not None:
            rule = Rule("catalogs.allowed", None, p.allowed[0].source if p.allowed else p.documents[0])
        elif p.users_may_add is not None:
            rule = p.users_may_add
        assert rule is not None
        why = ("was installed before Vetted recorded where catalogs come from; install it again from an "
               "allowed catalog" if not loc else f"comes from catalog {loc}, which the policy does not allow "
               "(or no longer allows with that signer)")
        raise self._refused(db, "load", model.model_id, rule.name, rule.source, f"model {model.model_id}", why)

    def _import_still_allowed(self, db: sqlite_utils.Database, model: installed.InstalledModel) -> None:
        """A model carried in by a bundle runs while its catalog's signer would still be
        accepted for an import: never once imports are forbidden; only an organisation
        catalog signer's when imports are limited to them."""
        p = self.policy
        found = f"was imported from a bundle ({(model.catalog_location or '').removeprefix(BUNDLE_PREFIX)})"
        if p.imports_allowed is not None:
            r = p.imports_allowed
            raise self._refused(db, "load", model.model_id, r.name, r.source, f"model {model.model_id}",
                                found + " and your organisation does not allow imported models")
        restrict = p.import_signers_rule()
        if restrict is None:
            return
        if model.catalog_signer_key in {spec_key(s) for s in p.catalog_signers()}:
            return
        raise self._refused(db, "load", model.model_id, restrict.name, restrict.source, f"model {model.model_id}",
                            found + " whose catalog is not signed by one of the organisation's catalog signers")

    def _safety(self, db: sqlite_utils.Database, entry: ModelEntry, root: Path | None,
                local: dict[str, Any] | None, action: str, measuring: bool = False) -> None:
        """A signed (declared) card when required; every threshold against what is known:
        the spot-check measured here wins over the card; before a download only the card
        can be judged, and an unmeasured metric is refused at load (fail closed), except
        for the spot-check that measures it."""
        p = self.policy
        if p.require_signed_card is None and not p.max:
            return
        from vetted.cards import labels
        from vetted.safety_metrics import ALIASES

        declared = [c for c in labels.claims_for(entry, root)["safety_card"] if c.label == "declared"]
        if p.require_signed_card is not None and not declared:
            r = p.require_signed_card
            raise self._refused(db, action, entry.id, r.name, r.source, f"safety card of {entry.id}",
                                "no signed (declared) safety card is published for this file")
        card_values: dict[str, float] = {}
        cited: dict[str, float] = {}  # published figures the card cites: they can block, never admit
        for c in declared:
            for res in (c.data or {}).get("results", []) if isinstance(c.data, dict) else []:
                try:
                    name = ALIASES.get(res["metric"], res["metric"])
                    into = cited if res.get("citation") else card_values
                    into[name] = max(into.get(name, 0.0), float(res["value"]))
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue
        for metric, rule in sorted(p.max.items()):
            here = (local or {}).get("metrics", {}).get(metric)
            if here is not None:
                value, how = float(here["value"]), f"measured by the spot-check on this machine ({here.get('suite')})"
            elif cited.get(metric, 0.0) > float(rule.value):  # a cited figure can break a threshold, never meet it
                value, how = cited[metric], "a published figure the signed safety card cites (unverified)"
            elif metric in card_values:
                value, how = card_values[metric], "declared by the signed safety card"
            else:
                if action == "pull" or measuring:
                    continue
                raise self._refused(db, action, entry.id, rule.name, rule.source, f"{metric} of {entry.id}",
                                    f"is not known (no spot-check here, no signed card states it); the policy "
                                    f"allows at most {rule.value:.0%}",
                                    "run the spot-check on it first")
            if value > float(rule.value):
                raise self._refused(db, action, entry.id, rule.name, rule.source, f"{metric} of {entry.id}",
                                    f"is {value:.0%} ({how}); the policy allows at most {rule.value:.0%}")

    # -- the local API server ------------------------------------------------------------

    def check_serve(self, db: sqlite_utils.Database, addresses: list[str]) -> None:
        """Before the local API server listens: the policy may forbid it, and any address
        but loopback needs the policy's `api.interfaces` to list it (a model server on a
        network is what was found exposed by the hundred thousand)."""
        import ipaddress

        subject = ", ".join(addresses)
        self.usable(db, "api", subject)
        p = self.policy
        if p.api_allowed is not None:
            r = p.api_allowed
            raise self._refused(db, "api", subject, r.name, r.source, "the local API server",
                                "your organisation does not allow it")
        allowed = set(p.api_interfaces.value) if p.api_interfaces is not None else set()
        for a in addresses:
            if ipaddress.ip_address(a).is_loopback:
                continue
            if a not in allowed:
                exc = Refused("the local API server's address", f"{a} is not loopback, and no rule of your "
                              "organisation's policy (api.interfaces) lists it",
                              "serve on loopback (127.0.0.1, ::1); only an administrator can open other interfaces")
                if p.api_interfaces is not None:
                    exc = self.policy.refuse("api.interfaces", p.api_interfaces.source, "the local API server's "
                                             "address", f"{a} is not one of the addresses the policy lists")
                audit.record(db, "policy.api", subject, "refused", exc.line(), None,
                             {"rule": "api.interfaces"})
                raise exc
        self._accepted(db, "api", subject)

    def api_cors_origins(self, mine: list[str]) -> list[str]:
        """The web origins that may get CORS headers: the organisation's list when it sets
        one (it replaces the person's), else the person's own."""
        rule = self.policy.api_cors_origins
        return list(rule.value) if rule is not None else [o.lower() for o in mine]

    # -- settings -----------------------------------------------------------------------

    def lock_transfers(self, limits: TransferLimits) -> TransferLimits:
        from dataclasses import replace

        changes: dict[str, Any] = {k.split(".", 1)[1]: r.value for k, r in self.policy.settings.items()
                                   if k.startswith("transfers.")}
        return replace(limits, **changes) if changes else limits

    def check_override(self, db: sqlite_utils.Database, name: str, value: float | int) -> None:
        rule = self.policy.settings.get(f"transfers.{name}")
        if rule is not None and value != rule.value:
            raise self._refused(db, "setting", f"transfers.{name}", rule.name, rule.source,
                                f"setting transfers.{name}", f"is locked to {rule.value} by your organisation, "
                                f"not {value}")

    # -- for front ends: what they should not offer ----------------------------------------

    def pull_blockers(self, entry: ModelEntry, cat: LoadedCatalog) -> list[str]:
        """Why the policy would refuse downloading `entry` from `cat` now, each reason naming
        its rule and source; empty when nothing in the policy stands in the way.

        The very rules `check_pull` applies (a broken policy, blocked digests, a publisher's
        own signature, the safety gates on the signed card), judged without writing the
        audit log: a front end asks this for every row it lists, to disable its Download
        button and say why, rather than offer an action that can only be refused. The
        download itself is still decided, and audited, by `check_pull`. Problems that are
        not the policy's (an unreadable signer) are left for the download to report."""
        if self.policy.broken is not None:
            return [self.policy.broken.line()]
        if not self.policy.managed:
            return []
        try:
            _Unaudited(self.policy).check_pull(cast(sqlite_utils.Database, None), cat, entry)
        except PolicyRefused as exc:
            return [exc.line()]
        return []


class _Unaudited(PolicyGate):
    """The same rules, deciding without touching the database (for what a front end shows)."""

    def _refused(self, db: sqlite_utils.Database, action: str, subject: str, rule: str, source: str,
                 checked: str, found: str, action_text: str = "") -> PolicyRefused:
        return self.policy.refuse(rule, source, checked, found, action_text)

    def _accepted(self, db: sqlite_utils.Database, action: str, subject: str) -> None:
        return None

    def usable(self, db: sqlite_utils.Database, action: str, subject: str) -> None:
        if self.policy.broken is not None:
            raise self.policy.broken
