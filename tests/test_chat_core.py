"""The chat core the desktop app relies on (issue 13): which models can chat, per-model
defaults and presets, regenerate with a fresh seed and alternatives, Continue after a
reply stopped at max tokens, soft delete with undo, and export."""

from __future__ import annotations

import pytest

from catalog_kit import build
from fake_engine import FakeEngines
from tiny_gguf import write_gguf
from vetted.core.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"


@pytest.fixture
def models(tmp_path, loc, signing_key):
    """A pinned catalog: 'chatty' (a template in its file), 'curated' (a template in the
    catalog only) and 'base' (none anywhere: a completion model)."""
    src = tmp_path / "src"
    src.mkdir()
    spec = [("chatty", TEMPLATE, None), ("curated", None, TEMPLATE), ("base", None, None)]
    entries = []
    for mid, in_file, in_catalog in spec:
        e = {"id": mid, "name": mid.title(), "publisher": "Test Pub", "license": "MIT",
             "path": str(write_gguf(src / f"{mid}.gguf", chat_template=in_file, extra={"test.model": mid}))}
        if in_catalog:
            e["runtime"] = {"chat_template": in_catalog}
        entries.append(e)
    cat = build(tmp_path / "cat", signing_key[0], models=entries)
    s = Settings.load(loc)
    s.subscribe(CatalogSubscription(str(cat), PublicKey(signing_key[1].read_bytes())))
    s.save(loc)
    return cat


def make_app(loc, engines=None, install=("chatty", "curated", "base")):
    from vetted.core import Vetted

    app = Vetted(loc, engine_factory=engines or FakeEngines())
    for mid in install:
        app.pull(mid)
    return app


def test_chat_capability_from_the_file_the_catalog_and_for_a_base_model(loc, models) -> None:
    app = make_app(loc, install=())
    assert app.chat_capability("curated").can_chat  # the catalog curates one: known before download
    before = app.chat_capability("chatty")
    assert not before.can_chat and "not installed" in before.reason
    for mid in ("chatty", "curated", "base"):
        app.pull(mid)
    assert app.chat_capability("chatty") == app.chat_capability("curated")
    assert app.chat_capability("chatty").can_chat and app.chat_capability("chatty").reason == ""
    base = app.chat_capability("base")
    assert not base.can_chat and base.reason.startswith("no chat template")


def test_the_demo_base_model_cannot_chat_and_smollm2_can(loc) -> None:
    """The demo catalog's two models (authoring/demo.py), judged from their real GGUF headers."""
    from vetted.authoring.demo import gemma3_path, smollm2_path
    from vetted.runtime.gguf_meta import read_gguf

    try:
        gemma = gemma3_path(loc)
    except Exception:
        pytest.skip("the gemma-3-270m demo package is not installed")
    assert read_gguf(smollm2_path()).chat_template is not None
    assert read_gguf(gemma).chat_template is None


def test_new_chat_uses_model_defaults_then_global_not_the_last_chat(loc, models) -> None:
    from vetted.core.chat_defaults import PRESETS
    from vetted.errors import InputError

    app = make_app(loc, install=())
    first = app.chats.get(app.new_chat("chatty"))
    assert first.system_prompt == "" and first.params["temperature"] == 0.7 and "seed" not in first.params
    app.chats.update(first.id, system_prompt="You are a pirate.", params={"temperature": 1.9, "seed": 7})
    again = app.chats.get(app.new_chat("chatty"))
    assert again.system_prompt == "" and again.params["temperature"] == 0.7 and "seed" not in again.params
    d = app.chat_defaults()
    d.set_global({"temperature": 0.3, "max_tokens": 256, "n_threads": 2})
    d.set_model("curated", {"temperature": 0.9, "system_prompt": "Be brief."})
    d.save_preset("Mine", {"temperature": 0.5, "top_k": 10, "max_tokens": 9})
    app.save_chat_defaults(d)
    chatty = app.chats.get(app.new_chat("chatty"))
    assert chatty.params["temperature"] == 0.3 and chatty.params["n_threads"] == 2 and chatty.system_prompt == ""
    curated = app.chats.get(app.new_chat("curated"))
    assert curated.params["temperature"] == 0.9 and curated.params["max_tokens"] == 256
    assert curated.system_prompt == "Be brief."
    presets = app.chat_defaults().all_presets()
    assert list(presets)[:3] == list(PRESETS) and presets["Mine"] == {"temperature": 0.5, "top_k": 10}
    with pytest.raises(InputError, match="between 0 and 2"):
        d.set_global({"temperature": 5})
    with pytest.raises(InputError, match="built in"):
        d.save_preset("Precise", {"temperature": 0.1})


