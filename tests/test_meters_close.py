"""Closing a window that fails: every part ended, every lock released, no thread left."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest

from gi_energy.config.problem import EnergyConfig
from gi_energy.errors import MeterError
from gi_energy.meters import create_meter
from gi_energy.meters.fakes import FakeNvml, FakePowercap, ticking_reader
from gi_energy.meters.nvml import NvmlMeter


class FlakySync:
    """A cuda_sync that raises (as torch.cuda.synchronize does on a CUDA error) when armed."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self) -> None:
        if self.armed:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")


def free(lock_path) -> bool:
    """Whether a fresh open file description (as another process would) can take the lock."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def meter_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("gi-energy")]


@pytest.fixture(autouse=True)
def _no_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_cuda_error_at_close_ends_every_part_and_releases_both_locks(tmp_path):
    tree = FakePowercap(tmp_path / "powercap")
    tree.add_zone()
    sync = FlakySync()
    locks = tmp_path / "locks"
    # A pre-Volta board: its window runs a power-sampling thread beside the RAPL poller.
    meter = create_meter(EnergyConfig(), device="cuda", lock_dir=locks, cuda_sync=sync,
                         powercap_root=tree.root, nvml=FakeNvml(energy_counter=False),
                         powercap_read=ticking_reader(1000))
    assert meter.name == "auto"
    meter.start()
    assert not free(locks / "rapl.lock") and not free(locks / "nvml-0.lock")
    assert len(meter_threads()) == 2
    sync.armed = True
    with pytest.raises(MeterError, match="illegal memory access"):
        meter.stop()
    assert free(locks / "rapl.lock") and free(locks / "nvml-0.lock")
    assert meter_threads() == []
    sync.armed = False
    with meter.window() as w:  # no "start() while a window is already open"
        pass
    assert not w.reading.missing and w.reading.backend == "combined"
    assert meter_threads() == []
    meter.close()


def test_cuda_error_at_close_of_a_window_body_still_closes(tmp_path):
    sync = FlakySync()
    meter = NvmlMeter(pynvml=FakeNvml(energy_counter=False), lock_dir=tmp_path,
                      visible_devices="", cuda_sync=sync)
    with pytest.raises(MeterError, match="closing the window failed: RuntimeError"):
        with meter.window():
            sync.armed = True
    assert meter_threads() == [] and free(tmp_path / "nvml-0.lock")
    sync.armed = False
    with meter.window() as w:
        pass
    assert not w.reading.missing
    meter.close()


def test_interrupt_at_close_is_raised_as_itself_after_cleanup(tmp_path):
    def interrupted() -> None:
        raise KeyboardInterrupt

    meter = NvmlMeter(pynvml=FakeNvml(energy_counter=False), lock_dir=tmp_path,
                      visible_devices="")
    meter.start()
    meter._cuda_sync = interrupted
    with pytest.raises(KeyboardInterrupt):
        meter.stop()
    assert meter_threads() == [] and free(tmp_path / "nvml-0.lock")
    meter.close()
