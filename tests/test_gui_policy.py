"""The organisation's policy as the desktop app shows it: real widgets (pytest-qt, offscreen),
the real core, real policy files written here and handed over by `VETTED_POLICY_EXTRA`
(with no machine policy it is the policy in force; it can only tighten), a fake engine
where a chat runs.

- The Policy page lists every rule in force with its value and its source, and says
  plainly when no policy applies.
- A broken policy (malformed JSON, a group-writable file) puts the fail-closed message,
  naming the file and who can fix it, on the Policy page, and Discover offers no download:
  the button is disabled and the reason stands beside it.
- A locked transfer setting shows a lock and "Managed by your organisation" on Settings,
  with the rule and its source on hover; a catalog the policy provides is marked managed.
- A blocked digest disables Download for that model with the rule named; a download that
  is refused anyway shows the rule and source in its verdict.
- A chat the policy refuses (`safety.require_spotcheck`) names the rule in the chat status.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from catalog_kit import build
from fake_engine import FakeEngine
from tiny_gguf import write_gguf
from vetted.core.settings import CatalogSubscription, Settings
from vetted.policy import sources
from vetted.trust.identity import PublicKey

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
MANAGED = "Managed by your organisation"


pytestmark = pytest.mark.usefixtures("no_machine_policy")  # conftest: policies come only from the tests


@pytest.fixture
def tiny(tmp_path, loc, signing_key):
    """A pinned, signed catalog of two tiny GGUF chat models."""
    src = tmp_path / "src"
    src.mkdir()
    models = [{"id": mid, "name": name, "publisher": "Test Pub", "license": "MIT",
               "path": str(write_gguf(src / f"{mid}.gguf", chat_template=TEMPLATE, extra={"test.model": mid}))}
              for mid, name in (("tiny", "Tiny Chat"), ("other", "Other Tiny"))]
    cat = build(tmp_path / "cat", signing_key[0], models=models)
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    return cat


def policy_file(tmp_path: Path, doc: dict | str, mode: int = 0o600) -> Path:
    """A policy document on disk; a `str` is written as is (for malformed ones)."""
    p = tmp_path / "policies" / "policy.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(doc if isinstance(doc, str) else json.dumps({"schema": "vetted.policy/1", **doc}))
    os.chmod(p, mode)
    return p


def digest_of(cat: Path, model_id: str) -> str:
    doc = json.loads(cat.read_text())
    return next(m for m in doc["models"] if m["id"] == model_id)["files"][0]["sha256"]


def window(qtbot, loc, wait_rows: bool = True):
    """The window over a fresh application object (which reads the policy in force now)."""
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    w = MainWindow(Vetted(loc, engine_factory=FakeEngine))
    qtbot.addWidget(w)
    w.show()
    if wait_rows:
        qtbot.waitUntil(lambda: w.discover.model.rowCount() > 0, timeout=30_000)
    qtbot.waitUntil(lambda: w.policy.policy is not None, timeout=10_000)  # read through the runner
    return w


def shown(label) -> bool:
    """Visible on its page (the page itself may be behind another in the stack)."""
    return not label.isHidden() and bool(label.text())


# -- the Policy page -------------------------------------------------------------------------------


def test_the_policy_page_lists_every_rule_with_its_value_and_source(qtbot, tmp_path, loc, tiny, signing_key,
                                                                    monkeypatch) -> None:
    blocked = "ab" * 32
    (tmp_path / "collected").mkdir()  # the administrator's collection folder exists
    path = policy_file(tmp_path, {
        "catalogs": {"allowed": [{"location": str(tiny),
                                  "signers": [{"kind": "key", "public_key_pem": signing_key[1].read_text()}]}],
                     "users_may_add": False},
        "models": {"blocked_digests": [blocked], "require_publisher_signature": False},
        "safety": {"max": {"harmbench_attack_success_rate": 0.2}, "require_spotcheck": True},
        "network": {"mode": "catalog_sources"},
        "settings": {"transfers.min_rate": 65536},
        "audit": {"copy_to": str(tmp_path / "collected" / "audit.jsonl")},
    })
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    w = window(qtbot, loc)
    w.go("Policy")
    page = w.policy
    assert page.state.text() == f"🔒 {MANAGED}" and page.broken_box.isHidden()
    assert str(path) in page.documents.text()
    rules = page.rules()
    expected = w.app.policy().rules()
    assert [r for r, _v, _s in rules] == [r.name for r in expected]
    assert {r for r, _v, _s in rules} >= {"catalogs.allowed", "catalogs.users_may_add", "models.blocked_digests",
                                          "safety.require_spotcheck", "safety.max.harmbench_attack_success_rate",
                                          "network.mode", "settings.transfers.min_rate", "audit.copy_to"}
    assert all(source == str(path) for _r, _v, source in rules)
    values = {r: v for r, v, _s in rules}
    assert str(tiny) in values["catalogs.allowed"] and "public key sha256:" in values["catalogs.allowed"]
    assert values["catalogs.users_may_add"] == "no"
    assert values["models.blocked_digests"] == blocked
    assert values["safety.max.harmbench_attack_success_rate"] == "at most 20%"
    assert values["settings.transfers.min_rate"] == "65536"
    # every other page says the app is managed, where it matters
    assert shown(w.discover.policy_note) and MANAGED in w.discover.policy_note.text()
    qtbot.waitUntil(lambda: shown(w.settings_page.managed), timeout=10_000)
    settings_text = w.settings_page.text()
    assert str(tiny) in settings_text and f"{MANAGED}. " in settings_text
    assert str(path) in w.settings_page.catalogs.rows[0]["managed"]
    w.close()


def test_without_a_policy_the_page_says_not_managed_and_nothing_is_locked(qtbot, loc, tiny) -> None:
    w = window(qtbot, loc)
    page = w.policy
    assert page.state.text() == "Not managed: no organisation policy applies to this machine."
    assert page.rules() == [] and page.broken_box.isHidden() and page.documents.isHidden()
    assert w.discover.policy_note.isHidden()
    qtbot.waitUntil(lambda: w.settings_page.transfers["min_rate"][0].text() != "…", timeout=10_000)
    assert all(lock.text() == "" for _value, lock in w.settings_page.transfers.values())
    assert w.settings_page.managed.isHidden()
    w.close()


@pytest.mark.parametrize("broken", ["malformed", "group_writable"])
def test_a_broken_policy_shows_the_fail_closed_message_and_no_download(qtbot, tmp_path, loc, tiny, monkeypatch,
                                                                       broken) -> None:
    if broken == "malformed":
        path = policy_file(tmp_path, '{"schema": "vetted.policy/1", "models": {')
        found = "not valid JSON"
    else:
        path = policy_file(tmp_path, {"models": {"blocked_digests": []}}, mode=0o620)
        found = "writable by its group"
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    w = window(qtbot, loc, wait_rows=False)
    page = w.policy
    assert not page.broken_box.isHidden()
    message = page.broken.text()
    assert message.startswith("✖ Your organisation's policy cannot be used")
    assert str(path) in message and found in message and "administrator" in message
    assert "broken" in page.state.text()
    # Discover: no download is offered, and the reason is there in words
    d = w.discover
    qtbot.waitUntil(lambda: shown(d.policy_note), timeout=10_000)
    assert str(path) in d.policy_note.text() and found in d.policy_note.text()
    qtbot.waitUntil(lambda: "refused" in d.status.text(), timeout=30_000)  # the catalog fails closed too
    assert d.model.rowCount() == 0
    assert not d.page.download.isEnabled()
    assert shown(d.page.note) and str(path) in d.page.note.text() and found in d.page.note.text()
    assert "Nothing can be downloaded" in d.page.note.text()
    # Settings says so too
    qtbot.waitUntil(lambda: shown(w.settings_page.managed), timeout=10_000)
    assert "broken" in w.settings_page.managed.text()
    w.close()


# -- locks on Settings -----------------------------------------------------------------------------


def test_a_locked_transfer_setting_shows_the_lock_and_its_source_on_settings(qtbot, tmp_path, loc, tiny,
                                                                             monkeypatch) -> None:
    s = Settings.load(loc)  # the person asked for a slower minimum: the policy's value wins
    s.transfers = type(s.transfers)(min_rate=1024)
    s.save(loc)
    path = policy_file(tmp_path, {"settings": {"transfers.min_rate": 65536, "transfers.connections": 1}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    w = window(qtbot, loc)
    w.go("Settings")
    page = w.settings_page
    value, lock = page.transfers["min_rate"]
    qtbot.waitUntil(lambda: value.text() != "…", timeout=10_000)
    assert value.text().startswith("64 KiB/s")
    assert lock.text() == f"🔒 {MANAGED}" and lock.isVisible()
    assert "settings.transfers.min_rate" in lock.toolTip() and str(path) in lock.toolTip()
    assert lock.toolTip() == value.toolTip()
    conns, conns_lock = page.transfers["connections"]  # e.g. a proxy that counts connections per client
    assert conns.text() == "1 (one connection per file)" and conns_lock.text() == f"🔒 {MANAGED}"
    assert "settings.transfers.connections" in conns_lock.toolTip()
    for name in ("stall_timeout", "window"):  # not locked: says so, no lock
        other_value, other_lock = page.transfers[name]
        assert "🔒" not in other_lock.text() and other_lock.toolTip() == ""
    assert shown(page.managed) and MANAGED in page.managed.text()
    w.close()


# -- Download, blocked -----------------------------------------------------------------------------


def test_a_blocked_digest_disables_download_for_that_model_with_the_rule_named(qtbot, tmp_path, loc, tiny,
                                                                              monkeypatch) -> None:
    path = policy_file(tmp_path, {"models": {"blocked_digests": [digest_of(tiny, "other")]}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    w = window(qtbot, loc)
    d = w.discover
    assert d.select_id("tiny")
    assert d.page.download.isEnabled() and d.page.note.text() == ""
    assert d.select_id("other")
    assert not d.page.download.isEnabled()
    note = d.page.note.text()
    assert shown(d.page.note)
    assert "does not allow downloading" in note and "rule models.blocked_digests" in note and str(path) in note
    assert digest_of(tiny, "other") in note
    assert "rule models.blocked_digests" in d.page.download.toolTip()
    assert d.select_id("tiny") and d.page.download.isEnabled() and d.page.note.text() == ""

    # the core decides anyway: a download that gets through the door is refused, naming rule and source
    w.downloads.add(str(tiny), "other", "Other Tiny")
    item = w.downloads.items["other"]
    qtbot.waitUntil(lambda: item.state in ("done", "refused"), timeout=30_000)
    verdict = item.info.text()
    assert item.state == "refused" and "Not installed" in verdict
    assert "🔒 Refused by your organisation's policy" in verdict
    assert "rule models.blocked_digests" in verdict and str(path) in verdict
    w.close()


# -- Chat, refused ---------------------------------------------------------------------------------


def test_a_chat_the_policy_refuses_names_the_rule_in_the_chat_status(qtbot, tmp_path, loc, tiny,
                                                                    monkeypatch) -> None:
    from vetted.core import Vetted

    Vetted(loc, engine_factory=FakeEngine).pull("tiny")  # installed before the policy came
    path = policy_file(tmp_path, {"safety": {"require_spotcheck": True}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    w = window(qtbot, loc)
    chat = w.chat
    qtbot.waitUntil(lambda: chat.model.count() == 1, timeout=10_000)
    w.chat_with("tiny")
    chat.input.setPlainText("Hello")
    chat.send()
    qtbot.waitUntil(lambda: not chat.busy, timeout=10_000)
    status = chat.status.text()
    assert status.startswith("✖ 🔒 Refused by your organisation's policy: model tiny")
    assert "rule safety.require_spotcheck" in status and str(path) in status
    assert "spot-check" in status  # what to do: the spot-check is allowed before first use
    assert not chat.banner.isVisible()  # not an engine crash
    w.close()