def test_regenerate_keeps_alternatives_with_fresh_seeds_and_a_fixed_seed_repeats(loc, models) -> None:
    seen_seeds: list = []

    def reply(messages):
        return f"answer {len(seen_seeds)}"

    engines = FakeEngines(reply=reply)
    app = make_app(loc, engines, install=("chatty",))
    session = app.chat_session()
    real_generate = None

    def spy_factory():
        nonlocal real_generate
        eng = session.engine
        real_generate = eng.generate

        def gen(prompt, params, on_token=None):
            seen_seeds.append(params.get("seed"))
            return real_generate(prompt, params, on_token)

        eng.generate = gen

    spy_factory()
    conv = app.new_chat("chatty")
    session.send(conv, "Hi")
    session.regenerate(conv)
    session.regenerate(conv)
    msgs = app.chats.get(conv).messages
    assert [m.role for m in msgs] == ["user", "assistant"]
    last = msgs[-1]
    assert last.content == "answer 3" and (last.alt_index, last.alt_count) == (3, 3)
    alts = app.chats.alternatives(last.id)
    assert [a.content for a in alts] == ["answer 1", "answer 2", "answer 3"]
    assert len(set(seen_seeds)) == 3 and [a.seed for a in alts] == seen_seeds  # fresh, and stored
    app.chats.choose_alternative(alts[0].id)
    msgs = app.chats.get(conv).messages
    assert msgs[-1].content == "answer 1" and (msgs[-1].alt_index, msgs[-1].alt_count) == (1, 3)
    session.send(conv, "And then?")  # the model sees the chosen alternative as history
    assert engines.last.prompts[-1][1] == {"role": "assistant", "content": "answer 1"}
    assert [m.content for m in app.chats.get(conv).messages] == ["Hi", "answer 1", "And then?", "answer 4"]
    app.chats.update(conv, params={"seed": 1234})
    session.regenerate(conv)
    session.regenerate(conv)
    assert seen_seeds[-2:] == [1234, 1234]
    assert [a.seed for a in app.chats.alternatives(app.chats.get(conv).messages[-1].id)][-2:] == [1234, 1234]
    session.close()


def test_a_reply_cut_at_max_tokens_says_so_and_continue_extends_it(loc, models) -> None:
    story = "one two three four five six seven eight nine ten"
    engines = FakeEngines(reply=lambda msgs: story)
    app = make_app(loc, engines, install=("chatty",))
    session = app.chat_session()
    conv = app.new_chat("chatty")
    app.chats.update(conv, params={"max_tokens": 4})
    result = session.send(conv, "Count")
    assert result.finish == "length" and result.message.cut_at_max_tokens
    assert result.message.content == "one two three four "
    engines.last.reply = lambda msgs: "five six"
    result = session.continue_reply(conv)
    msgs = app.chats.get(conv).messages
    assert len(msgs) == 2 and msgs[-1].id == result.message.id
    assert msgs[-1].content == "one two three four five six" and msgs[-1].finish == "stop"
    assert not msgs[-1].cut_at_max_tokens and msgs[-1].usage["completion_tokens"] == 6
    # the engine went on from the conversation, the partial reply as the start of its turn
    assert engines.last.prompts[-1] == [{"role": "user", "content": "Count"}]
    session.close()


def test_trash_restore_purge_and_export(loc, models) -> None:
    import json

    app = make_app(loc, install=("chatty",))
    session = app.chat_session()
    conv = app.new_chat("chatty", "Keep me")
    session.send(conv, "Hello there")
    app.chats.trash(conv)
    assert conv not in [c.id for c in app.chats.list()] and not app.chats.search("Hello")
    app.chats.restore(conv)
    assert conv in [c.id for c in app.chats.list()] and app.chats.search("Hello")
    md = app.export_chat(conv, "md")
    assert md.startswith("# Keep me") and "Hello there" in md
    doc = json.loads(app.export_chat(conv, "json"))
    assert doc["messages"][1]["seed"] is not None and doc["messages"][1]["finish"] == "stop"
    app.chats.trash(conv)
    assert app.chats.purge_trashed(older_than_s=3600) == 0  # still within its undo time
    assert app.chats.purge_trashed() == 1
    assert conv not in [c.id for c in app.chats.list()]
    session.close()
