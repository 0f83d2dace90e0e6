"""Importing an air-gapped bundle from the desktop app: the Library's "Import bundle…"
drives the real core (real files, real signatures), with a fake engine behind chats."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from catalog_kit import build, make_model
from fake_engine import FakeEngine
from vetted.core.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey


@pytest.fixture
def bundle(tmp_path, signing_key) -> Path:
    from vetted.authoring.bundle import write_bundle

    models = [{"id": m, "name": m.title(), "publisher": "Org", "license": "MIT",
               "path": str(make_model(tmp_path / "src", name=f"{m}.gguf", size=200_000 + i))}
              for i, m in enumerate(("alpha", "beta"))]
    cat = build(tmp_path / "org", signing_key[0], models=models)
    return write_bundle(cat, ["alpha", "beta"], tmp_path / "org.vbundle").path


def window(qtbot, loc):
    from vetted.core import Vetted
    from vetted.gui.main_window import MainWindow

    w = MainWindow(Vetted(loc, engine_factory=FakeEngine))
    qtbot.addWidget(w)
    w.show()
    w.go("Library")
    return w


def test_import_bundle_installs_every_model_with_the_pinned_signer(qtbot, tmp_path, loc, bundle, signing_key,
                                                                   monkeypatch):
    s = Settings.load(loc)  # the organisation's signer was pinned here before, for a catalog not reachable here
    s.subscribe(CatalogSubscription(str(tmp_path / "usb-stick" / "catalog.json"),
                                    PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    w = window(qtbot, loc)
    lib = w.library
    chosen = []
    monkeypatch.setattr("vetted.gui.library.QFileDialog.getOpenFileName",
                        lambda *a, **k: (chosen.append(a[1]) or str(bundle), ""))
    lib.import_btn.click()
    assert chosen == ["Import a model bundle"]
    assert not lib.import_btn.isEnabled() and lib.import_bar.isVisible()
    qtbot.waitUntil(lambda: lib.import_job is None, timeout=30_000)
    assert lib.status.text().startswith("✔ Imported 2 model(s) from catalog org.test.catalog v1, signed by public key")
    qtbot.waitUntil(lambda: lib.table.rowCount() == 2, timeout=10_000)  # the core's "installed" events
    assert set(lib.model_ids()) == {"alpha", "beta"}
    assert all(lib.table.item(i, 2).text() == "✔ Verified: every byte matches its signature" for i in range(2))
    assert lib.import_btn.isEnabled() and lib.import_bar.isHidden()
    w.close()


def test_without_a_trusted_signer_the_app_asks_for_the_signers_key(qtbot, loc, bundle, signing_key, monkeypatch):
    w = window(qtbot, loc)
    lib = w.library
    asked = []

    def dialog(_parent, title, *_rest):
        asked.append(title)
        return (str(signing_key[1]), "") if "signer" in title else ("", "")

    monkeypatch.setattr("vetted.gui.library.QFileDialog.getOpenFileName", dialog)
    lib.import_bundle(str(bundle))
    qtbot.waitUntil(lambda: asked != [], timeout=30_000)
    assert asked == ["Public key of the catalog's signer"]
    qtbot.waitUntil(lambda: lib.status.text().startswith("✔ Imported 2 model(s)"), timeout=30_000)
    w.close()


def test_a_tampered_bundle_says_why_and_installs_nothing(qtbot, tmp_path, loc, bundle, signing_key):
    with tarfile.open(bundle) as tar:
        items = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    bad = tmp_path / "bad.vbundle"
    with tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in items:
            if info.name == "models/beta/beta.gguf":
                data = data[:-1] + bytes([data[-1] ^ 1])
            import io

            tar.addfile(info, io.BytesIO(data))
    w = window(qtbot, loc)
    lib = w.library
    lib.import_bundle(str(bad), str(signing_key[1]))
    qtbot.waitUntil(lambda: lib.import_job is None, timeout=30_000)
    text = lib.status.text()
    assert text.startswith("✖ Not imported; nothing was installed.")
    assert "beta.gguf" in text and "sha256" in text and "the signed catalog says" in text
    assert w.app.models() == []
    w.close()
