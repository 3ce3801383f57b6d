"""Bundled problems, dataset loaders and model builders (installed as gi_energy.problems)."""
