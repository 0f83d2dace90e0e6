"""Models side by side: trust state, provenance and safety metrics in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from vetted.cards.labels import Claim, headline
from vetted.cards.view import card, known_as
from vetted.catalog.schema import ModelEntry
from vetted.safety_metrics import canonical


def _claims(dicts: list[dict[str, Any]], kind: str) -> list[Claim]:
    return [Claim(kind, d["label"], d.get("by"), d.get("why"), d.get("data")) for d in dicts]


def compare_rows(entries: list[ModelEntry], db: sqlite_utils.Database, trusted_root: Path | None = None,
                 roots: list[Path | None] | None = None) -> list[dict[str, Any]]:
    """One row per entry. `roots` gives each entry its catalog's trusted root (a private
    Sigstore's); else `trusted_root` applies to all. Labels come from `cards.labels`, as on
    the model page and in Discover. Values are raw: front ends escape them for display."""
    from vetted.store import installed

    rows = []
    for i, entry in enumerate(entries):
        root = roots[i] if roots is not None else trusted_root
        c = card(entry, db, root)
        try:
            state = installed.get(db, entry.id).state
        except Exception:
            state = "not installed"
        prov = next((p for p in c["provenance"] if p["label"] == "declared"), None) or \
            (c["provenance"][0] if c["provenance"] else None)
        pdata = (prov or {}).get("data") or {}
        bases = []
        for b in pdata.get("base_models", []):
            teachers = f" from {', '.join(b['teachers'])}" if b.get("teachers") else ""
            bases.append(f"{b['name']} [{b['relation']}{teachers}]")
        metrics: dict[str, str] = {}
        for sc in c["safety_card"]:
            for r in (sc["data"] or {}).get("results", []):
                metrics[canonical(r["metric"])] = f"{r['value']:.0%} ({known_as(sc['label'], r)})"
        for name, m in ((c["spotcheck"] or {}).get("metrics") or {}).items():
            metrics[name] = (metrics.get(name, "") + f" local {m['k']}/{m['n']}").strip()
        flags = sorted({f for sc in c["safety_card"] for f in (sc["data"] or {}).get("flags", [])})
        mismatches = sum(len(ch["mismatches"]) for ch in (c["consistency"] or {}).get("checks", []))
        rows.append({
            "model": entry.id, "name": entry.name, "publisher": entry.publisher, "license": entry.license,
            "state": state, "signer": entry.signature.signer.spec(root).describe(),
            "provenance": headline(_claims(c["provenance"], "provenance")),
            "safety_card": headline(_claims(c["safety_card"], "safety_card")),
            "base": ", ".join(bases) or "-", "flags": ", ".join(flags) or "-",
            "consistency": "n/a (not installed)" if c["consistency"] is None
            else ("ok" if mismatches == 0 else f"{mismatches} mismatch(es)"),
            "metrics": metrics,
        })
    return rows


FIELDS = ["publisher", "license", "state", "signer", "provenance", "safety_card", "base", "flags", "consistency"]


def metric_names(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({k for r in rows for k in r["metrics"]})
