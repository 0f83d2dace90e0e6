"""The append-only audit log: every trust decision, so an organisation can show what
was accepted or refused, against which identity, and why.

Triggers alone do not make a log append-only: anyone who can write the database file can
`DROP TRIGGER` and then delete or rewrite rows. So each row is chained to the one before
it by a hash (`prev_hash`, `hash`), the chain is verified when a database is opened, and
while it is broken no trust decision is made until a person acknowledges what was found.

What the chain proves, and what it cannot:
- a row changed after it was written, a row removed from the middle, rows removed from
  the end (AUTOINCREMENT's `sqlite_sequence` remembers the highest id ever handed out) and
  rows replaced or re-ordered are all found by recomputing the chain;
- there is no secret in the chain, so someone who rewrites the *whole* history and
  recomputes every hash is found only against a head recorded elsewhere: an export's
  head (`check_export`), or the head this process verified earlier (the cache below).

Hash encoding (format "vetted.audit/1"): sha256 over the bytes of the compact JSON array
`["vetted.audit/1", id, at, action, subject, identity, result, reason, details, prev_hash]`
(Python's json.dumps with ensure_ascii, separators "," and ":", so pure ASCII; `details` is the stored JSON text verbatim, not re-encoded;
NULL is `null`; a BLOB an intruder stored is `["blob", hex]`). The first row's
`prev_hash` is 64 zeros.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from vetted.errors import InputError, Refused

FORMAT = "vetted.audit/1"
EXPORT_FORMAT = "vetted.audit-export/1"
GENESIS = "0" * 64
FIELDS = ("id", "at", "action", "subject", "identity", "result", "reason", "details")
_COLUMNS = ", ".join(FIELDS)

# The triggers that keep the log append-only (migration 6 creates them, verification checks
# them on every call, an acknowledgement restores them). Without them any row may change
# between two verifications, so this process falls back to verifying the whole chain.
TRIGGERS: dict[str, str] = {
    "audit_no_update": """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    "audit_no_delete": """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    "audit_append_only": """CREATE TRIGGER audit_append_only BEFORE INSERT ON audit
        WHEN NEW.id IS NULL OR NEW.id <= (SELECT COALESCE(MAX(id), 0) FROM audit)
            OR NEW.id <= COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)
            OR NEW.hash IS NULL OR NEW.prev_hash IS NULL
        BEGIN SELECT RAISE(ABORT,
            'the audit log is append-only: an entry needs an id above every id used so far, and its hashes');
        END""",
    "audit_ack_no_update": """CREATE TRIGGER audit_ack_no_update BEFORE UPDATE ON audit_acknowledgements
        BEGIN SELECT RAISE(ABORT, 'acknowledgements are append-only'); END""",
    "audit_ack_no_delete": """CREATE TRIGGER audit_ack_no_delete BEFORE DELETE ON audit_acknowledgements
        BEGIN SELECT RAISE(ABORT, 'acknowledgements are append-only'); END""",
}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _canonical(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["blob", bytes(value).hex()]
    return value


def row_hash(fields: Sequence[Any], prev_hash: str | None) -> str:
    """The chain hash of one row: `fields` in FIELDS order, as stored, plus its prev_hash."""
    payload = [FORMAT, *(_canonical(v) for v in fields), _canonical(prev_hash)]
    data = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(data.encode("ascii")).hexdigest()


def record(
    db: sqlite_utils.Database,
    action: str,
    subject: str,
    result: str,
    reason: str,
    identity: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Appends one entry, chained to the last row; returns its id.

    Runs in the caller's transaction when there is one, else in its own BEGIN IMMEDIATE, so
    two writers cannot both chain to the same previous row (the second waits for the first).
    """
    conn = db.conn
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        seq = _sequence(conn)
        new_id = max(seq, last[0] if last else 0) + 1
        prev = _stored(last[1]) if last else GENESIS
        fields = (new_id, now(), action, subject, identity, result, reason,
                  json.dumps(details, sort_keys=True) if details else None)
        conn.execute(
            f"INSERT INTO audit ({_COLUMNS}, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields, prev, row_hash(fields, prev)),
        )
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return new_id


def entries(db: sqlite_utils.Database, limit: int | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLUMNS}, prev_hash, hash FROM audit ORDER BY id"
    rows = [dict(r) for r in db.query(sql)]
    for row in rows:
        try:
            row["details"] = json.loads(row["details"]) if row["details"] else None
        except (TypeError, ValueError):  # a row written outside Vetted: show it as it is
            row["details"] = {"unparsed": repr(row["details"])}
    return rows[-limit:] if limit else rows


