"""User settings: which catalogs to use and whose signature each must carry.

Kept as a small JSON file in the config dir; an organisation's locked policy (machine
config dir) will take precedence over it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vetted.errors import Fix, InputError, Refused, Remedy
from vetted.net.limits import MAX_CONNECTIONS, TransferLimits
from vetted.paths import Locations, normalise_location
from vetted.trust.identity import TrustSpec, from_json, to_json


class SignerConflict(Refused):
    """A location is already pinned to a different signer."""


@dataclass
class CatalogSubscription:
    location: str
    signer: TrustSpec
    trusted_root: str | None = None

    @property
    def root_path(self) -> Path | None:
        return Path(self.trusted_root) if self.trusted_root else None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location": self.location, "signer": to_json(self.signer)}
        if self.trusted_root:
            out["trusted_root"] = self.trusted_root
        return out


@dataclass
class Settings:
    catalogs: list[CatalogSubscription] = field(default_factory=list)
    # every transfer's limits (catalogs included): {"stall_timeout": s, "window": s, "min_rate": bytes/s,
    # "connections": ranged parts of one large file in flight at once}
    transfers: TransferLimits = field(default_factory=TransferLimits)

    @staticmethod
    def path(loc: Locations) -> Path:
        return loc.config / "settings.json"

    @classmethod
    def load(cls, loc: Locations) -> "Settings":
        p = cls.path(loc)
        if not p.exists():
            return cls()
        try:
            data = json.loads(p.read_text("utf-8"))
            subs = []
            for c in data.get("catalogs", []):
                root = Path(c["trusted_root"]) if c.get("trusted_root") else None
                subs.append(CatalogSubscription(c["location"], from_json(c["signer"], root), c.get("trusted_root")))
            transfers = _limits(data.get("transfers") or {})
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"settings {p}", f"unreadable ({exc})", "fix or delete the file") from None
        except InputError as exc:  # e.g. a certificate signer pinned without the leaf's identity
            raise InputError(f"settings {p}", exc.line(),
                             "pin that catalog's signer again (a --cert-chain needs --cert-identity)") from None
        return cls(subs, transfers)

    def save(self, loc: Locations) -> None:
        p = self.path(loc)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        doc: dict[str, Any] = {"catalogs": [c.as_json() for c in self.catalogs]}
        if self.transfers != TransferLimits():
            doc["transfers"] = asdict(self.transfers)
        tmp.write_text(json.dumps(doc, indent=2), "utf-8")
        os.replace(tmp, p)

    def subscribe(self, sub: CatalogSubscription, replace_signer: bool = False) -> CatalogSubscription | None:
        """Pins a catalog location to a signer; returns the subscription it replaced, if any.

        Re-pinning a location to *another* signer is refused unless `replace_signer` says the
        person confirmed it: a silent replacement would let whoever can run one command
        redirect trust for every later update of that catalog.
        """
        from vetted.trust.identity import spec_key

        norm = _norm(sub.location)
        old = next((c for c in self.catalogs if _norm(c.location) == norm), None)
        if old is not None and spec_key(old.signer) != spec_key(sub.signer) and not replace_signer:
            raise SignerConflict(
                f"catalog {sub.location}", f"is pinned to {old.signer.describe()}, not {sub.signer.describe()}",
                "re-pinning a catalog to another signer must be confirmed explicitly",
                Remedy(Fix.REPLACE_SIGNER, sub.location))
        self.catalogs = [c for c in self.catalogs if _norm(c.location) != norm] + [sub]
        return old

    def unsubscribe(self, location: str) -> CatalogSubscription | None:
        """Forgets the signer pinned for a location; returns that pin (None: there was none)."""
        norm = _norm(location)
        old = next((c for c in self.catalogs if _norm(c.location) == norm), None)
        self.catalogs = [c for c in self.catalogs if _norm(c.location) != norm]
        return old

    def find(self, location: str | None) -> CatalogSubscription:
        if location is None:
            if not self.catalogs:
                raise InputError("catalog", "none configured",
                                 "add a catalog and pin the signer it must carry", Remedy(Fix.PIN_SIGNER))
            return self.catalogs[0]
        norm = _norm(location)
        for c in self.catalogs:
            if _norm(c.location) == norm:
                return c
        raise InputError(f"catalog {location}", "no signer is pinned for it",
                         "pin the signer it must carry first", Remedy(Fix.PIN_SIGNER, location))


_norm = normalise_location


def _limits(data: dict[str, Any]) -> TransferLimits:
    """Transfer limits from settings; each must be a positive number (a zero window would
    abandon every download, a zero rate would disable slow-retrieval protection)."""
    unknown = set(data) - {"stall_timeout", "window", "min_rate", "connections"}
    if unknown:
        raise ValueError(f"transfers: unknown field(s) {', '.join(sorted(unknown))}")
    base = TransferLimits()
    values: dict[str, Any] = {}
    for name in ("stall_timeout", "window", "min_rate"):
        v = data.get(name, getattr(base, name))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"transfers.{name} must be a positive number, not {v!r}")
        values[name] = int(v) if name == "min_rate" else float(v)
    n = data.get("connections", base.connections)  # ranged parts of one file in flight at once
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONNECTIONS:
        raise ValueError(f"transfers.connections must be a whole number from 1 to {MAX_CONNECTIONS}, not {n!r}")
    values["connections"] = n
    return TransferLimits(**values)
