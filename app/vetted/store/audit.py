"""The append-only audit log: every trust decision, so an organisation can show what
was accepted or refused, against which identity, and why.

Triggers alone do not make a log append-only: anyone who can write the database file can
`DROP TRIGGER` and then delete or rewrite rows, or add a trigger of their own that
silently discards entries (`RAISE(IGNORE)`). So each row is chained to the one before it
by a hash (`prev_hash`, `hash`), the chain is verified when a database is opened, any
trigger on the log that Vetted did not create counts as a break, and while the chain is
broken no trust decision is made until a person acknowledges what was found.

What the chain proves, and what it cannot:
- a row changed after it was written, a row removed from the middle and rows replaced or
  re-ordered are all found by recomputing the chain;
- rows removed from the end leave no trace in the chain itself. Two things remember how
  far the log had got: AUTOINCREMENT's `sqlite_sequence` (inside the database, so it can be
  set back too) and the *head file* next to the database (`vetted.sqlite3.audit-head`:
  the last row's id and hash, replaced after every append). Rows missing below either, or
  a head row whose hash is no longer the one recorded, are a break. A missing head file is
  not (a database from before it existed, or one just created); it is written again with
  the next entry;
- there is no secret in the chain, so someone who can write the user's files and rewrites
  the history, every hash *and* the head file is found only against a head recorded out
  of their reach: an export's head (`check_export`), or the head this process verified
  earlier (the cache below).

The head file is only ever written after a commit, under SQLite's write lock, with the
log's real last row, and never moved back to a lower id: two processes appending at once
cannot make it name a row that is not there. It is not fsynced; after a power cut that
loses the database's last commits (WAL with synchronous=NORMAL) it may name rows that are
gone, which is reported like any other rows lost from the end.

Hash encoding (format "vetted.audit/1"): sha256 over the bytes of the compact JSON array
`["vetted.audit/1", id, at, action, subject, identity, result, reason, details, prev_hash]`
(Python's json.dumps with ensure_ascii, separators "," and ":", so pure ASCII; `details` is the stored JSON text verbatim, not re-encoded;
NULL is `null`; a BLOB an intruder stored is `["blob", hex]`). The first row's
`prev_hash` is 64 zeros.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from vetted.errors import Fix, Refused, Remedy

FORMAT = "vetted.audit/1"
EXPORT_FORMAT = "vetted.audit-export/1"
HEAD_FORMAT = "vetted.audit-head/1"
HEAD_SUFFIX = ".audit-head"  # the head file: next to the database, e.g. vetted.sqlite3.audit-head
GENESIS = "0" * 64
FIELDS = ("id", "at", "action", "subject", "identity", "result", "reason", "details")
_COLUMNS = ", ".join(FIELDS)

# The triggers that keep the log append-only (migration 6 creates them, verification checks
# them on every call, an acknowledgement restores them). Without them any row may change
# between two verifications, so this process falls back to verifying the whole chain.
# Any other trigger on these tables, or elsewhere naming them, is reported as a break and
# removed on acknowledgement: a trigger Vetted itself needs there must be listed here.
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
    The id is above every id known to have been used: the last row, sqlite_sequence, the head
    file, what this process saw; so rows lost from the end stay visible as a gap once the log
    goes on. After its own commit the head file is moved on (a caller's transaction leaves
    that to the next entry: the file must never name a row that may yet be rolled back).
    Raises AuditBroken when the row did not land as written (a trigger discarded it).
    """
    conn = db.conn
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        path = _database_path(conn)
        anchor, _unreadable = _read_anchor(path)
        new_id = max(_sequence(conn), last[0] if last else 0, anchor.id if anchor else 0,
                     _seen_high_water(path)) + 1
        prev = _stored(last[1]) if last else GENESIS
        fields = (new_id, now(), action, subject, identity, result, reason,
                  json.dumps(details, sort_keys=True) if details else None)
        digest = row_hash(fields, prev)
        cursor = conn.execute(
            f"INSERT INTO audit ({_COLUMNS}, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields, prev, digest),
        )
        if cursor.rowcount != 1 or conn.execute("SELECT hash FROM audit WHERE id = ?",
                                                (new_id,)).fetchone() != (digest,):
            raise AuditBroken(
                f"the audit log ({path or ':memory:'})",
                f"the entry ({action} {subject}: {result}) was not written as given: something in the database "
                "discarded or changed it (a trigger Vetted did not create?)",
                "look at the audit log", remedy=Remedy(Fix.SHOW_AUDIT))
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if own:
        _advance_anchor(conn)
    _copy_out(path, {"id": new_id, "at": fields[1], "action": action, "subject": subject, "identity": identity,
                     "result": result, "reason": reason, "details": details, "prev_hash": prev, "hash": digest})
    return new_id


