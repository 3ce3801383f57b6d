"""Placeholder until this part is built: says so plainly and exits 1."""

from gi_energy.errors import NotBuiltError


def cli_grid(**kwargs):
    raise NotBuiltError("`gi-energy grid (the grid baseline)` is not built yet; nothing was run")
