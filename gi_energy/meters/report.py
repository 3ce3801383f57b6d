"""``gi-energy meters``: every backend, available or not and why; ``--probe`` meters a busy loop.

JSON shapes: ``--json`` alone prints the list of backends,
``[{"name", "available", "measured", "reason"}, ...]``; ``--json --probe SECONDS``
prints an object, ``{"backends": [...that list...], "probe": {"meter": describe(),
"reading": Reading.to_dict(), "power_w": ...}}``.
"""

from __future__ import annotations

import json
import time

import click

from gi_energy.config.problem import EnergyConfig

from .factory import backend_statuses, create_meter
from .reading import Reading


def busy_loop(duration_s: float) -> int:
    """Keep one core busy for duration_s of wall time; returns the iterations (unused)."""
    end = time.perf_counter() + duration_s
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def format_reading(reading: Reading) -> str:
    """Several lines: energy, power, backend, scope, measured flag, domains, warnings."""
    lines = [f"backend:   {reading.backend}", f"scope:     {reading.scope}",
             f"measured:  {'yes' if reading.measured else 'no (estimate)'}",
             f"duration:  {reading.duration_s:.3f} s"]
    if reading.missing:
        lines.append(f"energy:    missing ({reading.missing_reason})")
    else:
        lines.append(f"energy:    {reading.energy_j:.3f} J")
        lines.append(f"power:     {reading.power_w:.2f} W")
        for domain, joules in reading.domains_j.items():
            lines.append(f"  {domain}: {joules:.3f} J")
    if reading.wraps:
        lines.append(f"wraps:     {reading.wraps} (corrected)")
    if reading.idle_power_w is not None:
        lines.append(f"idle:      {reading.idle_power_w:.2f} W; dynamic energy "
                     f"{reading.dynamic_energy_j if reading.dynamic_energy_j is not None else '-'} J")
    lines.extend(f"warning:   {w}" for w in reading.warnings)
    return "\n".join(lines)


def cli_meters(as_json: bool, probe_s: float | None, energy: EnergyConfig | None = None) -> None:
    """Print the backends (text or JSON); with probe_s, meter a busy loop with the auto meter.

    ``as_json`` without ``probe_s`` prints the list of backends; with ``probe_s`` an object
    ``{"backends": [...], "probe": {...}}`` (see the module docstring). The auto meter is
    closed (its locks and library handles released) whatever is printed.
    """
    energy = energy or EnergyConfig()
    statuses = backend_statuses(energy)
    if as_json and probe_s is None:
        click.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
        return
    meter = create_meter(energy)
    try:
        reading = None
        if probe_s is not None:
            with meter.window() as w:
                busy_loop(probe_s)
            reading = w.reading
        if as_json:
            payload = {"backends": [s.to_dict() for s in statuses],
                       "probe": {"meter": meter.describe(), "reading": reading.to_dict(),
                                 "power_w": reading.power_w}}
            click.echo(json.dumps(payload, indent=2))
            return
        click.echo(f"{'backend':9s} {'available':9s} {'gives':9s} why")
        for s in statuses:
            state = "yes" if s.available else "no"
            kind = "measured" if s.measured else "estimate"
            click.echo(f"{s.name:9s} {state:9s} {kind:9s} {s.reason}")
        click.echo(f"auto ->   {meter.describe()}")
        if not meter.measured:
            click.echo("note:     energies will be estimates, not measurements")
        if reading is not None:
            click.echo(f"\nprobe: busy loop of {probe_s:g} s")
            click.echo(format_reading(reading))
    finally:
        meter.close()
