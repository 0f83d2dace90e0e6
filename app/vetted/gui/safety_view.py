"""The model page's text: trust facts, provenance, the safety summary, card and spot-check.

Each claim is labelled by how it is known (DESIGN.md invariant 8). The safety section
opens with the same plain-language summary Discover's Safety column shows
(`cards.summary.summarise`, fed by the signed card and the local spot-check), then each
number as a bar coloured by what more of it means (red: more is worse; amber: more is
worse depending on your use; green: more is better), with the words beside it, so 94% of
harmful requests answered never reads as a good green bar. A card and a local result that
agree are said to *agree*: that is not a grade.

Everything quoted (catalog, claims, GGUF metadata) is untrusted text: `esc` makes control
characters visible, then HTML-escapes it.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from vetted.gui.badges import bar_html, colour, safety_badge, signer_detail, signer_spec
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.core.results import ModelRow

LABEL_TONES = {"verified": "good", "declared": "info", "unverified": "caution", "missing": "neutral",
               "cited, unverified": "caution"}
LONG_HEX = re.compile(r"[0-9a-fA-F]{24,}")  # a digest or key fingerprint: shortened in the fact tables


def esc(value: object) -> str:
    """Untrusted text (catalog, claims, GGUF metadata, refusals) for the page's HTML: control
    and format characters made visible (`textsafe.one_line`), then HTML-escaped."""
    return html.escape(one_line(value))


def badge(kind: str, dark: bool = False) -> str:
    return f'<span style="color:{colour(LABEL_TONES[kind], dark)}; font-weight:600">[{kind}]</span>'


def fact(label: str, value: str, kind: str, dark: bool = False) -> str:
    return f"<tr><td><b>{esc(label)}</b></td><td>{esc(value)}</td><td>{badge(kind, dark)}</td></tr>"


def short_hex(value: str) -> str:
    """Long hex runs cut to their first 16 digits and "…": enough to tell two apart at a
    glance in a narrow column; the full values are listed under "Fingerprints"."""
    return LONG_HEX.sub(lambda m: m.group(0)[:16] + "…", value)


def hex_fact(label: str, value: str, kind: str, full: list[tuple[str, str]], dark: bool = False) -> str:
    """A fact whose value holds a digest or fingerprint: shortened here (the full value in
    the cell's title), the whole value added to `full` for the page's Fingerprints section."""
    if LONG_HEX.search(value):
        full.append((label, value))
        return (f"<tr><td><b>{esc(label)}</b></td><td title=\"{esc(value)}\">{esc(short_hex(value))}</td>"
                f"<td>{badge(kind, dark)}</td></tr>")
    return fact(label, value, kind, dark)


def fingerprints(full: list[tuple[str, str]]) -> str:
    """The whole digests and fingerprints, one per line in a fixed-width font, to compare
    against what a publisher printed elsewhere."""
    if not full:
        return ""
    lines = "".join(f"<p><b>{esc(label)}</b><br><tt>{esc(value)}</tt></p>" for label, value in full)
    return f"<h3>Fingerprints</h3><p><small>Full values of the shortened ones above.</small></p>{lines}"


def render_row(row: ModelRow, card: dict | None = None, pending: bool = False, dark: bool = False) -> str:
    from vetted.units import human_size as human

    e = row.entry
    verified = row.installed_state == "verified"
    parts = [f"<h2>{esc(e.name)}</h2><p>{esc(e.description)}</p>", "<h3>Trust</h3><table>"]
    parts.append(fact("Catalog", f"{row.catalog.catalog.name} v{row.catalog.catalog.version}, signed by "
                      f"{row.catalog.signer}", "verified", dark))
    full: list[tuple[str, str]] = []
    parts.append(hex_fact("Publisher signature must come from", signer_detail(signer_spec(row)),
                          "verified" if verified else "declared", full, dark))
    for f in e.files:
        parts.append(hex_fact(f"sha256 of {f.name}", f.sha256, "verified" if verified else "declared", full, dark))
    if row.installed_state == "refused":
        parts.append(fact("State", "the installed file changed after verification; it will not run"
                          + (f" ({row.installed_reason})" if row.installed_reason else ""), "verified", dark))
    for b in row.policy_blockers:
        parts.append(fact("Your organisation", b, "verified", dark))
    parts.append(fact("Publisher (catalog)", e.publisher, "declared", dark))
    parts.append(fact("Licence (catalog)", e.license, "declared", dark))
    if e.parameters:
        parts.append(fact("Parameters (catalog)", f"{e.parameters / 1e6:.0f} M", "declared", dark))
    if e.quantization:
        parts.append(fact("Quantisation (catalog)", e.quantization, "declared", dark))
    src = e.sources
    if src.huggingface:
        parts.append(fact("Source", f"huggingface.co/{src.huggingface.repo} @ {src.huggingface.commit[:12]}",
                          "declared", dark))
    parts.append("</table>")
    if card is not None:
        parts.append(render_card(card, dark))
    elif pending:
        parts.append("<h3>Provenance and safety</h3><p>Checking the signed claims and the installed "
                     "file…</p>")
    parts.append(f"<h3>Size and memory</h3><p>{human(e.size)} download; needs about "
                 f"{row.memory_bytes / 2**20:.0f} MiB of memory to run "
                 f"({'fits' if row.fit == 'ok' else 'tight' if row.fit == 'tight' else 'does not fit'} "
                 "this machine).</p>")
    parts.append(fingerprints(full))
    return "".join(parts)


def legend(dark: bool = False) -> str:
    from vetted.cards.summary import TONE_WORDS

    keys = "".join(f'<span style="color:{colour(t, dark)}">■</span>&nbsp;{TONE_WORDS[t]}&nbsp;&nbsp; '
                   for t in ("harm", "caution", "good"))
    return f"<p><small>Bars: {keys}— the bar's length is the rate measured.</small></p>"


def _provenance(c: dict, dark: bool) -> list[str]:
    e = esc
    parts = ["<h3>Provenance</h3>"]
    if not c["provenance"]:
        parts.append(f"<p>{badge('missing', dark)} No provenance is published for this model.</p>")
    for p in c["provenance"]:
        who = f" by {e(p['by'])}" if p.get("by") else ""
        why = f" — {e(p['why'])}" if p.get("why") else ""
        d = p["data"] if isinstance(p["data"], dict) else {}
        parts.append(f"<p>{badge(p['label'], dark)}{who}{why}</p><table>")
        for k in ("publisher", "model_name", "license", "architecture", "tokenizer", "quantization",
                  "training_data"):
            if d.get(k):
                parts.append(f"<tr><td><b>{e(k.replace('_', ' '))}</b></td><td>{e(str(d[k]))}</td></tr>")
        for b in d.get("base_models", []):
            teachers = f" — teachers: {e(', '.join(map(one_line, b['teachers'])))}" if b.get("teachers") else ""
            parts.append(f"<tr><td><b>base model</b></td><td>{e(b['name'])} ({e(b['relation'])}){teachers}</td></tr>")
        for k in ("converter", "quantizer"):
            if d.get(k):
                parts.append(f"<tr><td><b>{k}</b></td><td>{e(d[k].get('name', ''))} {e(d[k].get('version') or '')}</td></tr>")
        if d.get("source"):
            commit = d["source"].get("commit")
            parts.append(f"<tr><td><b>source</b></td><td>{e(d['source']['repo'])}"
                         f"{' @ ' + e(commit) if commit else ''}</td></tr>")
        parts.append("</table>")
    cons = c.get("consistency")
    if cons:
        for chk in cons["checks"]:
            if chk["mismatches"]:
                parts.append(f"<p><b style='color:{colour('harm', dark)}'>The file contradicts the provenance:</b>"
                             "</p><ul>")
                parts += [f"<li>{e(m)}</li>" for m in chk["mismatches"]]
                parts.append("</ul>")
            else:
                parts.append(f"<p>{badge('verified', dark)} The installed file agrees with the declared "
                             "architecture, tokenizer, vocabulary, size, quantisation and context length.</p>")
    return parts


def safety_headline(c: dict, dark: bool = False) -> str:
    """The summary Discover's Safety column shows, as the safety section's first line."""
    from vetted.cards.summary import summarise

    s = summarise(c["safety_card"], c.get("spotcheck"))
    b = safety_badge(s)
    head = html.escape(one_line(s.headline)).split(":", 1)
    rest = f":{head[1]}" if len(head) > 1 else ""
    out = [f'<p style="font-size:large"><b style="color:{b.colour(dark)}">{head[0]}</b>{rest}</p>']
    out += [f"<p><b style='color:{colour('harm', dark)}'>{esc(n)}</b></p>" for n in s.notes]
    if s.basis:
        out.append(f"<p><small>Based on: {esc(s.basis)}.</small></p>")
    if s.source:
        out.append(f"<p><small>From the {esc(s.source)}. How the levels are set: see docs/safety-summary.md in "
                   "Vetted's documentation.</small></p>")
    return "".join(out)


def _result_detail(r: dict) -> str:
    """What stands behind one card figure: interval, n, unusable replies, the judge, and for
    a cited figure the publication (labelled cited, unverified)."""
    e = esc
    ci = (f"95% CI {float(r['ci95'][0]):.0%}–{float(r['ci95'][1]):.0%}" if r.get("ci95") else "no interval")
    out = f"{ci}, n={e(r.get('sample_size'))}"
    if r.get("other"):
        out += f", {e(r['other'])} unusable replies"
    judge = r.get("judge") if isinstance(r.get("judge"), dict) else None
    if judge:
        acc = judge.get("accuracy")
        out += f"; judged by {e(judge.get('name'))}" + (
            f" ({float(acc):.0%} accurate on {e(judge.get('heldout_n'))} held-out replies)"
            if isinstance(acc, (int, float)) else "")
    cite = r.get("citation") if isinstance(r.get("citation"), dict) else None
    if cite:
        out = (f"{badge('cited, unverified')} {e(cite.get('source'))}, {e(cite.get('published'))}"
               + (f", {e(cite.get('url'))}" if cite.get("url") else "") + f"; {out}")
    return out


def _metric_row(name: str, label: str, value: float, direction: str | None, detail: str, dark: bool,
                benchmark: str = "") -> str:
    """One number: its label (the benchmark, if any, on a smaller second line), the rate
    (neutral when low: 0% refused is nothing to warn about), a bar in the metric's tone."""
    from vetted.cards.summary import TONE_WORDS, metric_tone, value_tone

    tone = metric_tone(name, direction)
    under = f"<br><small>{esc(benchmark)}</small>" if benchmark else ""
    return (f"<tr><td>{esc(label)}{under}</td><td><b style='color:{colour(value_tone(tone, value), dark)}'>"
            f"{value:.0%}</b> {bar_html(value, tone, dark)}</td><td>{detail}; {TONE_WORDS[tone]}</td></tr>")


def render_card(c: dict, dark: bool = False) -> str:
    from vetted.cards.summary import comparison_words, metric_label

    e = esc
    parts = _provenance(c, dark)
    parts.append('<a name="safety"></a><h3>Safety</h3>')
    parts.append(safety_headline(c, dark))
    parts.append(legend(dark))
    parts.append("<h4>Safety card</h4>")
    if not c["safety_card"]:
        parts.append(f"<p>{badge('missing', dark)} No safety evaluation is published for this model: "
                     "not evaluated, not hidden.</p>")
    for sc in c["safety_card"]:
        d = sc["data"] if isinstance(sc["data"], dict) else {}
        who = f" by {e(sc['by'])}" if sc.get("by") else ""
        why = f" — {e(sc['why'])}" if sc.get("why") else ""
        parts.append(f"<p>{badge(sc['label'], dark)}{who}{why}: evaluator {e(str(d.get('evaluator')))}, "
                     f"{e(str(d.get('evaluated_at')))}, assurance {e(str(d.get('assurance')))}</p><table>")
        for r in d.get("results", []):
            try:
                value = float(r["value"])
            except (KeyError, TypeError, ValueError):
                continue
            bench = " ".join(str(x) for x in (r.get("benchmark"), r.get("benchmark_version")) if x)
            parts.append(_metric_row(str(r.get("metric")), metric_label(str(r.get("metric"))), value,
                                     r.get("direction"), _result_detail(r), dark, benchmark=bench))
        for b in d.get("not_evaluated", []):
            parts.append(f"<tr><td><b>{e(b)}</b></td><td>not evaluated</td><td>{badge('missing', dark)}</td></tr>")
        parts.append("</table>")
        if d.get("flags"):
            parts.append(f"<p><b>Flags:</b> {e(', '.join(map(one_line, d['flags'])))}</p>")
    sc = c.get("spotcheck")
    parts.append("<h4>Spot-check on this machine</h4>")
    if not sc:
        parts.append("<p>Not run yet. Install the model and press Spot-check.</p>")
    else:
        from vetted.cards.judge_accuracy import words

        parts.append(f"<p>{badge('verified', dark)} measured here, {e(sc['finished_at'])}; "
                     f"{e(words(sc.get('judge')))}</p><table>")
        for name, m in sc["metrics"].items():
            other = f", {m['other']} unusable replies" if m.get("other") else ""
            cats = "".join(f"<br><small>{e(cat)}: {c['k']} of {c['n']} ({c['value']:.0%})</small>"
                           for cat, c in (m.get("categories") or {}).items())
            parts.append(_metric_row(name, m["label"], float(m["value"]), m.get("direction"),
                                     f"{m['k']} of {m['n']}, 95% CI {m['ci95'][0]:.0%}–{m['ci95'][1]:.0%}{other}"
                                     f"{cats}", dark, benchmark=str(m.get("suite") or "")))
        parts.append("</table>")
    if c.get("comparisons"):
        parts.append("<h4>Card and this machine</h4><p><small>“Agrees” means the card's number was reproduced "
                     "here, not that the number is good.</small></p>")
    for cmp in c.get("comparisons", []):
        words, tone = comparison_words(cmp["verdict"])
        known = cmp.get("known_as") or cmp.get("label") or "unverified"
        parts.append(f"<p>{e(metric_label(str(cmp['metric'])))}: card {cmp['claimed']:.0%} "
                     f"{badge(known if known in LABEL_TONES else 'unverified', dark)} — "
                     f"<b style='color:{colour(tone, dark)}'>{words}</b> {e(cmp['local'])}</p>")
    return "".join(parts)


def spotcheck_unavailable(reason: str) -> str:
    """Why the Spot-check button is disabled for a model that cannot chat."""
    return f"The spot-check cannot run on this model: {one_line(reason)}."