# An organisation's policy may ask for a copy of every entry, appended as JSON lines to a
# file it collects (policy: audit.copy_to). Registered per database by the application object.
_COPIES: dict[str, tuple[str, ...]] = {}
_COPY_LOCK = threading.Lock()


def set_copies(database: str, paths: list[str]) -> None:
    with _COPY_LOCK:
        if paths:
            _COPIES[os.path.realpath(database)] = tuple(paths)
        else:
            _COPIES.pop(os.path.realpath(database), None)


class AuditCopyFailed(Refused):
    """The organisation's copy of the audit log could not be written (the decision is in the
    local log, but nothing else proceeds until the copy works again)."""


def _copy_out(database: str, row: dict[str, Any]) -> None:
    if not database:
        return
    with _COPY_LOCK:
        targets = _COPIES.get(os.path.realpath(database), ())
    line = (json.dumps(row, sort_keys=True, ensure_ascii=True) + "\n").encode()
    for target in targets:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                os.write(fd, line)  # one write of one line: appends from several processes do not interleave
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditCopyFailed(f"the organisation's audit copy {target}",
                                  f"cannot be written ({exc.strerror or exc})",
                                  "the decision is in the local audit log; ask your administrator to fix the "
                                  "copy's location (policy audit.copy_to)") from None


def entries(db: sqlite_utils.Database, limit: int | None = None) -> list[dict[str, Any]]:
    """All rows in id order, or the last `limit` of them."""
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(f"limit must be a positive whole number, not {limit!r}")
    sql = f"SELECT {_COLUMNS}, prev_hash, hash FROM audit ORDER BY id"
    rows = [dict(r) for r in db.query(sql)]
    for row in rows:
        try:
            row["details"] = json.loads(row["details"]) if row["details"] else None
        except (TypeError, ValueError):  # a row written outside Vetted: show it as it is
            row["details"] = {"unparsed": repr(row["details"])}
    return rows[-limit:] if limit is not None else rows


