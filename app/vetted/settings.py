"""User settings: which catalogs to use and whose signature each must carry.

Kept as a small JSON file in the config dir; an organisation's locked policy (machine
config dir) will take precedence over it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vetted.errors import InputError
from vetted.paths import Locations
from vetted.trust.identity import TrustSpec, from_json, to_json


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
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"settings {p}", f"unreadable ({exc})", "fix or delete the file") from None
        return cls(subs)

    def save(self, loc: Locations) -> None:
        p = self.path(loc)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps({"catalogs": [c.as_json() for c in self.catalogs]}, indent=2), "utf-8")
        os.replace(tmp, p)

    def subscribe(self, sub: CatalogSubscription) -> None:
        self.catalogs = [c for c in self.catalogs if c.location != sub.location] + [sub]

    def find(self, location: str | None) -> CatalogSubscription:
        if location is None:
            if not self.catalogs:
                raise InputError(
                    "catalog", "none configured",
                    "add one with `vetted catalog add LOCATION --key PEM` (or --identity/--issuer, --cert-chain)",
                )
            return self.catalogs[0]
        norm = _norm(location)
        for c in self.catalogs:
            if _norm(c.location) == norm:
                return c
        raise InputError(
            f"catalog {location}", "no signer is pinned for it",
            "pin its signer first: `vetted catalog add LOCATION --key PEM` (or --identity/--issuer, --cert-chain)",
        )


def _norm(location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    return str(Path(location.removeprefix("file://")).expanduser().resolve())


def normalise_location(location: str) -> str:
    return _norm(location)
