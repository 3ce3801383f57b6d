"""NVML meter and CUDA training checked on a real NVIDIA GPU, in one go.

    python experiments/gpu_check.py [--out DIR] [--windows 5] [--window-s 2]
                                    [--evolve-evaluations 24] [--skip-evolve]

What it does, each step logged as it runs and summed up in a table at the end (and in
DIR/gpu_check.json):

1. ``gi-energy meters``, ``gi-energy meters --probe 2`` and ``--json``: which backends are
   available on this machine and why (RAPL too), plus the driver and the board.
2. Repeatability of :class:`gi_energy.meters.nvml.NvmlMeter`: one fixed CUDA workload
   (a float32 4096x4096 matmul loop calibrated once to ``--window-s``) metered in
   ``--windows`` windows, then a fixed digits MLP trained through the project's own
   training path in as many windows. Per window: energy, duration, mean power; over the
   windows: the coefficient of variation. The counter's joules are cross-checked against an
   independent thread that samples ``nvmlDeviceGetPowerUsage`` (and the instant-power
   field, where the driver has it) every 10 ms over the same window. Also: idle power, the
   latency of one NVML call and how often the energy counter and the instant-power field
   actually move under load.
2b. Short windows: the same matmul loop calibrated to each of ``--lengths`` (0.15, 0.3,
   1 and 2 s), ``--windows`` windows each, once after 1 s idle (a burst: the board's power
   rises inside the window) and once right after 0.5 s of the same loop (steady load).
   Per window: the meter's reading and its method (the instant-power integral below 10
   counter updates, else the counter), the counter's own delta over the same reads, and
   the independent sampler's integral of instant power; per length: the CV of the
   meter's readings next to the CV of the counter's deltas. ``--lengths-only`` runs
   this step alone.
3. A few digits genomes through the real evaluation path (``worker.run_evaluation``, the
   meter ``[energy] meter = "auto"`` creates) with ``[evaluation] device = "cuda"``, each
   run twice on CUDA (same seed: same accuracy?) and once on this machine's CPU; then one
   short genome five times with ``min_inference_s`` 0.2 and 1.0, to show how the energy
   counter's whole updates scatter short windows.
4. A short real ``gi-energy evolve`` of digits on CUDA; its evaluations.csv is checked for
   NVML readings and copied to DIR.

Without a CUDA GPU and a working NVML it says so and exits with status 2: it never
reports a number it did not measure. Nothing here is a fake: no gi_energy.meters.fakes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# cuBLAS reads this when it initialises: set before any CUDA work, as the evaluator does
# for its worker processes, so step 3's evaluations are deterministic.
from gi_energy.tasks.training import CUBLAS_WORKSPACE_CONFIG  # noqa: E402 (imports torch)

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)

import torch  # noqa: E402

from gi_energy.config.genome import Genome  # noqa: E402
from gi_energy.config.parse import load_problem  # noqa: E402
from gi_energy.meters.nvml import NvmlMeter  # noqa: E402
from gi_energy.meters.nvmldevice import ENERGY_COUNTER, visible_device  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_INTERVAL_S = 0.01

# Step 3's genomes: small to large digits MLPs inside problems/digits.toml's space.
GENOMES = {
    "tiny":   Genome(layers={"hidden": (16,)}, values={"activation": "relu", "learning_rate": 1e-2,
                                                       "batch_size": 128, "epochs": 10, "optimizer": "adam"}),
    "mid":    Genome(layers={"hidden": (64,)}, values={"activation": "relu", "learning_rate": 3e-3,
                                                       "batch_size": 64, "epochs": 20, "optimizer": "adam"}),
    "wide2":  Genome(layers={"hidden": (128, 128)}, values={"activation": "tanh", "learning_rate": 1e-3,
                                                            "batch_size": 32, "epochs": 30, "optimizer": "adam"}),
    "big3":   Genome(layers={"hidden": (256, 256, 256)}, values={"activation": "gelu", "learning_rate": 1e-2,
                                                                 "batch_size": 16, "epochs": 40, "optimizer": "sgd"}),
}
# Step 2's training workload (about a second of steps on a GPU).
TRAIN_GENOME = Genome(layers={"hidden": (256, 256, 256)},
                      values={"activation": "relu", "learning_rate": 1e-3, "batch_size": 32,
                              "epochs": 40, "optimizer": "adam"})


def log(*args) -> None:
    print(*args, flush=True)


def cv(values: list[float]) -> float | None:
    """Coefficient of variation (sample stdev / mean)."""
    if len(values) < 2 or statistics.mean(values) == 0:
        return None
    return statistics.stdev(values) / statistics.mean(values)


# -- what is there -----------------------------------------------------------------------
def gpu_presence() -> tuple[bool, str]:
    """(usable, why not): a CUDA device for torch and an NVML that starts."""
    why = []
    if not torch.cuda.is_available():
        why.append(f"torch {torch.__version__} sees no CUDA device")
    try:
        import pynvml

        pynvml.nvmlInit()
        n = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        if n == 0:
            why.append("NVML found no NVIDIA GPU")
    except ImportError as exc:
        why.append(f"pynvml not installed ({exc})")
    except Exception as exc:  # noqa: BLE001 - pynvml.NVMLError and friends
        why.append(f"NVML cannot start: {exc}")
    return (not why), "; ".join(why)


def machine_info() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cpu_cores": os.cpu_count(),
            "kernel": platform.release(), "host": platform.node()}
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
        info["gpu"] = text(pynvml.nvmlDeviceGetName(h))
        info["driver"] = text(pynvml.nvmlSystemGetDriverVersion())
        info["nvml_version"] = text(pynvml.nvmlSystemGetNVMLVersion())
        try:
            info["power_limit_w"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000
        except Exception as exc:  # noqa: BLE001
            info["power_limit_w"] = f"unreadable: {exc}"
        pynvml.nvmlShutdown()
    except Exception as exc:  # noqa: BLE001
        info["nvml"] = f"unavailable: {exc}"
    try:
        import importlib.metadata as md

        info["nvidia_ml_py"] = md.version("nvidia-ml-py")
    except Exception:  # noqa: BLE001
        pass
    pc = Path("/sys/class/powercap")
    info["powercap"] = sorted(p.name for p in pc.iterdir()) if pc.is_dir() else "no /sys/class/powercap"
    return info


def cli(*args: str, timeout_s: float = 120) -> tuple[int, str]:
    """Run ``gi-energy ARGS`` with this interpreter; (exit status, stdout+stderr).

    From a temporary directory: ``-m`` puts the working directory first on sys.path, and
    the source tree's gi_energy/ has no operators/ or problems/ inside it (they install
    there through setup.cfg's package_dir), so run from the repository root it would fail.
    """
    proc = subprocess.run([sys.executable, "-m", "gi_energy.cli", *args], capture_output=True,
                          text=True, timeout=timeout_s, cwd=tempfile.gettempdir())
    return proc.returncode, proc.stdout + proc.stderr


# -- independent power sampling ----------------------------------------------------------
class PowerSampler:
    """A thread of its own NVML handle sampling board power every SAMPLE_INTERVAL_S.

    Two readings per sample: nvmlDeviceGetPowerUsage (on recent boards an average over
    about a second, per NVIDIA's docs) and, where the driver has it, the instant-power
    field (NVML_FI_DEV_POWER_INSTANT). Times on time.perf_counter, the meter's clock.
    """

    def __init__(self) -> None:
        import pynvml

        self.lib = pynvml
        pynvml.nvmlInit()
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(
            visible_device(0, os.environ.get("CUDA_VISIBLE_DEVICES")))
        self.instant_field = getattr(pynvml, "NVML_FI_DEV_POWER_INSTANT", None)
        self.instant_error = None
        if self.instant_field is None:
            self.instant_error = "pynvml has no NVML_FI_DEV_POWER_INSTANT"
        elif self.instant_w() is None:
            self.instant_field = None
        self.samples: list[tuple[float, float, float | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="gpu-check-sampler")

    def instant_w(self) -> float | None:
        try:
            fv = self.lib.nvmlDeviceGetFieldValues(self.handle, [self.instant_field])[0]
            if fv.nvmlReturn != 0:
                self.instant_error = f"field read returned {fv.nvmlReturn}"
                return None
            kind = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal",
                    6: "usVal"}.get(fv.valueType, "uiVal")
            return float(getattr(fv.value, kind)) / 1000.0  # milliwatts
        except Exception as exc:  # noqa: BLE001
            self.instant_error = f"{type(exc).__name__}: {exc}"
            return None

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            t = time.perf_counter()
            p = self.lib.nvmlDeviceGetPowerUsage(self.handle) / 1000.0
            inst = self.instant_w() if self.instant_field is not None else None
            self.samples.append((t, p, inst))

    def start(self) -> PowerSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.lib.nvmlShutdown()

    def energy_j(self, t0: float, t1: float, column: int = 1) -> float | None:
        """Trapezoid of one column over [t0, t1], interpolated at both ends."""
        pts = [(s[0], s[column]) for s in self.samples if s[column] is not None]
        if len(pts) < 2 or pts[0][0] > t0 or pts[-1][0] < t1:
            return None
        ts = np.array([p[0] for p in pts])
        ps = np.array([p[1] for p in pts])
        inside = (ts > t0) & (ts < t1)
        grid = np.concatenate(([t0], ts[inside], [t1]))
        trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
        return float(trapezoid(np.interp(grid, ts, ps), grid))

    def wait_past(self, t: float, timeout_s: float = 1.0) -> None:
        """Until a sample later than ``t`` exists, so a window's end can be interpolated."""
        end = time.perf_counter() + timeout_s
        while time.perf_counter() < end and not (self.samples and self.samples[-1][0] > t):
            time.sleep(SAMPLE_INTERVAL_S / 2)

    def mean_w(self, t0: float, t1: float, column: int = 1) -> float | None:
        e = self.energy_j(t0, t1, column)
        return None if e is None else e / (t1 - t0)


class TimedNvml(NvmlMeter):
    """The project's NvmlMeter, noting when each window opened and closed (perf_counter)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.marks: list[list[float]] = []

    def start(self) -> None:
        super().start()
        self.marks.append([time.perf_counter(), float("nan")])

    def stop(self):
        reading = super().stop()
        self.marks[-1][1] = time.perf_counter()
        return reading


def window_row(reading, t0: float, t1: float, sampler: PowerSampler) -> dict:
    sampler.wait_past(t1)
    avg_j = sampler.energy_j(t0, t1, 1)
    inst_j = sampler.energy_j(t0, t1, 2)
    return {"energy_j": reading.energy_j, "duration_s": reading.duration_s,
            "power_w": reading.power_w, "backend": reading.backend, "scope": reading.scope,
            "measured": reading.measured, "warnings": list(reading.warnings),
            "sampled_avg_j": avg_j, "sampled_instant_j": inst_j,
            "ratio_counter_to_avg": None if not avg_j or reading.energy_j is None else reading.energy_j / avg_j,
            "ratio_counter_to_instant": None if not inst_j or reading.energy_j is None else reading.energy_j / inst_j}


def summarise_windows(rows: list[dict]) -> dict:
    energies = [r["energy_j"] for r in rows if r["energy_j"] is not None]
    durations = [r["duration_s"] for r in rows]
    powers = [r["power_w"] for r in rows if r["power_w"] is not None]
    ra = [r["ratio_counter_to_avg"] for r in rows if r["ratio_counter_to_avg"] is not None]
    ri = [r["ratio_counter_to_instant"] for r in rows if r["ratio_counter_to_instant"] is not None]
    return {"n": len(rows), "energy_mean_j": statistics.mean(energies) if energies else None,
            "energy_cv": cv(energies), "duration_mean_s": statistics.mean(durations),
            "duration_cv": cv(durations), "power_mean_w": statistics.mean(powers) if powers else None,
            "power_cv": cv(powers),
            "ratio_counter_to_avg_mean": statistics.mean(ra) if ra else None,
            "ratio_counter_to_instant_mean": statistics.mean(ri) if ri else None}


def print_windows(title: str, rows: list[dict]) -> None:
    log(f"\n{title}")
    log(f"{'win':>3} {'energy J':>10} {'dur s':>7} {'mean W':>8} {'sampled(avg) J':>15} "
        f"{'ratio':>6} {'sampled(inst) J':>16} {'ratio':>6}  warnings")
    f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for i, r in enumerate(rows):
        log(f"{i:>3} {f(r['energy_j'], '10.2f')} {r['duration_s']:7.3f} {f(r['power_w'], '8.1f')} "
            f"{f(r['sampled_avg_j'], '15.2f')} {f(r['ratio_counter_to_avg'], '6.3f')} "
            f"{f(r['sampled_instant_j'], '16.2f')} {f(r['ratio_counter_to_instant'], '6.3f')}  "
            f"{'; '.join(r['warnings']) or '-'}")


# -- step 2 ------------------------------------------------------------------------------
def nvml_latency_us(meter: NvmlMeter) -> dict:
    lib, h = meter.device.library(), meter.device.handle
    out = {}
    for name, fn, n in (("energy_counter", lib.nvmlDeviceGetTotalEnergyConsumption, 2000),
                        ("power_usage", lib.nvmlDeviceGetPowerUsage, 500)):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn(h)
            times.append(time.perf_counter() - t)
        out[name] = {"median_us": statistics.median(times) * 1e6, "max_us": max(times) * 1e6, "calls": n}
    return out


def window_overhead(meter: NvmlMeter, n: int = 20) -> dict:
    """Time inside start() and inside stop() of the real meter, median over n windows."""
    starts, stops = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        meter.start()
        t1 = time.perf_counter()
        time.sleep(0.25)
        t2 = time.perf_counter()
        meter.stop()
        t3 = time.perf_counter()
        starts.append(t1 - t0)
        stops.append(t3 - t2)
    meter.marks.clear()
    both = [a + b for a, b in zip(starts, stops)]
    return {"start_median_ms": statistics.median(starts) * 1e3,
            "stop_median_ms": statistics.median(stops) * 1e3,
            "start_plus_stop_median_ms": statistics.median(both) * 1e3,
            "start_plus_stop_max_ms": max(both) * 1e3, "windows": n}


def counter_update_period(meter: NvmlMeter, load, seconds: float = 1.5) -> dict:
    """Poll the energy counter while ``load`` runs on another thread; intervals between
    changes of its value."""
    lib, h = meter.device.library(), meter.device.handle
    stop = threading.Event()
    th = threading.Thread(target=load, args=(stop,), daemon=True)
    th.start()
    time.sleep(0.3)
    changes, last, polls = [], lib.nvmlDeviceGetTotalEnergyConsumption(h), 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        v = lib.nvmlDeviceGetTotalEnergyConsumption(h)
        polls += 1
        if v != last:
            changes.append((time.perf_counter(), v - last))
            last = v
    stop.set()
    th.join()
    gaps = [b[0] - a[0] for a, b in zip(changes, changes[1:])]
    steps = [c[1] for c in changes]
    return {"polls": polls, "changes": len(changes),
            "median_interval_ms": statistics.median(gaps) * 1e3 if gaps else None,
            "min_interval_ms": min(gaps) * 1e3 if gaps else None,
            "max_interval_ms": max(gaps) * 1e3 if gaps else None,
            "median_step_mj": statistics.median(steps) if steps else None}


def instant_field_updates(sampler: PowerSampler, load, seconds: float = 1.0) -> dict:
    """Poll the instant-power field while ``load`` runs; how often its value and its
    driver timestamp change (is "instant" fresh every few ms, or a cached figure?)."""
    lib, h, field = sampler.lib, sampler.handle, sampler.instant_field
    stop = threading.Event()
    th = threading.Thread(target=load, args=(stop,), daemon=True)
    th.start()
    time.sleep(0.3)
    polls, value_changes, stamp_changes = 0, [], []
    last_v = last_ts = None
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        fv = lib.nvmlDeviceGetFieldValues(h, [field])[0]
        t = time.perf_counter()
        polls += 1
        v = (fv.nvmlReturn, fv.valueType, getattr(fv.value, "uiVal", None),
             getattr(fv.value, "ullVal", None))
        if last_v is not None and v != last_v:
            value_changes.append(t)
        if last_ts is not None and fv.timestamp != last_ts:
            stamp_changes.append(fv.timestamp)
        last_v, last_ts = v, fv.timestamp
        time.sleep(0.0005)
    stop.set()
    th.join()
    gaps = [(b - a) * 1e3 for a, b in zip(value_changes, value_changes[1:])]
    stamp_gaps = [(b - a) / 1e3 for a, b in zip(stamp_changes, stamp_changes[1:])]  # us -> ms
    return {"polls": polls, "value_changes": len(value_changes),
            "median_value_interval_ms": statistics.median(gaps) if gaps else None,
            "timestamp_changes": len(stamp_changes),
            "median_timestamp_interval_ms": statistics.median(stamp_gaps) if stamp_gaps else None,
            "value_type": int(fv.valueType)}


class Matmul:
    """The fixed CUDA workload of steps 2 and 2b: products of two SIZE x SIZE float32
    matrices, timed once, and the same loop as a background load."""

    SIZE = 4096

    def __init__(self, device: str, sync) -> None:
        self.a = torch.randn(self.SIZE, self.SIZE, device=device)
        self.b = torch.randn(self.SIZE, self.SIZE, device=device)
        self.sync = sync

    def run(self, n: int) -> None:
        for _ in range(n):
            self.a @ self.b

    def seconds_each(self, warm: int = 20, timed: int = 200) -> float:
        """Seconds per product, after ``warm`` untimed ones."""
        self.run(warm)
        self.sync()
        t = time.perf_counter()
        self.run(timed)
        self.sync()
        return (time.perf_counter() - t) / timed

    def load(self, stop) -> None:
        """The loop until ``stop`` (an Event) is set; the target of a load thread."""
        torch.cuda.set_device(self.a.device)  # a new thread has no current CUDA context
        while not stop.is_set():
            self.run(20)
            self.sync()


def window_lengths(meter: TimedNvml, sampler: PowerSampler, mm: Matmul, per_matmul_s: float,
                   lengths: list[float], windows: int, under_load: bool = False) -> dict:
    """The matmul loop calibrated to each window length, ``windows`` windows each: the
    meter's reading and method beside the counter's own delta over the same two reads and
    the independent sampler's instant-power integral. Before each window 1 s idle, or
    with ``under_load`` 0.5 s of the same loop (the window's start syncs on it)."""
    out = {}
    lead = max(1, round(0.5 / per_matmul_s))
    for length in lengths:
        n_iter = max(1, round(length / per_matmul_s))
        rows = []
        for _ in range(windows):
            if under_load:
                mm.run(lead)
            else:
                time.sleep(1.0)
            with meter.window() as w:
                mm.run(n_iter)
            t0, t1 = meter.marks[-1]
            sampler.wait_past(t1)
            r = w.reading
            inst_j = sampler.energy_j(t0, t1, 2)
            counter_j = meter.last_counter_j
            rows.append({"energy_j": r.energy_j, "duration_s": r.duration_s,
                         "method": meter.last_method, "counter_j": counter_j,
                         "sampled_instant_j": inst_j,
                         "reading_to_counter": (r.energy_j / counter_j
                                                if r.energy_j is not None and counter_j else None),
                         "sampled_instant_to_counter": (inst_j / counter_j
                                                        if inst_j and counter_j else None),
                         "reading_to_sampled_instant": (r.energy_j / inst_j
                                                        if r.energy_j is not None and inst_j else None),
                         "warnings": list(r.warnings)})
        def col(k, rows=rows):
            return [x[k] for x in rows if x[k] is not None]

        mean = lambda v: statistics.mean(v) if v else None  # noqa: E731
        out[f"{length:g}"] = {
            "length_s": length, "matmuls": n_iter, "under_load": under_load, "rows": rows,
            "methods": sorted({x["method"] or "missing" for x in rows}),
            "duration_mean_s": mean(col("duration_s")),
            "reading_mean_j": mean(col("energy_j")), "reading_cv": cv(col("energy_j")),
            "counter_mean_j": mean(col("counter_j")), "counter_cv": cv(col("counter_j")),
            "sampled_instant_cv": cv(col("sampled_instant_j")),
            "reading_to_counter_mean": mean(col("reading_to_counter")),
            "sampled_instant_to_counter_mean": mean(col("sampled_instant_to_counter")),
            "reading_to_sampled_instant_mean": mean(col("reading_to_sampled_instant"))}
    return out


def print_lengths(out: dict, title: str) -> None:
    f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    log(f"\n{title}")
    log(f"\n{'length':>6} {'win':>3} {'dur s':>7} {'method':>13} {'reading J':>10} {'counter J':>10} "
        f"{'sampled J':>10} {'rd/ctr':>7} {'smp/ctr':>7} {'rd/smp':>7}")
    for s in out.values():
        for i, r in enumerate(s["rows"]):
            log(f"{s['length_s']:6g} {i:>3} {r['duration_s']:7.3f} {r['method'] or 'missing':>13} "
                f"{f(r['energy_j'], '10.2f')} {f(r['counter_j'], '10.2f')} "
                f"{f(r['sampled_instant_j'], '10.2f')} {f(r['reading_to_counter'], '7.3f')} "
                f"{f(r['sampled_instant_to_counter'], '7.3f')} {f(r['reading_to_sampled_instant'], '7.3f')}")
    log(f"\n{'length':>6} {'dur s':>7} {'methods':>28} {'reading J':>10} {'CV':>7} {'counter J':>10} "
        f"{'CV':>7} {'smp CV':>7} {'rd/ctr':>7} {'smp/ctr':>7} {'rd/smp':>7}")
    for s in out.values():
        log(f"{s['length_s']:6g} {f(s['duration_mean_s'], '7.3f')} {','.join(s['methods']):>28} "
            f"{f(s['reading_mean_j'], '10.2f')} {f(s['reading_cv'], '7.2%')} "
            f"{f(s['counter_mean_j'], '10.2f')} {f(s['counter_cv'], '7.2%')} "
            f"{f(s['sampled_instant_cv'], '7.2%')} {f(s['reading_to_counter_mean'], '7.3f')} "
            f"{f(s['sampled_instant_to_counter_mean'], '7.3f')} "
            f"{f(s['reading_to_sampled_instant_mean'], '7.3f')}")


def step2(args, device: str, sync) -> dict:
    from gi_energy.evaluation.worker import run_evaluation
    from gi_energy.tasks.training import configure_determinism, to_device, warm_up

    res: dict = {}
    meter = TimedNvml(device_index=0, cuda_sync=sync, exclusive=True)
    av = meter.availability()
    res["meter"] = meter.describe()
    log(f"meter: {res['meter']}")
    if not av.available or meter.mode != ENERGY_COUNTER:
        log(f"NVML meter not usable as an energy counter here: {av.reason or meter.mode}")
    res["latency"] = nvml_latency_us(meter)
    log(f"NVML call latency: {json.dumps(res['latency'])}")

    sampler = PowerSampler().start()
    res["instant_field"] = ("yes" if sampler.instant_field is not None
                            else f"no ({sampler.instant_error})")
    log(f"instant power field: {res['instant_field']}")
    if sampler.instant_field is not None:
        times = []
        for _ in range(500):
            t = time.perf_counter()
            sampler.instant_w()
            times.append(time.perf_counter() - t)
        res["latency"]["instant_power_field"] = {"median_us": statistics.median(times) * 1e6,
                                                 "max_us": max(times) * 1e6, "calls": 500}
        log(f"instant power field read: {json.dumps(res['latency']['instant_power_field'])}")
    res["window_overhead"] = window_overhead(meter)
    log(f"NvmlMeter start()+stop() (20 windows of 0.25 s sleep): {json.dumps(res['window_overhead'])}")

    # Idle first, while the board has done nothing in this process but a context.
    mm = Matmul(device, sync)
    sync()
    time.sleep(2.0)
    with meter.window() as w:
        time.sleep(3.0)
    t0, t1 = meter.marks[-1]
    res["idle"] = window_row(w.reading, t0, t1, sampler)
    log(f"idle 3 s: counter {res['idle']['power_w'] or float('nan'):.1f} W, sampled(avg) "
        f"{sampler.mean_w(t0, t1, 1) or float('nan'):.1f} W, sampled(instant) "
        f"{sampler.mean_w(t0, t1, 2) or float('nan'):.1f} W")

    # Calibrate the matmul loop to --window-s.
    per = mm.seconds_each()
    n_iter = max(1, round(args.window_s / per))
    res["matmul"] = {"shape": f"{mm.SIZE}x{mm.SIZE} float32", "iterations": n_iter, "seconds_per_matmul": per,
                     "tflops": 2 * mm.SIZE ** 3 / per / 1e12}
    log(f"matmul: {per * 1e3:.3f} ms each ({res['matmul']['tflops']:.1f} TFLOP/s); "
        f"{n_iter} per window")

    res["counter_update"] = counter_update_period(meter, mm.load)
    log(f"energy counter under load: {json.dumps(res['counter_update'])}")

    rows = []
    for _ in range(args.windows):
        time.sleep(1.0)
        with meter.window() as w:
            mm.run(n_iter)
        t0, t1 = meter.marks[-1]
        rows.append(window_row(w.reading, t0, t1, sampler))
    res["matmul_windows"] = rows
    res["matmul_summary"] = summarise_windows(rows)
    print_windows(f"matmul windows ({n_iter} x 4096^3 fp32, 1 s idle before each)", rows)
    log(json.dumps(res["matmul_summary"]))

    # The same meter around the project's own training of one fixed MLP.
    problem = cuda_problem(device)
    configure_determinism(device)
    from gi_energy.problems.datasets import load_dataset

    data = to_device(load_dataset(problem.dataset, problem.evaluation.seed), device)
    warm_up(data, "mlp")
    rows, accs = [], []
    for _ in range(args.windows):
        time.sleep(1.0)
        first = len(meter.marks)
        ev = run_evaluation(problem, TRAIN_GENOME, 0, meter=meter)
        if ev.status != "ok":
            log(f"training evaluation {ev.status}: {ev.reason}")
            break
        t0, t1 = meter.marks[first]  # the training window; the next one is inference
        rows.append(window_row(ev.train, t0, t1, sampler))
        accs.append(ev.val_accuracy)
    res["train_windows"] = rows
    res["train_genome"] = TRAIN_GENOME.key
    res["train_val_accuracies"] = accs
    if rows:
        res["train_summary"] = summarise_windows(rows)
        print_windows(f"training windows ({TRAIN_GENOME.key}), accuracies {accs}", rows)
        log(json.dumps(res["train_summary"]))
    sampler.stop()
    meter.close()
    return res


LENGTH_TITLES = {"lengths": "window lengths, 1 s idle before each (a burst)",
                 "lengths_under_load": "window lengths, 0.5 s of the same loop before each (steady load)"}


def step2b(args, device: str, sync) -> dict:
    """Windows of several lengths: the meter's method and CV beside the counter's."""
    res: dict = {}
    meter = TimedNvml(device_index=0, cuda_sync=sync, exclusive=True)
    meter.availability()
    res["meter"] = meter.describe()
    log(f"meter: {res['meter']}")
    sampler = PowerSampler().start()
    mm = Matmul(device, sync)
    per = mm.seconds_each()
    res["seconds_per_matmul"] = per
    log(f"matmul: {per * 1e3:.3f} ms each")

    if sampler.instant_field is not None:
        res["instant_field_update"] = instant_field_updates(sampler, mm.load)
        log(f"instant-power field under load: {json.dumps(res['instant_field_update'])}")
    for key, under_load in (("lengths", False), ("lengths_under_load", True)):
        res[key] = window_lengths(meter, sampler, mm, per, args.lengths, args.windows,
                                  under_load=under_load)
        print_lengths(res[key], LENGTH_TITLES[key])
    sampler.stop()
    meter.close()
    return res


# -- step 3 ------------------------------------------------------------------------------
def cuda_problem(device: str):
    p = load_problem("digits")
    return p.with_overrides(evaluation={"device": device})


def eval_row(label: str, ev) -> dict:
    r = {"genome": label, "key": ev.genome.key, "device": ev.device, "status": ev.status,
         "reason": ev.reason, "val_accuracy": ev.val_accuracy, "test_accuracy": ev.test_accuracy,
         "train_time_s": ev.train_time_s, "train_energy_j": ev.train_energy_j,
         "inference_j_per_1k": ev.inference_energy_j_per_1k,
         "inference_s_per_1k": ev.inference_time_s_per_1k, "wall_time_s": ev.wall_time_s,
         "threads": (ev.extra or {}).get("threads"),
         "train_w": (ev.train_energy_j / ev.train_time_s
                     if ev.train_energy_j is not None and ev.train_time_s else None),
         "inference_w": (ev.inference_energy_j_per_1k / ev.inference_time_s_per_1k
                         if ev.inference_energy_j_per_1k is not None and ev.inference_time_s_per_1k
                         else None)}
    for name, reading in (("train", ev.train), ("inference", ev.inference)):
        if reading is not None:
            r[f"{name}_source"] = reading.source
            r[f"{name}_warnings"] = list(reading.warnings)
    return r


def step3(device: str) -> dict:
    from gi_energy.evaluation.worker import run_evaluation, worker_meter

    gpu_problem = cuda_problem(device)
    cpu_problem = load_problem("digits").with_overrides(evaluation={"device": "cpu"})
    rows = []
    for label, g in GENOMES.items():
        for problem, tag in ((gpu_problem, device), (gpu_problem, f"{device} again"),
                             (cpu_problem, "cpu")):
            ev = run_evaluation(problem, g, 0)
            row = eval_row(label, ev)
            row["run"] = tag
            rows.append(row)
            log(json.dumps(row))
    meters = {}
    for dev in (device, "cpu"):
        meters[dev] = worker_meter(load_problem("digits").energy, dev).describe()
    log(f"meters used: {json.dumps(meters)}")
    return {"rows": rows, "meters": meters}


def print_evals(rows: list[dict]) -> None:
    log(f"\n{'genome':6s} {'run':10s} {'status':6s} {'val acc':>7s} {'test acc':>8s} {'train s':>8s} "
        f"{'train J':>9s} {'train W':>7s} {'inf J/1k':>9s} {'inf ms/1k':>9s} {'inf W':>6s} {'thr':>3s}  "
        "train source")
    f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        inf_ms = None if r.get("inference_s_per_1k") is None else r["inference_s_per_1k"] * 1e3
        log(f"{r['genome']:6s} {r['run']:10s} {r['status']:6s} {f(r['val_accuracy'], '7.4f')} "
            f"{f(r['test_accuracy'], '8.4f')} {f(r['train_time_s'], '8.3f')} {f(r['train_energy_j'], '9.2f')} "
            f"{f(r['train_w'], '7.1f')} {f(r['inference_j_per_1k'], '9.4f')} {f(inf_ms, '9.4f')} "
            f"{f(r['inference_w'], '6.1f')} {f(r['threads'], '3.0f')}  "
            f"{r.get('train_source', '-')}{' [warned]' if r.get('train_warnings') else ''}")


def step3b(device: str, repeats: int = 5) -> dict:
    """One short genome evaluated ``repeats`` times on CUDA with min_inference_s 0.2 (the
    default) and 1.0: how much do whole counter updates scatter its figures?"""
    from gi_energy.evaluation.worker import run_evaluation

    out = {}
    for min_inf in (0.2, 1.0):
        p = load_problem("digits").with_overrides(evaluation={"device": device, "min_inference_s": min_inf})
        rows = [eval_row("mid", run_evaluation(p, GENOMES["mid"], 0)) for _ in range(repeats)]
        for r in rows:
            r["run"] = f"inf>={min_inf:g}s"
        def col(k, rows=rows):
            return [r[k] for r in rows if r.get(k) is not None]

        out[f"min_inference_s={min_inf:g}"] = {
            "rows": rows,
            "train_j_cv": cv(col("train_energy_j")), "train_s_cv": cv(col("train_time_s")),
            "train_w_cv": cv(col("train_w")), "inference_j_per_1k_cv": cv(col("inference_j_per_1k")),
            "inference_s_per_1k_cv": cv(col("inference_s_per_1k")), "inference_w_cv": cv(col("inference_w")),
            "train_j": col("train_energy_j"), "inference_j_per_1k": col("inference_j_per_1k")}
        print_evals(rows)
        log(json.dumps({k: v for k, v in out[f"min_inference_s={min_inf:g}"].items() if k != "rows"}))
    return out


# -- step 4 ------------------------------------------------------------------------------
def step4(args, device: str, out: Path, work: Path) -> dict:
    text = (ROOT / "problems" / "digits.toml").read_text()
    if 'device = "cpu"' not in text:
        return {"error": "problems/digits.toml has no device = \"cpu\" line to replace"}
    toml = work / "digits_cuda.toml"
    toml.write_text(text.replace('device = "cpu"', f'device = "{device}"'))
    run_dir = work / "evolve"
    t = time.perf_counter()
    rc, text = cli("evolve", str(toml), "--out", str(run_dir), "--store", str(work / "store.sqlite"),
                   "--max-evaluations", str(args.evolve_evaluations), "--workers", "1",
                   "--population", "8", timeout_s=args.evolve_timeout_s)
    res = {"exit_status": rc, "wall_s": time.perf_counter() - t}
    log(text)
    (out / "evolve.log").write_text(text)
    csv_path = run_dir / "evaluations.csv"
    if not csv_path.exists():
        res["error"] = "no evaluations.csv"
        return res
    for name in ("evaluations.csv", "run.json", "front.csv"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, out / f"evolve_{name}")
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    res["rows"] = len(rows)
    res["status"] = {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}}
    res["train_backends"] = sorted({f"{r['train_backend']}:{r['train_scope']}:{r['train_measured']}" for r in rows})
    res["inference_backends"] = sorted({f"{r['inference_backend']}:{r['inference_scope']}:{r['inference_measured']}"
                                        for r in rows})
    res["devices"] = sorted({r["device"] for r in rows})
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        acc = "val_accuracy" if "val_accuracy" in ok[0] else "accuracy"
        best = max(ok, key=lambda r: float(r[acc]))
        res["best_accuracy"] = float(best[acc])
        res["best_accuracy_inference_j_per_1k"] = float(best["inference_energy_j_per_1k"])
        tj = [float(r["train_energy_j"]) for r in ok if r["train_energy_j"]]
        res["train_energy_j_total"] = sum(tj)
        res["energy_spent_j_total"] = sum(float(r["energy_spent_j"]) for r in ok if r["energy_spent_j"])
    try:
        run = json.loads((run_dir / "run.json").read_text())
        res["run_status"] = run.get("status")
        settings = run.get("settings", {})
        res["run_meter"] = settings.get("meter")
        res["run_measured"] = settings.get("measured")
    except (OSError, ValueError) as exc:
        res["run_json_error"] = str(exc)
    return res


# -- main --------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "runs/gpu_check"))
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--lengths", type=float, nargs="+", default=[0.15, 0.3, 1.0, 2.0])
    ap.add_argument("--lengths-only", action="store_true", help="step 2b alone")
    ap.add_argument("--evolve-evaluations", type=int, default=24)
    ap.add_argument("--evolve-timeout-s", type=float, default=300)
    ap.add_argument("--skip-evolve", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine_info()}
    log(json.dumps(results["machine"], indent=1))

    ok, why = gpu_presence()
    if not ok:
        log(f"\nNO GPU: {why}. Nothing was measured; run this on a machine with an NVIDIA GPU.")
        return 2

    log("\n== 1. gi-energy meters")
    for args_ in (("meters",), ("meters", "--probe", "2"), ("meters", "--json")):
        rc, text = cli(*args_)
        results.setdefault("meters", {})[" ".join(args_)] = {"exit_status": rc, "output": text}
        log(f"$ gi-energy {' '.join(args_)}   (exit {rc})\n{text}")

    device = "cuda"
    sync = torch.cuda.synchronize
    results["cuda_device"] = torch.cuda.get_device_name(0)
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    if args.lengths_only:
        log("\n== 2b. window lengths: the meter's method, reading and CV beside the counter's")
        results["step2b"] = step2b(args, device, sync)
        (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
        return 0
    log("\n== 2. NvmlMeter repeatability")
    results["step2"] = step2(args, device, sync)
    log("\n== 2b. window lengths: the meter's method, reading and CV beside the counter's")
    results["step2b"] = step2b(args, device, sync)
    log("\n== 3. digits genomes through worker.run_evaluation: cuda vs cpu")
    results["step3"] = step3(device)
    log("\n== 3b. one short genome repeated on cuda: scatter from whole counter updates")
    results["step3b"] = step3b(device)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
    if not args.skip_evolve:
        log("\n== 4. gi-energy evolve digits on cuda")
        results["step4"] = step4(args, device, args.out, work)
        log(json.dumps(results["step4"], indent=1, default=str))
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))

    log("\n== summary")
    m = results["machine"]
    log(f"{m.get('gpu')} driver {m.get('driver')}, torch {m['torch']} (CUDA {m['torch_cuda']}), "
        f"powercap: {m['powercap']}")
    s2 = results["step2"]
    idle_w = s2["idle"]["power_w"]
    log(f"idle board power: {'-' if idle_w is None else format(idle_w, '.1f')} W (counter over 3 s)")
    for name in ("matmul", "train"):
        s = s2.get(f"{name}_summary")
        if s:
            f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
            log(f"{name:6s} windows: {s['n']}, energy {f(s['energy_mean_j'], '.2f')} J mean, CV "
                f"{f(s['energy_cv'], '.4f')}; power {f(s['power_mean_w'], '.1f')} W; duration "
                f"{s['duration_mean_s']:.3f} s (CV {f(s['duration_cv'], '.4f')}); counter / sampled "
                f"avg-power {f(s['ratio_counter_to_avg_mean'], '.3f')}, / instant-power "
                f"{f(s['ratio_counter_to_instant_mean'], '.3f')}")
    for key, title in LENGTH_TITLES.items():
        if results["step2b"].get(key):
            print_lengths(results["step2b"][key], title)
    print_evals(results["step3"]["rows"])
    for name, s3 in results["step3b"].items():
        f = lambda v: "-" if v is None else format(v, ".4f")  # noqa: E731
        log(f"mid x5, {name}: CV train J {f(s3['train_j_cv'])} (s {f(s3['train_s_cv'])}, W "
            f"{f(s3['train_w_cv'])}); CV inference J/1k {f(s3['inference_j_per_1k_cv'])} (s/1k "
            f"{f(s3['inference_s_per_1k_cv'])}, W {f(s3['inference_w_cv'])})")
    if "step4" in results:
        s4 = results["step4"]
        log(f"\nevolve: exit {s4.get('exit_status')}, {s4.get('rows')} rows, status {s4.get('status')}, "
            f"train {s4.get('train_backends')}, inference {s4.get('inference_backends')}, "
            f"best accuracy {s4.get('best_accuracy')}, {s4.get('wall_s', 0):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
