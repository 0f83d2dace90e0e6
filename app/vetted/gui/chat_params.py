"""The open chat's model and parameters: the model picker (only models that can chat are
offered; a base model is listed greyed out with "no chat template"), a preset, the seed
("random" — a fresh one per reply, so Regenerate gives another answer — or a number, to
reproduce a reply), the system prompt, temperature, reply length and context.

The picker's rows come from the runner (`Vetted.models` and `Vetted.chat_capability`, which
may read a GGUF header): never on the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QGridLayout, QGroupBox, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget,
)

from vetted.gui.bridge import Job, Runner, error_text
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.store.chats import Conversation

SAMPLING = ("temperature", "top_p", "top_k", "repeat_penalty")
CUSTOM = "Custom"
SEED_MAX = 2**31 - 1
MODEL_MIN_CHARS, MODEL_MAX_CHARS = 16, 32  # the picker's width, in characters, as the names need


def seed_box(name: str = "Seed") -> QSpinBox:
    """"random" (the lowest value) or a fixed number."""
    box = QSpinBox(minimum=-1, maximum=SEED_MAX, value=-1, accessibleName=name)
    box.setSpecialValueText("random")
    box.setToolTip("random: a fresh seed for every reply (Regenerate gives another answer).\n"
                   "A number: the same settings give the same reply again.")
    return box


def seed_value(box: QSpinBox) -> int | None:
    return None if box.value() < 0 else box.value()


class ChatParams(QGroupBox):
    changed = Signal()  # a value the person changed (not one shown for another chat)

    def __init__(self, runner: Runner) -> None:
        super().__init__("Model and parameters")
        self.runner = runner
        self.reasons: dict[str, str] = {}  # model id -> why it cannot chat
        self._extra: dict[str, Any] = {}  # the chat's parameters this box shows no control for
        self._loading = False
        self._chat_model: str | None = None  # the open chat's model (shown even if it cannot chat)
        self._presets: dict[str, dict[str, Any]] = {}

        self.model = QComboBox(accessibleName="Model (verified models that can chat)")
        self.model.setMinimumContentsLength(MODEL_MIN_CHARS)  # grows to the names listed (`_fill`)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.currentIndexChanged.connect(self._model_tip)
        self.preset = QComboBox(accessibleName="Preset")
        self.preset.setToolTip("Sets temperature, top-p, top-k and repeat penalty together")
        self.seed = seed_box()
        self.system = QLineEdit(placeholderText="System prompt (optional)", accessibleName="System prompt")
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=0.7,
                                          accessibleName="Temperature")
        self.max_tokens = QSpinBox(minimum=1, maximum=32768, value=512, accessibleName="Maximum reply tokens")
        self.n_ctx = QSpinBox(minimum=256, maximum=131072, singleStep=256, value=4096,
                              accessibleName="Context length")
        self.save_defaults = QPushButton("Save as defaults",
                                         accessibleName="Use these parameters for new chats with this model")
        self.save_defaults.clicked.connect(self.save_as_model_defaults)
        self.note = QLabel(textFormat=Qt.TextFormat.PlainText, accessibleName="Parameters note")

        g = QGridLayout(self)
        g.addWidget(QLabel("Model"), 0, 0)
        g.addWidget(self.model, 0, 1, 1, 3)
        g.addWidget(QLabel("Preset"), 0, 4)
        g.addWidget(self.preset, 0, 5)
        g.addWidget(QLabel("Seed"), 0, 6)
        g.addWidget(self.seed, 0, 7)
        g.addWidget(QLabel("System prompt"), 1, 0)
        g.addWidget(self.system, 1, 1, 1, 7)
        g.addWidget(QLabel("Temperature"), 2, 0)
        g.addWidget(self.temperature, 2, 1)
        g.addWidget(QLabel("Max tokens"), 2, 2)
        g.addWidget(self.max_tokens, 2, 3)
        g.addWidget(QLabel("Context"), 2, 4)
        g.addWidget(self.n_ctx, 2, 5)
        g.addWidget(self.save_defaults, 2, 6, 1, 2)
        g.addWidget(self.note, 3, 0, 1, 8)
        g.setColumnStretch(1, 1)
        g.setColumnStretch(3, 1)
        g.setColumnStretch(5, 1)
        self.note.hide()
        for label in self.findChildren(QLabel):  # the text beside a control is never cut
            label.setMinimumWidth(label.sizeHint().width())
        for spin in (self.temperature, self.max_tokens, self.n_ctx, self.seed):
            spin.setMinimumWidth(70)
        self.preset.setMinimumContentsLength(8)
        self.save_defaults.setToolTip("New chats with this model start from these parameters")

        self.model.currentIndexChanged.connect(self._changed)
        self.system.editingFinished.connect(self._changed)
        self.preset.activated.connect(self._apply_preset)
        for w in (self.temperature, self.max_tokens, self.n_ctx, self.seed):
            w.valueChanged.connect(self._changed)
        self.temperature.valueChanged.connect(lambda _v: self._show_preset())
        self.fill_presets()

    def tab_order(self) -> list[QWidget]:
        return [self.model, self.preset, self.seed, self.system, self.temperature, self.max_tokens, self.n_ctx,
                self.save_defaults]

    # -- models
    def refresh_models(self, on_done: Callable[[], None], on_failed: Callable[[BaseException], None],
                       keep: Callable[[], str | None]) -> Job:
        app = self.runner.app

        def job(_job: Job) -> list[tuple[str, str, str]]:
            rows = []
            for m in app.models():
                if m.state != "verified":
                    continue
                cap = app.chat_capability(m.model_id)
                rows.append((m.model_id, m.name, "" if cap.can_chat else cap.reason))
            return rows

        def fill(rows: list[tuple[str, str, str]]) -> None:
            try:
                wanted = keep()
            except Exception:  # noqa: BLE001 (the open chat went away meanwhile)
                wanted = None
            self._fill(rows, wanted or self.model.currentData())
            on_done()

        return self.runner.run(job, key="chat.models", on_done=fill, on_failed=on_failed)

    def _fill(self, rows: list[tuple[str, str, str]], keep: str | None) -> None:
        """Models that can chat first; the others greyed out with why. A model that cannot
        chat is never chosen for you: only when the open chat already uses it."""
        self.reasons = {mid: why for mid, _name, why in rows if why}
        items = QStandardItemModel(self.model)
        names = [one_line(name) or one_line(mid) for mid, name, _why in rows]
        longest = 0
        for mid, name, why in sorted(rows, key=lambda r: bool(r[2])):
            label = one_line(name) or one_line(mid)  # the name; the id is in the tooltip
            if names.count(label) > 1:  # two models of one name: the id tells them apart
                label = f"{label} ({one_line(mid)})"
            if not why:
                longest = max(longest, len(label))
            item = QStandardItem(label + (" — no chat template" if why.startswith("no chat template") else
                                          f" — {one_line(why)}" if why else ""))
            item.setData(mid, Qt.ItemDataRole.UserRole)
            item.setToolTip(one_line(mid) + (f"\n{one_line(why)}" if why else ""))
            if why:
                item.setEnabled(False)
            items.appendRow(item)
        self.model.setMinimumContentsLength(max(MODEL_MIN_CHARS, min(longest + 1, MODEL_MAX_CHARS)))
        self._loading = True
        self.model.blockSignals(True)
        self.model.setModel(items)
        idx = self.model.findData(keep) if keep else -1
        if idx < 0 or (keep in self.reasons and not self._chat_uses(keep)):
            idx = next((i for i, r in enumerate(sorted(rows, key=lambda r: bool(r[2]))) if not r[2]), -1)
        self.model.setCurrentIndex(idx)
        self.model.blockSignals(False)
        self._loading = False
        self._model_tip()

    def _model_tip(self, *_a: Any) -> None:
        """The chosen model's id (and why it cannot chat), on hover."""
        i = self.model.currentIndex()
        self.model.setToolTip(self.model.itemData(i, Qt.ItemDataRole.ToolTipRole) or "" if i >= 0 else "")

    def _chat_uses(self, model_id: str) -> bool:
        return self._chat_model == model_id

    def choose_model(self, model_id: str) -> None:
        idx = self.model.findData(model_id)
        if idx >= 0:
            self.model.setCurrentIndex(idx)

    def chosen_model(self) -> str | None:
        mid = self.model.currentData()
        return None if mid is None or mid in self.reasons else str(mid)

    def cannot_chat(self) -> str:
        """Why the chosen model cannot chat ("" when it can, or while the list loads)."""
        mid = self.model.currentData()
        return self.reasons.get(mid, "") if mid is not None else ""

    # -- a chat's values
    def show_chat(self, conv: Conversation) -> None:
        self.fill_presets()  # the person may have saved one in Settings meanwhile (a small file)
        self._loading = True
        widgets = (self.model, self.system, self.temperature, self.max_tokens, self.n_ctx, self.seed)
        for w in widgets:
            w.blockSignals(True)
        self._chat_model = conv.model_id
        idx = self.model.findData(conv.model_id)
        if idx >= 0:
            self.model.setCurrentIndex(idx)
        self.system.setText(conv.system_prompt)
        p = conv.params
        self.temperature.setValue(float(p.get("temperature", 0.7)))
        self.max_tokens.setValue(int(p.get("max_tokens", 512)))
        self.n_ctx.setValue(int(p.get("n_ctx", 4096)))
        seed = p.get("seed")
        self.seed.setValue(seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else -1)
        self._extra = {k: p[k] for k in ("top_p", "top_k", "repeat_penalty", "n_threads") if k in p}
        for w in widgets:
            w.blockSignals(False)
        self._loading = False
        self._show_preset()

    def values(self) -> dict[str, Any]:
        """The chat's parameters as shown (with "system_prompt")."""
        return {**self._extra, "temperature": round(self.temperature.value(), 2),
                "max_tokens": self.max_tokens.value(), "n_ctx": self.n_ctx.value(), "seed": seed_value(self.seed),
                "system_prompt": self.system.text()}

    def _changed(self, *_a: Any) -> None:
        if not self._loading:
            self.changed.emit()

    # -- presets
    def fill_presets(self) -> None:
        try:
            presets = self.runner.app.chat_defaults().all_presets()
        except Exception as exc:  # noqa: BLE001 (a broken defaults file: the built-in ones)
            from vetted.core.chat_defaults import PRESETS

            presets = dict(PRESETS)
            self.note.setText("✖ " + error_text(exc))
            self.note.show()
        self._presets = presets
        self.preset.blockSignals(True)
        self.preset.clear()
        self.preset.addItem(CUSTOM, None)
        for name in presets:
            self.preset.addItem(name, name)
        self.preset.blockSignals(False)
        self._show_preset()

    def _apply_preset(self, _index: int) -> None:
        name = self.preset.currentData()
        if not name:
            return
        values = self._presets[name]
        self._loading = True
        self.temperature.setValue(float(values.get("temperature", self.temperature.value())))
        self._extra.update({k: v for k, v in values.items() if k in SAMPLING and k != "temperature"})
        self._loading = False
        self.changed.emit()
        self._show_preset()

    def _show_preset(self) -> None:
        """The preset whose values the chat has, else "Custom"."""
        now = {**self._extra, "temperature": round(self.temperature.value(), 2)}
        match = next((n for n, v in self._presets.items()
                      if all(abs(float(now.get(k, -99)) - float(x)) < 1e-6 for k, x in v.items())), None)
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(max(0, self.preset.findData(match)) if match else 0)
        self.preset.blockSignals(False)

    def save_as_model_defaults(self) -> None:
        mid = self.chosen_model()
        if mid is None:
            return
        app = self.runner.app
        try:
            d = app.chat_defaults()
            values = self.values()
            d.set_model(mid, {**d.models.get(mid, {}), **values})
            app.save_chat_defaults(d)
        except Exception as exc:  # noqa: BLE001 (shown; nothing else changes)
            self.note.setText("✖ " + error_text(exc))
        else:
            self.note.setText(f"New chats with {one_line(mid)} start from these parameters.")
        self.note.show()
