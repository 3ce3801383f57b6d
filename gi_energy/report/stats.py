"""Runs of one method (several seeds) summarised as median and interquartile range, and
Wilcoxon rank-sum tests between methods."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def median_iqr(values: Sequence) -> dict:
    """Median and interquartile range; runs that never reached a threshold (None) count
    as infinitely late, so the median says 'not reached' when most did not."""
    n = len(values)
    vals = np.array([np.inf if v is None else float(v) for v in values], dtype=float)
    reached = int(np.sum(np.isfinite(vals)))
    if n == 0:
        return {"n": 0}
    q25, med, q75 = np.percentile(vals, [25, 50, 75], method="linear") if reached == n else \
        np.percentile(vals, [25, 50, 75], method="lower")
    return {"n": n, "finite": reached, "median": finite(float(med)), "q25": finite(float(q25)),
            "q75": finite(float(q75)), "iqr": finite(float(q75 - q25)) if reached == n else None}


def median_iqr_known(values: Sequence, unknown: Sequence[bool]) -> dict:
    """:func:`median_iqr`, unless some values are unknown (a run's joules while a reading
    they sum is missing): then the median is unknown too, and ``unknown`` counts them."""
    flags = [bool(u) for u in unknown]
    if not any(flags):
        return median_iqr(values)
    finite = sum(v is not None and math.isfinite(v) and not u for v, u in zip(values, flags))
    return {"n": len(values), "finite": finite, "unknown": sum(flags), "median": None, "q25": None,
            "q75": None, "iqr": None}


# Per-run figures in joules -> the per-run count of missing readings behind them: where
# it is not 0 the figure is unknown (None), not "never reached".
UNKNOWN_COUNTS = {"energy_spent_j": "energy_unknown",
                  **{f"energy_j_to_{t}": f"energy_j_to_{t}_unknown" for t in (90, 95, 99)}}


def summarise_groups(results: Sequence[dict], metrics: Sequence[str]) -> list[dict]:
    """Per label (method): the number of runs, ``metrics`` and the headline saving as
    :func:`median_iqr` (a figure in joules that some run does not know: unknown, with
    their count, :func:`median_iqr_known`)."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r["label"], []).append(r)
    out = []
    for label, rs in groups.items():
        g = {"label": label, "runs": len(rs), "replayed": any(r["replayed"] for r in rs)}
        for m in metrics:
            count = UNKNOWN_COUNTS.get(m)
            g[m] = median_iqr_known([r[m] for r in rs], [count is not None and r.get(count) for r in rs])
        savings = [r["headline"]["saving"] for r in rs if r["headline"]]
        g["saving"] = median_iqr(savings)
        out.append(g)
    return out


def rank_sum_tests(results: Sequence[dict], metric: str = "hv_ratio") -> list[dict]:
    """Wilcoxon rank-sum (Mann-Whitney) between every pair of methods with 2+ runs each."""
    groups: dict[str, list[float]] = {}
    for r in results:
        if r[metric] is not None:
            groups.setdefault(r["label"], []).append(float(r[metric]))
    labels = [k for k, v in groups.items() if len(v) >= 2]
    if len(labels) < 2:
        return []
    try:
        from scipy.stats import ranksums
    except ImportError:
        return [{"metric": metric, "note": "scipy is not installed (pip install gi-energy[experiments])"}]
    tests = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            xa, xb = groups[a], groups[b]
            if np.ptp(xa + xb) == 0:
                stat, p = 0.0, 1.0  # identical samples: no evidence of a difference
            else:
                res = ranksums(xa, xb)
                stat, p = float(res.statistic), float(res.pvalue)
            tests.append({"metric": metric, "a": a, "b": b, "n_a": len(xa), "n_b": len(xb),
                          "median_a": float(np.median(xa)), "median_b": float(np.median(xb)),
                          "statistic": stat, "p_value": p})
    return tests
