"""Settings ▸ Chat defaults: what a new chat starts from (core/chat_defaults.py).

Global default parameters and threads, a model's own defaults on top of them, and presets
(built-in "Precise", "Balanced", "Creative", plus the person's own). A new chat takes the
model's defaults, else the global ones — never the previous chat's — so this is where a
person changes how chats start. Values are checked by the core (`ChatDefaults.clean`); a
value refused is shown with why, and nothing is saved.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QPushButton,
    QSpinBox, QVBoxLayout, QWidget,
)

from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.chat_params import seed_box, seed_value
from vetted.textsafe import one_line

GLOBAL = ""  # the scope combo's data for "all models"


class ChatDefaultsPanel(QWidget):
    def __init__(self, runner: Runner, prefs: QSettings | None = None) -> None:
        super().__init__()
        self.runner = runner
        self.prefs = prefs
        self.setAccessibleName("Chat defaults")
        self.scope = QComboBox(accessibleName="Defaults for")
        self.scope.addItem("All models (global defaults)", GLOBAL)
        self.own = QCheckBox("This model has its own defaults", accessibleName="This model has its own defaults")
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1,
                                          accessibleName="Default temperature")
        self.top_p = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, accessibleName="Default top-p")
        self.top_k = QSpinBox(minimum=0, maximum=1000, accessibleName="Default top-k")
        self.repeat_penalty = QDoubleSpinBox(minimum=0.5, maximum=2.0, singleStep=0.05,
                                             accessibleName="Default repeat penalty")
        self.max_tokens = QSpinBox(minimum=1, maximum=32768, accessibleName="Default maximum reply tokens")
        self.n_ctx = QSpinBox(minimum=256, maximum=131072, singleStep=256, accessibleName="Default context length")
        self.n_threads = QSpinBox(minimum=0, maximum=256, accessibleName="Threads")
        self.n_threads.setSpecialValueText("automatic (physical cores)")
        self.seed = seed_box("Default seed")
        self.system = QLineEdit(placeholderText="(none)", accessibleName="Default system prompt")
        self.preset = QComboBox(accessibleName="Preset")
        self.apply_preset = QPushButton("Apply preset", accessibleName="Apply the preset's values to the form")
        self.save_preset = QPushButton("Save as preset…", accessibleName="Save these sampling values as a preset")
        self.delete_preset = QPushButton("Delete preset", accessibleName="Delete the chosen preset")
        self.save = QPushButton("Save defaults", accessibleName="Save the chat defaults")
        self.reset = QPushButton("Revert", accessibleName="Show the saved defaults again")
        self.status = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText, accessibleName="Chat defaults status")

        # numbers at a number's width, not the page's (the system prompt is text: it grows)
        for field in (self.temperature, self.top_p, self.top_k, self.repeat_penalty, self.max_tokens, self.n_ctx,
                      self.n_threads, self.seed):
            field.setMaximumWidth(220)
        self.scope.setMaximumWidth(420)
        self.preset.setMaximumWidth(260)
        form = QFormLayout()
        form.addRow("Defaults for", self.scope)
        form.addRow("", self.own)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Max reply tokens", self.max_tokens)
        form.addRow("Context length", self.n_ctx)
        form.addRow("Threads", self.n_threads)
        form.addRow("Seed", self.seed)
        form.addRow("System prompt", self.system)
        presets = QHBoxLayout()
        for w in (self.preset, self.apply_preset, self.save_preset, self.delete_preset):
            presets.addWidget(w)
        presets.addStretch(1)
        form.addRow("Preset", presets)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save)
        buttons.addWidget(self.reset)
        buttons.addStretch(1)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addLayout(form)
        v.addLayout(buttons)
        v.addWidget(self.status)
        order = [self.scope, self.own, self.temperature, self.top_p, self.top_k, self.repeat_penalty,
                 self.max_tokens, self.n_ctx, self.n_threads, self.seed, self.system, self.preset,
                 self.apply_preset, self.save_preset, self.delete_preset, self.save, self.reset]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)

        self.scope.currentIndexChanged.connect(lambda _i: self.show_saved())
        self.own.toggled.connect(self._own_toggled)
        self.apply_preset.clicked.connect(self._apply_preset)
        self.save_preset.clicked.connect(self._save_preset)
        self.delete_preset.clicked.connect(self._delete_preset)
        self.preset.currentIndexChanged.connect(lambda _i: self.delete_preset.setEnabled(self._is_own_preset()))
        self.save.clicked.connect(self.save_defaults)
        self.reset.clicked.connect(self.show_saved)
        self.show_saved()
        self.refresh_models()

    # -- reading
    def _defaults(self) -> Any:
        return self.runner.app.chat_defaults()

    def refresh_models(self) -> Job:
        app = self.runner.app
        return self.runner.run(lambda _job: [(m.model_id, m.name) for m in app.models()], key="chat_defaults.models",
                               on_done=self._fill_models,
                               on_failed=lambda e: self.status.setText("✖ " + error_text(e)))

    def _fill_models(self, models: list[tuple[str, str]]) -> None:
        keep = self.scope.currentData()
        self.scope.blockSignals(True)
        while self.scope.count() > 1:
            self.scope.removeItem(1)
        for mid, name in models:
            self.scope.addItem(f"{one_line(name)} ({one_line(mid)})", mid)
        self.scope.setCurrentIndex(max(0, self.scope.findData(keep)))
        self.scope.blockSignals(False)

    def show_saved(self) -> None:
        """The saved values for the chosen scope (a model without its own: the global ones)."""
        try:
            d = self._defaults()
        except Exception as exc:  # noqa: BLE001 (an unreadable file: say so, offer the built-in values)
            from vetted.core.chat_defaults import ChatDefaults

            d = ChatDefaults()
            self.status.setText("✖ " + error_text(exc))
        mid = self.scope.currentData() or None
        self.own.setVisible(mid is not None)
        self.own.blockSignals(True)
        self.own.setChecked(bool(mid and mid in d.models))
        self.own.blockSignals(False)
        self._show_values(d.for_model(mid))
        self._set_editable(mid is None or self.own.isChecked())
        self.preset.clear()
        self._own_presets = set(d.presets)
        for name in d.all_presets():
            self.preset.addItem(name + ("" if name in d.presets else " (built in)"), name)
        self._presets = d.all_presets()
        self.delete_preset.setEnabled(self._is_own_preset())

    def _show_values(self, v: dict[str, Any]) -> None:
        self.temperature.setValue(float(v["temperature"]))
        self.top_p.setValue(float(v["top_p"]))
        self.top_k.setValue(int(v["top_k"]))
        self.repeat_penalty.setValue(float(v["repeat_penalty"]))
        self.max_tokens.setValue(int(v["max_tokens"]))
        self.n_ctx.setValue(int(v["n_ctx"]))
        self.n_threads.setValue(int(v.get("n_threads") or 0))
        self.seed.setValue(v["seed"] if isinstance(v.get("seed"), int) else -1)
        self.system.setText(str(v.get("system_prompt") or ""))

    def values(self) -> dict[str, Any]:
        return {"temperature": round(self.temperature.value(), 2), "top_p": round(self.top_p.value(), 2),
                "top_k": self.top_k.value(), "repeat_penalty": round(self.repeat_penalty.value(), 2),
                "max_tokens": self.max_tokens.value(), "n_ctx": self.n_ctx.value(),
                "n_threads": self.n_threads.value(), "seed": seed_value(self.seed),
                "system_prompt": self.system.text()}

    def _set_editable(self, editable: bool) -> None:
        for w in (self.temperature, self.top_p, self.top_k, self.repeat_penalty, self.max_tokens, self.n_ctx,
                  self.n_threads, self.seed, self.system, self.apply_preset):
            w.setEnabled(editable)

    def _own_toggled(self, on: bool) -> None:
        self._set_editable(on)

    def _is_own_preset(self) -> bool:
        return self.preset.currentData() in getattr(self, "_own_presets", set())

    # -- changing
    def save_defaults(self) -> bool:
        app = self.runner.app
        mid = self.scope.currentData() or None
        try:
            d = self._defaults()
            if mid is None:
                d.set_global(self.values())
            else:
                d.set_model(mid, self.values() if self.own.isChecked() else None)
            app.save_chat_defaults(d)
        except Exception as exc:  # noqa: BLE001 (a value refused: shown, nothing saved)
            self.status.setText("✖ " + error_text(exc))
            return False
        if mid is None:
            self.status.setText("Saved. New chats start from these values (unless a model has its own).")
        elif self.own.isChecked():
            self.status.setText(f"Saved. New chats with {one_line(mid)} start from these values.")
        else:
            self.status.setText(f"Saved. New chats with {one_line(mid)} use the global defaults.")
        return True

    def _apply_preset(self) -> None:
        name = self.preset.currentData()
        if name in self._presets:
            v = {**self.values(), **self._presets[name]}
            self._show_values(v)
            self.status.setText(f"Preset {one_line(name)} applied to the form; Save keeps it.")

    def _save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Name of the preset:")
        if ok:
            self.save_preset_as(name)

    def save_preset_as(self, name: str) -> bool:
        try:
            d = self._defaults()
            d.save_preset(name, self.values())
            self.runner.app.save_chat_defaults(d)
        except Exception as exc:  # noqa: BLE001
            self.status.setText("✖ " + error_text(exc))
            return False
        self.show_saved()
        self.preset.setCurrentIndex(max(0, self.preset.findData(name.strip())))
        self.status.setText(f"Preset {one_line(name.strip())} saved.")
        return True

    def _delete_preset(self) -> None:
        name = self.preset.currentData()
        try:
            d = self._defaults()
            d.delete_preset(name)
            self.runner.app.save_chat_defaults(d)
        except Exception as exc:  # noqa: BLE001
            self.status.setText("✖ " + error_text(exc))
            return
        self.show_saved()
        self.status.setText(f"Preset {one_line(str(name))} deleted.")
