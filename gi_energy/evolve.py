"""Placeholder until this part is built: says so plainly and exits 1."""

from gi_energy.errors import NotBuiltError


def cli_evolve(**kwargs):
    raise NotBuiltError("`gi-energy evolve (the NSGA-II loop)` is not built yet; nothing was run")
