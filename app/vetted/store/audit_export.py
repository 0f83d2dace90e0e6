"""Exports of the audit log: the chain head goes with every export, so a later copy of the
log can be checked against it (`check_export`) — which also catches a history rewritten
with every hash recomputed, since the chain itself has no secret."""

from __future__ import annotations

import json
import re
from typing import Any

import sqlite_utils

from vetted.errors import InputError
from vetted.store.audit import (
    EXPORT_FORMAT,
    HistoryRewritten,
    _database_path,
    entries,
    now,
    verify_chain,
)


def export_document(db: sqlite_utils.Database, rows: list[dict[str, Any]] | None = None,
                    limit: int | None = None) -> dict[str, Any]:
    status = verify_chain(db)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now(),
        "database": status.database,
        "head": status.head.as_dict(),
        "chain": status.as_dict(),
        "entries": entries(db, limit) if rows is None else rows,
    }


_NOT_ROWS = ("trigger", "head-file")  # problems about the database or the head file, not about rows
_JSON_TYPES = {list: "list", str: "string", int: "number", float: "number", bool: "true/false", type(None): "null"}


def _whole(value: Any) -> bool:
    return type(value) is int and value >= 0


def _export_head(document: Any, name: str) -> tuple[int, str, int | None, set[str]]:
    """The head and the fingerprints an export already showed; InputError naming what is
    wrong with it otherwise (it came from outside: a file a person or a script handed in)."""
    checked = f"audit {name}" if name.startswith("export ") else f"audit export {name}"
    again = "export the log again"

    def wrong(found: str) -> InputError:
        return InputError(checked, found, again)

    if not isinstance(document, dict):
        kind = _JSON_TYPES.get(type(document), type(document).__name__)
        raise wrong(f"has no chain head: it is a JSON {kind}, not an export object "
                    "(it is not an export of this Vetted version)")
    head = document.get("head")
    if not isinstance(head, dict):
        raise wrong("has no chain head (it is not an export of this Vetted version, or it was edited)")
    hid, hhash, hcount = head.get("id"), head.get("hash"), head.get("count")
    if not _whole(hid):
        raise wrong(f"head.id must be a whole number (0 or more), not {json.dumps(hid)[:40]}")
    if not (isinstance(hhash, str) and re.fullmatch(r"[0-9a-f]{64}", hhash)):
        raise wrong(f"head.hash must be a sha256 (64 lowercase hex digits), not {json.dumps(hhash)[:40]}")
    if hcount is not None and not _whole(hcount):
        raise wrong(f"head.count must be a whole number (0 or more), not {json.dumps(hcount)[:40]}")
    known: set[str] = set()
    chain = document.get("chain")
    if chain is not None and not isinstance(chain, dict):
        raise wrong(f"chain must be an object, not a JSON {_JSON_TYPES.get(type(chain), 'value')}")
    for key in ("problems", "acknowledged"):
        listed = (chain or {}).get(key)
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise wrong(f"chain.{key} must be a list, not a JSON {_JSON_TYPES.get(type(listed), 'object')}")
        for i, p in enumerate(listed):
            if not (isinstance(p, dict) and isinstance(p.get("fingerprint"), str)):
                raise wrong(f"chain.{key}[{i}] must be an object with a fingerprint")
            known.add(p["fingerprint"])
    assert isinstance(hid, int)  # _whole() checked it
    return hid, hhash, (int(hcount) if hcount is not None else None), known


def check_export(db: sqlite_utils.Database, document: Any, name: str = "the export") -> str:
    """Checks that the history an earlier export recorded is still here, unchanged.

    Returns a one-line description when it is; raises HistoryRewritten when the export's
    head row is gone or has another hash, when rows up to it changed in a way the export
    did not already show, or when rows added since have an unacknowledged break."""
    hid, hhash, hcount, known = _export_head(document, name)
    checked = f"the audit log ({_database_path(db.conn) or ':memory:'}) against {name} (head row {hid})"
    status = verify_chain(db, full=True)
    action = ("the log was changed after that export (or the export is from another installation); "
              "keep the export as evidence and compare it with a fresh export")
    if hid:
        row = db.conn.execute("SELECT hash FROM audit WHERE id = ?", (hid,)).fetchone()
        if row is None:
            raise HistoryRewritten(checked, f"row {hid}, the head of that export (sha256 {hhash[:16]}), "
                                   "is no longer in the log", action)
        if row[0] != hhash:
            raise HistoryRewritten(checked, f"row {hid} now has hash {str(row[0])[:16]}, the export recorded "
                                   f"{hhash[:16]}: it or a row before it was rewritten", action)
    rows = [p for p in status.problems + status.acknowledged if p.kind not in _NOT_ROWS]
    before = [p for p in rows if p.first_id <= hid and p.fingerprint not in known]
    if before:
        raise HistoryRewritten(checked, "; ".join(p.description for p in before[:3]), action)
    count = db.conn.execute("SELECT COUNT(*) FROM audit WHERE id <= ?", (hid,)).fetchone()[0]
    if isinstance(hcount, int) and count != hcount:
        raise HistoryRewritten(checked, f"the export counted {hcount} rows up to row {hid}, the log now has "
                               f"{count}", action)
    after = [p for p in status.problems
             if (p.first_id > hid and p.fingerprint not in known) or p.kind in _NOT_ROWS]
    if after:
        raise HistoryRewritten(checked, "since then: " + "; ".join(p.description for p in after[:3]), action)
    since = status.head.count - count
    if not hid:
        return f"consistent with {name}: it was taken of an empty log; {since} rows added since"
    return (f"consistent with {name}: row {hid} still has sha256 {hhash[:16]}, the {count} rows up to it "
            f"verify, {since} rows added since")
