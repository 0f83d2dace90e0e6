"""Trust, safety and memory fit at a glance: one badge each, icon + colour + words.

Colour alone never carries the meaning (the words do, and the icon differs per state),
so the badges read the same for a colour-blind person and in a screen reader. Who signed
is said in words a person knows ("alice@example.org", "the catalog's key"); a key's full
fingerprint goes in the tooltip and on the model page, never cut short in a table.

Icons come from QtAwesome (Font Awesome 5 in a font bundled with the package: no network,
crisp at any size, and tinted with the badge's own colour, which Qt's standard icons
cannot be); if it is missing (a trimmed install), Qt's standard icons stand in.

Which state a model is in is the core's decision (`ModelRow`: the store's install state
and refusal reason, the catalog's expiry, `PolicyGate.pull_blockers`); this module only
words and colours it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import QApplication, QStyle

from vetted.gui.theme import is_dark  # noqa: F401 (the pages take it from here with the badges)
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.cards.summary import SafetySummary
    from vetted.core.results import ModelRow

# tone → (light theme colour, dark theme colour): each passes 4.5:1 on its theme's base
TONES = {
    "good": ("#1b7f3a", "#5cc97b"),
    "harm": ("#c62828", "#ff7070"),
    "caution": ("#a85f00", "#f0a830"),
    "info": ("#1f5fa8", "#7ab0ff"),
    "neutral": ("#5f6368", "#b0b4b8"),
}
TRACK = ("#dddddd", "#4a4a4a")  # the unfilled part of a bar

# trust state → (tone, QtAwesome icon, fallback standard icon)
TRUST_KINDS = {
    "verified": ("good", "fa5s.check-circle", QStyle.StandardPixmap.SP_DialogApplyButton),
    "tampered": ("harm", "fa5s.times-circle", QStyle.StandardPixmap.SP_MessageBoxCritical),
    "blocked": ("caution", "fa5s.lock", QStyle.StandardPixmap.SP_MessageBoxWarning),
    "expired": ("caution", "fa5s.clock", QStyle.StandardPixmap.SP_MessageBoxWarning),
    "unreadable": ("harm", "fa5s.exclamation-triangle", QStyle.StandardPixmap.SP_MessageBoxCritical),
    "signed": ("info", "fa5s.file-signature", QStyle.StandardPixmap.SP_MessageBoxInformation),
}
SAFETY_KINDS = {
    "high": ("harm", "fa5s.exclamation-triangle", QStyle.StandardPixmap.SP_MessageBoxCritical),
    "moderate": ("caution", "fa5s.exclamation-circle", QStyle.StandardPixmap.SP_MessageBoxWarning),
    "low": ("good", "fa5s.shield-alt", QStyle.StandardPixmap.SP_DialogApplyButton),
    "unverified": ("caution", "fa5s.question-circle", QStyle.StandardPixmap.SP_MessageBoxQuestion),
    "not_rated": ("neutral", "fa5s.minus-circle", QStyle.StandardPixmap.SP_MessageBoxQuestion),
    "no_results": ("neutral", "fa5s.minus-circle", QStyle.StandardPixmap.SP_MessageBoxQuestion),
    "not_evaluated": ("neutral", "fa5s.question-circle", QStyle.StandardPixmap.SP_MessageBoxQuestion),
}
FIT_KINDS = {  # fit → (words, tone, icon, fallback)
    "ok": ("Fits", "good", "fa5s.check", QStyle.StandardPixmap.SP_DialogApplyButton),
    "tight": ("Tight fit", "caution", "fa5s.exclamation-circle", QStyle.StandardPixmap.SP_MessageBoxWarning),
    "too_big": ("Too big", "harm", "fa5s.times", QStyle.StandardPixmap.SP_MessageBoxCritical),
}


def colour(tone: str, dark: bool = False) -> str:
    return TONES[tone][1 if dark else 0]


def track(dark: bool = False) -> str:
    return TRACK[1 if dark else 0]


_icons: dict[tuple[str, str], QIcon] = {}


def icon(name: str, fallback: QStyle.StandardPixmap, tint: str) -> QIcon:
    """A tinted QtAwesome icon (cached), or Qt's standard icon when QtAwesome is absent."""
    key = (name, tint)
    if key not in _icons:
        try:
            import qtawesome

            _icons[key] = qtawesome.icon(name, color=tint)
        except Exception:  # not installed, or no font: the standard icon still says it
            _icons[key] = QApplication.style().standardIcon(fallback)
    return _icons[key]


