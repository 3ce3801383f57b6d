"""The run directory: what a grid or evolve run leaves behind, and how to read it back.

    run.json          metadata (problem, fingerprint, seed, command, settings, versions,
                      machine, status, totals), rewritten atomically on every update
    problem.toml      the exact problem that ran
    evaluations.csv   one row per evaluation (every repeat), in the order they arrived
    front.csv         the non-dominated ok outcomes (median objectives over repeats)
    history.csv       one row per generation (evolve) or batch (grid)
    front.png         the front, plotted
    trained.jsonl     the journal: one line per (genome, repeat) this run trained, appended
                      and flushed as each evaluation finishes, so a resume after a crash
                      knows which store hits this run itself paid for

Every file is written to a temporary name and moved into place, so a run killed while
writing never leaves half a file. A missing energy reading is an empty cell, never 0.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import socket
import tempfile
import textwrap
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from gi_energy.config.space import STRUCTURES, Genome
from gi_energy.errors import UsageError
from gi_energy.meters.reading import Reading
from gi_energy.tasks.results import Evaluation, Outcome

RUN_FORMAT_VERSION = 1

RUN_JSON = "run.json"
PROBLEM_TOML = "problem.toml"
EVALUATIONS_CSV = "evaluations.csv"
FRONT_CSV = "front.csv"
HISTORY_CSV = "history.csv"
FRONT_PNG = "front.png"
TRAINED_JOURNAL = "trained.jsonl"

# evaluations.csv columns after the readable genome columns. The *_json columns carry
# what a flat cell cannot (genome, full readings) so an Evaluation rebuilds exactly.
_METRIC_COLUMNS = (
    "repeat", "status", "reason", "accuracy", "test_accuracy",
    "train_energy_j", "inference_energy_j", "inference_energy_j_per_1k", "energy_spent_j",
    "train_backend", "train_scope", "train_measured",
    "inference_backend", "inference_scope", "inference_measured",
    "train_time_s", "inference_time_s", "inference_samples", "wall_time_s",
    "params", "flops_per_sample", "co2_g", "device", "worker", "cached", "spent",
    "genome_json", "train_json", "inference_json", "extra_json",
)
_INT_FIELDS = {"repeat": "repeat", "inference_samples": "inference_samples", "params": "params",
               "flops_per_sample": "flops_per_sample"}
# csv column -> Evaluation field
_FLOAT_FIELDS = {"accuracy": "val_accuracy", "test_accuracy": "test_accuracy", "train_time_s": "train_time_s",
                 "inference_time_s": "inference_time_s", "co2_g": "co2_g", "wall_time_s": "wall_time_s"}

# How each metric is labelled on a plot axis; energy metrics also say how they were metered.
_AXIS_NAMES = {
    "accuracy": "validation accuracy",
    "test_accuracy": "test accuracy",
    "train_energy_j": "training energy [J]",
    "inference_energy_j_per_1k": "inference energy per 1,000 samples [J]",
    "train_time_s": "training time [s]",
    "inference_time_s_per_1k": "inference time per 1,000 samples [s]",
    "params": "parameters",
    "flops_per_sample": "FLOPs per sample",
}
_ENERGY_WINDOW = {"train_energy_j": "train", "inference_energy_j_per_1k": "inference"}


# ---------------------------------------------------------------- small helpers


def timestamped_dir(root: Path, prefix: str) -> Path:
    """``root/<prefix>-<YYYYmmdd-HHMMSS>`` (local time); a numeric suffix when that name is
    taken (two runs started in the same second must not share a directory)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{prefix}-{stamp}"
    path, n = base, 2
    while path.exists():
        path = base.with_name(f"{base.name}-{n}")
        n += 1
    return path


def evaluator_settings(evaluator) -> Mapping[str, object]:
    """What a run directory records about the evaluator that produced its numbers."""
    return {"evaluator": type(evaluator).__name__, "replayed": bool(getattr(evaluator, "replayed", False)),
            "measured": getattr(evaluator, "measured", None),
            "meter": getattr(evaluator, "meter_description", None)}


