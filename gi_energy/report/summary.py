"""Readable one-screen summaries of a problem."""

from __future__ import annotations

from gi_energy.config.problem import Problem
from gi_energy.config.space import structure_keys


def describe_problem(p: Problem) -> str:
    from gi_energy.problems.datasets import load_dataset

    lines = [f"problem   {p.name}  ({p.source})", f"  seed {p.seed}; fingerprint {p.fingerprint()}"]
    if p.description:
        lines.append(f"  {p.description}")
    if p.table is not None:  # a tabular benchmark: no dataset, no model, nothing trained
        t = p.table
        lines.append(f"table     {t.path}: configuration {', '.join(t.configuration)}"
                     + (f"; seed {', '.join(t.seed)}" if t.seed else "")
                     + f"; energy {'measured per column ' + t.measured if t.measured else 'not measured'}")
        lines.append("  metrics " + ", ".join(f"{m} <- {c}" if m != c else m for m, c in t.metrics))
    else:
        lines.append(f"dataset   {load_dataset(p.dataset, p.evaluation.seed, p.source).describe()}")
        if p.task is None:
            lines.append(f"model     {p.model.family} (built-in task)")
        else:
            opts = ", ".join(f"{k}={v!r}" for k, v in p.task.options)
            lines.append(f"task      {p.task.entry}" + (f" ({opts})" if opts else ""))
    lines.append("space")
    for name, ls in p.space.layers.items():
        count_key, size_key = structure_keys(name)
        lines.append(f"  {count_key:20s} {ls.count.describe()}")
        lines.append(f"  {size_key:20s} {ls.size.describe()}  (per layer)")
        for attr, value in ls.per_layer:
            lines.append(f"  {name + '_' + attr:20s} {value.describe()}  (per layer)")
    for name, param in p.space.params.items():
        lines.append(f"  {name:20s} {param.describe()}")
    if p.grid is None:
        lines.append("grid      none ([grid] not given)")
    else:
        levels = "; ".join(f"{k} {list(v)}" for k, v in p.grid.levels.items())
        lines.append(f"grid      {p.grid.size(p.space)} points: {levels}")
    lines.append("objectives " + ", ".join(f"{k} ({v})" for k, v in p.objectives.items()))
    if p.constraints:
        lines.append("constraints " + ", ".join(f"{k} <= {v:g}" for k, v in p.constraints.items()))
    s, e, en = p.search, p.evaluation, p.energy
    budget = [f"population {s.population}", f"generations {s.generations}"]
    budget += [f"{k} {getattr(s, k):g}" for k in ("max_evaluations", "max_wall_s", "energy_budget_j") if getattr(s, k)]
    lines.append("search    " + ", ".join(budget))
    if p.table is not None:  # nothing trained: no workers, device, meter; repeats are the table's rows
        repeats = (f"every row of a configuration (seed column {', '.join(p.table.seed)})" if p.table.seed
                   else "1 (a configuration's row)")
        lines.append(f"evaluation looked up in {p.table.path.name}, nothing trained; repeats {repeats}")
        return "\n".join(lines)
    lines.append(f"evaluation workers {e.workers} ({e.backend}), device {e.device}, repeats {e.repeats}, "
                 f"timeout {e.timeout_s:g} s")
    lines.append(f"energy    meter {en.meter}, attribution {en.attribution}")
    return "\n".join(lines)
