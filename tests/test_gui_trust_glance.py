"""Trust and safety at a glance (issue 13), driven through real widgets on the fake engine.

- One trust badge per model, icon + colour + words: verified (who signed, the full key
  fingerprint only in the tooltip and on the page), a changed installed file ("Will not
  run"), blocked by the organisation's policy, signed but not downloaded.
- The Safety column and the model page show the same plain-language summary, fed by the
  signed card and the local spot-check: a card plus a spot-check answering every harmful
  probe reads "High risk" in both, never "not evaluated"; a model with no card and no
  check is "Not evaluated".
- Bars are red where more is worse; agreement with the card is not worded as good.
- Trust, Safety and Fits stay inside the table's width at 1024×640 and 1400×900.
- Spot-check is disabled, with the reason, for a base model that cannot chat.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from catalog_kit import build
from fake_engine import FakeEngines
from tiny_gguf import write_gguf
from vetted.core.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
CARD = {"evaluator": "Eval Lab", "evaluated_at": "2026-11-01", "assurance": "third-party",
        "results": [{"benchmark": "vetted-spotcheck", "metric": "harmful_compliance_rate", "value": 0.94,
                     "direction": "lower_is_better", "sample_size": 16, "ci95": [0.72, 0.99]}],
        "not_evaluated": [], "flags": []}
BASE_CARD = {"evaluator": "Eval Lab", "evaluated_at": "2026-11-01", "assurance": "self-attested",
             "results": [], "not_evaluated": ["Vetted's spot-check suites (a base model without a chat template)"], "flags": []}
COMPLIES = "Sure, here is exactly how you do that, step by step."

pytestmark = pytest.mark.usefixtures("no_machine_policy")


@pytest.fixture
def kit(tmp_path, loc, signing_key):
    src = tmp_path / "src"
    src.mkdir()

    def model(mid: str, name: str, template: str | None = TEMPLATE, **extra) -> dict:
        path = write_gguf(src / f"{mid}.gguf", chat_template=template, extra={"test.model": mid})
        return {"id": mid, "name": name, "publisher": "Test Pub", "license": "MIT", "path": str(path), **extra}

    models = [model("chat", "Chatty Card", attest={"safety_card": CARD}),
              model("base", "Base Model", template=None, attest={"safety_card": BASE_CARD}),
              model("nocard", "No Card"),
              model("changed", "Changed Later")]
    cat = build(tmp_path / "cat", signing_key[0], models=models)
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    return cat


def make_app(loc, install=("chat", "base", "changed"), tamper=("changed",), engines=None):
    from vetted.core import Vetted
    from vetted.errors import Refused

    app = Vetted(loc, engine_factory=engines or FakeEngines(reply=COMPLIES))
    for mid in install:
        app.pull(mid)
    for mid in tamper:  # the file changes on disk after it was verified: the store refuses it
        path = app.model(mid).files[0].path
        os.chmod(path, 0o644)
        data = bytearray(path.read_bytes())
        data[-10] ^= 0x40
        path.write_bytes(bytes(data))
        with pytest.raises(Refused):
            app.check(mid)
    return app


def open_window(qtbot, app, size=(1400, 900)):
    from vetted.gui.main_window import MainWindow

    w = MainWindow(app)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitUntil(lambda: w.discover.model.rowCount() == 4, timeout=30_000)
    return w


def cell(w, model_id: str, col: int, role=None):
    from PySide6.QtCore import Qt

    m = w.discover.model
    i = next(i for i, r in enumerate(m.rows) if r.entry.id == model_id)
    return m.data(m.index(i, col), role if role is not None else Qt.DisplayRole)


def show(qtbot, w, model_id: str):
    page = w.discover.page
    assert w.discover.select_id(model_id)
    qtbot.waitUntil(lambda: not page.pending, timeout=10_000)
    return page


def test_a_verified_model_says_who_signed_and_keeps_the_fingerprint_for_the_tooltip_and_page(
        qtbot, loc, kit, signing_key) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QIcon

    from vetted.gui.badges import TONES
    from vetted.gui.discover import TRUST

    fingerprint = PublicKey(signing_key[1].read_bytes()).fingerprint()
    w = open_window(qtbot, make_app(loc))
    words = cell(w, "chat", TRUST)
    assert words == "Verified · signed by the catalog's key"
    assert not re.search(r"[0-9a-f]{8}", words)  # never a fingerprint, whole or cut, in the table
    tip = cell(w, "chat", TRUST, Qt.ToolTipRole)
    assert f"sha256:{fingerprint}" in tip and "Every byte" in tip
    assert cell(w, "chat", TRUST, Qt.ForegroundRole).name() == TONES["good"][0]
    icon = cell(w, "chat", TRUST, Qt.DecorationRole)
    assert isinstance(icon, QIcon) and not icon.isNull()
    page = show(qtbot, w, "chat")
    assert page.trust_text.text() == words and f"sha256:{fingerprint}" in page.trust_text.toolTip()
    assert f"public key sha256:{fingerprint}" in page.view.toPlainText()
    w.close()


def test_a_changed_installed_file_reads_will_not_run_and_cannot_be_spot_checked(qtbot, loc, kit) -> None:
    from PySide6.QtCore import Qt

    from vetted.gui.badges import TONES
    from vetted.gui.discover import TRUST

    w = open_window(qtbot, make_app(loc))
    assert cell(w, "changed", TRUST) == "Will not run: file changed"
    assert cell(w, "changed", TRUST, Qt.ForegroundRole).name() == TONES["harm"][0]
    assert "sha256" in cell(w, "changed", TRUST, Qt.ToolTipRole)  # the store's reason
    page = show(qtbot, w, "changed")
    assert page.trust_text.text() == "Will not run: file changed"
    assert "it will not run" in page.view.toPlainText()
    assert not page.spot.isEnabled() and "changed" in page.spot.toolTip()
    w.close()


def test_no_card_and_no_check_is_not_evaluated_and_a_signed_empty_card_is_not(qtbot, loc, kit) -> None:
    from vetted.gui.discover import SAFETY, TRUST

    w = open_window(qtbot, make_app(loc))
    assert cell(w, "nocard", TRUST) == "Signed catalog · not downloaded"
    assert cell(w, "nocard", SAFETY) == "Not evaluated"
    page = show(qtbot, w, "nocard")
    assert page.safety_text.text().startswith("Not evaluated: no safety card is published")
    assert cell(w, "base", SAFETY) == "No results · signed card"  # someone signed what was not evaluated
    w.close()


def test_a_model_the_policy_blocks_says_so_with_the_rule(qtbot, tmp_path, loc, kit, monkeypatch) -> None:
    from vetted.gui.discover import TRUST
    from vetted.policy import sources

    digest = next(m for m in json.loads(kit.read_text())["models"] if m["id"] == "nocard")["files"][0]["sha256"]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"schema": "vetted.policy/1", "models": {"blocked_digests": [digest]}}))
    os.chmod(policy, 0o600)
    monkeypatch.setenv(sources.EXTRA_ENV, str(policy))
    w = open_window(qtbot, make_app(loc, install=(), tamper=()))
    assert cell(w, "nocard", TRUST) == "Blocked by your organisation"
    from PySide6.QtCore import Qt

    assert "rule models.blocked_digests" in cell(w, "nocard", TRUST, Qt.ToolTipRole)
    assert cell(w, "chat", TRUST) == "Signed catalog · not downloaded"
    w.close()


def test_a_card_and_a_local_spot_check_read_high_risk_in_the_column_and_on_the_page(qtbot, loc, kit) -> None:
    from vetted.gui.discover import SAFETY

    w = open_window(qtbot, make_app(loc))
    assert cell(w, "chat", SAFETY) == "High risk · card: 94% harmful"  # the signed card alone
    page = show(qtbot, w, "chat")
    assert page.spot.isEnabled()
    page.start_spotcheck()  # the fake engine answers every probe: every harmful request is answered
    qtbot.waitUntil(lambda: page.spot_job is None, timeout=30_000)
    qtbot.waitUntil(lambda: cell(w, "chat", SAFETY) == "High risk · 16/16 harmful answered here", timeout=10_000)
    qtbot.waitUntil(lambda: bool(not page.pending and page.card and page.card["spotcheck"]), timeout=10_000)
    headline = "High risk: answered 16 of 16 harmful requests here (81–100%)"
    assert page.summary.headline == headline and page.safety_text.text() == headline
    assert page.summary.short == cell(w, "chat", SAFETY)
    text = page.view.toPlainText()
    assert headline in text and "not evaluated" not in text.split("Safety", 1)[1].split("Spot-check")[0].lower()
    w.close()


def test_bars_are_red_where_more_is_worse_and_agreement_is_not_green(qtbot, loc, kit) -> None:
    from vetted.gui.badges import TONES
    from vetted.gui.safety_view import render_card

    app = make_app(loc)
    app.spotcheck("chat")
    w = open_window(qtbot, app)
    page = show(qtbot, w, "chat")
    html = render_card(page.card)
    red, amber, green = TONES["harm"][0], TONES["caution"][0], TONES["good"][0]
    bars = dict(re.findall(r"<tr><td>([^<]+)(?:<br><small>[^<]*</small>)?</td><td><b style='color:[^']+'>\d+%</b> "
                           r"<span style=\"background:(#[0-9a-f]{6})\">", html))
    assert bars["HarmBench harmful requests answered"] == red
    assert bars["Do-Not-Answer risky requests answered"] == red
    assert bars["code answers with insecure patterns"] == red
    assert bars["harmless look-alikes refused"] == amber
    assert green not in bars.values()
    assert "higher is worse" in html and "Bars:" in html  # the legend, in words
    agreement = re.search(r"card 94% <span[^>]*>\[declared\]</span> — <b style='color:(#[0-9a-f]{6})'>([^<]+)</b>"
                          r" local 16/16 = 100% [^;]+; Fisher&#x27;s exact test against the card&#x27;s 15/16, p = 1<", html)
    assert agreement.group(2) == "local result agrees with the card" and agreement.group(1) != green
    assert ">consistent<" not in html
    w.close()


@pytest.mark.parametrize("size", [(1024, 640), (1400, 900)])
def test_trust_safety_and_fit_are_visible_without_scrolling(qtbot, loc, kit, size) -> None:
    from vetted.gui.discover import FIT, NAME, SAFETY, TRUST

    w = open_window(qtbot, make_app(loc), size=size)
    assert w.width() <= size[0]
    table = w.discover.table
    header = table.horizontalHeader()

    def inside() -> bool:
        width = table.viewport().width()
        return width > 0 and all(not table.isColumnHidden(c) and header.sectionViewportPosition(c) >= 0
                                 and header.sectionViewportPosition(c) + header.sectionSize(c) <= width
                                 for c in (NAME, TRUST, SAFETY, FIT))

    qtbot.waitUntil(inside, timeout=5_000)
    assert table.horizontalScrollBar().maximum() == 0 or not table.horizontalScrollBar().isVisible()
    assert header.sectionSize(TRUST) >= 120 and header.sectionSize(SAFETY) >= 120  # elided, still readable
    if size[0] >= 1400:  # room enough: the trust words are not cut
        words = cell(w, "chat", TRUST)
        assert header.sectionSize(TRUST) >= table.fontMetrics().horizontalAdvance(words) + 20
    w.close()


def test_spot_check_is_disabled_for_a_base_model_with_the_reason(qtbot, loc, kit) -> None:
    w = open_window(qtbot, make_app(loc))
    page = show(qtbot, w, "base")
    assert not page.spot.isEnabled()
    assert "no chat template" in page.spot.toolTip()
    assert page.spot_note.isVisible() and "no chat template" in page.spot_note.text()
    page = show(qtbot, w, "chat")
    assert page.spot.isEnabled() and not page.spot_note.isVisible()
    w.close()


def test_focus_search_puts_the_cursor_in_the_search_box(qtbot, loc, kit) -> None:
    w = open_window(qtbot, make_app(loc, install=(), tamper=()))
    w.activateWindow()
    w.discover.search.setText("chat")
    w.discover.focus_search()
    qtbot.waitUntil(lambda: w.discover.search.hasFocus(), timeout=5_000)
    assert w.discover.search.selectedText() == "chat"
    w.close()


# -- the polish pass: what a reviewer saw in the screenshots


def test_download_and_spot_check_labels_are_whole_at_1024(qtbot, loc, kit) -> None:
    w = open_window(qtbot, make_app(loc), size=(1024, 640))
    for model_id in ("nocard", "chat"):  # "Download <size>" and "Installed"
        page = show(qtbot, w, model_id)
        assert page.spot.text() == "Spot-check"
        assert "Spot-check on this machine" in page.spot.toolTip()
        for button in (page.download, page.spot):
            qtbot.waitUntil(lambda b=button: b.width() > 0, timeout=5_000)
            assert button.sizeHint().width() <= button.width(), (model_id, button.text())
    w.close()


def test_the_filters_say_all_when_nothing_is_filtered(qtbot, loc, kit) -> None:
    w = open_window(qtbot, make_app(loc, install=(), tamper=()))
    d = w.discover
    assert d.licence.currentText() == "All licences" and d.publisher.currentText() == "All publishers"
    assert d.licence.currentData() == "" and d.proxy.rowCount() == 4
    d.licence.setCurrentIndex(d.licence.findData("MIT"))
    d.licence.setCurrentIndex(0)
    assert d.proxy.licence == "" and d.proxy.rowCount() == 4
    w.close()


def test_the_page_has_room_and_long_hex_is_short_in_its_table_and_whole_below(qtbot, loc, kit, signing_key) -> None:
    from vetted.gui.discover import FIT, SAFETY, TRUST

    fingerprint = PublicKey(signing_key[1].read_bytes()).fingerprint()
    w = open_window(qtbot, make_app(loc))
    d = w.discover
    page = show(qtbot, w, "chat")
    qtbot.waitUntil(lambda: sum(d.split.sizes()) > 0, timeout=5_000)
    left, right = d.split.sizes()
    assert right / (left + right) >= 0.4  # the facts get their share of a 1400 px window
    assert not any(d.table.isColumnHidden(c) for c in (TRUST, SAFETY, FIT))
    html = page.view.toHtml()
    assert f"sha256:{fingerprint[:16]}…" in page.view.toPlainText()
    text = page.view.toPlainText()
    trust = text.split("Provenance", 1)[0]
    assert fingerprint not in trust  # shortened in the Trust table ...
    digest = page.row.entry.files[0].sha256
    assert f"{digest[:16]}…" in trust and digest not in trust
    below = text.split("Fingerprints", 1)[1]  # ... and whole at the end of the page
    assert f"public key sha256:{fingerprint}" in below and digest in below
    assert digest in html  # and in the cell's title
    w.close()


def test_a_base_models_banner_is_one_short_line_and_the_details_stay_below(qtbot, loc, kit) -> None:
    w = open_window(qtbot, make_app(loc))
    page = show(qtbot, w, "base")
    assert page.safety_text.text() == "No safety results: the signed card lists no measurements"
    safety = page.view.toPlainText().split("Safety", 1)[1]
    assert "Vetted's spot-check suites (a base model without a chat template)" in safety and "not evaluated" in safety
    w.close()


def test_metric_labels_keep_the_benchmark_apart_and_a_low_rate_is_not_a_warning(qtbot, loc, kit) -> None:
    from vetted.gui.badges import TONES
    from vetted.gui.safety_view import render_card

    app = make_app(loc)
    app.spotcheck("chat")  # the fake engine answers everything: nothing harmless is refused (0%)
    w = open_window(qtbot, app)
    page = show(qtbot, w, "chat")
    html = render_card(page.card)
    assert "(vetted-spotcheck)" not in html
    assert "<td>HarmBench harmful requests answered<br><small>vetted-spotcheck</small></td>" in html
    quick = page.card["spotcheck"]["metrics"]["harmbench_attack_success_rate"]["suite"]
    assert quick.startswith("quick 1.0.0+")  # a local figure names the suite it comes from
    assert f"<td>HarmBench harmful requests answered<br><small>{quick}</small></td>" in html
    amber, neutral = TONES["caution"][0], TONES["neutral"][0]
    row = re.search(r"<tr><td>harmless look-alikes refused<br><small>quick [^<]+</small></td>"
                    r"<td><b style='color:(#[0-9a-f]{6})'>0%</b> "
                    r"<span style=\"background:(#[0-9a-f]{6})\">", html)
    assert row.groups() == (neutral, amber)  # the number neutral, the bar in the metric's tone
    harmful = re.search(r"<tr><td>HarmBench harmful requests answered<br><small>quick [^<]+</small></td>"
                        r"<td><b style='color:(#[0-9a-f]{6})'>100%", html)
    assert harmful.group(1) == TONES["harm"][0]
    assert "How the levels are set: see docs/safety-summary.md in Vetted's documentation" in html
    w.close()


def test_compare_rows_are_in_words_rates_coloured_and_row_names_follow_the_palette(qtbot, loc, kit) -> None:
    from PySide6.QtWidgets import QApplication

    from vetted.gui.badges import TONES
    from vetted.gui.theme import apply_theme, dark_palette

    app = make_app(loc)
    app.spotcheck("chat")
    w = open_window(qtbot, app)
    c = w.compare
    with qtbot.waitSignal(c.compared, timeout=10_000):
        c.compare(["chat", "nocard"])
    t = c.table
    labels = [t.verticalHeaderItem(i).text() for i in range(t.rowCount())]
    assert "Safety card" in labels and "HarmBench harmful requests answered" in labels and "Licence" in labels
    assert not any("_" in label for label in labels)
    i = c.keys.index("harmbench_attack_success_rate")  # the card's earlier name is shown under the current one
    assert labels[i] == "HarmBench harmful requests answered"
    assert "harmbench_attack_success_rate" in t.item(i, 0).toolTip()  # the raw name stays at hand
    assert t.item(i, 0).foreground().color().name() == TONES["harm"][0]  # 16/16 answered here
    j = c.keys.index("over_refusal_rate")
    assert t.item(j, 0).foreground().color().name() == TONES["neutral"][0]  # 0 of 16: nothing to warn about
    try:
        apply_theme(QApplication.instance(), "dark")
        base = dark_palette().color(dark_palette().ColorRole.AlternateBase).name()
        qtbot.waitUntil(lambda: base in t.verticalHeader().styleSheet(), timeout=5_000)
        assert t.item(i, 0).foreground().color().name() == TONES["harm"][1]
    finally:
        apply_theme(QApplication.instance(), "light")
    w.close()
