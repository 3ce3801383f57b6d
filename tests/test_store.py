"""The evaluation store: round trips, batch lookups at scale, two writing processes."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time

import pytest

from gi_energy.config.space import Genome
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
        # a later evaluation of the same (genome, repeat) replaces the earlier one
        store.put("fp", "cpu/estimate", evaluation(1, status="crashed"))
        assert store.get("fp", ev.key, 0, "cpu/estimate").status == "crashed"
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


def test_batch_lookup_is_fast_with_100k_rows(tmp_path):
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
        start = time.perf_counter()
        found = store.get_many("fp", "cpu/estimate", keys)
        batch_s = time.perf_counter() - start
        assert len(found) == 500
        start = time.perf_counter()
        for k in keys[:100]:
            store.get("fp", k, 0, "cpu/estimate")
        single_s = (time.perf_counter() - start) / 100
        assert batch_s < 0.5, batch_s
        assert single_s < 0.005, single_s


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