# ---------------------------------------------------------------------------------------
# Verifying the chain


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the chain. The fingerprint names exactly this problem (ids and
    hashes), so an acknowledgement covers it and nothing that happens later."""

    kind: str  # "content" | "link" | "missing" | "bad-id"
    first_id: int
    last_id: int
    fingerprint: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "first_id": self.first_id, "last_id": self.last_id,
                "fingerprint": self.fingerprint, "description": self.description}


@dataclass(frozen=True)
class Head:
    """The last row of the chain: with its hash, it stands for all of history before it."""

    id: int  # 0 for an empty log
    hash: str  # the last row's stored hash (GENESIS for an empty log)
    count: int  # rows in the log

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "hash": self.hash, "count": self.count}

    def line(self) -> str:
        if not self.id:
            return "head: empty log (no rows yet)"
        return f"head: row {self.id}, sha256 {self.hash}, {self.count} rows"


@dataclass(frozen=True)
class ChainStatus:
    database: str
    head: Head
    problems: tuple[Problem, ...]  # not acknowledged: trust decisions stop
    acknowledged: tuple[Problem, ...] = ()
    checked: int = 0  # rows hashed by this verification (all of them the first time)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 3) -> str:
        if self.ok:
            text = f"intact ({self.head.count} rows)"
            if self.acknowledged:
                text += f"; {len(self.acknowledged)} earlier break(s) acknowledged"
            return text
        shown = "; ".join(p.description for p in self.problems[:limit])
        more = len(self.problems) - limit
        return shown + (f"; and {more} more" if more > 0 else "")

    def as_dict(self) -> dict[str, Any]:
        return {"intact": self.ok, "problems": [p.as_dict() for p in self.problems],
                "acknowledged": [p.as_dict() for p in self.acknowledged]}


class AuditBroken(Refused):
    """The audit log's hash chain does not verify and the break has not been acknowledged."""

    def __init__(self, checked: str, found: str, action: str = "", status: ChainStatus | None = None) -> None:
        super().__init__(checked, found, action)
        self.status = status

    @classmethod
    def from_status(cls, status: ChainStatus) -> AuditBroken:
        return cls(
            f"the audit log's hash chain ({status.database})",
            status.summary(),
            "no trust decision is made until this is acknowledged: look at the rows with `vetted audit`, "
            "then record what was found with `vetted audit --acknowledge`; any later change breaks it again",
            status,
        )


class HistoryRewritten(Refused):
    """The log no longer contains the history an earlier export recorded."""


@dataclass
class _State:
    """What this process knows about one database file's chain."""

    schema_version: int = -1
    last_id: int = 0
    last_hash: str = GENESIS  # stored hash of row last_id
    count: int = 0
    high_water: int = 0  # highest id this process has seen exist (or sqlite_sequence said)
    problems: list[Problem] = field(default_factory=list)  # found while scanning rows


_cache: dict[tuple[str, int, int], _State] = {}
_lock = threading.Lock()


def _sequence(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
    except sqlite3.OperationalError:  # no AUTOINCREMENT table has ever been written
        return 0
    return int(row[0]) if row and row[0] is not None else 0


def _database_path(conn: sqlite3.Connection) -> str:
    for _seq, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return file or ""
    return ""


def _cache_key(path: str) -> tuple[str, int, int] | None:
    if not path:
        return None  # in-memory: nothing to remember between connections
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_dev, st.st_ino)


def _missing(first: int, last: int, tail: bool) -> Problem:
    which = f"row {first} is" if first == last else f"rows {first}-{last} are"
    where = f" from the end (the log had reached row {last})" if tail else ""
    return Problem("missing", first, last, f"missing:{first}-{last}",
                   f"{which} missing{where}: deleted after {'it was' if first == last else 'they were'} written")


