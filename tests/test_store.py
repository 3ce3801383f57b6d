"""The evaluation store: round trips, batch lookups at scale, two writing processes."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time

import pytest

from gi_energy.config.genome import Genome
from gi_energy.evaluation.store import Store
from gi_energy.meters.reading import Reading
from gi_energy.tasks.results import Evaluation


def evaluation(i: int, repeat: int = 0, status: str = "ok") -> Evaluation:
    g = Genome(layers={"hidden": (i % 97 + 1, 8)}, values={"learning_rate": 1e-3 * (1 + i), "epochs": 5})
    r = Reading(backend="estimate", scope="process-estimate", measured=False, energy_j=1.5,
                duration_s=0.5)
    return Evaluation(genome=g, status=status, repeat=repeat, val_accuracy=0.5 + i * 1e-6,
                      train=r, inference=r, inference_samples=1000, params=i, extra={"attempts": 1.0})


def test_round_trip_and_keying(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        ev = evaluation(1)
        store.put("fp", "cpu/estimate", ev)
        assert store.get("fp", ev.key, 0, "cpu/estimate") == ev
        assert store.get("fp", ev.key, 1, "cpu/estimate") is None
        assert store.get("fp", ev.key, 0, "cpu/rapl") is None
        assert store.get("other", ev.key, 0, "cpu/estimate") is None
        # a later evaluation of the same (genome, repeat) never replaces a stored result
        assert store.put("fp", "cpu/estimate", evaluation(1, status="crashed")) == ev
        assert store.get("fp", ev.key, 0, "cpu/estimate") == ev
        store.put("fp", "cpu/rapl", ev)
        assert len(store.evaluations("fp")) == 2
        assert len(store.evaluations("fp", "cpu/rapl")) == 1


def test_nan_and_missing_readings_survive_json(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        missing = Reading.missing_reading("rapl", "no permission")
        ev = Evaluation(genome=Genome(values={"a": 1}), status="nan", val_accuracy=float("nan"),
                        train=missing)
        store.put("fp", "c", ev)
        back = store.get("fp", ev.key, 0, "c")
        assert math.isnan(back.val_accuracy) and back.train.energy_j is None
        assert back.train.missing_reason == "no permission"


def test_lookups_among_100k_rows_are_index_searches(tmp_path):
    """The lookups a resume and a shared store make seek the index, never scan the table
    (checked by SQLite's query plan, not by a clock, which a loaded machine disturbs; the
    times are benchmarked in experiments/bench_scale.py's store case)."""
    path = tmp_path / "s.sqlite"
    real = [evaluation(i) for i in range(0, 100_000, 200)]
    with Store(path) as store:
        store.put_many("fp", "cpu/estimate", real)
    # Filler rows written directly (serialising 100k Evaluations would dominate the test);
    # they fill the index the lookups below must seek through.
    import sqlite3

    payload = real[0].to_json()
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO evaluations VALUES (?, ?, ?, ?, 'ok', ?, 0)",
                         ((fp, "cpu/estimate", f"hidden={i}|filler", 0, payload)
                          for fp in ("fp", "fp2") for i in range(49_750)))
    with Store(path) as store:
        assert store.count() == 100_000
        keys = [e.key for e in real] + ["absent"]
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)  # the SQL the store itself runs
        found = store.get_many("fp", "cpu/estimate", keys)
        one = store.get("fp", real[7].key, 0, "cpu/estimate")
        store._conn.set_trace_callback(None)
        assert len(found) == 500 and {k for k, _ in found} == {e.key for e in real}
        assert one == real[7]
        selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
        assert len(selects) >= 2
        for sql in selects:
            plan = " ".join(row[-1] for row in store._conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert "SEARCH" in plan and "SCAN" not in plan, (sql[:80], plan)


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import evaluation
    from gi_energy.evaluation.store import Store
    store = Store(sys.argv[1])
    offset = int(sys.argv[2])
    for i in range(offset, offset + 300):
        store.put("fp", "cpu/estimate", evaluation(i))   # one transaction each
    store.close()
""")


def test_two_processes_write_one_store(tmp_path):
    path = tmp_path / "shared.sqlite"
    Store(path).close()
    code = WRITER.format(tests=str(__import__("pathlib").Path(__file__).parent))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(off)]) for off in (0, 300)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Store(path) as store:
        assert store.count("fp") == 600
        assert len(store.get_many("fp", "cpu/estimate", [evaluation(i).key for i in range(600)])) == 600


def test_store_refuses_nothing_it_wrote(tmp_path):
    # Payloads are JSON, not pickle: the file holds only text and numbers.
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.put("fp", "c", evaluation(3))
    import sqlite3

    payload = sqlite3.connect(path).execute("SELECT payload FROM evaluations").fetchone()[0]
    assert payload.startswith("{") and '"genome"' in payload


@pytest.mark.parametrize("status", ["failed", "timeout", "crashed"])
def test_failures_are_stored(tmp_path, status):
    with Store(tmp_path / "s.sqlite") as store:
        store.put("fp", "c", evaluation(2, status=status))
        assert store.evaluations("fp")[0].status == status


def test_unopenable_store_path_is_a_usage_error(tmp_path):
    import pytest

    from gi_energy.errors import UsageError

    not_a_db = tmp_path / "plain.sqlite"
    not_a_db.write_text("this is not an SQLite file, it is text " * 100)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for bad in (blocker / "sub" / "s.sqlite", not_a_db):
        with pytest.raises(UsageError, match="cannot be opened"):
            Store(bad)


def test_two_contexts_and_two_fingerprints_are_never_served_for_each_other(tmp_path):
    # The same genomes measured under two contexts (estimated and measured) for two problem
    # setups: four distinct values per genome, each served only for its own pair.
    def ev(i: int, val_accuracy: float, repeat: int = 0) -> Evaluation:
        return Evaluation(genome=evaluation(i).genome, status="ok", repeat=repeat,
                          val_accuracy=val_accuracy)

    pairs = {("fpA", "cpu/estimate"): 0.1, ("fpA", "cpu/rapl"): 0.2,
             ("fpB", "cpu/estimate"): 0.3, ("fpB", "cpu/rapl"): 0.4}
    keys = [evaluation(i).key for i in range(3)]
    with Store(tmp_path / "s.sqlite") as store:
        for (fp, ctx), base in pairs.items():
            store.put_many(fp, ctx, [ev(i, base + i / 100) for i in range(3)])
        store.put("fpA", "cpu/rapl", ev(1, 0.99, repeat=1))  # a second repeat, one pair only
        assert store.count() == 13 and store.count("fpA") == 7 and store.count("fpB") == 6
        for (fp, ctx), base in pairs.items():
            got = store.get_many(fp, ctx, keys + ["no-such-key"])
            expected = {(k, 0): base + i / 100 for i, k in enumerate(keys)}
            if (fp, ctx) == ("fpA", "cpu/rapl"):
                expected[(keys[1], 1)] = 0.99
            assert {k: e.val_accuracy for k, e in got.items()} == pytest.approx(expected)
            for i, k in enumerate(keys):
                assert store.get(fp, k, 0, ctx).val_accuracy == pytest.approx(base + i / 100)
            assert sorted(e.val_accuracy for e in store.evaluations(fp, ctx)) == pytest.approx(
                sorted(expected.values()))
        assert store.get("fpB", keys[1], 1, "cpu/rapl") is None
        assert store.get_many("fpC", "cpu/rapl", keys) == {}
        assert store.get_many("fpA", "cuda/nvml", keys) == {}
        assert sorted(e.val_accuracy for e in store.evaluations("fpB")) == pytest.approx(
            [0.3, 0.31, 0.32, 0.4, 0.41, 0.42])


# ---------------------------------------------------------------- never replaced, schema, leases


def _rows(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT fingerprint, context, key, repeat, status, payload, stored_at_s "
                                   "FROM evaluations").fetchall())


def test_a_result_is_never_replaced_and_a_retry_keeps_the_history(tmp_path):
    from dataclasses import replace

    with Store(tmp_path / "s.sqlite") as store:
        ok = evaluation(1)
        store.put("fp", "c", ok)
        for later in (evaluation(1, status="failed"), replace(ok, val_accuracy=0.99)):
            assert store.put("fp", "c", later) == ok  # the stored one comes back
        crashed = replace(evaluation(2, status="crashed"), extra={"attempts": 1.0})
        store.put("fp", "c", crashed)
        assert store.put("fp", "c", replace(crashed, reason="again")) == crashed  # not a later attempt
        second = evaluation(2)
        assert store.put("fp", "c", second) == second  # a retry supersedes a crash
        assert [e.status for e in store.attempts("fp", "c", second.key, 0)] == ["crashed", "ok"]
        assert store.put("fp", "c", crashed) == second
        slow = replace(evaluation(3, status="timeout"), extra={"timeout_s": 5.0})
        store.put("fp", "c", slow)
        assert store.put("fp", "c", replace(slow, extra={"timeout_s": 5.0})) == slow
        longer = replace(slow, extra={"timeout_s": 50.0})
        assert store.put("fp", "c", longer) == longer
        assert store.count() == 3


def test_two_processes_writing_the_same_keys_replace_nothing(tmp_path):
    # Both processes write the same 300 keys with different payloads: each row is the
    # first writer's, whole; none holds a mix or was overwritten by the second.
    path = tmp_path / "shared.sqlite"
    Store(path).close()
    code = textwrap.dedent("""
        import sys, dataclasses
        sys.path.insert(0, {tests!r})
        from test_store import evaluation
        from gi_energy.evaluation.store import Store
        store = Store(sys.argv[1])
        tag = float(sys.argv[2])
        kept = [store.put("fp", "c", dataclasses.replace(evaluation(i), params=int(tag)))
                for i in range(300)]
        print(sum(1 for k in kept if k.params == int(tag)))
        store.close()
    """).format(tests=str(__import__("pathlib").Path(__file__).parent))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), tag], stdout=subprocess.PIPE, text=True)
             for tag in ("1", "2")]
    won = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(won) == 300  # every key went to exactly one writer
    with Store(path) as store:
        rows = store.evaluations("fp")
        assert len(rows) == 300
        assert sum(1 for e in rows if e.params == 1) == won[0]


def _v1_store(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE evaluations (fingerprint TEXT NOT NULL, context TEXT NOT NULL, key TEXT NOT NULL,
                repeat INTEGER NOT NULL, status TEXT NOT NULL, payload TEXT NOT NULL, stored_at_s REAL NOT NULL,
                PRIMARY KEY (fingerprint, context, key, repeat)) WITHOUT ROWID;
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
        """)
        conn.execute("INSERT INTO evaluations VALUES ('fp', 'c', ?, 0, 'ok', ?, 1.0)",
                     (evaluation(5).key, evaluation(5).to_json()))


