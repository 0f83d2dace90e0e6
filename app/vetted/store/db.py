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
]


def open_db(path: Path) -> sqlite_utils.Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"opening the database {path}", str(exc), "move the file aside to start afresh"
        ) from None
    db = sqlite_utils.Database(conn)
    migrate(db, path)
    return db


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
