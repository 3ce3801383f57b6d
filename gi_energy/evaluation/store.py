"""The evaluation store: every Evaluation ever made, in one SQLite file.

Rows are keyed by (problem fingerprint, evaluation context, canonical genome key, repeat)
-- the context names the measurement setup (device, meter, torch threads, host; see
:func:`gi_energy.evaluation.evaluator.evaluation_context`) -- and hold the Evaluation as JSON (never pickle: a store is data, and opening one must not
run code). The file is in WAL mode so readers never block the writer, and several
processes may write one store: each write is one short transaction, SQLite's busy timeout
waits for the lock, and a write that still finds the database locked is retried.

The primary key is the lookup index: a genome's repeats, or a whole batch of genomes
(:meth:`Store.get_many`, one query per few hundred keys), are read with index seeks, so
lookups stay cheap with hundreds of thousands of rows.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from gi_energy.errors import UsageError
from gi_energy.tasks.results import Evaluation

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
# Extra attempts after the busy timeout ran out (another process held a long lock).
LOCKED_RETRIES = 5
# SQLite's default limit of bound parameters is 999 on old builds; stay well under it.
_KEYS_PER_QUERY = 400

DEFAULT_STORE = Path("runs") / "gi-energy.sqlite"

_SCHEMA = """
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


class Store:
    """Evaluations in an SQLite file; safe to share between threads and processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # check_same_thread=False plus our own lock: the evaluator writes from the thread
        # that collects results, callers may read from another.
        self._lock = threading.RLock()
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            self._retrying(self._setup)
        except (OSError, sqlite3.DatabaseError) as exc:
            # A store path is user input (--store, [output] store): say which file is wrong.
            raise UsageError(f"evaluation store {str(path)!r} cannot be opened: {exc}") from None

    def _setup(self):
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if str(self.path) != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode (only a power loss can
        # drop the last transactions), and avoids an fsync per evaluation.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)
        self._conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)",
                           (str(SCHEMA_VERSION),))

    def _retrying(self, fn, *args):
        delay_s = 0.05
        for attempt in range(LOCKED_RETRIES + 1):
            try:
                with self._lock:
                    return fn(*args)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == LOCKED_RETRIES:
                    raise
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 2.0)

    # ------------------------------------------------------------------ reading

    def get(self, fingerprint: str, key: str, repeat: int, context: str) -> Evaluation | None:
        """The stored evaluation of one repeat of one genome, or None."""
        row = self._retrying(lambda: self._conn.execute(
            "SELECT payload FROM evaluations WHERE fingerprint = ? AND context = ? AND key = ? "
            "AND repeat = ?", (fingerprint, context, key, int(repeat))).fetchone())
        return None if row is None else Evaluation.from_json(row[0])

    def get_many(self, fingerprint: str, context: str,
                 keys: Iterable[str]) -> dict[tuple[str, int], Evaluation]:
        """Every stored repeat of the given genome keys: {(key, repeat): Evaluation}."""
        keys = list(dict.fromkeys(keys))
        out: dict[tuple[str, int], Evaluation] = {}
        for i in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[i:i + _KEYS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            rows = self._retrying(lambda c=chunk, m=marks: self._conn.execute(
                f"SELECT key, repeat, payload FROM evaluations WHERE fingerprint = ? AND context = ? "
                f"AND key IN ({m})", (fingerprint, context, *c)).fetchall())
            for key, repeat, payload in rows:
                out[(key, int(repeat))] = Evaluation.from_json(payload)
        return out

    def evaluations(self, fingerprint: str, context: str | None = None) -> list[Evaluation]:
        """Every stored evaluation of a problem (of one context, or all), in key order."""
        if context is None:
            sql, args = ("SELECT payload FROM evaluations WHERE fingerprint = ? "
                         "ORDER BY context, key, repeat", (fingerprint,))
        else:
            sql, args = ("SELECT payload FROM evaluations WHERE fingerprint = ? AND context = ? "
                         "ORDER BY key, repeat", (fingerprint, context))
        rows = self._retrying(lambda: self._conn.execute(sql, args).fetchall())
        return [Evaluation.from_json(r[0]) for r in rows]

    def count(self, fingerprint: str | None = None) -> int:
        """Number of stored evaluations (of one problem, or all)."""
        if fingerprint is None:
            return self._retrying(lambda: self._conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        return self._retrying(lambda: self._conn.execute(
            "SELECT COUNT(*) FROM evaluations WHERE fingerprint = ?", (fingerprint,)).fetchone()[0])

    # ------------------------------------------------------------------ writing

    def put(self, fingerprint: str, context: str, evaluation: Evaluation) -> None:
        """Store one evaluation (replacing an earlier one of the same genome and repeat)."""
        self.put_many(fingerprint, context, [evaluation])

    def put_many(self, fingerprint: str, context: str, evaluations: Iterable[Evaluation]) -> None:
        """Store several evaluations in one transaction."""
        rows = [(fingerprint, context, e.key, int(e.repeat), e.status, e.to_json(), time.time())
                for e in evaluations]
        if rows:
            self._retrying(self._write, rows)

    def _write(self, rows):
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                "INSERT INTO evaluations (fingerprint, context, key, repeat, status, payload, stored_at_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint, context, key, repeat) DO UPDATE "
                "SET status = excluded.status, payload = excluded.payload, stored_at_s = excluded.stored_at_s",
                rows)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def close(self):
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc):
        self.close()


def default_store_path(problem, store: str | Path | None) -> Path:
    """--store, else the problem's [output] store, else runs/gi-energy.sqlite under the
    working directory."""
    if store is not None:
        return Path(store)
    if problem.output.store is not None:
        return Path(problem.output.store)
    return DEFAULT_STORE
