"""The worker batches streamed tokens so the app costs llama.cpp next to nothing (issue 9):
the first text comes alone and at once, later text in few events, nothing is lost, and a
batch never delays stop. Real worker, real model; no wall-clock assertions (the batching
window is set far beyond any run so the counts do not depend on the machine's speed)."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_kit import install_files, smollm2_copy
from vetted.runtime.chat import ChatSession

MODEL = "smol"
LONG = {"temperature": 0.0, "max_tokens": 160, "seed": 42, "logit_bias": {"2": -100.0}}  # no early end


@pytest.fixture
def session(tmp_path, loc, db, signing_key):
    install_files(tmp_path / "cat", loc, db, signing_key, {MODEL: smollm2_copy(tmp_path)})
    s = ChatSession(db)
    conv = s.chats.create(MODEL, "t", params={"n_ctx": 1024})
    s.chats.add_user(conv, "Write a long story about a lighthouse.")
    s.ensure_model(s.chats.get(conv))
    s.test_prompt = s.render(s.chats.get(conv))[0]  # type: ignore[attr-defined]
    yield s
    s.close()


def record_events(session: ChatSession) -> list[dict[str, Any]]:
    """Every event the engine reads from its worker, as read."""
    w = session.engine.worker
    assert w is not None
    seen: list[dict[str, Any]] = []
    read = w.next_event

    def next_event(timeout: float | None = None) -> dict[str, Any]:
        ev = read(timeout)
        seen.append(ev)
        return ev

    w.next_event = next_event  # type: ignore[method-assign]
    return seen


def test_tokens_are_batched_first_alone_nothing_lost(session: ChatSession) -> None:
    events = record_events(session)
    pieces: list[str] = []
    # a window far longer than the run: everything after the first text waits for the end
    reply = session.engine.generate(session.test_prompt, {**LONG, "stream_ms": 600_000}, pieces.append)
    tokens = [e for e in events if e.get("ev") == "token"]
    n = reply.usage["completion_tokens"]
    assert reply.finish == "length" and n == LONG["max_tokens"]
    assert len(pieces) == len(tokens) == 2  # the first text on its own, then the rest at "done"
    assert tokens[0]["n"] == 1 and sum(t["n"] for t in tokens) == n
    assert events[-1]["ev"] == "done" and "".join(pieces) == reply.text

    # the same greedy reply token by token: the same text, the same first token
    events.clear()
    each: list[str] = []
    again = session.engine.generate(session.test_prompt, {**LONG, "stream_ms": 0}, each.append)
    assert again.text == reply.text and each[0] == pieces[0]
    assert len(each) > 10 * len(pieces) and all(e["n"] == 1 for e in events if e.get("ev") == "token")


def test_default_batching_keeps_every_piece_and_the_first_alone(session: ChatSession) -> None:
    events = record_events(session)
    conv = session.chats.create(MODEL, "t", params={**LONG, "n_ctx": 1024})
    pieces: list[str] = []
    result = session.send(conv, "Write a long story about a lighthouse.", pieces.append)
    tokens = [e for e in events if e.get("ev") == "token"]
    assert tokens[0]["n"] == 1 and sum(t["n"] for t in tokens) == result.usage["completion_tokens"]
    assert len(pieces) == len(tokens) <= result.usage["completion_tokens"]
    assert "".join(pieces) == result.message.content == session.chats.get(conv).messages[-1].content


def test_stop_is_not_held_back_by_a_batch(session: ChatSession) -> None:
    events = record_events(session)
    pieces: list[str] = []

    def on_token(t: str) -> None:
        pieces.append(t)
        session.engine.stop()  # after the first text, with a window that would outlast the run

    reply = session.engine.generate(session.test_prompt, {**LONG, "max_tokens": 400, "stream_ms": 600_000},
                                    on_token)
    assert reply.finish == "stopped" and reply.usage["completion_tokens"] < 400
    assert "".join(pieces) == reply.text and len(pieces) <= 2  # what waited was sent on stop
    tokens = [e for e in events if e.get("ev") == "token"]
    assert sum(t["n"] for t in tokens) == reply.usage["completion_tokens"]