def _stored(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _scan(conn: sqlite3.Connection, state: _State, full: bool) -> int:
    """Verifies every row after state.last_id (every row when `full`), extending state;
    returns how many rows it hashed."""
    sql = f"SELECT {_COLUMNS}, prev_hash, hash FROM audit"
    cursor = conn.execute(sql + " ORDER BY id") if full else \
        conn.execute(sql + " WHERE id > ? ORDER BY id", (state.last_id,))
    checked = 0
    for row in cursor:
        fields, prev_hash, stored = row[:8], row[8], row[9]
        rid = fields[0]
        checked += 1
        computed = row_hash(fields, prev_hash)
        if not isinstance(rid, int) or rid < 1:
            state.problems.append(Problem("bad-id", 0, 0, f"bad-id:{rid}:{computed}",
                                          f"a row with id {rid!r} was added outside Vetted"))
            continue
        linked = True
        if rid > state.last_id + 1:
            state.problems.append(_missing(state.last_id + 1, rid - 1, tail=False))
            linked = False  # its predecessor is gone: the missing range says it all
        if stored != computed:
            state.problems.append(Problem(
                "content", rid, rid, f"content:{rid}:{computed}:{stored}",
                f"row {rid} ({fields[1]} {fields[2]} {fields[3]}) does not match its hash: "
                "it was changed after it was written"))
        if linked and prev_hash != state.last_hash:
            before = f"row {state.last_id}" if state.last_id else "the start of the log"
            state.problems.append(Problem(
                "link", rid, rid, f"link:{rid}:{prev_hash}:{state.last_hash}",
                f"row {rid} does not follow {before}: it names predecessor hash {str(prev_hash)[:16]}, "
                f"{before} has {state.last_hash[:16]} (rows were replaced or re-ordered)"))
        state.last_id, state.last_hash = rid, _stored(stored)
        state.count += 1
    return checked


def _unchanged(conn: sqlite3.Connection, state: _State) -> bool:
    """The row this process verified last is still there, with the same content and hash."""
    if not state.last_id:
        return conn.execute("SELECT 1 FROM audit WHERE id <= 0 LIMIT 1").fetchone() is None
    row = conn.execute(f"SELECT {_COLUMNS}, prev_hash, hash FROM audit WHERE id = ?",
                       (state.last_id,)).fetchone()
    return (row is not None and row[9] == state.last_hash
            and row_hash(row[:8], row[8]) == state.last_hash)


def _normalised(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").rstrip()


def _trigger_problems(conn: sqlite3.Connection) -> list[Problem]:
    """A protective trigger that is gone or different: Vetted never drops or changes them."""
    present = {name: sql or "" for name, sql in
               conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")}
    problems = []
    for name, sql in TRIGGERS.items():
        if name not in present:
            problems.append(Problem("trigger", 0, 0, f"trigger:{name}:missing",
                                    f"the trigger {name} that keeps the log append-only was removed"))
        elif _normalised(present[name]) != _normalised(sql):
            digest = hashlib.sha256(present[name].encode()).hexdigest()[:16]
            problems.append(Problem("trigger", 0, 0, f"trigger:{name}:{digest}",
                                    f"the trigger {name} that keeps the log append-only was replaced by another"))
    return problems


def acknowledged_fingerprints(db: sqlite_utils.Database) -> set[str]:
    """Fingerprints acknowledged by a person: each row of audit_acknowledgements counts only
    if the chained audit.acknowledge entry it points to names that fingerprint, so a row
    slipped into that table alone acknowledges nothing."""
    acked = set()
    for fingerprint, action, details in db.conn.execute(
            "SELECT k.fingerprint, a.action, a.details FROM audit_acknowledgements k"
            " JOIN audit a ON a.id = k.audit_id"):  # by primary key: no scan of the log
        try:
            named = {p["fingerprint"] for p in json.loads(details)["problems"] if isinstance(p, dict)}
        except (TypeError, ValueError, KeyError):
            continue
        if action == "audit.acknowledge" and fingerprint in named:
            acked.add(fingerprint)
    return acked


def verify_chain(db: sqlite_utils.Database, full: bool = False) -> ChainStatus:
    """Verifies the chain: all of it the first time this process sees this database file
    (or after the schema changed: dropping a trigger does), then only the row verified last
    (still there, unchanged) and the rows added since. `full=True` always verifies all."""
    conn = db.conn
    path = _database_path(conn)
    key = _cache_key(path)
    with _lock:
        schema_version = conn.execute("PRAGMA schema_version").fetchone()[0]
        unprotected = _trigger_problems(conn)
        cached = _cache.get(key) if key else None
        incremental = (not full and not unprotected and cached is not None
                       and cached.schema_version == schema_version and _unchanged(conn, cached))
        if incremental:
            assert cached is not None
            state = cached
            # the cached last row was re-hashed by _unchanged; then only the rows after it
            checked = (1 if state.last_id else 0) + _scan(conn, state, full=False)
        else:
            state = _State(schema_version=schema_version, high_water=cached.high_water if cached else 0)
            checked = _scan(conn, state, full=True)
        high_water = max(_sequence(conn), state.high_water, state.last_id)
        problems = list(state.problems)
        if state.last_id < high_water:
            problems.append(_missing(state.last_id + 1, high_water, tail=True))
        state.high_water = high_water
        if key:
            _cache[key] = state
        head = Head(state.last_id, state.last_hash if state.last_id else GENESIS, state.count)
    acked = acknowledged_fingerprints(db)
    return ChainStatus(
        database=path or ":memory:",
        head=head,
        # a missing trigger is never tolerated: acknowledging restores it
        problems=tuple(p for p in problems if p.fingerprint not in acked) + tuple(unprotected),
        acknowledged=tuple(p for p in problems if p.fingerprint in acked),
        checked=checked,
    )


def require_intact(db: sqlite_utils.Database) -> ChainStatus:
    """Call before any trust decision: raises AuditBroken while the chain has an
    unacknowledged break."""
    status = verify_chain(db)
    if not status.ok:
        raise AuditBroken.from_status(status)
    return status


def acknowledge(db: sqlite_utils.Database, reason: str | None = None) -> tuple[Problem, ...]:
    """Records the problems found now as known; returns them (empty when the chain is intact).

    Each is stored by fingerprint, and an `audit.acknowledge` entry names them all, so the
    acknowledgement itself is part of the chain. Problems that appear later are not covered.
    Protective triggers found removed or replaced are put back as Vetted created them.
    """
    status = verify_chain(db, full=True)
    if status.ok:
        return ()
    try:
        who = f"local user {getpass.getuser()}"
    except Exception:  # no user name (containers without passwd entries)
        who = None
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        entry = record(db, "audit.acknowledge", status.database, "info",
                       reason or f"{len(status.problems)} break(s) in the hash chain acknowledged",
                       who, {"problems": [p.as_dict() for p in status.problems]})
        at = now()
        for p in status.problems:
            if p.kind == "trigger":
                name = p.fingerprint.split(":")[1]
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
                conn.execute(TRIGGERS[name])
            conn.execute(
                "INSERT INTO audit_acknowledgements (at, fingerprint, kind, description, audit_id)"
                " VALUES (?, ?, ?, ?, ?)", (at, p.fingerprint, p.kind, p.description, entry))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return status.problems


# ---------------------------------------------------------------------------------------
# Exports: the head goes with every export, so a later copy of the log can be checked
# against it.


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


def check_export(db: sqlite_utils.Database, document: Any, name: str = "the export") -> str:
    """Checks that the history an earlier export recorded is still here, unchanged.

    Returns a one-line description when it is; raises HistoryRewritten when the export's
    head row is gone or has another hash, when rows up to it changed in a way the export
    did not already show, or when rows added since have an unacknowledged break."""
    head = document.get("head") if isinstance(document, dict) else None
    if not isinstance(head, dict) or not isinstance(head.get("id"), int) or not isinstance(head.get("hash"), str):
        raise InputError(f"audit export {name}", "has no chain head (it is not an export of this Vetted "
                         "version, or it was edited)", "export the log again with `vetted audit --json`")
    hid, hhash, hcount = head["id"], head["hash"], head.get("count")
    checked = f"the audit log ({_database_path(db.conn) or ':memory:'}) against {name} (head row {hid})"
    status = verify_chain(db, full=True)
    known = set()
    chain = document.get("chain")
    if isinstance(chain, dict):
        for p in (chain.get("problems") or []) + (chain.get("acknowledged") or []):
            if isinstance(p, dict) and isinstance(p.get("fingerprint"), str):
                known.add(p["fingerprint"])
    action = ("the log was changed after that export (or the export is from another installation); "
              "keep the export as evidence and compare it with `vetted audit --json`")
    if hid:
        row = db.conn.execute("SELECT hash FROM audit WHERE id = ?", (hid,)).fetchone()
        if row is None:
            raise HistoryRewritten(checked, f"row {hid}, the head of that export (sha256 {hhash[:16]}), "
                                   "is no longer in the log", action)
        if row[0] != hhash:
            raise HistoryRewritten(checked, f"row {hid} now has hash {str(row[0])[:16]}, the export recorded "
                                   f"{hhash[:16]}: it or a row before it was rewritten", action)
    rows = [p for p in status.problems + status.acknowledged if p.kind != "trigger"]
    before = [p for p in rows if p.first_id <= hid and p.fingerprint not in known]
    if before:
        raise HistoryRewritten(checked, "; ".join(p.description for p in before[:3]), action)
    count = db.conn.execute("SELECT COUNT(*) FROM audit WHERE id <= ?", (hid,)).fetchone()[0]
    if isinstance(hcount, int) and count != hcount:
        raise HistoryRewritten(checked, f"the export counted {hcount} rows up to row {hid}, the log now has "
                               f"{count}", action)
    after = [p for p in status.problems
             if (p.first_id > hid and p.fingerprint not in known) or p.kind == "trigger"]
    if after:
        raise HistoryRewritten(checked, "since then: " + "; ".join(p.description for p in after[:3]), action)
    since = status.head.count - count
    if not hid:
        return f"consistent with {name}: it was taken of an empty log; {since} rows added since"
    return (f"consistent with {name}: row {hid} still has sha256 {hhash[:16]}, the {count} rows up to it "
            f"verify, {since} rows added since")