# ---------------------------------------------------------------------------------------
# Verifying the chain


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the chain. The fingerprint names exactly this problem (ids and
    hashes), so an acknowledgement covers it and nothing that happens later."""

    kind: str  # "content" | "link" | "missing" | "bad-id" | "trigger" | "head" | "head-file"
    first_id: int
    last_id: int
    fingerprint: str
    description: str
    trigger: str = ""  # for "trigger": its name (Vetted's, put back, or another, removed on acknowledgement)

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

    def __init__(self, checked: str, found: str, action: str = "", status: ChainStatus | None = None,
                 remedy: Remedy | None = None) -> None:
        super().__init__(checked, found, action, remedy or Remedy(Fix.ACKNOWLEDGE_AUDIT))
        self.status = status

    @classmethod
    def from_status(cls, status: ChainStatus) -> AuditBroken:
        return cls(
            f"the audit log's hash chain ({status.database})",
            status.summary(),
            "no trust decision is made until this is acknowledged: look at the rows, then record what "
            "was found; any later change breaks it again",
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


def _seen_high_water(path: str) -> int:
    key = _cache_key(path)
    with _lock:
        state = _cache.get(key) if key else None
        return state.high_water if state else 0


# ---------------------------------------------------------------------------------------
# The head file: the last row's id and hash, kept next to the database, outside it.


@dataclass(frozen=True)
class _Anchor:
    id: int
    hash: str


def head_path(database: str) -> str | None:
    """Where the head file of the database file `database` lives (None for in-memory)."""
    return database + HEAD_SUFFIX if database else None


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _read_anchor(database: str) -> tuple[_Anchor | None, Problem | None]:
    """The head recorded for this database: (head, None); (None, None) when there is none,
    or it was written for a database elsewhere (the folder was copied or moved: the next
    entry writes this one's); (None, problem) when it exists but cannot be read."""
    path = head_path(database)
    if path is None:
        return None, None
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, _unreadable_anchor(path, exc.strerror or str(exc), f"os{exc.errno}")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        doc = None
    if not (isinstance(doc, dict) and doc.get("format") == HEAD_FORMAT and isinstance(doc.get("database"), str)
            and type(doc.get("id")) is int and doc["id"] >= 1 and isinstance(doc.get("hash"), str)):
        return None, _unreadable_anchor(path, "it is not a head Vetted wrote", hashlib.sha256(data).hexdigest()[:16])
    if not _same_file(doc["database"], database):
        return None, None
    return _Anchor(doc["id"], doc["hash"]), None


def _unreadable_anchor(path: str, why: str, token: str) -> Problem:
    return Problem("head-file", 0, 0, f"head-file:{token}",
                   f"the head recorded outside the database ({path}) cannot be read: {why}")


def _write_anchor(database: str, last_id: int, last_hash: str) -> None:
    """Replaces the head file atomically (a reader sees the old one or the new one)."""
    path = head_path(database)
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    doc = {"format": HEAD_FORMAT, "database": os.path.realpath(database), "id": last_id, "hash": last_hash}
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # left by a crash; O_EXCL below never writes through anything planted there
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        with open(fd, "wb") as f:
            f.write(json.dumps(doc).encode("ascii"))
        os.replace(tmp, path)
    except OSError:  # a read-only data folder: the head file lags, which never raises a false alarm
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _advance_anchor(conn: sqlite3.Connection, force: bool = False) -> None:
    """Points the head file at the log's last committed row. Under the write lock, so no
    entry is appended meanwhile and two processes cannot write it out of order; never to
    a lower id than it names, and never over evidence (a head row whose hash changed, an
    unreadable file) unless `force` (an acknowledgement has just recorded that evidence)."""
    database = _database_path(conn)
    if not database or conn.in_transaction:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            if last is None or not isinstance(last[1], str):
                return
            anchor, unreadable = _read_anchor(database)
            if not force:
                if unreadable is not None:
                    return
                if anchor is not None:
                    if anchor.id >= last[0]:
                        return  # already there, or names rows that are gone: never backwards
                    row = conn.execute("SELECT hash FROM audit WHERE id = ?", (anchor.id,)).fetchone()
                    if row is not None and row[0] != anchor.hash:
                        return
            _write_anchor(database, last[0], last[1])
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # nothing was changed: the transaction only held the lock
    except sqlite3.Error:  # busy past the timeout: the head file lags, which is safe
        pass


def _anchor_problems(conn: sqlite3.Connection, anchor: _Anchor | None, last_id: int, high_water: int) -> list[Problem]:
    """What the head file says that the database does not: rows beyond the last one (unless
    sqlite_sequence or this process already said so), or a head row with another hash."""
    if anchor is None:
        return []
    if anchor.id > last_id:
        if anchor.id <= high_water:
            return []  # reported from sqlite_sequence (or what this process saw) already
        first = last_id + 1
        which = f"row {first} is" if first == anchor.id else f"rows {first}-{anchor.id} are"
        return [Problem("missing", first, anchor.id, f"missing:{first}-{anchor.id}",
                        f"{which} missing at the end: the head recorded outside the database is row {anchor.id}")]
    row = conn.execute("SELECT hash FROM audit WHERE id = ?", (anchor.id,)).fetchone()
    if row is None or row[0] == anchor.hash:
        return []  # a row deleted from the middle is reported by the chain
    return [Problem("head", anchor.id, anchor.id, f"head:{anchor.id}:{anchor.hash}:{row[0]}",
                    f"row {anchor.id} has sha256 {str(row[0])[:16]}, the head recorded outside the database "
                    f"names {anchor.hash[:16]}: it or a row before it was rewritten")]


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


# A trigger elsewhere whose body names one of these can write to the log, its
# acknowledgements, or set back the sequence that remembers how far the log had got.
_TOUCHES_LOG = re.compile(r"\b(audit|audit_acknowledgements|sqlite_sequence)\b", re.IGNORECASE)
_LOG_TABLES = {"audit": "on the audit log", "audit_acknowledgements": "on the audit log's acknowledgements"}


def _trigger_problems(conn: sqlite3.Connection) -> list[Problem]:
    """A protective trigger that is gone or different (Vetted never drops or changes them),
    and any other trigger on the log or its acknowledgements, or one elsewhere that names
    them: Vetted creates none, and one can silently discard entries (RAISE(IGNORE))."""
    present = {name: (str(table or ""), sql or "") for name, table, sql in
               conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")}
    problems = []
    for name, sql in TRIGGERS.items():
        if name not in present:
            problems.append(Problem("trigger", 0, 0, f"trigger:{name}:missing",
                                    f"the trigger {name} that keeps the log append-only was removed", name))
        elif _normalised(present[name][1]) != _normalised(sql):
            digest = hashlib.sha256(present[name][1].encode()).hexdigest()[:16]
            problems.append(Problem("trigger", 0, 0, f"trigger:{name}:{digest}",
                                    f"the trigger {name} that keeps the log append-only was replaced by another",
                                    name))
    for name, (table, sql) in sorted(present.items()):
        if name in TRIGGERS:
            continue
        where = _LOG_TABLES.get(table.lower())
        if where is None and _TOUCHES_LOG.search(sql):
            where = f"on {table}, writing to the audit log or its sequence,"
        if where is not None:
            digest = hashlib.sha256(sql.encode()).hexdigest()[:16]
            problems.append(Problem("trigger", 0, 0, f"trigger:{name}:extra:{digest}",
                                    f"a trigger {name} {where} that Vetted did not create "
                                    "(it can change or silently discard entries)", name))
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
    (still there, unchanged) and the rows added since. `full=True` always verifies all.

    The head file and sqlite_sequence are read first and the rows after them: they only
    ever name committed rows, so an entry appended meanwhile is seen, never reported
    missing. (So do not call this inside a read transaction begun earlier: its snapshot may
    be older than the head file.)"""
    conn = db.conn
    path = _database_path(conn)
    anchor, unreadable_anchor = _read_anchor(path)
    key = _cache_key(path)
    with _lock:
        # like the head file, sqlite_sequence is read before the rows: each statement sees
        # the latest commit, so reading it after them would count an entry appended in
        # between as deleted
        sequence = _sequence(conn)
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
        high_water = max(sequence, state.high_water, state.last_id)
        problems = list(state.problems)
        anchored = _anchor_problems(conn, anchor, state.last_id, high_water)
        if state.last_id < high_water and not any(p.kind == "missing" for p in anchored):  # one tail, the longer
            problems.append(_missing(state.last_id + 1, high_water, tail=True))
        problems += anchored
        if unreadable_anchor is not None:
            problems.append(unreadable_anchor)
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
    Protective triggers found removed or replaced are put back as Vetted created them, and
    triggers Vetted did not create are removed, before anything is written (one could
    discard the acknowledgement itself). The head file is then pointed at the new last row,
    even over a head it had kept as evidence: that evidence is now in the chain. Rows found
    missing from the end stay a visible gap, because the acknowledgement's id is above them.
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
        for p in status.problems:
            if p.kind == "trigger":
                quoted = '"' + p.trigger.replace('"', '""') + '"'
                conn.execute(f"DROP TRIGGER IF EXISTS main.{quoted}")
                if p.trigger in TRIGGERS:
                    conn.execute(TRIGGERS[p.trigger])
        entry = record(db, "audit.acknowledge", status.database, "info",
                       reason or f"{len(status.problems)} break(s) in the hash chain acknowledged",
                       who, {"problems": [p.as_dict() for p in status.problems]})
        at = now()
        for p in status.problems:
            conn.execute(
                "INSERT INTO audit_acknowledgements (at, fingerprint, kind, description, audit_id)"
                " VALUES (?, ?, ?, ?, ?)", (at, p.fingerprint, p.kind, p.description, entry))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    _advance_anchor(conn, force=True)
    return status.problems


def export_document(db: sqlite_utils.Database, rows: list[dict[str, Any]] | None = None,
                    limit: int | None = None) -> dict[str, Any]:
    """See `store/audit_export.py` (kept here so callers need one module)."""
    from vetted.store.audit_export import export_document as build

    return build(db, rows, limit)


def check_export(db: sqlite_utils.Database, document: Any, name: str = "the export") -> str:
    """See `store/audit_export.py`."""
    from vetted.store.audit_export import check_export as check

    return check(db, document, name)
