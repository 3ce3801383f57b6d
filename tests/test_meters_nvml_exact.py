"""The NVML meter by exact value: device mapping, availability reasons, describe(), the
lock, missing readings, and each short-window method with its warning word for word.

The clock is a fake and the sampling threads are kept idle (intervals of 10 s), so the
samples a window integrates are the ones the test puts there; every figure is exact.
"""

from __future__ import annotations

import sys
import threading
import time
from types import SimpleNamespace

import pytest

from gi_energy.meters.fakes import FakeNvml
from gi_energy.meters.locks import FileLock, NullLock
from gi_energy.meters.nvml import NvmlMeter
from gi_energy.meters.nvmldevice import POWER_SAMPLING, _text, cuda_index, visible_device

IDLE = 10.0  # a sampling interval no test waits for


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class StrictNvml(FakeNvml):
    """A FakeNvml that records the handle every device call is given."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.handles: list = []

    def _device(self, handle) -> None:
        self.handles.append(handle)

    def nvmlDeviceGetName(self, handle):
        self._device(handle)
        return super().nvmlDeviceGetName(handle)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self._device(handle)
        return super().nvmlDeviceGetTotalEnergyConsumption(handle)

    def nvmlDeviceGetPowerUsage(self, handle):
        self._device(handle)
        return super().nvmlDeviceGetPowerUsage(handle)

    def nvmlDeviceGetFieldValues(self, handle, field_ids):
        self._device(handle)
        return super().nvmlDeviceGetFieldValues(handle, field_ids)


def without(lib, *names: str) -> SimpleNamespace:
    """``lib`` as a module that lacks the attributes ``names`` (an older pynvml)."""
    attrs = {n: getattr(lib, n) for n in dir(lib) if not n.startswith("_") and n not in names}
    return SimpleNamespace(**attrs)


def meter(lib, tmp_path, **kw) -> NvmlMeter:
    kw.setdefault("visible_devices", "")
    kw.setdefault("instant_interval_s", IDLE)
    kw.setdefault("sample_interval_s", IDLE)
    return NvmlMeter(pynvml=lib, lock_dir=tmp_path, **kw)


# -- device strings -----------------------------------------------------------------------

@pytest.mark.parametrize(("device", "index"), [("cuda", 0), ("cuda:3", 3), ("cpu", 0),
                                                ("cuda:", 0)])
def test_cuda_index(device, index):
    assert cuda_index(device) == index


@pytest.mark.parametrize("device", ["cuda:x", "cuda:1:2"])
def test_bad_cuda_device(device):
    with pytest.raises(ValueError) as err:
        cuda_index(device)
    assert str(err.value) == f"bad CUDA device {device!r}; expected cuda or cuda:N"


def test_visible_devices_map_ordinals_to_nvml_indices_or_uuids():
    assert visible_device(1, None) == 1 and visible_device(1, "") == 1
    assert visible_device(1, "2,3") == 3
    assert visible_device(0, " GPU-abc , 3") == "GPU-abc"
    for ordinal in (2, 3):
        with pytest.raises(IndexError) as err:
            visible_device(ordinal, "2,3")
        assert str(err.value) == f"cuda:{ordinal} but CUDA_VISIBLE_DEVICES='2,3'"


def test_text_of_names():
    assert (_text(b"Tesla"), _text("Tesla"), _text(5)) == ("Tesla", "Tesla", "5")


# -- availability -------------------------------------------------------------------------

def test_a_meter_that_could_not_start_has_empty_facts(tmp_path):
    m = meter(FakeNvml(gpus=0), tmp_path)
    av = m.availability()
    assert (av.available, av.reason) == (False, "NVML found no NVIDIA GPU")
    assert (m.mode, m.board, m.physical, m.instant_power, m.instant_power_reason,
            m.last_method, m.last_counter_j) == (None, "", "", False, "", None, None)


def test_closing_a_meter_never_probed_calls_nothing(tmp_path):
    lib = FakeNvml()
    meter(lib, tmp_path).close()
    assert lib.calls == []


@pytest.mark.parametrize(("lib", "visible", "reason"), [
    (FakeNvml(library_found=False), "",
     "NVML cannot start: NVML Shared Library Not Found (no NVIDIA driver on this machine)"),
    (FakeNvml(fail={"nvmlInit": 9}), "",
     "NVML cannot start: Driver Not Loaded (no NVIDIA driver on this machine)"),
    (FakeNvml(fail={"nvmlInit": 999}), "", "NVML cannot start: Unknown Error"),
    (without(FakeNvml(library_found=False), "NVML_ERROR_LIBRARY_NOT_FOUND",
             "NVML_ERROR_DRIVER_NOT_LOADED"), "",
     "NVML cannot start: NVML Shared Library Not Found (no NVIDIA driver on this machine)"),
    (without(FakeNvml(fail={"nvmlInit": 9}), "NVML_ERROR_LIBRARY_NOT_FOUND",
             "NVML_ERROR_DRIVER_NOT_LOADED"), "",
     "NVML cannot start: Driver Not Loaded (no NVIDIA driver on this machine)"),
    (FakeNvml(gpus=1), "1", "GPU 1 requested but NVML sees 1"),
    (FakeNvml(gpus=2), "5", "GPU 5 requested but NVML sees 2"),
    (FakeNvml(), "3", "cuda:1 but CUDA_VISIBLE_DEVICES='3'"),
    (FakeNvml(fail={"nvmlDeviceGetTotalEnergyConsumption": 15}), "",
     "NVML energy counter of Fake Tesla V100: GPU is lost"),
    (FakeNvml(energy_counter=False, fail={"nvmlDeviceGetPowerUsage": 3}), "",
     "Fake Tesla V100 reports neither energy nor power: Not Supported"),
])
def test_unavailable_reasons_word_for_word(tmp_path, lib, visible, reason):
    m = NvmlMeter(pynvml=lib, lock_dir=tmp_path, visible_devices=visible,
                  device_index=1 if visible == "3" else 0)
    av = m.availability()
    assert av.available is False
    assert av.reason == reason


def test_pynvml_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    av = NvmlMeter(lock_dir=tmp_path).availability()
    assert (av.available, av.reason) == (
        False, "pynvml is not installed (pip install nvidia-ml-py): import of pynvml halted; "
               "None in sys.modules")


def test_the_real_pynvml_is_imported_when_none_is_given(tmp_path):
    pytest.importorskip("pynvml")
    m = NvmlMeter(lock_dir=tmp_path)
    m.availability()
    assert m.device.lib is sys.modules["pynvml"]
    m.close()


def test_a_bug_in_the_library_is_raised_not_reported(tmp_path):
    class Broken(FakeNvml):
        def nvmlInit(self):
            raise RuntimeError("not an NVML error")

    with pytest.raises(RuntimeError, match="not an NVML error"):
        meter(Broken(), tmp_path).availability()
    with pytest.raises(RuntimeError, match="not an NVML error"):
        meter(without(Broken(), "NVMLError"), tmp_path).availability()


@pytest.mark.parametrize("code_name", ["NVML_ERROR_NOT_SUPPORTED", None])
def test_not_supported_is_recognised_by_the_librarys_code(tmp_path, code_name):
    # A pynvml whose NOT_SUPPORTED code is 77, or one without the constant (then 3).
    if code_name:
        class Lib(FakeNvml):
            NVML_ERROR_NOT_SUPPORTED = 77
        lib = Lib(energy_counter=False)
    else:
        lib = without(FakeNvml(energy_counter=False), "NVML_ERROR_NOT_SUPPORTED")
    m = meter(lib, tmp_path)
    assert m.availability().available and m.mode == POWER_SAMPLING


def test_every_device_call_gets_the_handle_of_the_mapped_device(tmp_path):
    lib = StrictNvml(gpus=4, instant_power_w=100.0)
    m = NvmlMeter(pynvml=lib, lock_dir=tmp_path, visible_devices="1,3", device_index=1,
                  instant_interval_s=IDLE)
    assert (m.availability().available, m.availability().reason) == (True, "")
    assert (m.physical, m.board) == ("3", "Fake Tesla V100")
    with m.window():
        pass
    p = StrictNvml(energy_counter=False)
    pm = NvmlMeter(pynvml=p, lock_dir=tmp_path, visible_devices="GPU-abc",
                   sample_interval_s=IDLE)
    assert pm.availability().available and pm.physical == "GPU-abc"
    with pm.window():
        pass
    assert lib.handles and set(lib.handles) == {("gpu", 3)}
    assert p.handles and set(p.handles) == {("gpu", "GPU-abc")}


def test_visible_devices_default_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    m = NvmlMeter(pynvml=FakeNvml(gpus=2), lock_dir=tmp_path)
    assert m.availability().available and m.physical == "1"


def test_instant_power_probe_reasons(tmp_path):
    off = meter(FakeNvml(instant_power_w=100.0), tmp_path, instant_interval_s=0)
    assert off.availability().available and off.instant_power is False
    assert off.instant_power_reason == "instant-power sampling turned off (instant_interval_s=0)"
    old = meter(without(FakeNvml(instant_power_w=100.0), "NVML_FI_DEV_POWER_INSTANT"), tmp_path)
    assert old.availability().available and old.instant_power is False
    assert old.instant_power_reason == "this pynvml has no NVML_FI_DEV_POWER_INSTANT"

    class OddType(FakeNvml):
        def nvmlDeviceGetFieldValues(self, handle, field_ids):
            (fv,) = super().nvmlDeviceGetFieldValues(handle, field_ids)
            fv.valueType = 99
            return [fv]

    odd = meter(OddType(instant_power_w=100.0), tmp_path)
    assert odd.availability().available and odd.instant_power is False
    assert odd.instant_power_reason == ("NVML_FI_DEV_POWER_INSTANT unreadable on Fake Tesla "
                                        "V100: ValueError: unknown NVML value type 99")
    with pytest.raises(ValueError, match="^unknown NVML value type 99$"):
        odd.device.instant_field = 186
        odd.device.instant_power_w()


def test_instant_interval_must_not_be_negative():
    with pytest.raises(ValueError) as err:
        NvmlMeter(pynvml=FakeNvml(), instant_interval_s=-1)
    assert str(err.value) == "instant_interval_s must be >= 0, got -1"


def test_windows_are_exclusive_per_gpu_unless_asked(tmp_path):
    m = NvmlMeter(pynvml=FakeNvml(gpus=2), lock_dir=tmp_path / "locks", visible_devices="1")
    assert m.availability().available
    assert isinstance(m._lock, FileLock) and m._lock.path == tmp_path / "locks" / "nvml-1.lock"
    shared = NvmlMeter(pynvml=FakeNvml(), lock_dir=tmp_path, visible_devices="",
                       exclusive=False)
    assert shared.availability().available and isinstance(shared._lock, NullLock)


def test_describe_word_for_word(tmp_path):
    m = meter(FakeNvml(instant_power_w=100.0), tmp_path, instant_interval_s=0.005)
    lock = f"exclusive windows (lock {tmp_path / 'nvml-0.lock'})"
    assert m.describe() == ("nvml: GPU 0 (Fake Tesla V100), board energy by total-energy "
                            "counter; windows under 1 s by instant power sampled every 5 ms, "
                            + lock)
    c = meter(FakeNvml(), tmp_path, instant_interval_s=0)
    c.notes = ("one", "two")
    assert c.describe() == ("nvml: GPU 0 (Fake Tesla V100), board energy by total-energy "
                            "counter (no instant power: instant-power sampling turned off "
                            f"(instant_interval_s=0)), {lock} [one; two]")
    p = meter(FakeNvml(energy_counter=False), tmp_path, sample_interval_s=0.02)
    assert p.describe() == ("nvml: GPU 0 (Fake Tesla V100), board energy by power sampled "
                            f"every 20 ms (no energy counter: pre-Volta board), {lock}")
    gone = meter(FakeNvml(gpus=0), tmp_path)
    assert gone.describe() == "nvml: unavailable (NVML found no NVIDIA GPU)"


def test_close_shuts_nvml_down_once_and_tolerates_an_nvml_error(tmp_path):
    lib = FakeNvml(fail={"nvmlShutdown": 999})
    m = meter(lib, tmp_path)
    assert m.availability().available
    m.close()
    m.close()
    assert lib.calls.count("nvmlShutdown") == 1

    class Buggy(FakeNvml):
        def nvmlShutdown(self):
            raise RuntimeError("bug")

    b = meter(Buggy(), tmp_path)
    b.availability()
    with pytest.raises(RuntimeError, match="bug"):
        b.close()


def test_samplers_are_named_daemon_threads(tmp_path):
    m = meter(FakeNvml(energy_counter=False), tmp_path)
    m.start()
    (t,) = [t for t in threading.enumerate() if t.name == "gi-energy-nvml-power"]
    assert t.daemon is True
    m.stop()


def test_power_sampling_uses_its_own_interval(tmp_path):
    lib = FakeNvml(energy_counter=False)
    m = meter(lib, tmp_path, sample_interval_s=0.002, instant_interval_s=IDLE)
    m.start()
    time.sleep(0.06)
    m.stop()
    assert lib.calls.count("nvmlDeviceGetPowerUsage") > 5  # start, end, and the thread's


# -- windows by exact value -------------------------------------------------------------

def _missing(r, reason: str, duration_s: float) -> None:
    assert (r.backend, r.scope, r.measured, r.energy_j) == ("nvml", "none", False, None)
    assert r.duration_s == pytest.approx(duration_s) and r.missing_reason == reason


def test_failed_reads_are_missing_with_backend_duration_and_reason(tmp_path):
    clock = Clock(5.0)
    lib = FakeNvml()
    m = meter(lib, tmp_path, wall_clock=clock, instant_interval_s=0)
    m.start()
    lib.fail["nvmlDeviceGetTotalEnergyConsumption"] = 15
    clock.t = 7.5
    _missing(m.stop(), "NVML read failed: GPU is lost", 2.5)
    assert (m.last_method, m.last_counter_j) == (None, None)
    m.start()  # the start read fails too
    clock.t = 8.0
    _missing(m.stop(), "NVML read failed at the window start: GPU is lost", 0.5)
    assert (m.last_method, m.last_counter_j) == (None, None)


def test_power_sampling_window_by_value_and_a_failed_sample(tmp_path):
    clock = Clock(0.0)
    lib = FakeNvml(energy_counter=False, power_mw=50_000)
    m = meter(lib, tmp_path, wall_clock=clock)
    m.start()
    clock.t = 2.0
    r = m.stop()
    assert r.energy_j == pytest.approx(100.0)  # 50 W x 2 s
    assert m.last_method == "power-sampling"
    m.start()
    m._sample_error = "GPU is lost"  # what the sampling thread records when a read fails
    clock.t = 3.0
    _missing(m.stop(), "power sample failed: GPU is lost", 1.0)


@pytest.mark.parametrize(("duration_s", "delta_mj", "method", "energy_j", "warning"), [
    # exactly one update period with the counter moved: the counter's delta
    (0.125, 3_000, "counter", 3.0,
     "window 0.125 s spans ~1.0 updates of the energy counter (~125 ms each): energy "
     "uncertain by up to +-100%"),
    (0.5, 1, "counter", 0.001,
     "window 0.500 s spans ~4.0 updates of the energy counter (~125 ms each): energy "
     "uncertain by up to +-25%"),
    (2.0, 1, "counter", 0.001, None),
    # exactly one update period and the counter did not move: power x time
    (0.125, 0, "power-x-time", 0.125 * 50.0,
     "counter did not move; energy = board power x duration"),
    (0.0625, 3_000, "power-x-time", 0.0625 * 50.0,
     "window 62.5 ms is shorter than the counter's ~125 ms update period; energy = board "
     "power x duration"),
])
def test_counter_windows_without_instant_power(tmp_path, duration_s, delta_mj, method,
                                               energy_j, warning):
    clock = Clock(0.0)
    lib = FakeNvml(energy_mj=1_000, power_mw=40_000)
    m = meter(lib, tmp_path, wall_clock=clock, update_period_s=0.125, instant_interval_s=0)
    m.start()
    lib.power_mw = 60_000  # 40 W at the start, 60 W at the end: 50 W mean
    lib.energy_mj += delta_mj
    clock.t = duration_s
    r = m.stop()
    assert m.last_method == method
    assert m.last_counter_j == pytest.approx(delta_mj / 1000)
    assert r.energy_j == pytest.approx(energy_j)
    assert list(r.warnings) == ([warning] if warning else [])


def test_a_power_read_failing_at_the_start_uses_the_end_power(tmp_path):
    clock = Clock(0.0)
    lib = FakeNvml(power_mw=40_000, fail={"nvmlDeviceGetPowerUsage": 15})
    m = meter(lib, tmp_path, wall_clock=clock, update_period_s=0.125, instant_interval_s=0)
    assert m.availability().available
    m.start()
    del lib.fail["nvmlDeviceGetPowerUsage"]
    clock.t = 0.0625
    assert m.stop().energy_j == pytest.approx(0.0625 * 40.0)


def _instant_window(tmp_path, samples, delta_mj, update_period_s=0.125, **kw):
    """A counter window whose instant-power samples are ``samples`` (time, W): the first at
    the start and the last at the end are read by the meter; the ones between are put
    where the idle sampling thread would have put them."""
    clock = Clock(samples[0][0])
    power = {"w": samples[0][1]}
    lib = FakeNvml(energy_mj=1_000, power_mw=80_000, instant_power_w=lambda t: power["w"],
                   clock=clock)
    m = meter(lib, tmp_path, wall_clock=clock, update_period_s=update_period_s, **kw)
    assert m.availability().available and m.instant_power
    m.start()
    m._samples.extend(samples[1:-1])
    lib.energy_mj += delta_mj
    clock.t, power["w"] = samples[-1]
    return m, m.stop()


SIX = [(0.0, 100.0), (0.0625, 100.0), (0.125, 200.0), (0.1875, 300.0), (0.25, 300.0),
       (0.3125, 300.0)]
# Trapezoids of 62.5 ms: 100, 150, 250, 300, 300 W -> 0.0625 x 1100 = 68.75 J; the value
# changed twice (100 -> 200 -> 300).


def test_instant_power_note_word_for_word(tmp_path):
    m, r = _instant_window(tmp_path, SIX, 70_000)
    assert m.last_method == "instant-power" and r.energy_j == pytest.approx(68.75)
    assert m.last_counter_j == pytest.approx(70.0)
    assert list(r.warnings) == [
        "energy = instant board power (NVML_FI_DEV_POWER_INSTANT) integrated over 6 samples "
        "(every 10000 ms asked, largest gap 62.5 ms; the value changed 2 times: power is "
        "resolved no finer than the field's refreshes), not the energy counter: window "
        "0.312 s spans ~2.5 counter updates of ~125 ms; its delta, 70 J, is uncertain by up "
        "to +-40%"]


@pytest.mark.parametrize(("samples", "delta_mj", "counter"), [
    ([(0.0, 100.0), (0.0625, 100.0), (0.125, 100.0)], 1, "its delta, 0.001 J, is uncertain "
                                                         "by up to +-100%"),
    ([(0.0, 100.0), (0.0625, 100.0), (0.125, 100.0)], 0, "it cannot tell"),
    ([(0.0, 100.0), (0.0625, 100.0)], 5_000, "it cannot tell"),
])
def test_instant_power_note_says_what_the_counter_can_tell(tmp_path, samples, delta_mj,
                                                           counter):
    m, r = _instant_window(tmp_path, samples, delta_mj)
    assert m.last_method == "instant-power"
    (note,) = r.warnings
    assert note.endswith("; " + counter)


def test_a_gap_of_half_an_update_is_dense_enough_and_more_is_not(tmp_path):
    m, r = _instant_window(tmp_path, [(0.0, 100.0), (0.0625, 100.0)], 0)
    assert m.last_method == "instant-power" and r.energy_j == pytest.approx(6.25)
    m, r = _instant_window(tmp_path, [(0.0, 100.0), (0.09375, 100.0)], 0)
    assert m.last_method == "power-x-time"
    assert list(r.warnings) == [
        "window 93.8 ms is shorter than the counter's ~125 ms update period; energy = board "
        "power x duration",
        "instant power not used: sampled too sparsely (2 samples, a gap of 94 ms)"]


def test_an_instant_read_failing_at_the_end_is_said_exactly(tmp_path):
    clock = Clock(0.0)
    lib = FakeNvml(energy_mj=1_000, power_mw=80_000, instant_power_w=100.0, clock=clock)
    m = meter(lib, tmp_path, wall_clock=clock, update_period_s=0.125)
    assert m.availability().available and m.instant_power
    m.start()
    lib.fail["nvmlDeviceGetFieldValues"] = 15
    clock.t = 0.0625
    r = m.stop()
    assert m.last_method == "power-x-time" and r.energy_j == pytest.approx(0.0625 * 80.0)
    assert r.warnings[-1] == "instant power not used: read failed at the window end (GPU is lost)"


def test_a_long_window_takes_no_instant_end_sample(tmp_path):
    clock = Clock(0.0)
    lib = FakeNvml(energy_mj=1_000, instant_power_w=100.0, clock=clock)
    m = meter(lib, tmp_path, wall_clock=clock, update_period_s=0.125)
    m.start()
    calls = lib.calls.count("nvmlDeviceGetFieldValues")
    lib.energy_mj += 2_000
    clock.t = 2.0  # over 10 updates: the counter alone
    r = m.stop()
    assert m.last_method == "counter" and r.energy_j == pytest.approx(2.0)
    assert lib.calls.count("nvmlDeviceGetFieldValues") == calls


def test_the_librarys_own_error_codes_decide_the_driver_hint(tmp_path):
    class Lib(FakeNvml):
        NVML_ERROR_LIBRARY_NOT_FOUND = 40
        NVML_ERROR_DRIVER_NOT_LOADED = 41

    for code in (40, 41):
        av = meter(Lib(fail={"nvmlInit": code}), tmp_path).availability()
        assert av.reason == f"NVML cannot start: NVML error {code} (no NVIDIA driver on this machine)"
    av = meter(Lib(fail={"nvmlInit": 12}), tmp_path).availability()
    assert av.reason == "NVML cannot start: NVML Shared Library Not Found"


def test_an_nvml_error_without_a_code(tmp_path):
    class Lib(FakeNvml):
        class NVMLError(Exception):
            pass

    class NoInit(Lib):
        def nvmlInit(self):
            raise Lib.NVMLError("odd")

    class NoCounter(Lib):
        def nvmlDeviceGetTotalEnergyConsumption(self, handle):
            raise Lib.NVMLError("odd")

    assert meter(NoInit(), tmp_path).availability().reason == "NVML cannot start: odd"
    assert meter(NoCounter(), tmp_path).availability().reason == (
        "NVML energy counter of Fake Tesla V100: odd")


def test_millisecond_figures_in_the_warnings_are_rounded_from_seconds(tmp_path):
    # A 1 s update period and 0.75 s gaps: "1000 ms", "750 ms" (not 1001 or 751).
    m = meter(FakeNvml(), tmp_path, update_period_s=1.0, instant_interval_s=0,
              sample_interval_s=1.0)
    assert m.availability().available
    assert m._coarse_window_warning(3.5) == (
        "window 3.500 s spans ~3.5 updates of the energy counter (~1000 ms each): energy "
        "uncertain by up to +-29%")
    m._p0_mw = 40_000.0
    assert m._short_window_j(0.5, 0)[1] == (
        "window 500.0 ms is shorter than the counter's ~1000 ms update period; energy = board "
        "power x duration")
    p = meter(FakeNvml(energy_counter=False), tmp_path, sample_interval_s=1.0)
    assert "power sampled every 1000 ms" in p.describe()
    m, r = _instant_window(tmp_path, [(0.0, 100.0), (0.75, 100.0)], 0, update_period_s=1.0)
    assert r.warnings[-1] == "instant power not used: sampled too sparsely (2 samples, a gap of 750 ms)"
    m, r = _instant_window(tmp_path, [(0.0, 100.0), (0.25, 100.0), (0.5, 100.0)], 0,
                           update_period_s=1.0)
    assert "spans ~0.5 counter updates of ~1000 ms; it cannot tell" in r.warnings[0]


def test_a_sample_taken_at_the_end_time_is_kept(tmp_path):
    # The sampling thread may take one sample at the very instant the window ends; samples
    # after it are dropped, one at it is kept (7 samples, a gap of 0 among them).
    m, r = _instant_window(tmp_path, [*SIX[:-1], (0.3125, 300.0), SIX[-1]], 70_000)
    assert r.energy_j == pytest.approx(68.75)
    assert "integrated over 7 samples" in r.warnings[0]


def test_instant_sampling_uses_its_own_interval(tmp_path):
    lib = FakeNvml(energy_mj=1_000, instant_power_w=100.0)
    m = meter(lib, tmp_path, instant_interval_s=0.002, sample_interval_s=IDLE)
    assert m.availability().available and m.instant_power
    m.start()
    time.sleep(0.1)
    m.stop()
    assert lib.calls.count("nvmlDeviceGetFieldValues") > 5  # probe, start, end, the thread's
