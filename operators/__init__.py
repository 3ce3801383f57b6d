"""Variation operators (installed as gi_energy.operators)."""
