"""Exclusive attribution: metered windows of two real processes never overlap."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from gi_energy.meters.fakes import FakePowercap, ticking_reader
from gi_energy.meters.rapl import RaplMeter

WINDOWS = 4
WINDOW_S = 0.04


def _worker(root: str, lock_dir: str, attribution: str, barrier, out) -> None:
    meter = RaplMeter(powercap_root=Path(root), lock_dir=Path(lock_dir), attribution=attribution,
                      read=ticking_reader(1000), proc_stat=Path("/proc/stat"))
    barrier.wait()
    spans = []
    for _ in range(WINDOWS):
        with meter.window():
            # CLOCK_MONOTONIC is shared by every process, so the spans compare directly.
            t0 = time.monotonic()
            time.sleep(WINDOW_S)
            spans.append((t0, time.monotonic()))
    out.put(spans)


def _run_two(tmp_path, attribution: str) -> list[tuple[float, float]]:
    tree = FakePowercap(tmp_path / "powercap")
    tree.add_zone()
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tree.root), str(tmp_path / "locks"),
                                               attribution, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    spans = [out.get(timeout=30), out.get(timeout=30)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return [(a, b, i) for i, ss in enumerate(spans) for a, b in ss]


def _overlaps(spans) -> int:
    return sum(1 for a0, a1, i in spans for b0, b1, j in spans
               if i < j and a0 < b1 and b0 < a1)


@pytest.mark.slow
def test_exclusive_windows_of_two_processes_do_not_overlap(tmp_path):
    spans = _run_two(tmp_path, "exclusive")
    assert len(spans) == 2 * WINDOWS
    assert _overlaps(spans) == 0


@pytest.mark.slow
def test_without_the_lock_the_same_windows_do_overlap(tmp_path):
    # The control: proves the check above can fail (cpu-share takes no lock).
    assert _overlaps(_run_two(tmp_path, "cpu-share")) > 0


def test_a_forked_child_waits_for_its_parents_lock(tmp_path):
    # flock belongs to the open file description, which fork shares: without reopening,
    # the child would "acquire" the lock its parent holds at once.
    from gi_energy.meters.locks import FileLock

    lock = FileLock(tmp_path, "x.lock")
    lock.acquire()
    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def child():
        lock.acquire()
        q.put(time.monotonic())
        lock.release()

    p = ctx.Process(target=child)
    p.start()
    time.sleep(0.2)
    released = time.monotonic()
    lock.release()
    assert q.get(timeout=10) >= released
    p.join(timeout=10)
