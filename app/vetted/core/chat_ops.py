"""The chat side of the application object: sessions, capability, defaults, export.

A mixin of `vetted.core.app.Vetted` (kept in its own module so the object's file stays
readable); every method runs with the same locations, database and policy gate as the
rest of the object, and the front ends reach it only through `Vetted`.
"""

from __future__ import annotations

from typing import Any

from vetted.catalog.schema import ModelEntry
from vetted.core.host import Host
from vetted.core.results import ChatCapability
from vetted.errors import VettedError


class ChatOps(Host):
    # -- chats --------------------------------------------------------------------------

    def chat_session(self, allow_tight_memory: bool = True, purpose: str = "chat") -> Any:
        """A chat session on this thread's connection, on the configured engine; every load
        passes the organisation's policy first (core/policy_gate.py)."""
        from vetted.runtime.chat import ChatSession

        engine = self.engine_factory() if self.engine_factory else None
        return ChatSession(self.db, engine, allow_tight_memory=allow_tight_memory, gate=self.gate().gate_load,
                           purpose=purpose)

    def chat_capability(self, model_id: str, entry: ModelEntry | None = None) -> ChatCapability:
        """Whether a model can chat (it has a chat template), and why not — for pickers and
        buttons to offer only what will work. An installed model is judged as a turn would
        run it (its installed entry, else its file's header: only the header is read, once
        per file version); one not installed by its catalog entry (`entry` when the caller
        holds it, else the catalogs in use are loaded to find it)."""
        from vetted.runtime.chat import chat_capability

        def catalog_template() -> str | None:
            if entry is not None:
                return entry.runtime.chat_template
            for use in self.catalog_uses():
                try:
                    found = self._load_use(use, self.settings().transfers).catalog.model(model_id)
                    return found.runtime.chat_template
                except VettedError:
                    continue
            return None

        can, reason = chat_capability(self.db, model_id, catalog_template)
        return ChatCapability(can, reason)

    @property
    def chats(self) -> Any:
        from vetted.store.chats import Chats

        return Chats(self.db)

    def chat_defaults(self) -> Any:
        """The person's chat defaults and presets (`core.chat_defaults.ChatDefaults`); change
        it and hand it to `save_chat_defaults`."""
        from vetted.core.chat_defaults import ChatDefaults

        return ChatDefaults.load(self.loc)

    def save_chat_defaults(self, defaults: Any) -> None:
        defaults.save(self.loc)  # read again by every new chat: nothing to announce

    def new_chat(self, model_id: str | None, title: str = "New chat") -> int:
        """A chat that starts from the model's defaults (else the global ones), never from
        whichever chat happened to be open."""
        values = self.chat_defaults().for_model(model_id)
        system = values.pop("system_prompt", "")
        params = {k: v for k, v in values.items() if v is not None}
        return int(self.chats.create(model_id, title, system, params))

    def export_chat(self, conversation_id: int, fmt: str) -> str:
        """A chat as Markdown ("md") or JSON ("json") text, as `vetted chats export` writes it."""
        import json

        from vetted.errors import InputError
        from vetted.store.chats import export_json, export_markdown

        conv = self.chats.get(conversation_id)
        if fmt == "md":
            return str(export_markdown(conv))
        if fmt == "json":
            return json.dumps(export_json(conv), indent=2, ensure_ascii=False)
        raise InputError("export format", f"{fmt!r} is not md or json")
