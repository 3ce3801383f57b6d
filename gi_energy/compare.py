"""Placeholder until this part is built: says so plainly and exits 1."""

from gi_energy.errors import NotBuiltError


def cli_compare(**kwargs):
    raise NotBuiltError("`gi-energy compare (front comparison)` is not built yet; nothing was run")
