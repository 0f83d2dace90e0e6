"""What a new chat starts from: default parameters and presets, not the last chat's.

A new chat used to copy whatever the chat on screen had (its system prompt included),
so one experiment leaked into every later conversation. Now it starts from the model's
own defaults when the person saved some, else the global defaults, else the built-in
ones; presets ("Precise", "Balanced", "Creative", and the person's own) are named sets of
sampling parameters applied in one click. Kept as a small JSON file next to settings.json
(the organisation's policy locks no chat setting today; were it to, the lock would be
applied in `for_model`, as `PolicyGate.lock_transfers` does for transfers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vetted.errors import InputError
from vetted.paths import Locations

# key -> (type, lowest, highest); "seed": None means a fresh random seed per reply
PARAMS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "top_k": (int, 0, 1000),
    "repeat_penalty": (float, 0.5, 2.0),
    "max_tokens": (int, 1, 32768),
    "n_ctx": (int, 256, 131072),
    "n_threads": (int, 0, 256),  # 0: the machine's physical cores
    "seed": (int, 0, 2**31 - 1),
}
BUILT_IN: dict[str, Any] = {
    "temperature": 0.7, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1,
    "max_tokens": 512, "n_ctx": 4096, "n_threads": 0, "seed": None, "system_prompt": "",
}
SAMPLING = ("temperature", "top_p", "top_k", "repeat_penalty")
PRESETS: dict[str, dict[str, Any]] = {
    "Precise": {"temperature": 0.2, "top_p": 0.9, "top_k": 20, "repeat_penalty": 1.1},
    "Balanced": {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1},
    "Creative": {"temperature": 1.1, "top_p": 0.98, "top_k": 100, "repeat_penalty": 1.05},
}


def clean(values: dict[str, Any]) -> dict[str, Any]:
    """Only known keys, each of its type and in range (an `InputError` names the one that is not)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if k == "system_prompt":
            if not isinstance(v, str):
                raise InputError("system prompt", f"must be text, not {v!r}")
            out[k] = v
            continue
        if k not in PARAMS:
            raise InputError(f"chat setting {k!r}", "is not one of " + ", ".join([*PARAMS, "system_prompt"]))
        if k == "seed" and v is None:
            out[k] = None
            continue
        typ, lo, hi = PARAMS[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and float(v) != int(v)):
            raise InputError(f"chat setting {k}", f"must be a{'n integer' if typ is int else ' number'}, not {v!r}")
        if not lo <= v <= hi:
            raise InputError(f"chat setting {k}", f"must be between {lo:g} and {hi:g}, not {v}")
        out[k] = typ(v)
    return out


@dataclass
class ChatDefaults:
    """The person's saved defaults: global, per model, and their own presets."""

    global_: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def path(loc: Locations) -> Path:
        return loc.config / "chat_defaults.json"

    @classmethod
    def load(cls, loc: Locations) -> "ChatDefaults":
        p = cls.path(loc)
        if not p.exists():
            return cls()
        try:
            doc = json.loads(p.read_text("utf-8"))
            return cls(clean(doc.get("global") or {}),
                       {str(m): clean(v) for m, v in (doc.get("models") or {}).items()},
                       {str(n): clean(v) for n, v in (doc.get("presets") or {}).items()})
        except (ValueError, AttributeError, TypeError) as exc:
            raise InputError(f"chat defaults {p}", f"unreadable ({exc})", "fix or delete the file") from None

    def save(self, loc: Locations) -> None:
        p = self.path(loc)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps({"global": self.global_, "models": self.models, "presets": self.presets},
                                  indent=2), "utf-8")
        os.replace(tmp, p)

    # -- reading
    def for_model(self, model_id: str | None) -> dict[str, Any]:
        """What a new chat with this model starts from: built-in, then global, then the model's."""
        out = {**BUILT_IN, **self.global_}
        if model_id and model_id in self.models:
            out.update(self.models[model_id])
        return out

    def all_presets(self) -> dict[str, dict[str, Any]]:
        """Built-in presets first, then the person's own (which may not take a built-in name)."""
        return {**PRESETS, **{n: v for n, v in self.presets.items() if n not in PRESETS}}

    # -- changing (the caller saves)
    def set_global(self, values: dict[str, Any]) -> None:
        self.global_ = clean(values)

    def set_model(self, model_id: str, values: dict[str, Any] | None) -> None:
        """Saves a model's own defaults; None forgets them (the global ones apply again)."""
        if values is None:
            self.models.pop(model_id, None)
        else:
            self.models[model_id] = clean(values)

    def save_preset(self, name: str, values: dict[str, Any]) -> None:
        name = name.strip()
        if not name:
            raise InputError("preset name", "is empty")
        if name in PRESETS:
            raise InputError(f"preset {name!r}", "is built in", "choose another name")
        self.presets[name] = clean({k: v for k, v in values.items() if k in SAMPLING})

    def delete_preset(self, name: str) -> None:
        if name in PRESETS:
            raise InputError(f"preset {name!r}", "is built in and cannot be deleted")
        self.presets.pop(name, None)
