"""The app's look: system, light or dark, on Qt's Fusion style.

Fusion looks the same on every platform, draws a visible focus ring on every control
(buttons, lists, tables, fields) and takes its colours entirely from the palette, so one
palette per mode is the whole theme: no style sheets to keep in step. "system" follows
the desktop's colour scheme where Qt can read it (`QStyleHints.colorScheme`), light
otherwise. The choice is a preference of this person on this machine, kept with the
window's other preferences in `gui.ini` (`prefs`), applied at start-up (gui/app.py) and
live from Settings or View ▸ Theme.

Pages that need to know whether the app is dark (to pick readable colours for their
own highlights) ask `is_dark(widget)`, which reads the palette, never the preference.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QGroupBox, QStyleFactory, QWidget

MODES = (("system", "System"), ("light", "Light"), ("dark", "Dark"))
THEME_KEY = "appearance/theme"
ENTER_SENDS_KEY = "chat/enter_sends"  # the contract's send-key preference (bool, default True)

_R = QPalette.ColorRole
_G = QPalette.ColorGroup


def prefs(config_dir: Path | str) -> QSettings:
    """The window's preferences file (gui.ini in the config folder: `VETTED_HOME` moves it
    with everything else). Every page opens it this way, so all read the same values."""
    return QSettings(str(Path(config_dir) / "gui.ini"), QSettings.Format.IniFormat)


def _palette(colours: dict[QPalette.ColorRole, str], disabled: dict[QPalette.ColorRole, str]) -> QPalette:
    p = QPalette()
    for role, c in colours.items():
        p.setColor(role, QColor(c))
    for role, c in disabled.items():
        p.setColor(_G.Disabled, role, QColor(c))
    return p


def light_palette() -> QPalette:
    return _palette({
        _R.Window: "#f3f3f3", _R.WindowText: "#1b1b1b", _R.Base: "#ffffff", _R.AlternateBase: "#f0f3f7",
        _R.ToolTipBase: "#ffffdc", _R.ToolTipText: "#1b1b1b", _R.PlaceholderText: "#6b6b6b",
        _R.Text: "#1b1b1b", _R.Button: "#e9e9e9", _R.ButtonText: "#1b1b1b", _R.BrightText: "#b00020",
        _R.Light: "#ffffff", _R.Midlight: "#e3e3e3", _R.Mid: "#b8b8b8", _R.Dark: "#8a8a8a", _R.Shadow: "#5a5a5a",
        _R.Highlight: "#2a6fd6", _R.HighlightedText: "#ffffff", _R.Link: "#1a5fb4", _R.LinkVisited: "#6a3d9a",
    }, {_R.WindowText: "#8a8a8a", _R.Text: "#8a8a8a", _R.ButtonText: "#8a8a8a", _R.Highlight: "#a9a9a9"})


def dark_palette() -> QPalette:
    return _palette({
        # Fusion draws field and group frames in the window colour darkened, so fields stand
        # out by their fill: Base is clearly darker than Window (and Mid clearly lighter)
        _R.Window: "#2a2c30", _R.WindowText: "#e8e8e8", _R.Base: "#18191c", _R.AlternateBase: "#222327",
        _R.ToolTipBase: "#35373c", _R.ToolTipText: "#e8e8e8", _R.PlaceholderText: "#9a9a9a",
        _R.Text: "#e8e8e8", _R.Button: "#363840", _R.ButtonText: "#e8e8e8", _R.BrightText: "#ff6b6b",
        _R.Light: "#4b4e55", _R.Midlight: "#40434a", _R.Mid: "#62666e", _R.Dark: "#141517", _R.Shadow: "#000000",
        _R.Highlight: "#4c8dff", _R.HighlightedText: "#0b0b0b", _R.Link: "#8ab4f8", _R.LinkVisited: "#c58af9",
    }, {_R.WindowText: "#7c7c7c", _R.Text: "#7c7c7c", _R.ButtonText: "#7c7c7c", _R.Highlight: "#4a4a4a"})


def system_is_dark() -> bool:
    """The desktop's colour scheme, where Qt can read it (Qt ≥ 6.5); light when unknown."""
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


class _Theme(QObject):
    changed = Signal(str)  # the mode now applied: pages that draw their own colours follow

    def __init__(self) -> None:
        super().__init__()
        self.mode = "system"


_theme: _Theme | None = None


def notifier() -> _Theme:
    """The one object that says when the theme changed (`notifier().changed`)."""
    global _theme
    if _theme is None:
        _theme = _Theme()
    return _theme


def apply_theme(qapp: QApplication, mode: str) -> str:
    """Fusion with the palette of `mode` ("system", "light" or "dark"; anything else is
    "system"), on the whole application at once. Returns the mode applied."""
    if mode not in {m for m, _label in MODES}:
        mode = "system"
    if qapp.style().name().lower() != "fusion":
        qapp.setStyle(QStyleFactory.create("Fusion"))
    dark = mode == "dark" or (mode == "system" and system_is_dark())
    qapp.setPalette(dark_palette() if dark else light_palette())
    # Qt tells the widgets through posted events; deliver them now, so whoever follows
    # `changed` (or asks `is_dark`) reads the new palette from its widgets
    QApplication.sendPostedEvents(None, QEvent.Type.ApplicationPaletteChange)
    QApplication.sendPostedEvents(None, QEvent.Type.PaletteChange)
    n = notifier()
    n.mode = mode
    n.changed.emit(mode)
    return mode


def current_mode() -> str:
    """The mode last applied ("system" before any)."""
    return notifier().mode


def is_dark(widget: QWidget | None = None) -> bool:
    """Whether `widget` (or the application) is drawn dark: its window colour's lightness."""
    palette = widget.palette() if widget is not None else QApplication.palette()
    return palette.color(_R.Window).lightness() < 128


def saved_mode(settings: QSettings) -> str:
    mode = str(settings.value(THEME_KEY, "system"))
    return mode if mode in {m for m, _label in MODES} else "system"


def set_theme(settings: QSettings, mode: str) -> str:
    """Applies `mode` now and remembers it for the next start."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    mode = apply_theme(app, mode)
    settings.setValue(THEME_KEY, mode)
    settings.sync()
    return mode


# Colours for states a page draws itself (a refused download's bar, an error): readable
# on both palettes (at least 4.5:1 against the palette's Base and Window: `contrast`).
def danger(widget: QWidget | None = None) -> str:
    return "#ff7b72" if is_dark(widget) else "#b00020"


def success(widget: QWidget | None = None) -> str:
    return "#7ee787" if is_dark(widget) else "#1a7f37"


def contrast(a: str | QColor, b: str | QColor) -> float:
    """The WCAG contrast ratio of two colours (1 to 21; text wants at least 4.5)."""
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    la, lb = sorted((luminance(QColor(a)), luminance(QColor(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def bold_title(box: QGroupBox) -> None:
    """A group box's title in bold, its contents in the normal weight (a section heading
    that reads as one). Call once the box holds its widgets."""
    font = QFont(box.font())
    font.setBold(True)
    box.setFont(font)
    normal = QFont(font)
    normal.setBold(False)
    for child in box.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
        child.setFont(normal)
