"""How joules are written where some readings may be missing: the known part and the
count of unknown readings, never a bare 0 for energy nobody read. One rule, two forms:
the progress line's ("12.3 J (+4 unknown)") and the tables' ("12.3 + 4 unknown"), and
one spelling, "– (4 unknown)", where no joule was read at all."""

from __future__ import annotations


def none_known(unknown: int) -> str:
    """No joule read, ``unknown`` readings missing: "– (4 unknown)"."""
    return f"– ({unknown} unknown)"


def format_energy(energy_j: float, unknown: int = 0) -> str:
    """The progress line's joules: "12.3 J", "12.3 J (+4 unknown)", or "– (4 unknown)"
    where none was read (never "0 J")."""
    if unknown and not energy_j:
        return none_known(unknown)
    text = f"{energy_j:.4g} J"
    return text + (f" (+{unknown} unknown)" if unknown else "")


def energy_text(known_j: float | None, unknown: int = 0, spec: str = ".1f") -> str:
    """Joules spent as a table shows them: the number while every reading is known ("–"
    for None); else the known part and the count of unknown readings ("12.3 + 4
    unknown"), or "– (4 unknown)" when no joule is known."""
    if not unknown:
        return "–" if known_j is None else format(known_j, spec)
    if not known_j:
        return none_known(unknown)
    return f"{format(known_j, spec)} + {unknown} unknown"
