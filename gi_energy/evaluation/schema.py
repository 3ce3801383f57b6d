"""The evaluation store's tables, and the check every store gets when it is opened.

Versions: 1 had ``evaluations`` and ``meta``; 2 adds ``superseded`` (the attempts a later
attempt replaced) and ``leases`` (who is training what now). A version 1 store is
migrated in place (its rows stay as they are). A store of a newer version, an SQLite file
of another application, a store whose evaluations table has another layout and a file
SQLite finds damaged are all refused, before anything is written to them.

``refuse`` is the caller's: it raises the error that names the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import NoReturn

SCHEMA_VERSION = 2

Refuse = Callable[[str], NoReturn]

_V1 = """
CREATE TABLE IF NOT EXISTS evaluations (
    fingerprint TEXT NOT NULL,
    context     TEXT NOT NULL,
    key         TEXT NOT NULL,
    repeat      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    stored_at_s REAL NOT NULL,
    PRIMARY KEY (fingerprint, context, key, repeat)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_V2 = """
CREATE TABLE IF NOT EXISTS superseded (
    fingerprint TEXT NOT NULL,
    context     TEXT NOT NULL,
    key         TEXT NOT NULL,
    repeat      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    stored_at_s REAL NOT NULL,
    superseded_at_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS superseded_by_key ON superseded (fingerprint, context, key, repeat);
CREATE TABLE IF NOT EXISTS leases (
    fingerprint TEXT NOT NULL,
    context     TEXT NOT NULL,
    key         TEXT NOT NULL,
    repeat      INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    started     TEXT,
    heartbeat_s REAL NOT NULL,
    PRIMARY KEY (fingerprint, context, key, repeat)
) WITHOUT ROWID;
"""
# The evaluations table as every version has it: column -> position in the primary key.
EVALUATION_COLUMNS = {"fingerprint": 1, "context": 2, "key": 3, "repeat": 4, "status": 0, "payload": 0,
                      "stored_at_s": 0}
V2_TABLES = {"superseded", "leases"}


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def inspect(conn: sqlite3.Connection, refuse: Refuse) -> None:
    """Read-only: refuse a damaged file, a database that is not an evaluation store, a
    store of a newer version or one whose tables have another layout."""
    rows = conn.execute("PRAGMA quick_check").fetchall()
    problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        refuse(f"damaged (SQLite quick_check: {problems[0]}{more}); restore a copy or use another --store")
    found = tables(conn)
    if not found:
        return
    if not found & {"evaluations", "meta"}:
        refuse(f"an SQLite database but not a gi-energy evaluation store (its tables: {', '.join(sorted(found))})")
    version = _version(conn, found, refuse)
    if version > SCHEMA_VERSION:
        refuse(f"schema version {version}, written by a newer gi-energy (this one reads version "
               f"{SCHEMA_VERSION} and older); upgrade gi-energy or use another --store")
    _check_layout(conn, found, refuse)
    if version == SCHEMA_VERSION and not V2_TABLES <= found:
        refuse(f"schema version {version} but its tables {', '.join(sorted(V2_TABLES - found))} are missing")


def migrate(conn: sqlite3.Connection, refuse: Refuse) -> None:
    """Inside the caller's write transaction, after :func:`inspect`: create a new store, or
    bring an older one up to :data:`SCHEMA_VERSION` (another process may have done either
    since :func:`inspect` read the file, so both look again)."""
    found = tables(conn)
    if not found:
        _ddl(conn, _V1 + _V2)
        _set_version(conn)
    elif _version(conn, found, refuse) < SCHEMA_VERSION:
        # 1 -> 2: the rows stay as they are; the attempt history and the leases are added.
        _ddl(conn, _V2)
        _set_version(conn)


def _version(conn: sqlite3.Connection, found: set[str], refuse: Refuse) -> int:
    if "meta" not in found:
        refuse("no meta table, so no schema version: not a gi-energy evaluation store")
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError):
        refuse(f"schema_version {None if row is None else row[0]!r} in its meta table is not a version number")


def _check_layout(conn: sqlite3.Connection, found: set[str], refuse: Refuse) -> None:
    if "evaluations" not in found:
        refuse("no evaluations table: not a gi-energy evaluation store")
    columns = {r[1]: int(r[5]) for r in conn.execute("PRAGMA table_info(evaluations)")}
    if columns != EVALUATION_COLUMNS:
        key = [c for c, k in sorted(columns.items(), key=lambda kv: kv[1]) if k]
        refuse(f"its evaluations table has columns {', '.join(sorted(columns))} (primary key "
               f"{', '.join(key) or 'none'}); expected {', '.join(sorted(EVALUATION_COLUMNS))} with primary key "
               "fingerprint, context, key, repeat")


def _ddl(conn: sqlite3.Connection, script: str) -> None:
    # One statement at a time: executescript() would commit the open transaction first.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _set_version(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (name, value) VALUES ('schema_version', ?) "
                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
