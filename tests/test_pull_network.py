"""Pulling from a loopback Hugging Face Hub (HF_ENDPOINT) and mirror, under attack.

Every attack ends with a specific refusal or error, nothing in the store, and (for trust
decisions) a refusal in the audit log; an interrupted transfer resumes with HTTP Range.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from catalog_kit import build, make_model
from conftest import VENV_BIN
from loopback_hub import Hub
from vetted.catalog.signed import load
from vetted.errors import DownloadError, Refused
from vetted.fetch.install import pull, store_path
from vetted.publish import generate_key, sign_file_or_folder
from vetted.store import audit, installed
from vetted.trust.identity import PublicKey

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SIZE = 3_000_000


@pytest.fixture
def hub(tmp_path, signing_key, monkeypatch):
    model = make_model(tmp_path / "src", "net.gguf", SIZE)
    cat = build(tmp_path, signing_key[0], models=[{
        "id": "net", "name": "Net", "publisher": "P", "license": "MIT", "path": str(model),
        "sources": {"huggingface": {"repo": "org/net-model", "commit": COMMIT}}}])
    h = Hub(cat.parent / "mirror", COMMIT)
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    h.catalog = cat
    yield h
    h.close()


def _load(hub, signing_key, db):
    return load(str(hub.catalog), PublicKey(signing_key[1].read_bytes()), db)


def _store_empty(loc) -> bool:
    return not [p for p in loc.store.rglob("*") if p.is_file()]


def test_happy_path_from_the_hub(hub, loc, db, signing_key) -> None:
    result = pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    f = result.model.files[0]
    assert "huggingface org/net-model@" in result.source and f.path == store_path(loc, f.sha256)
    assert installed.get(db, "net").state == "verified"
    assert any(r["path"] == f"/org/net-model/resolve/{COMMIT}/net.gguf" for r in hub.b.requests)
    assert audit.entries(db)[-1]["action"] == "model.install"


@pytest.mark.parametrize("attack, match", [
    ({"flip_byte": True}, "the signed catalog says"),
    ({"extra_bytes": 1000, "honest_length": True}, "server offers 3001000 bytes"),
    ({"extra_bytes": 1000, "honest_length": False}, "more than the 3000000 bytes"),
    ({"wrong_commit": "f" * 40}, "server answered for commit ffffffff"),
    ({"tamper_signature": True}, "signature"),
])
def test_attacks_are_refused_and_nothing_lands(hub, loc, db, signing_key, attack, match) -> None:
    for k, v in attack.items():
        setattr(hub.b, k, v)
    with pytest.raises(Refused, match=match):
        pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    assert _store_empty(loc) and installed.all_models(db) == []
    assert not list(loc.quarantine.glob("*.part"))  # wrong bytes are deleted, never resumed
    assert audit.entries(db)[-1]["result"] == "refused"


def test_stall_times_out_then_resumes(hub, loc, db, signing_key) -> None:
    hub.b.stall_after, hub.b.stall_seconds = 1_000_000, 3
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="no data for 1.0 s"):
        pull(loc, db, _load(hub, signing_key, db), "net", timeout=1.0)
    assert time.monotonic() - t0 < 10 and _store_empty(loc)
    have = next(loc.quarantine.glob("*.part")).stat().st_size
    assert 1_000_000 <= have < SIZE  # what arrived before the stall is kept
    hub.b.stall_after = None
    pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    ranges = [r["range"] for r in hub.b.requests if r["path"].endswith("net.gguf")]
    assert ranges[-1] == f"bytes={have}-"
    assert installed.get(db, "net").state == "verified"


def test_dropped_connection_resumes_with_range(hub, loc, db, signing_key) -> None:
    hub.b.drop_after = 1_234_567
    with pytest.raises(DownloadError, match="connection closed after|connection lost"):
        pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    assert _store_empty(loc)
    have = next(loc.quarantine.glob("*.part")).stat().st_size
    assert have > 0
    pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    ranges = [r["range"] for r in hub.b.requests if r["path"].endswith("net.gguf")]
    assert ranges[-1] == f"bytes={have}-"
    assert installed.get(db, "net").state == "verified"


def test_server_ignoring_range_still_yields_right_bytes(hub, loc, db, signing_key) -> None:
    hub.b.drop_after = 500_000
    with pytest.raises(DownloadError):
        pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    hub.b.ignore_range = True
    pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    assert installed.get(db, "net").state == "verified"


def test_wrong_signer_for_the_model(hub, loc, db, signing_key, tmp_path) -> None:
    other, _ = generate_key(tmp_path / "mallory")
    sign_file_or_folder(hub.folder / "net.gguf", other, hub.folder / "net.model.sig")
    with pytest.raises(Refused, match="Key mismatch|signature against public key"):
        pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    assert _store_empty(loc)


def test_hf_hub_offline_is_honoured(hub, loc, db, signing_key, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.b.requests)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE is set"):
        pull(loc, db, _load(hub, signing_key, db), "net", timeout=5)
    assert len(hub.b.requests) == n  # no request was made


def test_bad_mirror_then_good_local_folder(tmp_path, loc, db, signing_key) -> None:
    model = make_model(tmp_path / "src", "m.gguf", 500_000)
    cat = build(tmp_path, signing_key[0], models=[{
        "id": "m", "name": "M", "publisher": "P", "license": "MIT", "path": str(model),
        "sources": {"mirrors": ["http://127.0.0.1:9/unused"], "local": ["mirror"]}}])
    h = Hub(cat.parent / "mirror", COMMIT)
    try:
        h.b.flip_byte = True
        rewrite = cat.read_text().replace("http://127.0.0.1:9/unused", f"{h.url}/mirror")
        cat.write_text(rewrite)
        sign_file_or_folder(cat, signing_key[0], cat.with_name("catalog.json.sig"))
        result = pull(loc, db, load(str(cat), PublicKey(signing_key[1].read_bytes()), db), "m", timeout=5)
    finally:
        h.close()
    assert result.source.startswith("local folder")
    reasons = [r["reason"] for r in audit.entries(db) if r["result"] == "refused"]
    assert any("mirror" in r and "the signed catalog says" in r for r in reasons)


def _throttled(tmp_path: Path, key, name: str, size: int, bps: int, cli) -> tuple[Path, Hub]:
    """A catalog whose one model comes slowly from a loopback Hub, pinned for the CLI."""
    src = make_model(tmp_path / f"{name}-src", f"{name}.gguf", size)
    cat = build(tmp_path / name, key[0], models=[{
        "id": name, "name": name, "publisher": "P", "license": "MIT", "path": str(src),
        "sources": {"huggingface": {"repo": f"org/{name}", "commit": COMMIT}}}])
    h = Hub(cat.parent / "mirror", COMMIT)
    h.b.throttle_bps = bps
    assert cli("catalog", "add", str(cat), "--key", str(key[1])).returncode == 0
    return cat, h


def _wait_partial(loc, at_least: int) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for p in loc.quarantine.glob("*.part"):
            if p.stat().st_size > at_least:
                return p
        time.sleep(0.05)
    raise AssertionError("the pull never got going")


def _resumed_from(h: Hub, name: str) -> int:
    ranges = [r["range"] for r in h.b.requests if r["path"].endswith(f"{name}.gguf")]
    assert ranges[-1] is not None, "the second pull did not ask for a range"
    return int(ranges[-1].split("=")[1].rstrip("-"))


@pytest.mark.slow
def test_kill_9_during_pull_then_resume(loc, signing_key, cli, tmp_path) -> None:
    cat, h = _throttled(tmp_path, signing_key, "big", 64 * 1024 * 1024, 16 * 1024 * 1024, cli)
    env = {"HF_ENDPOINT": h.url}
    try:
        proc = subprocess.Popen([str(VENV_BIN / "vetted"), "pull", "big", "--catalog", str(cat), "--timeout", "5"],
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        part = _wait_partial(loc, 8 * 1024 * 1024)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _store_empty(loc)
        con = sqlite3.connect(loc.database)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        have = part.stat().st_size
        h.b.throttle_bps = None
        again = cli("pull", "big", "--catalog", str(cat), "--timeout", "5", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert _resumed_from(h, "big") == have
    finally:
        h.close()


@pytest.mark.slow
def test_ctrl_c_cancels_cleanly_and_the_next_pull_resumes(loc, signing_key, cli, tmp_path) -> None:
    cat, h = _throttled(tmp_path, signing_key, "slow", 32 * 1024 * 1024, 8 * 1024 * 1024, cli)
    env = {"HF_ENDPOINT": h.url}
    try:
        proc = subprocess.Popen([str(VENV_BIN / "vetted"), "pull", "slow", "--catalog", str(cat)],
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        part = _wait_partial(loc, 4 * 1024 * 1024)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out, err)
        assert "partial download is kept" in err and _store_empty(loc)
        have = part.stat().st_size
        h.b.throttle_bps = None
        again = cli("pull", "slow", "--catalog", str(cat), env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert _resumed_from(h, "slow") == have > 0
    finally:
        h.close()
