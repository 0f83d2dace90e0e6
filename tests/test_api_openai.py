"""The official `openai` Python client, unchanged, against a real `vetted serve` running
SmolLM2 in the engine worker: models, chat (streamed and not), completions, usage,
stop sequences, seed reproducibility, and errors raised as the client's own exceptions."""

from __future__ import annotations

import json

import pytest

from api_kit import MODEL, Server, install_smollm2, locations_for

openai = pytest.importorskip("openai")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_machine_policy")]

HELLO = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("api-openai")
    install_smollm2(work / "home", work)
    s = Server(work / "home")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url, api_key=server.token, max_retries=0, timeout=300)


def test_models_lists_installed_verified_models_by_catalog_id(client) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat_whole_and_streamed_agree_with_usage(client) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=24, temperature=0, seed=7)
    text = whole.choices[0].message.content
    assert whole.object == "chat.completion" and whole.model == MODEL
    assert text and whole.choices[0].message.role == "assistant"
    assert whole.choices[0].finish_reason in ("stop", "length")
    u = whole.usage
    assert u.prompt_tokens > 5 and 0 < u.completion_tokens <= 24 and u.total_tokens == u.prompt_tokens + u.completion_tokens

    stream = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=24, temperature=0, seed=7,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == u.completion_tokens
    assert chunks[-1].usage.prompt_tokens == u.prompt_tokens


def test_max_tokens_and_max_completion_tokens_cap_the_reply(client) -> None:
    long = {"model": MODEL, "prompt": "Once upon a time", "temperature": 0, "logit_bias": {"0": -100, "2": -100}}
    out = client.completions.create(max_tokens=7, **long)
    assert out.usage.completion_tokens == 7 and out.choices[0].finish_reason == "length"
    chat = client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=5, temperature=0,
                                          logit_bias={"0": -100, "2": -100})
    assert chat.usage.completion_tokens == 5 and chat.choices[0].finish_reason == "length"


def test_completions_whole_and_streamed(client) -> None:
    whole = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=12, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=12, temperature=0, stream=True) if c.choices)
    assert streamed == whole.choices[0].text


def test_stop_sequence_ends_the_reply_before_it(client) -> None:
    base = {"model": MODEL, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 30, "temperature": 0}
    ref = client.completions.create(**base).choices[0].text
    assert " 8" in ref, ref  # the model counts on
    out = client.completions.create(stop=[" 8"], **base)
    assert out.choices[0].text == ref.split(" 8")[0]
    assert out.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Count from 1 to 10."}],
                                              max_tokens=40, temperature=0, stop=["5"], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert "5" not in text


def test_seed_makes_sampling_reproducible(client) -> None:
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "Write a short poem about the sea."}],
           "max_tokens": 30, "temperature": 1.0, "top_p": 1.0}
    a = client.chat.completions.create(seed=1234, **ask).choices[0].message.content
    b = client.chat.completions.create(seed=1234, **ask).choices[0].message.content
    assert a == b
    others = {client.chat.completions.create(seed=s, **ask).choices[0].message.content for s in (1, 2, 3)}
    assert len(others | {a}) > 1  # a different seed samples differently


def test_errors_are_the_clients_own_exceptions(server, client) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError) as br:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 5000}])
    assert br.value.code == "context_length_exceeded"


def test_api_calls_are_audited_as_the_local_api_and_stay_out_of_chats(server, client) -> None:
    from vetted.store import audit
    from vetted.store.db import open_db

    client.completions.create(model=MODEL, prompt="Hi", max_tokens=2)
    db = open_db(locations_for(server.home).database)
    try:
        rows = audit.entries(db)
        assert any(r["action"] == "api.load" and r["result"] == "accepted" and r["identity"] == "local API"
                   for r in rows)
        assert any(r["action"] == "model.load" and r["result"] == "accepted" for r in rows)  # the re-check
        assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0
    finally:
        db.conn.close()
    assert json.loads(server.request("GET", "/v1/models")[2])["data"][0]["id"] == MODEL
