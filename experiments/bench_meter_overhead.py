"""Overhead of a meter window on a 1-second busy window, per backend (target <= 1%).

    .venv/bin/python experiments/bench_meter_overhead.py [--window-s 1] [--runs 7]

Two figures per backend, each the median over --runs windows, as % of the window:

- call overhead: time spent inside start() and stop() themselves (the meter's latency);
- slowdown: how much longer a fixed amount of busy-loop work takes inside a window than
  outside one (catches what the calls miss: polling/sampling threads taking the GIL).

Backends that cannot run on this machine are run on the fakes in gi_energy.meters.fakes
and labelled so: that measures our code path (file reads from a temp dir instead of sysfs,
a Python stand-in instead of libnvidia-ml), not the vendor's own cost.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gi_energy.config.problem import EnergyConfig
from gi_energy.meters import Meter, create_meter
from gi_energy.meters.fakes import FakeNvml, FakePowercap, ticking_reader
from gi_energy.meters.nvml import NvmlMeter
from gi_energy.meters.rapl import RaplMeter


def spin(iterations: int) -> None:
    for _ in range(iterations):
        pass


def calibrate(window_s: float) -> int:
    """Iterations of spin() that take about window_s."""
    n = 100_000
    while True:
        t = time.perf_counter()
        spin(n)
        dt = time.perf_counter() - t
        if dt > 0.1:
            return int(n * window_s / dt)
        n *= 2


def measure(meter: Meter, iterations: int, runs: int) -> tuple[float, float, float]:
    """(median call overhead s, median slowdown fraction, median window s)."""
    calls, slowdowns, windows = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        spin(iterations)
        bare_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        meter.start()
        t1 = time.perf_counter()
        spin(iterations)
        t2 = time.perf_counter()
        reading = meter.stop()
        t3 = time.perf_counter()
        calls.append((t1 - t0) + (t3 - t2))
        slowdowns.append((t2 - t1) / bare_s - 1.0)
        windows.append(t3 - t0)
        assert reading.duration_s > 0
    return statistics.median(calls), statistics.median(slowdowns), statistics.median(windows)


def backends(tmp: Path) -> list[tuple[str, Callable[[], Meter]]]:
    tree = FakePowercap(tmp / "powercap")
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:0:0", "dram")
    return [
        ("auto (this machine)", lambda: create_meter(EnergyConfig(), lock_dir=tmp)),
        ("estimate", lambda: create_meter(EnergyConfig(meter="estimate"))),
        ("rapl exclusive [fake tree]", lambda: RaplMeter(
            powercap_root=tree.root, lock_dir=tmp, read=ticking_reader(1000))),
        ("rapl cpu-share [fake tree]", lambda: RaplMeter(
            powercap_root=tree.root, attribution="cpu-share", read=ticking_reader(1000))),
        ("nvml energy counter [fake pynvml]", lambda: NvmlMeter(
            pynvml=FakeNvml(energy_step_mj=100), lock_dir=tmp, visible_devices="")),
        # The field read every 5 ms by a thread for the window's first second; a window of
        # under a second (10 counter updates) is the samples' integral.
        ("nvml counter + instant power [fake pynvml]", lambda: NvmlMeter(
            pynvml=FakeNvml(energy_step_mj=100, instant_power_w=300.0), lock_dir=tmp,
            visible_devices="")),
        ("nvml power sampling [fake pynvml]", lambda: NvmlMeter(
            pynvml=FakeNvml(energy_counter=False), lock_dir=tmp, visible_devices="")),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window-s", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    iterations = calibrate(args.window_s)
    print(f"window ~{args.window_s:g} s busy loop, median of {args.runs} runs\n")
    print(f"{'backend':44s} {'window':>8s} {'call overhead':>16s} {'slowdown':>10s}")
    with tempfile.TemporaryDirectory() as d:
        for label, make in backends(Path(d)):
            meter = make()
            if not meter.availability().available:
                print(f"{label:44s} unavailable: {meter.availability().reason}")
                continue
            calls_s, slowdown, window_s = measure(meter, iterations, args.runs)
            print(f"{label:44s} {window_s:6.2f} s {calls_s * 1e6:7.0f} us {calls_s / window_s:6.3%} "
                  f"{slowdown:+9.2%}")
            meter.close()


if __name__ == "__main__":
    main()
