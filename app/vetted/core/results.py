"""What the application object hands its front ends: typed results, no presentation."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vetted.catalog.schema import ModelEntry
from vetted.catalog.signed import LoadedCatalog

if TYPE_CHECKING:
    from vetted.cards.labels import Claim
    from vetted.cards.summary import SafetySummary


@dataclass
class CatalogState:
    """One pinned catalog as loaded now: verified, or refused with the reason."""

    location: str
    loaded: LoadedCatalog | None
    error: str | None

    @property
    def label(self) -> str:
        if self.loaded:
            c = self.loaded.catalog
            return f"{c.name} v{c.version}" + (" (expired)" if self.loaded.expired else "")
        return self.location


@dataclass
class ModelRow:
    """A catalog entry with what this machine knows about it: installed state, memory fit,
    what the organisation's policy says of downloading it, and its claims labelled by the
    one labelling function (cards.labels)."""

    entry: ModelEntry
    catalog: LoadedCatalog
    installed_state: str | None  # None, "verified", "refused"
    memory_bytes: int
    fit: str  # "ok" / "tight" / "too_big"
    # why the organisation's policy would refuse downloading it, each naming its rule and
    # source (`PolicyGate.pull_blockers`); empty when nothing stands in the way
    policy_blockers: list[str] = field(default_factory=list)
    # the newest complete local spot-check of the catalog's file (`spotcheck.latest`), and
    # why an installed file was refused (the store's reason), for the row's summary and badge
    spotcheck: dict[str, Any] | None = None
    installed_reason: str | None = None

    @property
    def signer(self) -> str:
        try:
            return self.entry.signature.signer.spec(self.catalog.trusted_root).describe()
        except Exception:
            return "unknown signer"

    @property
    def trust_badge(self) -> str:
        if self.installed_state == "verified":
            return f"Verified: {self.signer}"
        if self.installed_state == "refused":
            return "Refused: file changed"
        return f"Signed by {self.signer}"

    @cached_property
    def claims(self) -> "dict[str, list[Claim]]":
        from vetted.cards import labels

        return labels.claims_for(self.entry, self.catalog.trusted_root)

    @property
    def safety_summary(self) -> str:
        from vetted.cards import labels

        return labels.safety_summary(self.claims["safety_card"])

    @cached_property
    def safety(self) -> "SafetySummary":
        """The plain-language summary the model page shows too (cards.summary), from the
        labelled card and the local spot-check."""
        from vetted.cards.summary import summarise

        return summarise([c.as_dict() for c in self.claims["safety_card"]], self.spotcheck)

    def search_text(self) -> str:
        e = self.entry
        return " ".join([e.id, e.name, e.publisher, e.description, e.license, e.family, e.quantization]).lower()


@dataclass(frozen=True)
class ChatCapability:
    """Whether a model can hold a chat: it needs a chat template (the catalog's curated one
    or the file's own). A base model completes text; it does not chat. `reason` says why
    not, in words a person reads next to the model's name ("" when it can chat)."""

    can_chat: bool
    reason: str = ""


@dataclass(frozen=True)
class PinResult:
    location: str
    signer: str
    replaced: str | None = None  # the signer it was pinned to before, when it was re-pinned


@dataclass(frozen=True)
class Removed:
    model_id: str
    deleted: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class SetupState:
    """What a first run needs to know: is there anything to show yet, and what may the
    person set up themselves (each refusal worded with its rule and source)."""

    needs_setup: bool  # no catalog in use and no model installed
    managed_catalogs: list[str]  # locations the organisation's policy provides
    add_catalog_blocked: str | None  # why a person may not add a catalog, if they may not
    import_blocked: str | None  # why a person may not import a bundle, if they may not
