"""`gi-energy meters` on this project's machines: both absences explained, estimate works."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gi_energy.cli import main
from gi_energy.meters import backend_statuses
from gi_energy.meters.base import with_idle_baseline
from gi_energy.meters.fakes import FakeNvml, FakePowercap
from gi_energy.meters.reading import Reading


def test_json_lists_every_backend_with_a_reason():
    result = CliRunner().invoke(main, ["meters", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == ["rapl", "nvml", "estimate"]
    for r in rows:
        assert set(r) == {"name", "available", "measured", "reason"} and r["reason"]
    est = rows[2]
    assert est["available"] is True and est["measured"] is False


def test_text_output_and_probe():
    result = CliRunner().invoke(main, ["meters", "--probe", "0.2"])
    assert result.exit_code == 0, result.output
    out = result.output
    for name in ("rapl", "nvml", "estimate", "auto ->", "probe: busy loop", "energy:", "power:"):
        assert name in out
    assert "measured:" in out


def test_probe_json_carries_the_reading():
    result = CliRunner().invoke(main, ["meters", "--json", "--probe", "0.1"])
    payload = json.loads(result.output)
    reading = Reading.from_dict(payload["probe"]["reading"])
    assert reading.energy_j is not None and reading.duration_s >= 0.1


def test_statuses_with_fake_hardware(tmp_path):
    tree = FakePowercap(tmp_path)
    tree.add_zone()
    rows = backend_statuses(powercap_root=tmp_path, nvml=FakeNvml())
    assert [(s.name, s.available, s.measured) for s in rows] == [
        ("rapl", True, True), ("nvml", True, True), ("estimate", True, False)]
    assert "package-0" in rows[0].reason and "Fake Tesla V100" in rows[1].reason


def test_idle_baseline_arithmetic():
    r = Reading("rapl", "package", True, 30.0, 2.0)
    b = with_idle_baseline(r, 10.0)
    assert b.idle_power_w == 10.0 and b.dynamic_energy_j == pytest.approx(10.0)
    low = with_idle_baseline(r, 20.0)  # below the baseline: 0 with a warning, not negative
    assert low.dynamic_energy_j == 0.0 and "below the idle baseline" in low.warnings[0]


@pytest.mark.parametrize("args", [[], ["--probe", "0.05"], ["--json"], ["--json", "--probe", "0.05"]])
def test_every_auto_meter_the_command_creates_is_closed(monkeypatch, args):
    from gi_energy.meters import report

    created, closed = [], []
    real_create = report.create_meter

    def tracking_create(energy, **kw):
        meter = real_create(energy, **kw)
        real_close = meter.close
        meter.close = lambda: (closed.append(meter), real_close())[-1]
        created.append(meter)
        return meter

    monkeypatch.setattr(report, "create_meter", tracking_create)
    result = CliRunner().invoke(main, ["meters", *args])
    assert result.exit_code == 0, result.output
    assert len(closed) == len(created) and all(m in closed for m in created)
    if "--json" in args:
        payload = json.loads(result.output)
        # The documented shapes: a list alone, {"backends", "probe"} with --probe.
        if "--probe" in args:
            assert set(payload) == {"backends", "probe"} and isinstance(payload["backends"], list)
        else:
            assert isinstance(payload, list) and not created
