"""Hostile chat templates and GGUF headers cannot freeze or exhaust the app.

Templates render in the engine worker under an address-space budget, with repetition
and power bounded and the output capped; a template that runs too long stops the worker.
GGUF headers are parsed only after the file passed its check, with every quantity
bounded. Each test uses real files and, for templates, the real llama.cpp worker.
"""

from __future__ import annotations

import os
import resource
import struct
import threading

import pytest

from catalog_kit import make_model
from runtime_kit import install_files, smollm2_copy
from vetted.errors import Refused
from vetted.runtime import engine as engine_mod
from vetted.runtime.chat import ChatSession
from vetted.runtime.gguf_meta import read_gguf
from vetted.store import installed

FAST = {"max_tokens": 8, "temperature": 0.0, "n_ctx": 512}
RUNAWAY = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def _bounded(fn, seconds: float = 60.0):
    out: list = []

    def run() -> None:
        try:
            out.append(("ok", fn()))
        except BaseException as exc:  # noqa: BLE001  (handed to the test)
            out.append(("raised", exc))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"still running after {seconds} s: the app is frozen by the template"
    return out[0]


def _install_with_template(tmp_path, loc, db, signing_key, template: str) -> None:
    install_files(tmp_path / "cat", loc, db, signing_key, {"smol": smollm2_copy(tmp_path)}, chat_template=template)


def _turn() -> dict:
    """One chat turn in a thread of its own (own database connection, as the GUI does)."""
    from vetted.paths import locations
    from vetted.store.db import open_db

    db = open_db(locations().database)
    session = ChatSession(db)
    try:
        conv = session.chats.create("smol", "t", params=FAST)
        try:
            session.send(conv, "Hello")
            error = None
        except Refused as exc:
            error = exc
        return {"error": error, "worker_stopped": session.engine.worker is None,
                "reply": session.chats.get(conv).messages[-1]}
    finally:
        session.close()
        db.conn.close()


@pytest.mark.slow
def test_a_runaway_template_is_stopped_and_the_app_stays_responsive(tmp_path, loc, db, signing_key,
                                                                    monkeypatch) -> None:
    monkeypatch.setattr(engine_mod, "RENDER_TIMEOUT_S", 2.0, raising=False)
    _install_with_template(tmp_path, loc, db, signing_key, RUNAWAY)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    kind, out = _bounded(_turn)
    cpu_spent = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
    assert kind == "ok", out
    assert "chat template: was still rendering after 2 s; the engine was stopped" in out["error"].line()
    assert out["worker_stopped"]
    assert cpu_spent < 2.0, "the loop ran in the app process, not in the worker"
    assert out["reply"].status == "failed" and "still rendering" in out["reply"].reason


@pytest.mark.slow
@pytest.mark.parametrize("template, found", [
    ('{{ "%999999999s" % "x" }}', "ran out of its memory budget"),
    ('{{ "x" * 2000000000 }}', "repetition to 2000000000 items exceeds"),
    ("{{ 10 ** 999999999 }}", "exceeds 4096 bits"),
])
def test_a_memory_bomb_template_is_refused_without_touching_the_app(tmp_path, loc, db, signing_key,
                                                                    template, found) -> None:
    _install_with_template(tmp_path, loc, db, signing_key, template)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kind, out = _bounded(_turn)
    grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    assert kind == "ok", out
    assert out["error"] is not None and found in out["error"].line(), out
    assert grew_kb < 200 * 1024, f"the app process grew by {grew_kb} KiB"


# -- GGUF headers ------------------------------------------------------------------------


def _kv_header(n_kv: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv)


def _key(name: str) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode()


def _nested(depth: int) -> bytes:
    """An array of an array of ... of an empty uint32 array."""
    body = _kv_header(1) + _key("general.nested") + struct.pack("<I", 9)
    body += struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 0)
    return body


def test_arrays_nested_thousands_deep_are_refused_clearly(tmp_path) -> None:
    p = tmp_path / "deep.gguf"
    p.write_bytes(_nested(5000))
    with pytest.raises(Refused, match="arrays are nested more than 4 deep"):
        read_gguf(p)


def test_a_ten_million_item_token_array_is_refused_before_it_is_walked(tmp_path) -> None:
    n = 10_000_000
    p = tmp_path / "huge-vocab.gguf"
    with open(p, "wb") as f:
        f.write(_kv_header(1) + _key("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, n))
        f.write((struct.pack("<Q", 1) + b"a") * n)
    with pytest.raises(Refused, match=r"more than 2000000 strings or nested items \(an array of 10000000\)"):
        read_gguf(p)


def test_an_oversized_key_is_refused(tmp_path) -> None:
    p = tmp_path / "key.gguf"
    p.write_bytes(_kv_header(1) + struct.pack("<Q", 10_000_000) + b"k" * 100)
    with pytest.raises(Refused, match=r"a string claims 10000000 bytes \(at most 65535"):
        read_gguf(p)


def test_the_header_of_an_edited_file_is_never_parsed(tmp_path, loc, db, signing_key) -> None:
    src = make_model(tmp_path / "src", "chatty.gguf", 200_000)
    install_files(tmp_path / "cat", loc, db, signing_key, {"chatty": src}, chat_template="{{ messages }}")
    path = installed.get(db, "chatty").files[0].path
    st = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:  # a header that would blow a recursive parser, same size, mtime restored
        f.write(_nested(5000))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    session = ChatSession(db)
    try:
        conv = session.chats.create("chatty", "t", params=FAST)
        with pytest.raises(Refused, match=r"installed file chatty\.gguf of chatty: sha256 is now"):
            session.send(conv, "Hello")
        assert session.engine.worker is None  # nothing was started either
    finally:
        session.close()


def test_header_strings_are_bounded_in_total_not_only_one_by_one(tmp_path) -> None:
    """Many strings each under the per-string limit cannot add up to hundreds of MB in
    the app process (invalid UTF-8 would even double as it decodes)."""
    n, each = 12, 3 * 1024 * 1024
    p = tmp_path / "fat-header.gguf"
    with open(p, "wb") as f:
        f.write(_kv_header(n))
        for i in range(n):
            f.write(_key(f"general.padding{i}") + struct.pack("<I", 8) + struct.pack("<Q", each) + b"\xff" * each)
    with pytest.raises(Refused, match="its metadata strings add up to more than 16 MiB"):
        read_gguf(p)
