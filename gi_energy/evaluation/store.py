"""The evaluation store: every Evaluation ever made, in one SQLite file.

Rows are keyed by (problem fingerprint, evaluation context, canonical genome key, repeat)
-- the context names the measurement setup (device, meter, torch threads, host; see
:func:`gi_energy.evaluation.evaluator.evaluation_context`) -- and hold the Evaluation as
JSON (never pickle: a store is data, and opening one must not run code). The file is in
WAL mode so readers never block the writer, and several processes may write one store:
each write is one short transaction, SQLite's busy timeout waits for the lock, and a
write that still finds the database locked is retried.

A result, once stored, is never replaced. A write of a (genome, repeat) that is already
stored keeps the stored row, and the caller gets the stored evaluation back; only a
retryable record (a timeout, a crash, an ok evaluation with a missing reading; see
:func:`gi_energy.evaluation.attempts.supersedes`) gives way to a later attempt, and the
record it replaces moves to the ``superseded`` table, so every attempt stays on file.

So that two processes sharing a store do not train one configuration twice, a process
claims what it is about to train (:meth:`Store.claim`): a lease row with its owner (see
:mod:`.leases`) and a heartbeat. Another process sees the lease and waits for the result;
a lease whose owner died, or whose heartbeat stopped, is taken over.

The schema is checked on open: a store of an older version is migrated, one of a newer
version, a foreign SQLite file or a damaged file is refused with a UsageError naming it.

A caller that keeps its own record of what it stored (a run's journal of what it
trained) has it written in the store's own write, before the commit
(:meth:`Store.notifying`): a process killed between the two then never leaves a stored
evaluation its run does not know it paid for.

The primary key is the lookup index: a genome's repeats, or a whole batch of genomes
(:meth:`Store.get_many`, one query per few hundred keys), are read with index seeks, so
lookups stay cheap with hundreds of thousands of rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from gi_energy.errors import UsageError
from gi_energy.tasks.results import Evaluation

from . import schema
from .attempts import supersedes
from .leases import LeaseOwner, is_stale
from .schema import SCHEMA_VERSION  # noqa: F401 - re-exported: the version this store writes

BUSY_TIMEOUT_S = 30.0
# Extra attempts after the busy timeout ran out (another process held a long lock).
LOCKED_RETRIES = 5
# SQLite's default limit of bound parameters is 999 on old builds; stay well under it.
_KEYS_PER_QUERY = 400

DEFAULT_STORE = Path("runs") / "gi-energy.sqlite"

Item = tuple[str, int]  # (genome key, repeat)


class Store:
    """Evaluations in an SQLite file; safe to share between threads and processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # check_same_thread=False plus our own lock: the evaluator writes from the thread
        # that collects results, its lease heartbeat from another, callers may read.
        self._lock = threading.RLock()
        # Per thread: the callback of notifying(), for the writes that thread makes.
        self._notify = threading.local()
        self._conn = None
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            self._retrying(self._setup)
        except (OSError, sqlite3.OperationalError) as exc:
            self._close_quietly()
            # A store path is user input (--store, [output] store): say which file is wrong.
            raise UsageError(f"evaluation store {str(path)!r} cannot be opened: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise UsageError(f"evaluation store {str(path)!r} cannot be opened: it is damaged or not an SQLite "
                             f"database ({exc}); "
                             "restore a copy or use another --store") from None
        except UsageError:
            self._close_quietly()
            raise

    def _close_quietly(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    def _setup(self):
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # Read before anything is written: a foreign or damaged file must stay untouched.
        schema.inspect(self._conn, self._refuse)
        if str(self.path) != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode (only a power loss can
        # drop the last transactions), and avoids an fsync per evaluation.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            schema.migrate(self._conn, self._refuse)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _refuse(self, why: str):
        raise UsageError(f"evaluation store {str(self.path)!r}: {why}")

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

    def _transaction(self, fn: Callable):
        """``fn()`` inside one write transaction (retried whole when the file is locked)."""
        def run():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn()
                self._conn.execute("COMMIT")
                return out
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return self._retrying(run)

    # ------------------------------------------------------------------ reading

    def _parsed(self, payload) -> Evaluation:
        """A stored row's evaluation; a row whose text is not one (damaged, or written by
        hand) is bad input naming this store, not an unexpected error mid-run."""
        try:
            return Evaluation.from_json(payload)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"evaluation store {str(self.path)!r} holds a damaged evaluation "
                             f"({type(exc).__name__}: {exc}); restore a copy or use another --store") from None

    def get(self, fingerprint: str, key: str, repeat: int, context: str) -> Evaluation | None:
        """The stored evaluation of one repeat of one genome, or None."""
        row = self._retrying(lambda: self._conn.execute(
            "SELECT payload FROM evaluations WHERE fingerprint = ? AND context = ? AND key = ? "
            "AND repeat = ?", (fingerprint, context, key, int(repeat))).fetchone())
        return None if row is None else self._parsed(row[0])

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
                out[(key, int(repeat))] = self._parsed(payload)
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
        return [self._parsed(r[0]) for r in rows]

    def count(self, fingerprint: str | None = None) -> int:
        """Number of stored evaluations (of one problem, or all)."""
        if fingerprint is None:
            return self._retrying(lambda: self._conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        return self._retrying(lambda: self._conn.execute(
            "SELECT COUNT(*) FROM evaluations WHERE fingerprint = ?", (fingerprint,)).fetchone()[0])

    # ------------------------------------------------------------------ writing

    def put(self, fingerprint: str, context: str, evaluation: Evaluation, *,
            owner: LeaseOwner | None = None) -> Evaluation:
        """Store one evaluation unless its (genome, repeat) is stored already; the evaluation
        the store holds afterwards (see :meth:`put_many`)."""
        return self.put_many(fingerprint, context, [evaluation], owner=owner)[0]

    def put_many(self, fingerprint: str, context: str, evaluations: Iterable[Evaluation], *,
                 owner: LeaseOwner | None = None) -> list[Evaluation]:
        """Store several evaluations in one transaction, and return what the store holds
        for each afterwards, in order: the new evaluation where it was absent (or where it
        supersedes a retryable record, which moves to the attempt history), else the one
        stored before it, untouched. ``owner``'s leases on them are released in the same
        transaction."""
        evaluations = list(evaluations)
        if not evaluations:
            return []
        return self._transaction(lambda: [self._write_one(fingerprint, context, e, owner) for e in evaluations])

    @contextlib.contextmanager
    def notifying(self, callback: Callable[[Evaluation], object]) -> Iterator[Store]:
        """While inside, ``callback(ev)`` is called for every evaluation this thread's
        writes put in the store (new, or superseding a retryable record; not one that
        finds another result stored), inside the write's transaction, before it commits.
        A record the caller keeps of what it stored (a run's journal of what it trained)
        is then never behind the store, whatever kills the process: at worst it names an
        evaluation whose write did not commit, which is trained again. An error in
        ``callback`` undoes the write."""
        before = getattr(self._notify, "callback", None)
        self._notify.callback = callback
        try:
            yield self
        finally:
            self._notify.callback = before

    def _written(self, ev: Evaluation) -> Evaluation:
        callback = getattr(self._notify, "callback", None)
        if callback is not None:
            callback(ev)
        return ev

    def _write_one(self, fingerprint: str, context: str, ev: Evaluation, owner: LeaseOwner | None) -> Evaluation:
        where = (fingerprint, context, ev.key, int(ev.repeat))
        if owner is not None:
            # Under any context: the claim may have named the setup expected, the result
            # the one it ran under (a dask worker's threads); the owner's token is its own.
            self._conn.execute("DELETE FROM leases WHERE fingerprint = ? AND key = ? AND repeat = ? "
                               "AND owner = ?", (fingerprint, ev.key, int(ev.repeat), owner.token))
        row = self._conn.execute("SELECT status, payload, stored_at_s FROM evaluations WHERE fingerprint = ? "
                                 "AND context = ? AND key = ? AND repeat = ?", where).fetchone()
        now = time.time()
        if row is None:
            self._conn.execute("INSERT INTO evaluations (fingerprint, context, key, repeat, status, payload, "
                               "stored_at_s) VALUES (?, ?, ?, ?, ?, ?, ?)", (*where, ev.status, ev.to_json(), now))
            return self._written(ev)
        stored = self._parsed(row[1])
        if not supersedes(ev, stored):
            return stored
        self._conn.execute("INSERT INTO superseded (fingerprint, context, key, repeat, status, payload, "
                           "stored_at_s, superseded_at_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*where, *row, now))
        self._conn.execute("UPDATE evaluations SET status = ?, payload = ?, stored_at_s = ? WHERE fingerprint = ? "
                           "AND context = ? AND key = ? AND repeat = ?", (ev.status, ev.to_json(), now, *where))
        return self._written(ev)

    def attempts(self, fingerprint: str, context: str, key: str, repeat: int) -> list[Evaluation]:
        """Every stored attempt of one repeat of one genome, oldest first: the superseded
        records, then the current one."""
        where = (fingerprint, context, key, int(repeat))
        rows = self._retrying(lambda: self._conn.execute(
            "SELECT payload FROM superseded WHERE fingerprint = ? AND context = ? AND key = ? AND repeat = ? "
            "ORDER BY superseded_at_s", where).fetchall())
        current = self.get(fingerprint, key, repeat, context)
        return [self._parsed(r[0]) for r in rows] + ([] if current is None else [current])

    # ------------------------------------------------------------------ leases

    def claim(self, fingerprint: str, context: str, items: Sequence[Item], owner: LeaseOwner,
              retry: Callable[[Evaluation], bool]) -> tuple[dict[Item, Evaluation], dict[Item, Evaluation | None],
                                                           list[Item]]:
        """Claim the (key, repeat) items ``owner`` is about to train, in one transaction.

        Returns (stored, claimed, held): ``stored`` the items already stored with a result
        that ``retry`` does not want run again (use it); ``claimed`` the items now leased
        to ``owner``, each with the retryable record it will replace (or None); ``held``
        the items another live process is training now (wait for its result). A stale
        lease (see :func:`gi_energy.evaluation.leases.is_stale`) is taken over.
        """
        def run():
            stored: dict[Item, Evaluation] = {}
            claimed: dict[Item, Evaluation | None] = {}
            held: list[Item] = []
            now = time.time()
            for key, repeat in items:
                where = (fingerprint, context, key, int(repeat))
                row = self._conn.execute("SELECT payload FROM evaluations WHERE fingerprint = ? AND context = ? "
                                         "AND key = ? AND repeat = ?", where).fetchone()
                ev = None if row is None else self._parsed(row[0])
                if ev is not None and not retry(ev):
                    stored[(key, repeat)] = ev
                    continue
                lease = self._conn.execute("SELECT owner, pid, host, started, heartbeat_s FROM leases WHERE "
                                           "fingerprint = ? AND context = ? AND key = ? AND repeat = ?",
                                           where).fetchone()
                if lease is not None and lease[0] != owner.token and not is_stale(*lease[1:], now_s=now):
                    held.append((key, repeat))
                    continue
                self._conn.execute(
                    "INSERT INTO leases (fingerprint, context, key, repeat, owner, pid, host, started, heartbeat_s) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint, context, key, repeat) DO UPDATE "
                    "SET owner = excluded.owner, pid = excluded.pid, host = excluded.host, "
                    "started = excluded.started, heartbeat_s = excluded.heartbeat_s",
                    (*where, owner.token, owner.pid, owner.host, owner.start, now))
                claimed[(key, repeat)] = ev
            return stored, claimed, held
        return self._transaction(run)

    def heartbeat(self, owner: LeaseOwner) -> int:
        """Refresh the heartbeat of every lease ``owner`` holds; how many it holds."""
        return self._transaction(lambda: self._conn.execute(
            "UPDATE leases SET heartbeat_s = ? WHERE owner = ?", (time.time(), owner.token)).rowcount)

    def release(self, owner: LeaseOwner) -> int:
        """Drop every lease ``owner`` still holds (it stopped before storing them)."""
        return self._transaction(lambda: self._conn.execute(
            "DELETE FROM leases WHERE owner = ?", (owner.token,)).rowcount)

    def leases(self) -> list[dict]:
        """Every lease in the store (diagnostics and tests)."""
        rows = self._retrying(lambda: self._conn.execute(
            "SELECT key, repeat, owner, pid, host, heartbeat_s FROM leases").fetchall())
        return [dict(zip(("key", "repeat", "owner", "pid", "host", "heartbeat_s"), r)) for r in rows]

    def close(self):
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc):
        self.close()


def default_store_path(problem, store: str | Path | None) -> Path:
    """--store, else the problem's [output] store, else runs/gi-energy.sqlite under the
    working directory; absolute (a relative path is taken from the working directory),
    so run.json records a store that a resume from anywhere finds again."""
    if store is not None:
        return Path(store).absolute()
    if problem.output.store is not None:
        return Path(problem.output.store).absolute()
    return DEFAULT_STORE.absolute()


def recorded_store(info) -> str | None:
    """The store a run directory's run.json records (None: the run used none)."""
    return info.get("store") or (info.get("settings") or {}).get("store") or None


def resume_store_path(problem, store: str | Path | None, info, run_dir) -> Path:
    """The store a resumed run uses: the one its run.json records, wherever the resume
    is started from. ``--store`` may only name the same file, or a new place for it when
    the recorded one no longer exists (the store was moved). A run recorded without a
    store (by a version that did not say) gets the default of :func:`default_store_path`.

    Runs recorded before stores were recorded as absolute paths hold one relative to the
    directory the run started in, which they do not say: it is taken from the working
    directory only where that file exists, never as a new empty store.
    """
    recorded = recorded_store(info)
    if recorded is None:
        return default_store_path(problem, store)
    path = Path(recorded)
    if not path.is_absolute():
        if store is None and not path.absolute().exists():
            raise UsageError(f"{run_dir}: run.json records the store as {recorded!r}, relative to the "
                             f"directory the run started in; from here that is {path.absolute()}, which does "
                             "not exist: resume from that directory or pass --store PATH")
        path = path.absolute()
    if store is not None:
        given = Path(store).absolute()
        if given.resolve() != path.resolve() and path.exists():
            raise UsageError(f"{run_dir} ran on the store {path}; a resume keeps it, so its finished "
                             f"evaluations are found (drop --store {store}, or start a new run)")
        return given
    if not path.exists():
        raise UsageError(f"{run_dir}: its store {path} does not exist (moved or deleted?); pass "
                         "--store PATH to say where it is now")
    return path
