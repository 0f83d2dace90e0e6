"""Settings that settle things, and the theme, driven through real widgets (pytest-qt).

The theme switch changes what real widgets are painted with (light and dark); the choice
is remembered and applied at start-up. From Settings a person adds a catalog and pins its
signer with the CLI's checks (a wrong key is refused, another signer for a pinned
location needs their confirmation), removes one, refreshes on demand; a catalog file
re-signed on disk shows its new version without a restart. The send key, the data folder
and the organisation's locks are there too.
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGroupBox, QLineEdit, QMessageBox, QPushButton, QTableWidget, QVBoxLayout, QWidget

from catalog_kit import build, rewrite_and_resign
from test_gui import fake_app, open_window, tiny  # noqa: F401 (fixtures)
from test_gui_policy import policy_file
from vetted.gui import theme
from vetted.policy import sources

WINDOW = QPalette.ColorRole.Window


@pytest.fixture(autouse=True)
def keep_palette(qapp):
    """Each test leaves the application's palette and theme as it found them."""
    palette = qapp.palette()
    yield
    qapp.setPalette(palette)
    theme.notifier().mode = "system"


def lightness(widget: QWidget) -> int:
    """How light the widget is actually painted, in its middle."""
    image = widget.grab().toImage()
    return image.pixelColor(image.width() // 2, image.height() // 2).lightness()


def test_light_and_dark_change_what_real_widgets_are_painted_with(qtbot, qapp) -> None:
    host = QWidget()
    layout = QVBoxLayout(host)
    edit, button, table = QLineEdit(), QPushButton("OK"), QTableWidget(3, 2)
    for w in (edit, button, table):
        layout.addWidget(w)
    qtbot.addWidget(host)
    host.resize(300, 300)
    host.show()

    assert theme.apply_theme(qapp, "dark") == "dark"
    assert qapp.style().name().lower() == "fusion"
    assert theme.is_dark(host) and theme.is_dark(button) and theme.current_mode() == "dark"
    assert table.palette().color(QPalette.ColorRole.Base).lightness() < 60
    dark_edit, dark_table = lightness(edit), lightness(table.viewport())
    assert dark_edit < 60 and dark_table < 60

    theme.apply_theme(qapp, "light")
    assert not theme.is_dark(host) and not theme.is_dark(button)
    assert host.palette().color(WINDOW).lightness() > 200
    assert lightness(edit) > 200 and lightness(table.viewport()) > 200
    assert theme.apply_theme(qapp, "no such mode") == "system"


def test_the_theme_is_chosen_in_settings_and_the_view_menu_and_remembered(qtbot, qapp, loc, tiny) -> None:  # noqa: F811
    w = open_window(qtbot, fake_app(loc, install=()))
    page = w.settings_page
    w.go("Settings")
    page.theme.setCurrentIndex(page.theme.findData("dark"))
    assert theme.is_dark(w) and theme.is_dark(page.catalogs.table)
    assert w.menus["theme_dark"].isChecked()
    stored = QSettings(str(loc.config / "gui.ini"), QSettings.Format.IniFormat)
    assert stored.value(theme.THEME_KEY) == "dark"

    w.menus["theme_light"].trigger()  # View ▸ Theme ▸ Light
    assert not theme.is_dark(w) and page.theme.currentData() == "light"
    assert theme.saved_mode(theme.prefs(loc.config)) == "light"
    w.close()


def test_the_saved_theme_is_applied_at_start_up(qtbot, qapp, loc) -> None:
    from vetted.core import Vetted
    from vetted.gui.app import start

    prefs = theme.prefs(loc.config)
    prefs.setValue(theme.THEME_KEY, "dark")
    prefs.sync()
    theme.apply_theme(qapp, "light")  # whatever was there before
    w = start(qapp, Vetted(loc))  # what `vetted` does before its event loop
    qtbot.addWidget(w)
    w.show()
    assert theme.current_mode() == "dark" and theme.is_dark(w) and theme.is_dark(w.nav)
    assert w.menus["theme_dark"].isChecked() and w.settings_page.theme.currentData() == "dark"
    assert qapp.style().name().lower() == "fusion"
    w.close()


def test_the_send_key_choice_is_stored_for_the_chat(qtbot, loc, tiny) -> None:  # noqa: F811
    w = open_window(qtbot, fake_app(loc, install=()))
    page = w.settings_page
    stored = lambda: QSettings(str(loc.config / "gui.ini"), QSettings.Format.IniFormat)  # noqa: E731
    assert page.enter_btn.isChecked()  # the default: Enter sends
    page.ctrl_enter_btn.click()
    assert stored().value(theme.ENTER_SENDS_KEY, True, type=bool) is False
    page.enter_btn.click()
    assert stored().value(theme.ENTER_SENDS_KEY, False, type=bool) is True
    w.close()


def test_the_data_folder_is_shown_and_opened(qtbot, loc, tiny, monkeypatch) -> None:  # noqa: F811
    opened = []
    monkeypatch.setattr("vetted.gui.settings_view.QDesktopServices.openUrl", lambda url: opened.append(url) or True)
    w = open_window(qtbot, fake_app(loc, install=()))
    page = w.settings_page
    assert page.data_path.text() == str(loc.data)
    page.open_data.click()
    assert [u.toLocalFile() for u in opened] == [str(loc.data)]
    w.close()


# -- catalogs ----------------------------------------------------------------------------------------


def second_catalog(tmp_path):
    from vetted.authoring.publish import generate_key

    key, pub = generate_key(tmp_path / "keys2")
    cat = build(tmp_path / "cat2", key, models=[{"id": "second", "name": "Second Model", "publisher": "P2",
                                                "license": "MIT", "path": str(make(tmp_path))}])
    return cat, key, pub


def make(tmp_path):
    from catalog_kit import make_model

    return make_model(tmp_path / "src2", "second.gguf")


def test_add_a_catalog_and_pin_its_signer_then_change_it_and_remove_it(qtbot, tmp_path, loc, tiny, signing_key,
                                                                       monkeypatch) -> None:  # noqa: F811
    cat, _key, pub = second_catalog(tmp_path)
    w = open_window(qtbot, fake_app(loc, install=()))
    w.go("Settings")
    panel = w.settings_page.catalogs
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=10_000)

    # the CLI's checks: a key that does not sign this catalog pins nothing usable...
    panel.location.setText(str(cat))
    panel.signer.use_key(str(tmp_path / "missing.pem"))
    panel.add_btn.click()
    qtbot.waitUntil(lambda: panel.status.text().startswith("✖"), timeout=10_000)
    assert "missing.pem" in panel.status.text()

    # ...the right key pins it, and Discover lists its models
    panel.signer.use_key(str(pub))
    panel.add_btn.click()
    qtbot.waitUntil(lambda: panel.status.text().startswith("✔ Pinned"), timeout=10_000)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=10_000)
    qtbot.waitUntil(lambda: any("Second Model" not in s and "version 1" in s for s in panel.states_shown())
                    and len([s for s in panel.states_shown() if s.startswith("✔")]) == 2, timeout=10_000)
    qtbot.waitUntil(lambda: "second" in [r.entry.id for r in w.catalogs.rows], timeout=10_000)

    # another signer for the same location: refused by the core, replaced only when confirmed
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    assert panel.select(str(cat))
    panel.repin_btn.click()
    assert panel.location.text() == str(cat)
    panel.signer.use_key(str(signing_key[1]))
    panel.add_btn.click()
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)
    assert "is pinned to public key" in asked[0]
    qtbot.waitUntil(lambda: panel.status.text().startswith("Not changed"), timeout=5_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    panel.location.setText(str(cat))
    panel.add_btn.click()
    qtbot.waitUntil(lambda: "(was public key" in panel.status.text(), timeout=10_000)
    assert "catalog.repin" in {r["action"] for r in w.app.audit_entries()}

    # remove: its row goes, the catalog is no longer used
    assert panel.select(str(cat))
    panel.remove_btn.click()
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=10_000)
    assert panel.rows[0]["location"] == str(tiny)
    qtbot.waitUntil(lambda: "second" not in [r.entry.id for r in w.catalogs.rows], timeout=10_000)
    assert "catalog.unpin" in {r["action"] for r in w.app.audit_entries()}
    w.close()


