"""A model's card as terminal text: every claim with its label, every value escaped.

The core hands out the card as data (cards/view.py); only front ends render it.
"""

from __future__ import annotations

from typing import Any

from vetted.textsafe import one_line


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
                    cite = r.get("citation") if isinstance(r.get("citation"), dict) else None
                    how = (f" [cited, unverified: {o(cite.get('source'))}, {o(cite.get('published'))}]"
                           if cite else "")
                    judge = r.get("judge") if isinstance(r.get("judge"), dict) else None
                    judged = f"; judge {o(judge.get('name'))}" if judge else ""
                    other = f", {o(r['other'])} unusable" if r.get("other") else ""
                    lines.append(f"    {o(r.get('benchmark'))} {o(r.get('metric'))}: {_pct(r.get('value'))}{ci}, "
                                 f"n={o(r.get('sample_size'))}{other}{judged}{how}")
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
        lines.append(f"  not run yet (`vetted spotcheck {o(c['model'])}`)")
    else:
        from vetted.cards.judge_accuracy import words

        lines.append(f"  [verified, measured here] {o(sc['finished_at'])}; {o(words(sc.get('judge')))}")
        for m in sc["metrics"].values():
            other = f", {m['other']} unusable" if m.get("other") else ""
            lines.append(f"    {o(m['label'])}: {m['k']}/{m['n']} = {m['value']:.0%} "
                         f"(95% CI {m['ci95'][0]:.0%}–{m['ci95'][1]:.0%}{other}) [{o(m.get('suite'))}]")
    for cmp in c.get("comparisons", []):
        lines.append(f"  {o(cmp['benchmark'])} {o(cmp['metric'])} claimed {_pct(cmp['claimed'])} "
                     f"[{o(cmp.get('known_as') or cmp.get('label'))}]: {o(cmp['verdict'])}"
                     + (f" — {o(cmp['local'])}" if cmp["local"] else ""))
    return "\n".join(lines)
