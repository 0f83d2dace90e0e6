"""Invariant 6: `kill -9` of the whole chat process mid-reply loses at most the last
fraction of a second; the database stays intact."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import VENV_BIN
from runtime_kit import install_files, smollm2_copy
from vetted.store.chats import Chats
from vetted.store.db import open_db

pytestmark = pytest.mark.slow


def test_kill_9_mid_reply_keeps_message_and_partial_reply(tmp_path, loc, db, signing_key) -> None:
    install_files(tmp_path / "cat", loc, db, signing_key, {"smol": smollm2_copy(tmp_path)})
    db.conn.close()
    proc = subprocess.Popen(
        [str(VENV_BIN / "vetted"), "chat", "smol", "--prompt", "Write a very long story about a lighthouse.",
         "--max-tokens", "2000", "--temperature", "0", "--ctx", "4096"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        partial = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                con = sqlite3.connect(loc.database, timeout=5)
                row = con.execute("SELECT content, status FROM messages WHERE role='assistant'").fetchone()
                con.close()
            except sqlite3.OperationalError:
                continue
            if row and len(row[0]) > 40:
                partial = row[0]
                break
        assert partial, "the reply never started streaming into the database"
        os.killpg(proc.pid, signal.SIGKILL)  # the chat process and its engine worker
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    reopened = open_db(loc.database)
    assert reopened.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    chats = Chats(reopened)  # repairs replies whose writer is gone
    conv = chats.list()[0]
    msgs = chats.get(conv.id).messages
    assert msgs[0].role == "user" and msgs[0].content.startswith("Write a very long story")
    assert msgs[1].role == "assistant" and msgs[1].status == "incomplete"
    assert msgs[1].content.startswith(partial[:40]) and len(msgs[1].content) >= len(partial)


def test_cli_one_shot_json_and_export(tmp_path, loc, db, signing_key, cli) -> None:
    install_files(tmp_path / "cat", loc, db, signing_key, {"smol": smollm2_copy(tmp_path)})
    r = cli("chat", "smol", "--prompt", "What is 2+2?", "--json", "--max-tokens", "16", "--temperature", "0",
            "--ctx", "1024")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["reply"] and out["usage"]["completion_tokens"] > 0 and out["timings"]["ttft_s"] > 0
    listed = json.loads(cli("chats", "--json").stdout)
    assert listed[0]["id"] == out["conversation_id"]
    md = cli("chats", "export", str(out["conversation_id"]), "--format", "md")
    assert "What is 2+2?" in md.stdout and out["reply"].strip()[:10] in md.stdout
    js = json.loads(cli("chats", "export", str(out["conversation_id"]), "--format", "json").stdout)
    assert js["messages"][1]["content"] == out["reply"]
