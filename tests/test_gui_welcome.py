"""The first run of an installed app: a Welcome page, with no catalog and no model yet.

Real widgets (pytest-qt, offscreen) over the real core; real signed files; policies as
real files (`VETTED_POLICY_EXTRA`, which can only tighten)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from catalog_kit import build, make_model
from fake_engine import FakeEngine
from vetted.authoring.publish import sign_file_or_folder
from vetted.core.settings import CatalogSubscription, Settings
from vetted.policy import sources
from vetted.trust.identity import PublicKey


pytestmark = pytest.mark.usefixtures("no_machine_policy")  # conftest: policies come only from the tests


def window(qtbot, loc):
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    w = MainWindow(Vetted(loc, engine_factory=FakeEngine))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.welcome.state is not None, timeout=10_000)
    return w


def policy(tmp_path: Path, doc: dict, monkeypatch) -> Path:
    p = tmp_path / "policies" / "policy.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"schema": "vetted.policy/1", **doc}))
    os.chmod(p, 0o600)
    monkeypatch.setenv(sources.EXTRA_ENV, str(p))
    return p


def test_a_first_run_opens_on_welcome_and_adding_a_catalog_leads_to_its_models(qtbot, tmp_path, loc,
                                                                               signing_key):
    cat = build(tmp_path / "org", signing_key[0])
    w = window(qtbot, loc)
    assert w.current_page() == "Welcome" and w.stack.currentWidget() is w.welcome
    page = w.welcome
    assert page.add_btn.isEnabled() and page.import_btn.isEnabled() and page.managed.isHidden()
    # a wrong signer first: refused, nothing pinned, the page says why
    page.location.setText(str(cat))
    page.add_catalog()
    qtbot.waitUntil(lambda: page.catalog_status.text().startswith("✖"), timeout=10_000)
    assert "choose a public key file" in page.catalog_status.text()
    page.catalog_signer.use_key(str(signing_key[1]))
    page.add_catalog()
    qtbot.waitUntil(lambda: page.catalog_status.text().startswith("✔"), timeout=10_000)
    assert f"Added {cat}" in page.catalog_status.text() and "public key sha256:" in page.catalog_status.text()
    assert w.current_page() == "Discover" and w.nav.item(0).text() == "Discover"  # welcome done
    qtbot.waitUntil(lambda: w.discover.model.rowCount() == 1, timeout=30_000)
    assert [s.location for s in Settings.load(loc).catalogs] == [str(cat)]
    w.close()


def test_checking_a_model_file_against_its_signature(qtbot, tmp_path, loc, signing_key):
    model = make_model(tmp_path / "handed-over", name="model.gguf")
    sig = tmp_path / "handed-over" / "model.gguf.sig"
    sign_file_or_folder(model, signing_key[0], sig)
    w = window(qtbot, loc)
    page = w.welcome
    page.model_file.setText(str(model))
    page.sig_file.setText(str(sig))
    page.check_signer.use_key(str(signing_key[1]))
    page.check_file()
    qtbot.waitUntil(lambda: page.check_status.text() != "Checking every byte…", timeout=10_000)
    assert page.check_status.text().startswith("✔ ") and "public key sha256:" in page.check_status.text()
    data = bytearray(model.read_bytes())
    data[1000] ^= 1
    model.write_bytes(bytes(data))
    page.check_file()
    qtbot.waitUntil(lambda: page.check_status.text() != "Checking every byte…", timeout=10_000)
    assert page.check_status.text().startswith("✖ ") and "sha256" in page.check_status.text()
    w.close()


def test_import_from_welcome_goes_to_the_library_import(qtbot, loc, monkeypatch):
    asked = []
    monkeypatch.setattr("vetted.gui.library.QFileDialog.getOpenFileName",
                        lambda _parent, title, *_a: (asked.append(title) or "", ""))
    w = window(qtbot, loc)
    w.welcome.import_btn.click()
    assert asked == ["Import a model bundle"] and w.current_page() == "Library"
    w.close()


def test_an_organisations_policy_preconfigures_the_first_run(qtbot, tmp_path, loc, signing_key, monkeypatch):
    cat = build(tmp_path / "org", signing_key[0])
    path = policy(tmp_path, {"catalogs": {"allowed": [{"location": str(cat), "signers": [
        {"kind": "key", "public_key_pem": signing_key[1].read_text()}]}], "users_may_add": False},
        "imports": {"allowed": False}}, monkeypatch)
    w = window(qtbot, loc)
    assert w.current_page() != "Welcome"  # the organisation's catalog is there: nothing to set up
    qtbot.waitUntil(lambda: w.discover.model.rowCount() == 1, timeout=30_000)
    page = w.welcome  # what it would say, had it been shown
    assert str(cat) in page.managed.text()
    assert not page.add_btn.isEnabled() and not page.location.isEnabled()
    assert "rule catalogs.users_may_add" in page.catalog_status.text() and str(path) in page.catalog_status.text()
    assert not page.import_btn.isEnabled() and "rule imports.allowed" in page.import_note.text()
    w.close()


def test_with_a_catalog_or_a_model_there_is_no_welcome(qtbot, tmp_path, loc, signing_key):
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(build(tmp_path / "org", signing_key[0])),
                                    PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    w = window(qtbot, loc)
    assert w.current_page() == "Discover" and all(w.nav.item(i).text() != "Welcome" for i in range(w.nav.count()))
    w.close()
