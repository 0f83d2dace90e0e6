"""Everything known about one model, each claim labelled by how it is known:
verified (checked here), declared (signed by a named party), unverified (unsigned or
unverifiable; shown, never promoted), missing (nothing published)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from vetted.cards import spotcheck
from vetted.cards.consistency import check as consistency_check
from vetted.cards.labels import claims_for
from vetted.cards.predicates import Provenance
from vetted.catalog.schema import ModelEntry
from vetted.textsafe import one_line


def card(entry: ModelEntry, db: sqlite_utils.Database | None = None, trusted_root=None) -> dict[str, Any]:
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


def _consistency(provenance: list[dict[str, Any]], info) -> dict[str, Any]:
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
                verdict, detail = spotcheck.compare(r["metric"], float(r["value"]),
                                                    tuple(r["ci95"]) if r.get("ci95") else None, local)
            except (KeyError, TypeError, ValueError):
                continue
            out.append({"benchmark": r.get("benchmark"), "metric": r["metric"], "claimed": r["value"],
                        "label": c["label"], "by": c.get("by"), "verdict": verdict, "local": detail})
    return out


def _pct(value: Any) -> str:
    """A rate as a percentage; anything else (unsigned data can hold anything) escaped."""
    return f"{value:.0%}" if isinstance(value, (int, float)) else one_line(value)


def render_text(c: dict[str, Any]) -> str:
    """The card for a terminal. Every interpolated value is untrusted (catalog fields, claim
    contents, GGUF metadata, refusal reasons) and goes through `one_line`."""
    o = one_line
    lines = [f"{o(c['name'])} ({o(c['model'])})", f"  sha256 {o(c['sha256'])}"]
    for kind, title in (("provenance", "Provenance"), ("safety_card", "Safety card")):
        lines.append(f"{title}:")
        if not c[kind]:
            lines.append("  [missing] nothing published")
        for claim in c[kind]:
            who = f" by {o(claim['by'])}" if claim.get("by") else ""
            why = f" ({o(claim['why'])})" if claim.get("why") else ""
            lines.append(f"  [{o(claim['label'])}{who}]{why}")
            data = claim["data"] if isinstance(claim["data"], dict) else {}
            if kind == "provenance":
                for k in ("publisher", "model_name", "license", "architecture", "tokenizer", "quantization"):
                    if data.get(k):
                        lines.append(f"    {k}: {o(data[k])}")
                for b in data.get("base_models") or []:
                    if not isinstance(b, dict):
                        continue
                    t = f" (teachers: {', '.join(map(o, b['teachers']))})" if b.get("teachers") else ""
                    lines.append(f"    base: {o(b.get('name'))} [{o(b.get('relation'))}]{t}")
                if isinstance(data.get("source"), dict):
                    commit = data["source"].get("commit")
                    lines.append(f"    source: {o(data['source'].get('repo'))}" + (f" @ {o(commit)}" if commit else ""))
            else:
                lines.append(f"    evaluator: {o(data.get('evaluator'))}, {o(data.get('evaluated_at'))}, "
                             f"assurance: {o(data.get('assurance'))}")
                for r in data.get("results") or []:
                    if not isinstance(r, dict):
                        continue
                    ci = (f" (95% CI {_pct(r['ci95'][0])}–{_pct(r['ci95'][1])})"
                          if isinstance(r.get("ci95"), list) and len(r["ci95"]) == 2 else "")
                    lines.append(f"    {o(r.get('benchmark'))} {o(r.get('metric'))}: {_pct(r.get('value'))}{ci}, "
                                 f"n={o(r.get('sample_size'))}")
                for b in data.get("not_evaluated") or []:
                    lines.append(f"    {o(b)}: not evaluated")
                if data.get("flags"):
                    lines.append(f"    flags: {', '.join(map(o, data['flags']))}")
    cons = c.get("consistency")
    lines.append("Consistency with the file:")
    if not cons:
        lines.append("  (install the model to compare its provenance with the file)")
    else:
        for chk in cons["checks"]:
            if chk["mismatches"]:
                lines += [f"  MISMATCH {o(m)}" for m in chk["mismatches"]]
            else:
                lines.append(f"  [verified] the file agrees with the provenance declared by "
                             f"{o(chk['by']) if chk['by'] else 'unsigned data'}")
    lines.append("Spot-check on this machine:")
    sc = c.get("spotcheck")
    if not sc:
        lines.append("  not run yet (`vetted spotcheck MODEL_ID`)")
    else:
        lines.append(f"  [verified, measured here] {o(sc['suite'])} at {o(sc['finished_at'])}")
        for m in sc["metrics"].values():
            lines.append(f"    {o(m['label'])}: {m['k']}/{m['n']} = {m['value']:.0%} "
                         f"(95% CI {m['ci95'][0]:.0%}–{m['ci95'][1]:.0%})")
    for cmp in c.get("comparisons", []):
        lines.append(f"  {o(cmp['benchmark'])} {o(cmp['metric'])} claimed {_pct(cmp['claimed'])}: {o(cmp['verdict'])}"
                     + (f" — {o(cmp['local'])}" if cmp["local"] else ""))
    return "\n".join(lines)
