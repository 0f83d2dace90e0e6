"""`kill -9` and Ctrl-C of a real `vetted pull` in the middle of a parallel download: the
store and the database are untouched, the partial's record of written parts claims only
bytes that are really there, and the next pull asks for exactly the bytes not written —
every part resumes where it stopped, and nothing written is fetched again."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from range_server import RangeServer
from terminal import as_in_a_terminal
from test_parallel_download import FILE, MODEL, MiB, covered, keys, publish  # noqa: F401  (keys: the fixture)
from vetted.paths import Locations

pytestmark = pytest.mark.slow

SIZE = 48 * MiB + 4321
CAP = 1_500_000  # per connection: with 8 connections the file takes ~4 s, long enough to interrupt


def _vetted(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "vetted"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _setup(tmp_path: Path, keys):
    src = tmp_path / "src" / FILE
    src.parent.mkdir()
    src.write_bytes(b"GGUF" + os.urandom(SIZE - 4))
    srv = RangeServer(tmp_path / "out" / "mirror", cap_bps=CAP)
    p = publish(tmp_path, keys, src, {"mirrors": [srv.url]})
    home = tmp_path / "cli-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["VETTED_HOME"] = str(home)
    added = _vetted("catalog", "add", str(p.catalog), "--key", str(keys[1]), env=env)
    assert added.returncode == 0, added.stdout + added.stderr
    loc = Locations(data=home / "data", config=home / "config", cache=home / "cache",
                    site_config=home / "site-config")
    return p, srv, env, loc


def _claimed(loc: Locations, sha: str) -> list[tuple[int, int]]:
    side = loc.quarantine / f"{sha}.part.ranges"
    try:
        doc = json.loads(side.read_bytes())
    except (FileNotFoundError, ValueError):
        return []
    return [(a, b) for a, b in doc["ranges"]]


def _interrupt(p, env, loc, sig: int) -> tuple[int, str]:
    proc = subprocess.Popen(as_in_a_terminal([str(Path(sys.executable).parent / "vetted"), "pull", MODEL,
                                              "--timeout", "10"]),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # until several parts are under way and a good share is recorded
            spans = _claimed(loc, p.sha256)
            if sum(b - a for a, b in spans) > 12 * MiB and len(spans) >= 3:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pull never got going"
            time.sleep(0.05)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _assert_untouched(loc: Locations, p) -> list[tuple[int, int]]:
    """Nothing installed; the partial has its full size; every claimed byte is the right byte."""
    store = loc.store / "sha256"
    assert not (store.exists() and [x for x in store.rglob("*") if x.is_file()])
    con = sqlite3.connect(loc.database)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM installed_models").fetchone()[0] == 0
    finally:
        con.close()
    part = (loc.quarantine / f"{p.sha256}.part").read_bytes()
    assert len(part) == SIZE  # preallocated at its full size
    spans = _claimed(loc, p.sha256)
    assert len(spans) >= 2 and 0 < sum(b - a for a, b in spans) < SIZE
    for a, b in spans:
        assert part[a:b] == p.data[a:b], f"the record claims bytes {a}-{b} that were not written"
    return spans


def _complement(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, at = [], 0
    for a, b in spans:
        if a > at:
            out.append((at, a))
        at = b
    return out + ([(at, SIZE)] if at < SIZE else [])


def _resume(p, srv: RangeServer, env, loc, spans) -> None:
    before = len(srv.for_file(FILE))
    srv.cap_bps = None
    again = _vetted("pull", MODEL, "--timeout", "10", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"installed: {MODEL} from mirror {srv.url}" in again.stdout
    second = srv.for_file(FILE)[before:]
    # exactly the bytes not written before: each part resumed where it stopped, and not one
    # byte the record claims was asked for again
    assert covered(second) == _complement(spans)
    assert not [(r.start, r.end) for r in second for a, b in spans if r.start < b and a < r.end]
    target = loc.store / "sha256" / p.sha256[:2] / p.sha256
    assert hashlib.sha256(target.read_bytes()).hexdigest() == p.sha256
    assert not list(loc.quarantine.glob("*.part")) and not list(loc.quarantine.glob("*.ranges"))
    listed = json.loads(_vetted("models", "--json", env=env).stdout)
    assert [(m["id"], m["state"]) for m in listed] == [(MODEL, "verified")]


def test_kill_9_mid_parallel_pull_then_every_part_resumes(tmp_path, keys) -> None:
    p, srv, env, loc = _setup(tmp_path, keys)
    try:
        code, _err = _interrupt(p, env, loc, signal.SIGKILL)
        assert code == -signal.SIGKILL
        first = srv.for_file(FILE)
        assert len({r.conn for r in first}) >= 4 and all(r.range for r in first)
        spans = _assert_untouched(loc, p)
        _resume(p, srv, env, loc, spans)
    finally:
        srv.close()


def test_ctrl_c_mid_parallel_pull_keeps_every_part_then_resumes(tmp_path, keys) -> None:
    p, srv, env, loc = _setup(tmp_path, keys)
    try:
        code, err = _interrupt(p, env, loc, signal.SIGINT)
        assert code == 130 and "partial download is kept" in err, err
        spans = _assert_untouched(loc, p)
        _resume(p, srv, env, loc, spans)
    finally:
        srv.close()
