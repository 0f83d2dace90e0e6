"""The append-only audit log: every trust decision, so an organisation can show what
was accepted or refused, against which identity, and why."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlite_utils


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record(
    db: sqlite_utils.Database,
    action: str,
    subject: str,
    result: str,
    reason: str,
    identity: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    db.conn.execute(
        "INSERT INTO audit (at, action, subject, identity, result, reason, details)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now(), action, subject, identity, result, reason,
         json.dumps(details, sort_keys=True) if details else None),
    )


def entries(db: sqlite_utils.Database, limit: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, at, action, subject, identity, result, reason, details FROM audit ORDER BY id"
    rows = [dict(r) for r in db.query(sql)]
    for row in rows:
        row["details"] = json.loads(row["details"]) if row["details"] else None
    return rows[-limit:] if limit else rows
