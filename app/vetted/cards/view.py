"""Everything known about one model, each claim labelled by how it is known:
verified (checked here), declared (signed by a named party), unverified (unsigned or
unverifiable; shown, never promoted), missing (nothing published)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from vetted.cards import attest, spotcheck
from vetted.cards.consistency import check as consistency_check
from vetted.cards.predicates import KINDS, Provenance
from vetted.catalog.schema import ModelEntry
from vetted.errors import Refused


def card(entry: ModelEntry, db: sqlite_utils.Database | None = None, trusted_root=None) -> dict[str, Any]:
    sha = entry.files[0].sha256
    out: dict[str, Any] = {"model": entry.id, "name": entry.name, "sha256": sha,
                           "provenance": [], "safety_card": [], "consistency": None, "spotcheck": None}
    for ref in entry.attestations:
        spec = ref.signer.spec(trusted_root)
        try:
            claim = attest.verify(ref.bundle, spec, sha, KINDS[ref.kind])
            out[ref.kind].append({"label": "declared", "by": claim.signer,
                                  "data": claim.data.model_dump(exclude_none=True)})
        except Refused as exc:
            out[ref.kind].append({"label": "unverified", "by": spec.describe(), "why": exc.line(),
                                  "data": _unverified_predicate(ref.bundle)})
    for kind, data in (("provenance", entry.provenance), ("safety_card", entry.safety_card)):
        if data:
            out[kind].append({"label": "unverified", "by": None, "why": "not signed", "data": data})
    installed_path = None
    if db is not None:
        from vetted.store import installed

        try:
            m = installed.get(db, entry.id)
            if m.state == "verified" and m.files[0].sha256 == sha:
                installed_path = m.files[0].path
        except Exception:
            pass
        out["spotcheck"] = spotcheck.latest(db, sha)
    if installed_path is not None:
        out["consistency"] = _consistency(out["provenance"], installed_path)
    out["comparisons"] = _comparisons(out["safety_card"], out["spotcheck"])
    return out


def _unverified_predicate(bundle: dict[str, Any]) -> Any:
    """The claim's content as sent, for display only, when its signature does not verify."""
    from vetted.trust.oms import peek_statement
    import json

    st = peek_statement(json.dumps(bundle).encode())
    return (st or {}).get("predicate")


def _consistency(provenance: list[dict[str, Any]], path) -> dict[str, Any]:
    from vetted.runtime.gguf_meta import read_gguf

    info = read_gguf(path)
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


def render_text(c: dict[str, Any]) -> str:
    lines = [f"{c['name']} ({c['model']})", f"  sha256 {c['sha256']}"]
    for kind, title in (("provenance", "Provenance"), ("safety_card", "Safety card")):
        lines.append(f"{title}:")
        if not c[kind]:
            lines.append("  [missing] nothing published")
        for claim in c[kind]:
            who = f" by {claim['by']}" if claim.get("by") else ""
            why = f" ({claim['why']})" if claim.get("why") else ""
            lines.append(f"  [{claim['label']}{who}]{why}")
            data = claim["data"] or {}
            if kind == "provenance":
                for k in ("publisher", "model_name", "license", "architecture", "tokenizer", "quantization"):
                    if data.get(k):
                        lines.append(f"    {k}: {data[k]}")
                for b in data.get("base_models", []):
                    t = f" (teachers: {', '.join(b['teachers'])})" if b.get("teachers") else ""
                    lines.append(f"    base: {b['name']} [{b['relation']}]{t}")
                if data.get("source"):
                    commit = data["source"].get("commit")
                    lines.append(f"    source: {data['source'].get('repo')}" + (f" @ {commit}" if commit else ""))
            else:
                lines.append(f"    evaluator: {data.get('evaluator')}, {data.get('evaluated_at')}, "
                             f"assurance: {data.get('assurance')}")
                for r in data.get("results", []):
                    ci = f" (95% CI {r['ci95'][0]:.0%}–{r['ci95'][1]:.0%})" if r.get("ci95") else ""
                    lines.append(f"    {r['benchmark']} {r['metric']}: {r['value']:.0%}{ci}, n={r.get('sample_size')}")
                for b in data.get("not_evaluated", []):
                    lines.append(f"    {b}: not evaluated")
                if data.get("flags"):
                    lines.append(f"    flags: {', '.join(data['flags'])}")
    cons = c.get("consistency")
    lines.append("Consistency with the file:")
    if not cons:
        lines.append("  (install the model to compare its provenance with the file)")
    else:
        for chk in cons["checks"]:
            if chk["mismatches"]:
                lines += [f"  MISMATCH {m}" for m in chk["mismatches"]]
            else:
                lines.append(f"  [verified] the file agrees with the provenance declared by {chk['by'] or 'unsigned data'}")
    lines.append("Spot-check on this machine:")
    sc = c.get("spotcheck")
    if not sc:
        lines.append("  not run yet (`vetted spotcheck MODEL_ID`)")
    else:
        lines.append(f"  [verified, measured here] {sc['suite']} at {sc['finished_at']}")
        for m in sc["metrics"].values():
            lines.append(f"    {m['label']}: {m['k']}/{m['n']} = {m['value']:.0%} "
                         f"(95% CI {m['ci95'][0]:.0%}–{m['ci95'][1]:.0%})")
    for cmp in c.get("comparisons", []):
        lines.append(f"  {cmp['benchmark']} {cmp['metric']} claimed {cmp['claimed']:.0%}: {cmp['verdict']}"
                     + (f" — {cmp['local']}" if cmp["local"] else ""))
    return "\n".join(lines)
