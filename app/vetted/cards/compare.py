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
        metrics = _card_cells(c["safety_card"])
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


_RANK = {"declared": 0, "cited, unverified": 1, "unverified": 2}


def _card_cells(claims: list[dict[str, Any]]) -> dict[str, str]:
    """One cell per metric (aliases folded together): the strongest label's worst figure,
    so an unsigned 1% never hides a signed 90%; results that are not a named metric with a
    rate are left out (an unsigned card can hold anything)."""
    best: dict[str, tuple[int, float, str]] = {}
    for sc in claims:
        raw = sc.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        for r in data.get("results") or []:
            if not isinstance(r, dict) or not isinstance(r.get("metric"), str):
                continue
            try:
                value = float(r["value"])
            except (KeyError, TypeError, ValueError):
                continue
            if not 0.0 <= value <= 1.0:
                continue
            how = known_as(sc["label"], r)
            name, rank = canonical(r["metric"]), _RANK.get(how, 3)
            held = best.get(name)
            if held is None or rank < held[0] or (rank == held[0] and value > held[1]):
                best[name] = (rank, value, how)
    return {name: f"{value:.0%} ({how})" for name, (_, value, how) in best.items()}


FIELDS = ["publisher", "license", "state", "signer", "provenance", "safety_card", "base", "flags", "consistency"]


def metric_names(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({k for r in rows for k in r["metrics"]})
