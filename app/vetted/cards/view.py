"""Everything known about one model, each claim labelled by how it is known:
verified (checked here), declared (signed by a named party), unverified (unsigned or
unverifiable; shown, never promoted), missing (nothing published); within a signed card,
a figure citing a publication is "cited, unverified" (`known_as`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from vetted.cards import spotcheck
from vetted.cards.consistency import check as consistency_check
from vetted.cards.labels import claims_for
from vetted.cards.predicates import Provenance
from vetted.catalog.schema import ModelEntry
from vetted.runtime.gguf_meta import GGUFInfo


def card(entry: ModelEntry, db: sqlite_utils.Database | None = None,
         trusted_root: Path | None = None) -> dict[str, Any]:
    """Raw data (front ends escape it for display), each claim labelled by `cards.labels`."""
    sha = entry.files[0].sha256
    out: dict[str, Any] = {"model": entry.id, "name": entry.name, "sha256": sha,
                           "provenance": [], "safety_card": [], "consistency": None, "spotcheck": None}
    for kind, claims in claims_for(entry, trusted_root).items():
        out[kind] = [c.as_dict() for c in claims]
    if db is not None:
        out["consistency"] = _installed_consistency(db, entry, out["provenance"])
        out["spotcheck"] = spotcheck.latest(db, sha)
    out["comparisons"] = _comparisons(out["safety_card"], out["spotcheck"])
    return out


def _installed_consistency(db: sqlite_utils.Database, entry: ModelEntry,
                           provenance: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Compares the claims with the installed file's header — read only after the file
    passed its check, through the checked descriptor (a refusal is recorded as any is)."""
    from vetted.errors import InputError, Refused
    from vetted.runtime.gguf_meta import read_gguf_fd
    from vetted.store import installed

    try:
        m = installed.get(db, entry.id)
    except InputError:
        return None
    if m.state != "verified" or m.files[0].sha256 != entry.files[0].sha256:
        return None
    try:
        with installed.open_checked(db, entry.id, purpose="card", audit_accept=False) as checked:
            gguf = checked.gguf()
            info = read_gguf_fd(gguf.fd, gguf.name)
    except Refused:
        return None
    return _consistency(provenance, info)


def _consistency(provenance: list[dict[str, Any]], info: GGUFInfo) -> dict[str, Any]:
    file_facts = {"architecture": info.architecture,
                  "tokenizer": info.metadata.get("tokenizer.ggml.pre") or info.metadata.get("tokenizer.ggml.model"),
                  "vocab_sha256": info.vocab_sha256, "parameters": info.parameter_count,
                  "size_label": info.metadata.get("general.size_label"),
                  "file_type": info.metadata.get("general.file_type"), "context_length": info.context_length,
                  "license": info.metadata.get("general.license"), "name": info.metadata.get("general.name")}
    results = []
    for p in provenance:
        try:
            declared = Provenance.model_validate(p["data"])
        except Exception:
            continue
        results.append({"label": p["label"], "by": p.get("by"),
                        "mismatches": [m.line() for m in consistency_check(declared, info)]})
    return {"file": file_facts, "checks": results}


def _comparisons(cards: list[dict[str, Any]], local: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for c in cards:
        for r in (c["data"] or {}).get("results", []) if isinstance(c["data"], dict) else []:
            try:
                size = r.get("sample_size")
                verdict, detail = spotcheck.compare(r["metric"], float(r["value"]),
                                                    tuple(r["ci95"]) if r.get("ci95") else None, local,
                                                    size if isinstance(size, int) else None)
            except (KeyError, TypeError, ValueError):
                continue
            out.append({"benchmark": r.get("benchmark"), "metric": r["metric"], "claimed": r["value"],
                        "label": c["label"], "known_as": known_as(c["label"], r), "by": c.get("by"),
                        "verdict": verdict, "local": detail})
    return out


def known_as(claim_label: str, result: dict[str, Any]) -> str:
    """How one figure on a card is known: "cited, unverified" when the card cites a
    publication for it (its signer vouches it was published, not that it holds),
    otherwise the card's own label (declared: measured and signed by the card's signer;
    unverified: unsigned or not checking out)."""
    if isinstance(result.get("citation"), dict):
        return "cited, unverified"
    return claim_label
