"""A meter window opened inside another exclusive window of the same process (the user's
gi_energy.meter() inside gi-energy's training window) re-enters the lock the process holds;
other processes still wait, and another thread of the process is refused, never blocked.

Everything that could hang runs under a deadline, so a regression fails instead."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import gi_energy
from gi_energy.meters.fakes import FakeNvml, FakePowercap
from gi_energy.meters.locks import FileLock
from gi_energy.meters.nvml import NvmlMeter

DEADLINE_S = 20.0


def _in_time(fn, timeout_s: float = DEADLINE_S):
    """fn() on a daemon thread: its result, or its exception, or a failure if it blocks."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised below, in the test's thread
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout_s)
    assert not t.is_alive(), f"still blocked after {timeout_s} s (deadlock)"
    if "error" in out:
        raise out["error"]
    return out.get("value")


def _tree(tmp_path) -> FakePowercap:
    tree = FakePowercap(tmp_path / "powercap")
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    return tree


def _rapl(tmp_path, tree):
    return gi_energy.meter("rapl", powercap_root=tree.root, lock_dir=tmp_path / "locks",
                           proc_stat=tmp_path / "no-stat")


def _locked_elsewhere(path: Path) -> bool:
    """Whether some other open file description holds ``path``'s flock (a fresh open in this
    process is a different description, so it conflicts like another process would)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_rapl_window_inside_another_reads_its_own_interval(tmp_path):
    tree = _tree(tmp_path)
    outer, inner = _rapl(tmp_path, tree), _rapl(tmp_path, tree)

    def nested():
        with outer:
            tree.set_energy("intel-rapl:0", 2_000_000)
            with inner:
                tree.set_energy("intel-rapl:0", 3_000_000)
            assert _locked_elsewhere(tmp_path / "locks" / "rapl.lock")  # the outer still holds
        assert not _locked_elsewhere(tmp_path / "locks" / "rapl.lock")

    _in_time(nested)
    assert outer.reading.energy_j == pytest.approx(2.0) and outer.reading.measured
    assert inner.reading.energy_j == pytest.approx(1.0) and inner.reading.measured
    outer.close()
    inner.close()


def test_an_nvml_window_inside_another_on_the_same_gpu(tmp_path):
    nvml = FakeNvml(energy_mj=1000)
    meters = [gi_energy.meter(backend_meter=NvmlMeter(pynvml=nvml, lock_dir=tmp_path,
                                                      visible_devices="", update_period_s=0.0))
              for _ in range(2)]
    outer, inner = meters

    def nested():
        with outer:
            nvml.energy_mj = 3000
            with inner:
                nvml.energy_mj = 4000

    _in_time(nested)
    assert outer.reading.energy_j == pytest.approx(3.0)
    assert inner.reading.energy_j == pytest.approx(1.0)
    assert not _locked_elsewhere(next(tmp_path.glob("nvml-*.lock")))


def test_the_file_stays_locked_until_the_last_nested_release_in_any_order(tmp_path):
    # Two spellings of one file are one lock; releasing the outer first keeps it held.
    a = FileLock(tmp_path / "locks", "x.lock")
    b = FileLock(tmp_path / "sub" / ".." / "locks", "x.lock")
    (tmp_path / "sub").mkdir()
    _in_time(lambda: (a.acquire(), b.acquire(), a.release()))
    assert _locked_elsewhere(a.path)
    b.release()
    assert not _locked_elsewhere(a.path)
    # close() gives back what that object still holds, as closing its descriptor did.
    _in_time(lambda: (a.acquire(), b.acquire(), b.close()))
    assert _locked_elsewhere(a.path)
    a.close()
    assert not _locked_elsewhere(a.path)


def test_another_thread_waits_its_turn_and_then_reads_its_own_window(tmp_path):
    """Two threads each timing their own work take turns (their windows never overlap, so
    neither is charged the other's energy), as when each window took its own flock."""
    tree = _tree(tmp_path)
    outer = _rapl(tmp_path, tree)
    other = _rapl(tmp_path, tree)
    opened = threading.Event()
    worker = threading.Thread(target=lambda: (other.__enter__(), opened.set(), other.__exit__(None, None, None)))
    with outer:
        worker.start()
        assert not opened.wait(0.3), "a second thread's window opened inside the first"
    assert opened.wait(10), "the second thread still waits after the first window closed"
    worker.join(10)
    assert other.reading is not None and not _locked_elsewhere(tmp_path / "locks" / "rapl.lock")


def _child_window(root: str, lock_dir: str, out) -> None:
    m = gi_energy.meter("rapl", powercap_root=Path(root), lock_dir=Path(lock_dir),
                        proc_stat=Path("/no-stat"))
    out.put("asking")
    with m:
        out.put(time.monotonic())


def test_a_forked_process_waits_for_the_nested_windows_to_close(tmp_path):
    # A child forked while the parent holds the lock (twice, nested) must not re-enter it.
    tree = _tree(tmp_path)
    outer, inner = _rapl(tmp_path, tree), _rapl(tmp_path, tree)
    ctx = mp.get_context("fork")
    out = ctx.Queue()

    def parent():
        with outer:
            with inner:
                child = ctx.Process(target=_child_window,
                                    args=(str(tree.root), str(tmp_path / "locks"), out))
                child.start()
                assert out.get(timeout=DEADLINE_S) == "asking"
                time.sleep(0.2)
            time.sleep(0.2)  # the inner window closed: the child must still wait
            return child, time.monotonic()

    child, released = _in_time(parent)
    try:
        assert out.get(timeout=DEADLINE_S) >= released
    finally:
        child.join(timeout=DEADLINE_S)
    assert child.exitcode == 0


HOLDER = """
import sys, time
from pathlib import Path
import gi_energy
m = gi_energy.meter("rapl", powercap_root=Path(sys.argv[1]), lock_dir=Path(sys.argv[2]),
                    proc_stat=Path("/no-stat"))
with m:
    print("held", flush=True)
    time.sleep(0.5)
    released = time.monotonic()
print(released, flush=True)
"""


def test_a_window_waits_for_another_process_holding_the_lock(tmp_path):
    tree = _tree(tmp_path)
    mine = _rapl(tmp_path, tree)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tree.root), str(tmp_path / "locks")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"

        def window():
            with mine:
                return time.monotonic()

        entered = _in_time(window)
        released = float(holder.stdout.readline())
        assert entered >= released
    finally:
        holder.wait(timeout=DEADLINE_S)
    assert holder.returncode == 0
