"""llama.cpp in a worker process, with real models: streaming, stop, crashes, refusals."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from runtime_kit import corrupted_copy, install_files, smollm2_copy, truncated_copy
from vetted.errors import Refused
from vetted.runtime.chat import ChatSession
from vetted.runtime.engine import EngineCrashed, EngineError
from vetted.store import audit, installed

MODEL = "smol"
FAST = {"max_tokens": 24, "temperature": 0.0, "n_ctx": 1024}


@pytest.fixture
def session(tmp_path, loc, db, signing_key):
    install_files(tmp_path / "cat", loc, db, signing_key, {MODEL: smollm2_copy(tmp_path)})
    s = ChatSession(db)
    yield s
    s.close()


def test_streams_and_persists_a_reply(session: ChatSession) -> None:
    conv = session.chats.create(MODEL, "t", params=FAST)
    tokens: list[str] = []
    result = session.send(conv, "What is the capital of France?", tokens.append)
    assert len(tokens) >= 2 and "".join(tokens) == result.message.content
    assert result.message.status == "complete"
    assert result.usage["completion_tokens"] >= 2 and result.usage["prompt_tokens"] > 5
    saved = session.chats.get(conv).messages
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[1].content == result.message.content
    assert any(r["action"] == "model.load" and r["result"] == "accepted" for r in audit.entries(session.db))


def test_deterministic_at_temperature_zero(session: ChatSession) -> None:
    a = session.chats.create(MODEL, "a", params=FAST)
    b = session.chats.create(MODEL, "b", params=FAST)
    assert session.send(a, "Name a colour.").message.content == session.send(b, "Name a colour.").message.content


def test_stop_takes_effect_quickly(session: ChatSession) -> None:
    conv = session.chats.create(MODEL, "t", params={**FAST, "max_tokens": 400})
    seen = threading.Event()
    stop_at: list[float] = []
    count = [0]

    def on_token(_t: str) -> None:
        count[0] += 1
        if count[0] == 5:
            stop_at.append(time.perf_counter())
            session.stop()
            seen.set()

    result = session.send(conv, "Write a long story about a dragon.", on_token)
    latency = time.perf_counter() - stop_at[0]
    print(f"stop latency: {latency * 1000:.1f} ms")
    assert result.message.status == "stopped"
    assert count[0] < 40
    assert latency < 1.0  # generous bound for a noisy CI machine; the real figure is printed


def test_killed_worker_reports_signal_and_next_request_recovers(session: ChatSession) -> None:
    conv = session.chats.create(MODEL, "t", params={**FAST, "max_tokens": 300})
    killed = []

    def on_token(_t: str) -> None:
        if not killed:
            killed.append(session.engine.pid)
            os.kill(session.engine.pid, signal.SIGKILL)

    with pytest.raises(EngineCrashed, match="SIGKILL"):
        session.send(conv, "Tell me about the sea.", on_token)
    msgs = session.chats.get(conv).messages
    assert msgs[0].role == "user" and msgs[1].status == "failed" and "SIGKILL" in msgs[1].reason
    again = session.send(conv, "Hello?")
    assert again.message.status == "complete" and session.engine.pid != killed[0]


def test_changed_file_is_refused_before_load(session: ChatSession) -> None:
    path = installed.get(session.db, MODEL).files[0].path
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(5_000_000)
        old = f.read(2)
        f.seek(5_000_000)
        f.write(bytes(b ^ 0xFF for b in old))
    conv = session.chats.create(MODEL, "t", params=FAST)
    with pytest.raises(Refused, match="sha256 is now"):
        session.send(conv, "hi")
    assert session.engine.worker is None  # nothing was ever started for it
    msgs = session.chats.get(conv).messages
    assert msgs[0].content == "hi" and msgs[1].status == "failed"
    assert audit.entries(session.db)[-1]["action"] == "model.load"


def test_truncated_and_corrupted_gguf_fail_cleanly(tmp_path, loc, db, signing_key) -> None:
    src = smollm2_copy(tmp_path)
    files = {
        "truncated": truncated_copy(src, tmp_path / "truncated.gguf"),
        "bad-embd": corrupted_copy(src, tmp_path / "bad-embd.gguf", b"llama.embedding_length", 999),
        "bad-layers": corrupted_copy(src, tmp_path / "bad-layers.gguf", b"llama.block_count", 4000),
    }
    install_files(tmp_path / "cat", loc, db, signing_key, files)
    s = ChatSession(db)
    try:
        for model_id in files:
            conv = s.chats.create(model_id, model_id, params=FAST)
            with pytest.raises((EngineError, Refused)) as exc:
                s.send(conv, "hi")
            msg = str(exc.value)
            assert model_id in msg or "malformed" in msg or "SIG" in msg or "load" in msg, msg
            assert s.chats.get(conv).messages[1].status == "failed"
    finally:
        s.close()


def test_context_overflow_drops_oldest_turns(session: ChatSession) -> None:
    conv = session.chats.create(MODEL, "t", params={**FAST, "n_ctx": 256, "max_tokens": 16})
    for i in range(4):
        session.chats.add_user(conv, f"Message {i}: " + "lorem ipsum dolor sit amet " * 8)
        w = session.chats.start_reply(conv)
        w.append("ok " * 10)
        w.close("complete")
    result = session.send(conv, "Last question?")
    assert result.dropped_turns > 0 and result.message.status == "complete"
    assert "left out" in (result.message.reason or "")
    huge = session.chats.create(MODEL, "h", params={**FAST, "n_ctx": 256})
    with pytest.raises(Refused, match="the context holds 256"):
        session.send(huge, "word " * 400)


def test_regenerate_edit_delete_rename_search_export(session: ChatSession) -> None:
    from vetted.store.chats import export_json, export_markdown

    conv = session.chats.create(MODEL, "first", params=FAST)
    session.send(conv, "Say hello.")
    session.regenerate(conv)
    msgs = session.chats.get(conv).messages
    assert [m.role for m in msgs] == ["user", "assistant"]
    session.edit_and_resend(conv, msgs[0].id, "Say goodbye.")
    msgs = session.chats.get(conv).messages
    assert msgs[0].content == "Say goodbye." and len(msgs) == 2
    session.chats.rename(conv, "Farewells")
    hits = session.chats.search("goodbye")
    assert any(c.id == conv and m and m.content == "Say goodbye." for c, m in hits)
    md = export_markdown(session.chats.get(conv))
    assert md.startswith("# Farewells") and "Say goodbye." in md
    js = export_json(session.chats.get(conv))
    assert js["messages"][1]["role"] == "assistant" and js["messages"][1]["usage"]["completion_tokens"] > 0
    session.chats.delete(conv)
    assert all(c.id != conv for c in session.chats.list())
