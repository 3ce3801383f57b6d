"""The store's plumbing by exact value: where it goes, its pragmas, the retry on a locked
file (delays and attempts counted), use from another thread, the messages of a bad path,
an attempt history, and the fields of a lease."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from gi_energy.config.genome import Genome
from gi_energy.errors import UsageError
from gi_energy.evaluation import store as store_module
from gi_energy.evaluation.leases import LeaseOwner
from gi_energy.evaluation.store import DEFAULT_STORE, Store, default_store_path
from gi_energy.tasks.results import Evaluation


def evaluation(i: int, status: str = "ok") -> Evaluation:
    g = Genome(layers={"hidden": (i + 1, 8)}, values={"learning_rate": 1e-3 * (1 + i)})
    return Evaluation(genome=g, status=status, val_accuracy=0.5 + i / 100)


def test_the_store_path_is_the_flag_else_the_problem_else_the_default(tmp_path):
    with_store = SimpleNamespace(output=SimpleNamespace(store=str(tmp_path / "p.sqlite")))
    without = SimpleNamespace(output=SimpleNamespace(store=None))
    assert default_store_path(with_store, tmp_path / "flag.sqlite") == tmp_path / "flag.sqlite"
    assert default_store_path(with_store, None) == tmp_path / "p.sqlite"
    assert default_store_path(without, None) == Path.cwd() / DEFAULT_STORE


def test_a_new_store_makes_its_folders_and_runs_in_wal_with_a_30_s_busy_timeout(tmp_path):
    path = tmp_path / "a" / "b" / "s.sqlite"
    with Store(path) as s:
        assert path.is_file()
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with Store(":memory:") as m:
        assert not Path(":memory:").exists()
        m.put("fp", "ctx", evaluation(1))
        assert m.count() == 1


def test_a_store_is_usable_from_another_thread(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        s.put("fp", "ctx", evaluation(1))
        got = []
        t = threading.Thread(target=lambda: got.append(s.count("fp")))
        t.start()
        t.join()
        assert got == [1]


def test_unopenable_and_damaged_files_are_named(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(UsageError) as err:
        Store(folder)
    assert str(err.value) == f"evaluation store {str(folder)!r} cannot be opened: unable to open database file"
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(UsageError) as err:
        Store(junk)
    assert str(err.value) == (f"evaluation store {str(junk)!r} cannot be opened: it is damaged "
                              "or not an SQLite database (file is not a database); restore a "
                              "copy or use another --store")


class Flaky:
    """Raises ``errors`` one by one, then returns "done"; counts its calls."""

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise sqlite3.OperationalError(self.errors.pop(0))
        return "done"


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(store_module.time, "sleep", slept.append)
    return slept


def test_a_locked_or_busy_file_is_retried_with_doubling_delays(tmp_path, sleeps):
    with Store(tmp_path / "s.sqlite") as s:
        fn = Flaky("database is locked", "database is busy")
        assert s._retrying(fn) == "done"
        assert fn.calls == 3 and sleeps == [0.05, 0.1]


def test_retries_stop_after_the_last_attempt_and_the_delay_is_capped(tmp_path, sleeps,
                                                                     monkeypatch):
    with Store(tmp_path / "s.sqlite") as s:
        fn = Flaky(*["database is locked"] * 10)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            s._retrying(fn)
        assert fn.calls == 6  # LOCKED_RETRIES = 5 extra attempts
        assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8]
        monkeypatch.setattr(store_module, "LOCKED_RETRIES", 8)
        sleeps.clear()
        fn = Flaky(*["database is locked"] * 8)
        assert s._retrying(fn) == "done"
        assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_other_database_errors_are_not_retried(tmp_path, sleeps):
    with Store(tmp_path / "s.sqlite") as s:
        fn = Flaky("no such table: x")
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            s._retrying(fn)
        assert fn.calls == 1 and sleeps == []


def test_a_failed_transaction_is_rolled_back_and_the_store_stays_usable(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        def half_then_fail():
            s._conn.execute("INSERT INTO meta (name, value) VALUES ('x', 'y')")
            raise ValueError("stop")

        with pytest.raises(ValueError, match="stop"):
            s._transaction(half_then_fail)
        assert s._conn.execute("SELECT COUNT(*) FROM meta WHERE name = 'x'").fetchone()[0] == 0
        s.put("fp", "ctx", evaluation(1))
        assert s.count() == 1


def test_attempts_of_nothing_stored_is_empty(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        assert s.attempts("fp", "ctx", "no-key", 0) == []
        ev = evaluation(1)
        s.put("fp", "ctx", ev)
        assert s.attempts("fp", "ctx", ev.key, 0) == [ev]


def test_claims_and_the_fields_of_a_lease(tmp_path):
    me = LeaseOwner(token="me", pid=os.getpid(), host="here", start=None)
    other = LeaseOwner(token="other", pid=os.getpid(), host="elsewhere", start=None)
    ok, crashed = evaluation(1), evaluation(2, status="crashed")
    with Store(tmp_path / "s.sqlite") as s:
        s.put_many("fp", "ctx", [ok, crashed])

        def retry(e: Evaluation) -> bool:
            assert isinstance(e, Evaluation)
            return e.status != "ok"

        stored, claimed, held = s.claim("fp", "ctx", [(ok.key, 0), (crashed.key, 0),
                                                      ("new", 0)], me, retry)
        assert stored == {(ok.key, 0): ok}
        assert claimed == {(crashed.key, 0): crashed, ("new", 0): None}
        assert held == []
        (lease, _) = sorted(s.leases(), key=lambda d: d["key"] != "new")
        assert set(lease) == {"key", "repeat", "owner", "pid", "host", "heartbeat_s"}
        assert (lease["key"], lease["repeat"], lease["owner"], lease["pid"], lease["host"]) == (
            "new", 0, "me", os.getpid(), "here")
        # Another live process sees them held; its own claim is refreshed, not refused.
        _, again, held = s.claim("fp", "ctx", [("new", 0)], other, retry)
        assert (again, held) == ({}, [("new", 0)])
        _, again, held = s.claim("fp", "ctx", [("new", 0)], me, retry)
        assert (again, held) == ({("new", 0): None}, [])


def test_a_batch_of_a_thousand_keys_is_read_in_chunks_and_whole(tmp_path):
    evs = [evaluation(i) for i in range(1000)]
    with Store(tmp_path / "s.sqlite") as s:
        s.put_many("fp", "ctx", evs)
        got = s.get_many("fp", "ctx", [e.key for e in evs])
        assert len(got) == 1000
        assert {k for k, _ in got} == {e.key for e in evs}


def test_a_resume_without_a_recorded_store_takes_the_default_rules(tmp_path):
    from gi_energy.evaluation.store import resume_store_path

    problem = SimpleNamespace(output=SimpleNamespace(store=str(tmp_path / "p.sqlite")))
    assert resume_store_path(problem, None, {}, tmp_path) == tmp_path / "p.sqlite"
    assert resume_store_path(problem, tmp_path / "f.sqlite", {}, tmp_path) == tmp_path / "f.sqlite"


def test_a_relative_recorded_store_that_is_not_here_is_refused(tmp_path, monkeypatch):
    from gi_energy.evaluation.store import resume_store_path

    monkeypatch.chdir(tmp_path)
    problem = SimpleNamespace(output=SimpleNamespace(store=None))
    with pytest.raises(UsageError) as err:
        resume_store_path(problem, None, {"store": "runs/x.sqlite"}, "runs/a")
    assert str(err.value) == (
        "runs/a: run.json records the store as 'runs/x.sqlite', relative to the directory the "
        f"run started in; from here that is {tmp_path / 'runs' / 'x.sqlite'}, which does not "
        "exist: resume from that directory or pass --store PATH")


def test_a_setup_that_fails_halfway_is_rolled_back(tmp_path, monkeypatch):
    def fail(conn, refuse):
        conn.execute("CREATE TABLE half (x)")
        raise ValueError("migration failed")

    monkeypatch.setattr(store_module.schema, "migrate", fail)
    with pytest.raises(ValueError, match="migration failed"):
        Store(tmp_path / "s.sqlite")
    monkeypatch.undo()
    with Store(tmp_path / "s.sqlite") as s:
        assert "half" not in {r[0] for r in s._conn.execute("SELECT name FROM sqlite_master")}
        s.put("fp", "ctx", evaluation(1))
        assert s.count() == 1
