"""Opening the database, WAL mode, and versioned schema migrations.

Migrations are an ordered list of SQL scripts; `PRAGMA user_version` records how many
have run, so an old database is brought forward in place and a newer one is refused
rather than misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from vetted.errors import StoreError

# Each migration is an SQL script, or a Python function for steps SQL cannot express
# (computing hashes over existing rows). Both run inside one transaction per migration.
Migration = str | Callable[[sqlite3.Connection], None]


def _chain_audit_log(conn: sqlite3.Connection) -> None:
    """6: the audit log becomes a hash chain (see store/audit.py for the encoding).

    Triggers alone let anyone who can write the file `DROP TRIGGER` and then rewrite or
    delete rows unnoticed, and `INSERT OR REPLACE` rewrote a row without firing the
    delete trigger at all. Each row now carries `prev_hash` and `hash`; the rows already
    there are chained in id order (a gap in their ids is reported by verification, as it
    would be later). A new BEFORE INSERT trigger refuses any id not above every id used
    so far (that stops INSERT OR REPLACE) and a row without its hashes; the no-update and
    no-delete triggers stay, recreated from `audit.TRIGGERS`, the text verification checks
    them against. Acknowledged breaks are kept in `audit_acknowledgements`.
    """
    from vetted.store.audit import GENESIS, TRIGGERS, row_hash

    conn.execute("ALTER TABLE audit ADD COLUMN prev_hash TEXT")
    conn.execute("ALTER TABLE audit ADD COLUMN hash TEXT")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")  # recreated below from audit.TRIGGERS
    prev = GENESIS
    rows = conn.execute(
        "SELECT id, at, action, subject, identity, result, reason, details FROM audit ORDER BY id").fetchall()
    for row in rows:
        digest = row_hash(row, prev)
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, row[0]))
        prev = digest
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    conn.execute("""
    CREATE TABLE audit_acknowledgements (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL,
        description TEXT NOT NULL,
        audit_id INTEGER NOT NULL
    )""")
    for create_trigger in TRIGGERS.values():  # the two from migration 1, the insert guard, the table's own
        conn.execute(create_trigger)


MIGRATIONS: list[Migration] = [
    # 1: installed models, their files, catalogs seen, the append-only audit log
    """
    CREATE TABLE installed_models (
        model_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        publisher TEXT,
        catalog_id TEXT,
        catalog_version INTEGER,
        source TEXT NOT NULL,
        signer TEXT NOT NULL,
        signer_spec TEXT NOT NULL,
        signature_path TEXT NOT NULL,
        entry_json TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'verified',
        state_reason TEXT,
        installed_at TEXT NOT NULL,
        verified_at TEXT NOT NULL
    );
    CREATE TABLE installed_files (
        model_id TEXT NOT NULL REFERENCES installed_models(model_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        path TEXT NOT NULL,
        inode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        verified_at TEXT NOT NULL,
        PRIMARY KEY (model_id, name)
    );
    CREATE INDEX installed_files_sha ON installed_files(sha256);
    CREATE TABLE catalogs_seen (
        catalog_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        signer TEXT NOT NULL,
        issued TEXT,
        expires TEXT,
        seen_at TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        identity TEXT,
        result TEXT NOT NULL CHECK (result IN ('accepted', 'refused', 'info')),
        reason TEXT NOT NULL,
        details TEXT
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 2: chats. A reply row is written while it streams (status 'streaming', with the
    # writer's pid) and closed as complete / stopped / failed; a row left 'streaming' by a
    # dead process is shown as incomplete.
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        model_id TEXT,
        system_prompt TEXT NOT NULL DEFAULT '',
        params TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('complete', 'streaming', 'stopped', 'failed', 'incomplete')),
        reason TEXT,
        writer_pid INTEGER,
        usage TEXT,
        timings TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX messages_conversation ON messages(conversation_id, id);
    CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END;
    CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    """,
    # 3: spot-check results, per file digest (the claim is about bytes, not a name)
    """
    CREATE TABLE spotchecks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL,
        model_id TEXT NOT NULL,
        suite_id TEXT NOT NULL,
        suite_version TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('complete', 'cancelled', 'failed')),
        metrics TEXT NOT NULL,
        results TEXT NOT NULL,
        settings TEXT NOT NULL
    );
    CREATE INDEX spotchecks_sha ON spotchecks(sha256, id);
    """,
    # 4: the boot a file was last verified in. Installs do not fsync (that would tie a
    # download to the disk's write speed); instead a file verified in an earlier boot is
    # fully re-hashed before its first load, so bytes lost in a power cut never run.
    """
    ALTER TABLE installed_files ADD COLUMN boot_id TEXT;
    """,
    # 5: everything an in-place edit changes is part of the fast path (device and ctime
    # join size, mtime and inode; rows without them are re-hashed on first use), and the
    # rollback floor of a catalog is kept per pinned signer *and* catalog id, so another
    # signer reusing an id cannot lock the first one out.
    """
    ALTER TABLE installed_files ADD COLUMN dev INTEGER;
    ALTER TABLE installed_files ADD COLUMN ctime_ns INTEGER;
    CREATE TABLE catalog_versions (
        signer_key TEXT NOT NULL,
        catalog_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        signer TEXT NOT NULL,
        issued TEXT,
        expires TEXT,
        seen_at TEXT NOT NULL,
        PRIMARY KEY (signer_key, catalog_id)
    );
    """,
    # 6: the audit log is a hash chain; see _chain_audit_log
    _chain_audit_log,
    # 7: a spot-check of part of the suite (`--limit`) is stored as 'partial', never as
    # 'complete'. SQLite cannot alter a CHECK constraint, so the table is rebuilt: rows and
    # ids are kept, the AUTOINCREMENT high-water mark is carried over, the index recreated.
    # Rows stored 'complete' before this by a `--limit` run stay as they are; `latest()`
    # passes them over because they do not hold the whole suite's probes.
    """
    CREATE TABLE spotchecks_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL,
        model_id TEXT NOT NULL,
        suite_id TEXT NOT NULL,
        suite_version TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('complete', 'partial', 'cancelled', 'failed')),
        metrics TEXT NOT NULL,
        results TEXT NOT NULL,
        settings TEXT NOT NULL
    );
    INSERT INTO spotchecks_new (id, sha256, model_id, suite_id, suite_version, started_at, finished_at, status,
                                metrics, results, settings)
        SELECT id, sha256, model_id, suite_id, suite_version, started_at, finished_at, status,
               metrics, results, settings FROM spotchecks ORDER BY id;
    DELETE FROM sqlite_sequence WHERE name = 'spotchecks_new';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'spotchecks_new', seq FROM sqlite_sequence WHERE name = 'spotchecks';
    DROP TABLE spotchecks;
    ALTER TABLE spotchecks_new RENAME TO spotchecks;
    CREATE INDEX spotchecks_sha ON spotchecks(sha256, id);
    """,
    # 8: where an installed model's catalog was loaded from and which pinned signer vouched
    # for it, so an organisation's policy can stop models from catalogs it no longer allows.
    """
    ALTER TABLE installed_models ADD COLUMN catalog_location TEXT;
    ALTER TABLE installed_models ADD COLUMN catalog_signer_key TEXT;
    """,
    # 9: which catalog a pinned location serves. Floors are per signer and catalog id, so
    # without this a location could be served another catalog the same signer once made (a
    # withdrawn or staging one): a rollback by substitution.
    """
    CREATE TABLE catalog_bindings (
        location TEXT PRIMARY KEY,
        catalog_id TEXT NOT NULL,
        bound_at TEXT NOT NULL
    );
    """,
    # 10: the desktop chat (issue 13). A reply keeps the seed it was sampled with (so it can
    # be reproduced) and why it ended ('stop', 'length': cut at max tokens, 'stopped');
    # regenerating keeps earlier replies as alternatives at the same place (`alt_of`: the
    # first reply there; `active`: the one the model sees as history). A deleted chat is
    # kept until its undo runs out (`deleted_at`). Chats stored a fixed seed 42 by default,
    # which no one chose in the app and which made Regenerate repeat itself: it is dropped
    # (a chat without a seed samples a fresh one per reply).
    """
    ALTER TABLE messages ADD COLUMN seed INTEGER;
    ALTER TABLE messages ADD COLUMN finish TEXT;
    ALTER TABLE messages ADD COLUMN alt_of INTEGER;
    ALTER TABLE messages ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX messages_alt ON messages(alt_of);
    ALTER TABLE conversations ADD COLUMN deleted_at TEXT;
    UPDATE conversations SET params = json_remove(params, '$.seed')
        WHERE json_valid(params) AND json_extract(params, '$.seed') = 42;
    """,
]


def open_db(path: Path) -> sqlite_utils.Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        _set_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"opening the database {path}", str(exc), "move the file aside to start afresh"
        ) from None
    db = sqlite_utils.Database(conn)
    migrate(db, path)
    from vetted.store import audit

    audit.verify_chain(db)  # all rows the first time this process opens the file, then only new ones
    return db


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switching a new database to WAL takes an exclusive lock that SQLite's busy timeout
    does not wait for; two first opens at once (two windows, a CLI run) retry briefly."""
    import time

    deadline = time.monotonic() + 30
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def migrate(db: sqlite_utils.Database, path: Path) -> None:
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > len(MIGRATIONS):
        raise StoreError(
            f"database schema of {path}",
            f"version {current} is newer than this Vetted understands ({len(MIGRATIONS)})",
            "update Vetted",
        )
    for number in range(current, len(MIGRATIONS)):
        with db.conn:
            db.conn.execute("BEGIN IMMEDIATE")
            # another connection (a second window, a CLI run) may have migrated meanwhile:
            # decide under the write lock, or both would run the same step
            if db.execute("PRAGMA user_version").fetchone()[0] > number:
                continue
            step = MIGRATIONS[number]
            if callable(step):
                step(db.conn)
            else:
                for stmt in _split(step):
                    db.conn.execute(stmt)
            db.conn.execute(f"PRAGMA user_version={number + 1}")


def _split(script: str) -> list[str]:
    """Splits a migration into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