def test_a_re_signed_catalog_file_shows_its_new_version_without_a_restart(qtbot, loc, tiny,
                                                                         signing_key) -> None:  # noqa: F811
    w = open_window(qtbot, fake_app(loc, install=()))
    w.go("Settings")
    panel = w.settings_page.catalogs
    qtbot.waitUntil(lambda: any("version 1" in s for s in panel.states_shown()), timeout=10_000)
    assert str(tiny) in w.watcher.fs.files()

    def new_issue(doc):
        doc["version"] = 2
        doc["models"][0]["name"] = "Tiny Chat, reissued"

    rewrite_and_resign(tiny, signing_key[0], new_issue)
    qtbot.waitUntil(lambda: any("version 2" in s for s in panel.states_shown()), timeout=10_000)
    qtbot.waitUntil(lambda: "Tiny Chat, reissued" in [r.entry.name for r in w.catalogs.rows], timeout=10_000)

    with qtbot.waitSignal(w.catalogs.loaded, timeout=10_000):  # and on demand
        panel.refresh_btn.click()
    w.close()


def test_locked_catalog_settings_are_disabled_with_the_rule_named(qtbot, tmp_path, loc, tiny, signing_key,
                                                                  monkeypatch, no_machine_policy) -> None:  # noqa: F811
    from vetted.core import Vetted
    from vetted.policy.effective import PolicyRefused

    path = policy_file(tmp_path, {
        "catalogs": {"allowed": [{"location": str(tiny),
                                  "signers": [{"kind": "key", "public_key_pem": signing_key[1].read_text()}]}],
                     "users_may_add": False}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    w = open_window(qtbot, Vetted(loc))
    w.go("Settings")
    panel = w.settings_page.catalogs
    qtbot.waitUntil(lambda: not panel.add_lock.isHidden(), timeout=10_000)
    assert not panel.add_box.isEnabled()
    assert "rule catalogs.users_may_add" in panel.add_lock.text() and str(path) in panel.add_lock.text()
    assert panel.select(str(tiny))
    assert not panel.remove_btn.isEnabled() and not panel.repin_btn.isEnabled()
    assert "🔒" in panel.row_note.text() and str(path) in panel.row_note.text()
    assert "Managed by your organisation" in panel.states_shown()[0]
    with pytest.raises(PolicyRefused, match="catalogs.allowed"):  # the core refuses it anyway
        w.app.unpin_catalog(str(tiny))
    w.close()


def test_the_chat_defaults_panel_has_its_place_on_settings(qtbot, loc, tiny) -> None:  # noqa: F811
    from vetted.gui.chat_defaults import ChatDefaultsPanel

    w = open_window(qtbot, fake_app(loc, install=()))
    w.go("Settings")
    panels = w.settings_page.findChildren(ChatDefaultsPanel)
    assert panels == [w.settings_page.chat_defaults_panel] and panels[0].isVisible()
    w.close()


def test_catalog_watcher_survives_an_atomic_replace(qtbot, loc, tiny, signing_key) -> None:  # noqa: F811
    """An editor that writes a new file and renames it over the old one: still watched."""
    import os

    w = open_window(qtbot, fake_app(loc, install=()))
    panel = w.settings_page.catalogs
    w.go("Settings")
    qtbot.waitUntil(lambda: any("version 1" in s for s in panel.states_shown()), timeout=10_000)
    doc = json.loads(tiny.read_text())
    doc["version"] = 3
    tmp = tiny.with_name("catalog.json.new")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, tiny)
    from vetted.authoring.publish import sign_file_or_folder

    sign_file_or_folder(tiny, signing_key[0], tiny.with_name("catalog.json.sig"))
    qtbot.waitUntil(lambda: any("version 3" in s for s in panel.states_shown()), timeout=10_000)
    qtbot.waitUntil(lambda: str(tiny) in w.watcher.fs.files(), timeout=5_000)
    w.close()


# -- polish: contrast and field widths -------------------------------------------------------------


@pytest.mark.parametrize("palette", [theme.light_palette, theme.dark_palette], ids=["light", "dark"])
def test_state_colours_are_readable_and_fields_stand_out_on_both_palettes(qtbot, qapp, palette) -> None:
    p = palette()
    roles = QPalette.ColorRole
    qapp.setPalette(p)
    host = QWidget()
    qtbot.addWidget(host)
    for colour in (theme.success(host), theme.danger(host)):
        for role in (roles.Base, roles.Window, roles.AlternateBase):
            assert theme.contrast(colour, p.color(role)) >= 4.5, (colour, role)
    assert theme.contrast(p.color(roles.Text), p.color(roles.Base)) >= 7
    # a text field shows against the group's background: by its frame (Fusion draws it in the
    # window colour darkened) or by its fill; Mid lines show on both
    frame = p.color(roles.Window).darker(140)
    assert max(theme.contrast(frame, p.color(roles.Base)), theme.contrast(p.color(roles.Base),
                                                                          p.color(roles.Window))) >= 1.25
    assert theme.contrast(p.color(roles.Mid), p.color(roles.Window)) >= 1.5


def test_settings_fields_keep_their_size_and_the_catalog_column_stretches(qtbot, loc, tiny) -> None:  # noqa: F811
    from PySide6.QtWidgets import QAbstractSpinBox, QHeaderView

    w = open_window(qtbot, fake_app(loc))
    w.resize(1400, 900)
    w.go("Settings")
    page = w.settings_page
    qtbot.waitUntil(lambda: page.width() > 1000, timeout=2_000)
    spins = page.findChildren(QAbstractSpinBox)
    panel = page.chat_defaults_panel
    assert panel.temperature in spins
    for spin in (panel.temperature, panel.top_k, panel.n_ctx, panel.seed):
        assert spin.width() <= 220, spin.accessibleName()
    assert page.theme.width() <= 220
    header = page.catalogs.table.horizontalHeader()
    assert header.sectionResizeMode(0) == QHeaderView.ResizeMode.Stretch
    assert not header.stretchLastSection()
    for box in page.findChildren(QGroupBox):
        assert box.font().bold(), box.title()
    w.close()