@dataclass(frozen=True)
class Badge:
    kind: str  # a key of TRUST_KINDS / SAFETY_KINDS / FIT_KINDS
    words: str  # what the cell says (escaped: catalog text is untrusted)
    tooltip: str  # the detail: who exactly, fingerprints, reasons
    tone: str
    icon_name: str
    fallback: QStyle.StandardPixmap

    def colour(self, dark: bool = False) -> str:
        return colour(self.tone, dark)

    def icon(self, dark: bool = False) -> QIcon:
        return icon(self.icon_name, self.fallback, self.colour(dark))


def signer_spec(row: ModelRow) -> Any:
    try:
        return row.entry.signature.signer.spec(row.catalog.trusted_root)
    except Exception:
        return None


def signer_name(spec: Any, row: ModelRow | None = None) -> str:
    """Who signed, in a few words: a Sigstore or certificate identity as is; a plain key
    is not a name, so it is called the catalog's key (when it is the key the catalog is
    pinned to) or a key the catalog names — its fingerprint goes in the tooltip."""
    from vetted.trust.identity import CertificateChain, PublicKey, SigstoreIdentity, spec_key

    if isinstance(spec, SigstoreIdentity):
        return one_line(spec.identity)
    if isinstance(spec, CertificateChain):
        try:
            return one_line(spec.cert_identity().value)
        except Exception:
            return one_line(spec.identity)
    if isinstance(spec, PublicKey):
        try:
            same = row is not None and row.catalog.signer_key == spec_key(spec)
        except Exception:
            same = False
        return "the catalog's key" if same else "a key the catalog names"
    return "an unreadable signer"


def signer_detail(spec: Any) -> str:
    """The full identity: a key's whole fingerprint, an identity with its issuer or chain."""
    from vetted.trust.identity import PublicKey

    if spec is None:
        return "the signer named in the catalog cannot be read"
    try:
        if isinstance(spec, PublicKey):
            return f"public key sha256:{spec.fingerprint()}"
        return one_line(spec.describe())
    except Exception as exc:
        return f"the signer cannot be read ({one_line(exc)})"


def trust_badge(row: ModelRow) -> Badge:
    """One trust state per model, most urgent first: a changed installed file (the store
    refuses to run it), a policy refusal, verified here, an expired catalog, an unreadable
    signer, else signed by the catalog and not downloaded yet."""
    spec = signer_spec(row)
    who = signer_name(spec, row)
    cat = row.catalog.catalog
    lines = [f"Publisher signature must verify against: {signer_detail(spec)}",
             f"Catalog: {one_line(cat.name)} v{cat.version}, signed by {one_line(row.catalog.signer)}"]
    if row.installed_state == "refused":
        kind, words = "tampered", "Will not run: file changed"
        lines.insert(0, "The installed file no longer matches its signature; Vetted refuses to load it."
                     + (f"\n{one_line(row.installed_reason)}" if row.installed_reason else ""))
    elif row.policy_blockers:
        kind, words = "blocked", "Blocked by your organisation"
        lines[:0] = [one_line(b) for b in row.policy_blockers]
    elif row.installed_state == "verified":
        kind, words = "verified", f"Verified · signed by {who}"
        lines.insert(0, "Every byte of the installed file matches the publisher's signature.")
    elif row.catalog.expired:
        kind, words = "expired", "Catalog expired · downloads frozen"
    elif spec is None:
        kind, words = "unreadable", "Cannot verify: unreadable signer"
    else:
        kind, words = "signed", "Signed catalog · not downloaded"
        lines.insert(0, f"Listed in a verified catalog; the file will be checked against {who} when "
                     "downloaded.")
    tone, name, fallback = TRUST_KINDS[kind]
    return Badge(kind, words, "\n".join(lines), tone, name, fallback)


def safety_badge(summary: SafetySummary) -> Badge:
    tone, name, fallback = SAFETY_KINDS[summary.level]
    tip = "\n".join([one_line(summary.headline), *(one_line(n) for n in summary.notes),
                     f"From: {summary.source}" if summary.source else "Nothing has measured this model yet."])
    return Badge(summary.level, one_line(summary.short), tip, tone, name, fallback)


def fit_badge(row: ModelRow) -> Badge:
    words, tone, name, fallback = FIT_KINDS[row.fit]
    tip = f"Needs about {row.memory_bytes / 2**20:.0f} MiB of memory to run."
    return Badge(row.fit, words, tip, tone, name, fallback)


def bar_html(value: float, tone: str, dark: bool = False, cells: int = 20) -> str:
    """A small inline bar for HTML views, filled in the metric's tone (red when more is
    worse, green when more is better): a 94% bar of harmful answers is never green."""
    filled = round(max(0.0, min(1.0, value)) * cells)
    return (f'<span style="background:{colour(tone, dark)}">{"&nbsp;" * filled}</span>'
            f'<span style="background:{track(dark)}">{"&nbsp;" * (cells - filled)}</span>')
