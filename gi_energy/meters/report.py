"""Placeholder until this part is built: says so plainly and exits 1."""

from gi_energy.errors import NotBuiltError


def cli_meters(**kwargs):
    raise NotBuiltError("`gi-energy meters (energy meters)` is not built yet; nothing was run")