def test_a_version_1_store_is_migrated_with_its_rows(tmp_path):
    import sqlite3

    from gi_energy.evaluation.schema import SCHEMA_VERSION

    path = tmp_path / "v1.sqlite"
    _v1_store(path)
    before = _rows(path)
    with Store(path) as store:
        assert store.get("fp", evaluation(5).key, 0, "c") == evaluation(5)
    assert _rows(path) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
        assert {"leases", "superseded"} <= {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


def _foreign(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")


def _newer(path):
    import sqlite3

    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99'")
        conn.commit()
        conn.execute("PRAGMA journal_mode = DELETE")  # everything in the main file


def _other_layout(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE evaluations (key TEXT, payload TEXT);"
                           "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);"
                           "INSERT INTO meta VALUES ('schema_version', '1');")


def _damaged(path):
    import sqlite3

    with Store(path) as store:
        store.put_many("fp", "c", [evaluation(i) for i in range(400)])
    sqlite3.connect(path).execute("PRAGMA journal_mode = DELETE").fetchall()
    data = bytearray(path.read_bytes())
    data[5000:9000] = b"\xff" * 4000  # pages of the table overwritten in place
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("make, says", [
    (_foreign, "not a gi-energy evaluation store (its tables: songs)"),
    (_newer, "schema version 99, written by a newer gi-energy"),
    (_other_layout, "its evaluations table has columns key, payload"),
    (_damaged, "damaged"),
])
def test_a_foreign_newer_misshapen_or_damaged_store_is_refused_untouched(tmp_path, make, says):
    from gi_energy.errors import UsageError

    path = tmp_path / "s.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(UsageError) as info:
        Store(path)
    message = str(info.value)
    assert str(path) in message and says in message and "\n" not in message
    assert path.read_bytes() == before


def test_claims_wait_for_a_live_owner_and_take_over_a_dead_one(tmp_path):
    import dataclasses

    from gi_energy.evaluation.leases import LeaseOwner

    me, other = LeaseOwner.this_process(), LeaseOwner.this_process()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = dataclasses.replace(LeaseOwner.this_process(), pid=int(dead.stdout), start="1")
    never = lambda ev: False  # noqa: E731 - no stored result is retried
    with Store(tmp_path / "s.sqlite") as store:
        store.put("fp", "c", evaluation(1))
        items = [(evaluation(i).key, 0) for i in (1, 2, 3)]
        stored, claimed, held = store.claim("fp", "c", items, other, never)
        assert list(stored) == [items[0]] and list(claimed) == items[1:] and held == []
        stored, claimed, held = store.claim("fp", "c", items[1:], me, never)
        assert held == items[1:] and not claimed  # a live process trains them: wait
        store.put("fp", "c", evaluation(2), owner=other)  # stored: its lease goes with it
        assert [lease["key"] for lease in store.leases()] == [items[2][0]]
        store.release(other)
        store.claim("fp", "c", items[2:], gone, never)
        _, claimed, held = store.claim("fp", "c", items[2:], me, never)
        assert list(claimed) == items[2:] and held == []  # the dead owner's lease is taken over
        assert store.heartbeat(me) == 1 and store.release(me) == 1 and store.leases() == []


def test_a_lease_whose_heartbeat_stopped_is_stale():
    import socket

    from gi_energy.evaluation.leases import LEASE_TIMEOUT_S, is_stale

    now = time.time()
    here, pid = socket.gethostname(), __import__("os").getpid()
    assert not is_stale(pid, here, None, now, now_s=now)
    assert is_stale(pid, here, None, now - LEASE_TIMEOUT_S - 1, now_s=now)
    assert not is_stale(1, "another-host", None, now, now_s=now)  # another host: only the heartbeat says


def test_a_resume_keeps_the_store_its_run_recorded(tmp_path, monkeypatch):
    from gi_energy.config.problem import Problem
    from gi_energy.config.space import SearchSpace
    from gi_energy.errors import UsageError
    from gi_energy.evaluation.store import default_store_path, resume_store_path

    problem = Problem(name="p", space=SearchSpace(layers={}, params={}))
    monkeypatch.chdir(tmp_path)
    assert default_store_path(problem, "s.sqlite") == tmp_path / "s.sqlite"  # recorded absolute
    store = tmp_path / "s.sqlite"
    Store(store).close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    info = {"settings": {"store": str(store)}}
    assert resume_store_path(problem, None, info, "run") == store
    assert resume_store_path(problem, str(store), info, "run") == store
    with pytest.raises(UsageError, match="a resume keeps it"):
        resume_store_path(problem, "other.sqlite", info, "run")
    moved = tmp_path / "moved.sqlite"
    store.rename(moved)
    with pytest.raises(UsageError, match="does not exist .* pass --store PATH"):
        resume_store_path(problem, None, info, "run")
    assert resume_store_path(problem, str(moved), info, "run") == moved  # the store moved: say where
    # recorded relative by an older version: only where that file exists from here
    with pytest.raises(UsageError, match="relative to the directory the run started in"):
        resume_store_path(problem, None, {"store": "s.sqlite"}, "run")
    Store(elsewhere / "s.sqlite").close()
    assert resume_store_path(problem, None, {"store": "s.sqlite"}, "run") == elsewhere / "s.sqlite"


def test_a_damaged_row_is_bad_input_naming_the_store(tmp_path):
    """A sound SQLite file whose row text is not an evaluation (a hand edit, a foreign
    writer): exit 2 naming the store, not an unexpected JSONDecodeError mid-run."""
    import sqlite3

    from gi_energy.errors import UsageError

    path = tmp_path / "s.sqlite"
    ev = evaluation(3)
    with Store(path) as store:
        store.put_many("fp", "cpu/estimate", [ev])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE evaluations SET payload = '{not json'")
    with Store(path) as store:
        for read in (lambda: store.get("fp", ev.key, 0, "cpu/estimate"),
                     lambda: store.get_many("fp", "cpu/estimate", [ev.key]),
                     lambda: store.evaluations("fp")):
            with pytest.raises(UsageError, match="s.sqlite' holds a damaged evaluation") as info:
                read()
            assert info.value.exit_code == 2