def default_run_dir(problem, command: str, root: Path) -> Path:
    """``root/<problem.name>-<command>-<YYYYmmdd-HHMMSS>``, suffixed as :func:`timestamped_dir`."""
    return timestamped_dir(root, f"{problem.name}-{command}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: Path, newline: str | None = None) -> Iterator:
    """A text file opened under a temporary name in the same folder, moved into place
    only when the block finishes without an error."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; results are for sharing, so give it the mode an
        # ordinary open() would (0666 less the umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path, obj, *, compact: bool = False) -> None:
    """Write ``obj`` as JSON via a temporary file and ``os.replace``, so a kill at any
    moment leaves the old file or the new one, never half of one. Indented, or with
    ``compact`` on one line without spaces (large machine-read files: checkpoints)."""
    layout = {"separators": (",", ":")} if compact else {"indent": 2}
    with atomic_open(Path(path)) as fh:
        json.dump(obj, fh, sort_keys=False, default=_json_default, **layout)
        fh.write("\n")


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)


def nondominated(points_min: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``points_min`` (minimisation) that no other row dominates.

    Duplicated points are all kept: two genomes with equal objectives are both on the front.
    """
    pts = np.asarray(points_min, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"expected a 2-D array of points, got shape {pts.shape}")
    n = len(pts)
    if n == 0:
        return np.zeros(0, dtype=bool)
    # i is dominated when some j is <= in every objective and < in one.
    le = np.all(pts[None, :, :] <= pts[:, None, :], axis=2)
    lt = np.any(pts[None, :, :] < pts[:, None, :], axis=2)
    return ~np.any(le & lt, axis=1)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    # Package metadata, not imports: importing torch just to name its version costs seconds.
    for dist in ("gi-energy", "torch", "numpy", "deap", "moocore"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _machine() -> dict:
    cpu = platform.processor() or None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"hostname": socket.gethostname(), "cpu_model": cpu, "cores": os.cpu_count(),
            "platform": platform.platform()}


def now_iso() -> str:
    """The current UTC time to the second, ISO 8601 (the timestamps of run.json)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _cell(value) -> str:
    """A CSV cell: None is empty (never 0), floats keep every digit (repr round-trips)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _parse_float(text: str) -> float | None:
    return None if text == "" else float(text)


def _parse_int(text: str) -> int | None:
    return None if text == "" else int(text)


def _parse_scalar(text: str):
    """A cell of front.csv / history.csv back to a number where it is one."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def genome_columns(genome: Genome) -> dict[str, object]:
    """The genome as readable columns: ``hidden_layers``, ``widths`` ("64-32"), each
    hyperparameter by name."""
    cols: dict[str, object] = {}
    for name, sizes in genome.layers.items():
        count_key, size_key = STRUCTURES.get(name, (f"{name}_layers", name))
        cols[count_key] = len(sizes)
        cols[size_key + "s"] = "-".join(map(str, sizes))
    cols.update(genome.values)
    return cols


def _union_keys(rows: Iterable[Mapping]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping]) -> None:
    with atomic_open(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(row.get(k)) for k in columns})


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- rows


def evaluation_row(ev: Evaluation, index: int, cached: bool, spent: bool | None = None) -> dict[str, object]:
    """One evaluations.csv row (genome columns come first).

    ``cached``: the evaluator served it from the store in that call. ``spent``: its energy
    counts as spent by this run (it trained it now, or earlier in this run before a
    resume); default ``not cached``."""
    inf_j = None if ev.inference is None else ev.inference.energy_j
    row: dict[str, object] = {"index": index, "key": ev.key}
    row.update(genome_columns(ev.genome))
    row.update({
        "repeat": ev.repeat, "status": ev.status, "reason": ev.reason,
        "accuracy": ev.val_accuracy, "test_accuracy": ev.test_accuracy,
        "train_energy_j": ev.train_energy_j, "inference_energy_j": inf_j,
        "inference_energy_j_per_1k": ev.inference_energy_j_per_1k, "energy_spent_j": ev.energy_spent_j,
        "train_time_s": ev.train_time_s, "inference_time_s": ev.inference_time_s,
        "inference_samples": ev.inference_samples, "wall_time_s": ev.wall_time_s,
        "params": ev.params, "flops_per_sample": ev.flops_per_sample, "co2_g": ev.co2_g,
        "device": ev.device, "worker": ev.worker, "cached": cached,
        "spent": (not cached) if spent is None else bool(spent),
        "genome_json": ev.genome.to_json(),
        "train_json": None if ev.train is None else json.dumps(ev.train.to_dict(), sort_keys=True),
        "inference_json": None if ev.inference is None else json.dumps(ev.inference.to_dict(), sort_keys=True),
        "extra_json": json.dumps(dict(ev.extra), sort_keys=True),
    })
    for window, reading in (("train", ev.train), ("inference", ev.inference)):
        if reading is not None:
            row[f"{window}_backend"] = reading.backend
            row[f"{window}_scope"] = reading.scope
            row[f"{window}_measured"] = reading.measured
    return row


def evaluation_from_row(row: Mapping[str, str]) -> Evaluation:
    """Rebuild the Evaluation an evaluations.csv row was written from."""
    kw: dict[str, object] = {"genome": Genome.from_json(row["genome_json"]), "status": row["status"]}
    kw["reason"] = row.get("reason") or None
    for col, fname in _INT_FIELDS.items():
        kw[fname] = _parse_int(row.get(col, ""))
    if kw["repeat"] is None:
        kw["repeat"] = 0
    for col, fname in _FLOAT_FIELDS.items():
        kw[fname] = _parse_float(row.get(col, ""))
    for window in ("train", "inference"):
        text = row.get(f"{window}_json", "")
        kw[window] = Reading.from_dict(json.loads(text)) if text else None
    kw["device"] = row.get("device", "cpu") or "cpu"
    kw["worker"] = row.get("worker", "")
    kw["extra"] = json.loads(row.get("extra_json") or "{}")
    return Evaluation(**kw)


def front_row(outcome: Outcome, index: int, objectives: Mapping[str, str]) -> dict[str, object]:
    """One front.csv row: the genome, its median objectives and where its energy came from."""
    row: dict[str, object] = {"index": index, "key": outcome.key}
    row.update(genome_columns(outcome.genome))
    for name in objectives:
        row[name] = outcome.metric(name)
    for name in ("test_accuracy", "params", "flops_per_sample"):
        if name not in objectives:
            row[name] = outcome.metric(name)
    first = outcome.evaluations[0]
    for window, reading in (("train", first.train), ("inference", first.inference)):
        row[f"{window}_source"] = None if reading is None else reading.source
    row["measured"] = outcome.measured
    row["repeats"] = len(outcome.evaluations)
    return row


def ok_points(outcomes: Sequence[Outcome], objectives: Mapping[str, str]) -> tuple[list[Outcome], np.ndarray]:
    """The ok outcomes with every objective present, and their minimisation vectors."""
    kept, vecs = [], []
    for o in outcomes:
        v = o.objectives(objectives)
        if v is not None:
            kept.append(o)
            vecs.append(v)
    return kept, np.asarray(vecs, dtype=float).reshape(len(vecs), len(objectives))


def unique_outcomes(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """The first outcome of each genome, in order."""
    unique: dict[str, Outcome] = {}
    for o in outcomes:
        unique.setdefault(o.key, o)
    return list(unique.values())


def feasible_only(outcomes: Sequence[Outcome], constraints: Mapping[str, float] | None) -> list[Outcome]:
    """The outcomes that meet ``constraints`` (all of them when there are none), by the
    search's own test (``nsga2.constraint_violation == 0``)."""
    if not constraints:
        return list(outcomes)
    from gi_energy.search.nsga2 import constraint_violation

    return [o for o in outcomes if constraint_violation(o, constraints) == 0.0]


def front_outcomes(outcomes: Sequence[Outcome], objectives: Mapping[str, str],
                   constraints: Mapping[str, float] | None = None) -> list[Outcome]:
    """The non-dominated ok outcomes that meet ``constraints``, first occurrence of each
    genome only (the same feasible front the search reports)."""
    kept, pts = ok_points(unique_outcomes(feasible_only(outcomes, constraints)), objectives)
    if not kept:
        return []
    mask = nondominated(pts)
    return [o for o, m in zip(kept, mask) if m]


# ---------------------------------------------------------------- plotting


def energy_label(name: str, evaluations: Iterable[Evaluation]) -> str:
    """An axis label that says whether the metric was measured or estimated, and by what."""
    base = _AXIS_NAMES.get(name, name)
    window = _ENERGY_WINDOW.get(name)
    if window is None:
        return base
    readings = [getattr(e, window) for e in evaluations if e.ok]
    readings = [r for r in readings if r is not None and not r.missing]
    if not readings:
        return f"{base} (no reading)"
    measured = [r.measured for r in readings]
    sources = sorted({f"{r.backend}:{r.scope}" for r in readings})
    if all(measured):
        kind = "measured"
    elif not any(measured):
        kind = "estimated"
    else:
        kind = "partly estimated"
    return f"{base} ({kind}, {', '.join(sources)})"


def plot_front(path: Path, outcomes: Sequence[Outcome], objectives: Mapping[str, str],
               front: Sequence[Outcome], title: str = "") -> None:
    """front.png: 2 objectives a scatter of every ok point with ``front`` (as
    :func:`front_outcomes` gives it) highlighted, 3 or more a pair plot of every pair."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and CI; never pick an interactive backend
    import matplotlib.pyplot as plt

    names = list(objectives)
    kept, _ = ok_points(outcomes, objectives)
    front_keys = {o.key for o in front}
    all_evals = [e for o in outcomes for e in o.evaluations]
    labels = {n: energy_label(n, all_evals) for n in names}
    values = {n: np.array([o.metric(n) for o in kept], dtype=float) for n in names}
    is_front = np.array([o.key in front_keys for o in kept], dtype=bool)

    def scatter(ax, xn, yn, connect: bool):
        x, y = values[xn], values[yn]
        ax.scatter(x[~is_front], y[~is_front], s=14, c="0.7", label="evaluated")
        order = np.argsort(x[is_front])
        # A line through the front reads as a trade-off curve, true only with 2 objectives;
        # in a projection of 3 or more the front's points need not be ordered.
        ax.plot(x[is_front][order], y[is_front][order], "o-" if connect else "o", c="tab:red", ms=5, lw=1,
                label="front")
        for axis_set, v in ((ax.set_xscale, x), (ax.set_yscale, y)):
            # Energies span orders of magnitude; a log axis keeps the cheap end readable.
            if len(v) and np.all(v > 0) and v.max() / v.min() > 100:
                axis_set("log")

    if len(names) == 2:
        # Accuracy (or the first objective) up the side, the cost along the bottom.
        yn, xn = names[0], names[1]
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        if len(kept):
            scatter(ax, xn, yn, connect=True)
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel(labels[xn], fontsize=8)
        ax.set_ylabel(labels[yn], fontsize=8)
    else:
        k = len(names)
        fig, axes = plt.subplots(k, k, figsize=(3.2 * k, 3.2 * k), squeeze=False)
        for i, yn in enumerate(names):
            for j, xn in enumerate(names):
                ax = axes[i][j]
                if i == j:
                    # The full label (with measured/estimated and the source) once per
                    # objective; the panels carry the short name so labels never collide.
                    ax.axis("off")
                    ax.text(0.5, 0.5, textwrap.fill(labels[xn], 30), ha="center", va="center", fontsize=8)
                    continue
                if len(kept):
                    scatter(ax, xn, yn, connect=False)
                ax.set_xlabel(_AXIS_NAMES.get(xn, xn), fontsize=7)
                ax.set_ylabel(_AXIS_NAMES.get(yn, yn), fontsize=7)
                ax.tick_params(labelsize=7)
    fig.suptitle(title or "front", fontsize=10)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the directory


class RunDirectory:
    """One run's folder. ``create`` starts a new run, ``open`` an existing one (resume)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # -- lifecycle

    @classmethod
    def create(cls, path, problem, command: str, settings: Mapping | None = None) -> RunDirectory:
        """Make the folder, write problem.toml and run.json (status "running")."""
        path = Path(path)
        if (path / RUN_JSON).exists():
            raise UsageError(f"{path} already holds a run; use --resume {path} to continue it, "
                             "or choose another --out")
        if path.exists() and not path.is_dir():
            raise UsageError(f"{path} exists and is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create run directory {path}: {exc}") from None
        rd = cls(path)
        with atomic_open(path / PROBLEM_TOML) as fh:
            fh.write(problem.to_toml())
        write_json_atomic(path / RUN_JSON, {
            "format": RUN_FORMAT_VERSION,
            "problem": problem.name,
            "problem_source": problem.source,
            "fingerprint": problem.fingerprint(),
            "seed": problem.seed,
            "command": command,
            "objectives": dict(problem.objectives),
            "settings": dict(settings or {}),
            "versions": _versions(),
            "machine": _machine(),
            "status": "running",
            "started_at": now_iso(),
        })
        return rd

    @classmethod
    def open(cls, path) -> RunDirectory:
        """An existing run directory; UsageError (exit 2) naming the path if it is not one."""
        path = Path(path)
        if not path.is_dir():
            raise UsageError(f"{path}: not a run directory (no such directory)")
        if not (path / RUN_JSON).is_file():
            raise UsageError(f"{path}: not a run directory (no {RUN_JSON})")
        rd = cls(path)
        rd.read_run_json()  # fail now, with the path, rather than half-way through a resume
        return rd

    # -- run.json

    def read_run_json(self) -> dict:
        try:
            with open(self.path / RUN_JSON, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{self.path}: unreadable {RUN_JSON}: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{self.path}: {RUN_JSON} is not a JSON object")
        return data

    def update_run_json(self, **fields) -> dict:
        """Merge ``fields`` into run.json (atomically) and return the new content."""
        data = self.read_run_json()
        data.update(fields)
        data["updated_at"] = now_iso()
        write_json_atomic(self.path / RUN_JSON, data)
        return data

    # -- results

    def write_results(self, outcomes: Sequence[Outcome], objectives: Mapping[str, str],
                      history: Sequence[Mapping] = (), *, plot: bool = True,
                      constraints: Mapping[str, float] | None = None,
                      spent: Container[tuple[str, int]] | None = None,
                      front: Sequence[Outcome] | None = None, label: str = "") -> list[Outcome]:
        """Rewrite evaluations.csv, front.csv, history.csv and (unless ``plot`` is False)
        front.png from everything the run has so far, and return the front.

        ``outcomes`` are in arrival order; the front holds only outcomes that meet
        ``constraints`` (``front``: the caller's :func:`front_outcomes` of the same
        arguments, not computed again). ``spent`` holds the (key, repeat) pairs whose
        energy this run counts (its journal); without it a row is spent when it was not
        cached. ``label`` (e.g. "quickstart grid") starts the plot's title."""
        rows = [evaluation_row(ev, i, o.cached, None if spent is None else (ev.key, ev.repeat) in spent)
                for i, o in enumerate(outcomes) for ev in o.evaluations]
        genome_cols = [c for c in _union_keys(r for r in rows) if c not in _METRIC_COLUMNS
                       and c not in ("index", "key")]
        _write_csv(self.path / EVALUATIONS_CSV, ["index", "key", *genome_cols, *_METRIC_COLUMNS], rows)

        index_of = {}
        for i, o in enumerate(outcomes):
            index_of.setdefault(o.key, i)
        if front is None:
            front = front_outcomes(outcomes, objectives, constraints)
        # Best first objective first: for accuracy that is the most accurate model.
        frows = [front_row(o, index_of[o.key], objectives)
                 for o in sorted(front, key=lambda o: o.objectives(objectives))]
        _write_csv(self.path / FRONT_CSV, _union_keys(frows) or ["index", "key", *objectives], frows)

        history = list(history)
        _write_csv(self.path / HISTORY_CSV, _union_keys(history) or ["evaluations"], history)
        if plot:
            title = f"{len(front)} on the front of {len(outcomes)} evaluated"
            if label:
                title = f"{label}: {title}"
            plot_front(self.path / FRONT_PNG, outcomes, objectives, front, title=title)
        return list(front)

    def read_evaluations(self) -> list[Evaluation]:
        """Every evaluation, in the order written."""
        return [evaluation_from_row(r) for r in self._rows(EVALUATIONS_CSV)]

    def read_outcomes_and_spent(self) -> tuple[list[Outcome], list[tuple[bool, ...]]]:
        """evaluations.csv, parsed once: the evaluations grouped back into Outcomes (one
        per genome evaluated, in order) and, per outcome and evaluation, whether its
        energy counts as spent by this run (the ``spent`` column; files written before it
        existed fall back to ``not cached``)."""
        groups: dict[int, list[Evaluation]] = {}
        spent: dict[int, list[bool]] = {}
        cached: dict[int, bool] = {}
        for r in self._rows(EVALUATIONS_CSV):
            i = int(r["index"])
            groups.setdefault(i, []).append(evaluation_from_row(r))
            cached[i] = r.get("cached") == "true"
            flag = r.get("spent")
            spent.setdefault(i, []).append((flag == "true") if flag not in (None, "") else r.get("cached") != "true")
        order = sorted(groups)
        outcomes = [Outcome(genome=groups[i][0].genome, evaluations=tuple(groups[i]), cached=cached[i])
                    for i in order]
        return outcomes, [tuple(spent[i]) for i in order]

    def read_outcomes(self) -> list[Outcome]:
        """Evaluations grouped back into Outcomes (one per genome evaluated), in order."""
        return self.read_outcomes_and_spent()[0]

    def read_spent(self) -> list[tuple[bool, ...]]:
        """Per outcome of :meth:`read_outcomes`, per evaluation: does its energy count as
        spent by this run? (See :meth:`read_outcomes_and_spent`.)"""
        return self.read_outcomes_and_spent()[1]

    def read_history(self) -> list[dict]:
        return [{k: _parse_scalar(v) for k, v in r.items()} for r in self._rows(HISTORY_CSV)]

    def read_front(self) -> list[dict]:
        return [{k: _parse_scalar(v) for k, v in r.items()} for r in self._rows(FRONT_CSV)]

    def has_results(self) -> bool:
        return (self.path / EVALUATIONS_CSV).is_file()

    def _rows(self, name: str) -> list[dict[str, str]]:
        path = self.path / name
        if not path.is_file():
            raise UsageError(f"{self.path}: no {name} (the run wrote no results yet)")
        try:
            return _read_csv(path)
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: unreadable: {exc}") from None


# ---------------------------------------------------------------- the journal


class TrainedJournal:
    """``trained.jsonl``: the (genome key, repeat) pairs this run trained, one JSON line
    each, appended and flushed the moment an evaluation finishes.

    The store outlives a crash, so after a ``kill -9`` a resumed run gets the evaluations
    it had finished back as store hits; the journal is how it knows it paid for them
    itself and must count their energy (once). A torn last line (a kill mid-write) is
    ignored. ``durable`` adds an fsync per line (power loss); a flush alone already
    survives the process being killed.
    """

    def __init__(self, run_dir, *, durable: bool = True):
        self.path = Path(run_dir) / TRAINED_JOURNAL
        self.durable = durable
        self.entries: set[tuple[str, int]] = set()
        self._fh = None
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        d = json.loads(line)
                        self.entries.add((str(d["key"]), int(d.get("repeat", 0))))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a kill

    def __contains__(self, item) -> bool:
        return item in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def exists(self) -> bool:
        return self.path.is_file()

    def record(self, ev: Evaluation) -> bool:
        """Journal ``ev`` as trained by this run; False if it already was."""
        item = (ev.key, int(ev.repeat))
        if item in self.entries:
            return False
        if self._fh is None:
            torn = self.path.is_file() and self.path.stat().st_size > 0 and not self.path.read_bytes().endswith(b"\n")
            self._fh = open(self.path, "a", encoding="utf-8")
            if torn:
                self._fh.write("\n")  # end a line cut short by a kill, or the next entry joins it
        self._fh.write(json.dumps({"key": item[0], "repeat": item[1], "energy_j": ev.energy_spent_j},
                                  separators=(",", ":")) + "\n")
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())
        self.entries.add(item)
        return True

    def seed(self, outcomes: Iterable[Outcome]) -> None:
        """Journal the non-cached evaluations of ``outcomes`` (a run written before the
        journal existed is resumed with what it had recorded as trained)."""
        for o in outcomes:
            if not o.cached:
                for ev in o.evaluations:
                    self.record(ev)

    def spent_repeats(self, outcome: Outcome) -> list[bool]:
        """Per evaluation of ``outcome``: journaled (its energy is this run's)?"""
        return [(ev.key, int(ev.repeat)) in self.entries for ev in outcome.evaluations]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
