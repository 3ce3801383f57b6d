"""What ``compare()`` returns: comparison.json's content with tables and figures on top.

A :class:`Comparison` is a ``dict`` (every key of comparison.json, as before: code that
reads ``cmp["runs"]`` or dumps it as JSON keeps working) with typed access added::

    cmp = gi_energy.compare(["runs/a", "runs/b"], reference="runs/grid")
    cmp.to_dataframe()             # one row per run: HV ratio, IGD+, epsilon, cost, ...
    cmp.to_dataframe("groups")     # per method: median and IQR of each figure
    cmp.plot_fronts(); cmp.plot_history()     # matplotlib Figures (fronts.png, hv_history.png)
    cmp.open_runs()                # each compared run as a RunResult
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .plots import comparison_kind, fronts_figure, hv_history_figure
from .run import RunResult

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# Per-run entries that are series or nested records, not one figure each.
_NOT_SCALAR = ("trajectory", "front_points", "headline")


class Comparison(dict):
    """compare()'s result; ``out`` is where its files were written (None: nowhere)."""

    def __init__(self, data, out: Path | None = None):
        super().__init__(data)
        self.out = None if out is None else Path(out)

    def __repr__(self) -> str:
        runs = [r for r in self["runs"] if not r["reference"]]
        return (f"Comparison({len(runs)} runs on {', '.join(self['objectives'])}; reference "
                f"{self['reference']['source']}{'; written to ' + str(self.out) if self.out else ''})")

    @property
    def data(self) -> dict:
        """A plain dict copy: what comparison.json holds."""
        return dict(self)

    @property
    def objectives(self) -> dict[str, str]:
        return dict(self["objectives"])

    @property
    def energy_kind(self) -> str | None:
        """"measured", "estimated" or "partly estimated": how the runs' energy was taken."""
        return comparison_kind(self)

    def to_dataframe(self, table: str = "runs") -> pd.DataFrame:
        """``"runs"``: one row per run (the reference first) with every per-run figure, the
        headline saving and what it lost (``accuracy_lost``, or ``<metric>_lost`` for the
        problem's own quality objective; energy a run does not know in full is NaN, its
        known part ``energy_known_j`` and ``energy_unknown`` beside it); ``"groups"``: one row per method, each figure's median, q25
        and q75 as columns ``<figure>_median`` etc.; ``"tests"``: the rank-sum tests."""
        import pandas as pd

        if table == "runs":
            rows = []
            # the headline's metric: accuracy, the problem's one quality objective, or None
            metric = (self.get("headline") or {"metric": "accuracy"})["metric"]
            for r in self["runs"]:
                row = {k: v for k, v in r.items() if k not in _NOT_SCALAR}
                h = r.get("headline") or {}
                row["saving"] = h.get("saving")
                if metric is not None:
                    row[f"{metric}_lost"] = h.get(f"{metric}_lost")
                rows.append(row)
            return _numbers_as_floats(pd.DataFrame(rows))
        if table == "groups":
            rows = []
            for g in self["groups"]:
                row = {k: v for k, v in g.items() if not isinstance(v, dict)}
                for k, v in g.items():
                    if isinstance(v, dict):
                        row.update({f"{k}_{s}": v.get(s) for s in ("median", "q25", "q75")})
                rows.append(row)
            return pd.DataFrame(rows)
        if table == "tests":
            return pd.DataFrame(list(self["tests"]))
        raise ValueError(f"table={table!r}: expected one of runs, groups, tests")

    def plot_fronts(self) -> Figure:
        """The reference front and each method's median run's front (fronts.png)."""
        return fronts_figure(self)

    def plot_history(self) -> Figure:
        """Every run's HV ratio against evaluations and joules spent (hv_history.png)."""
        return hv_history_figure(self)

    def open_runs(self) -> list[RunResult]:
        """Every compared run (the reference first, where there is one) as a RunResult."""
        return [RunResult(r["path"]) for r in self["runs"]]


def _numbers_as_floats(df: pd.DataFrame) -> pd.DataFrame:
    """A column of numbers with None among them (a figure a run does not have: unknown
    energy, a threshold not reached) as floats with NaN, as a missing value reads in
    every other DataFrame; a column of only None too."""
    for c in df.columns:
        values = [v for v in df[c].tolist() if v is not None]
        if df[c].dtype == object and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            df[c] = df[c].astype(float)
    return df
