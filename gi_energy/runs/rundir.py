"""The run directory: what a grid or evolve run leaves behind, and how to read it back.

    run.json          metadata (problem, fingerprint, identity, seed, command, settings with
                      the store's absolute path, versions, machine, status, totals),
                      rewritten atomically on every update
    problem.toml      the exact problem that ran
    evaluations.csv   one row per evaluation (every repeat), in the order they arrived;
                      rewritten as a run goes (per grid batch, per evolve generation while
                      cheap: runs/pacing.py), so a killed run can still be compared
    front.csv         the non-dominated ok outcomes (median objectives over repeats)
    history.csv       one row per generation (evolve) or batch (grid)
    front.png         the front, plotted
    trained.jsonl     the journal: one line per (genome, repeat) this run trained, appended
                      and flushed as each evaluation finishes, so a resume after a crash
                      knows which store hits this run itself paid for
    run.lock          locked (flock) by the one process working in the folder; a second
                      is refused (runs/lock.py)

Every file is written to a temporary name and moved into place, so a run killed while
writing never leaves half a file. A missing energy reading is an empty cell, never 0.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.metadata
import json
import os
import platform
import socket
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from pathlib import Path

from gi_energy.errors import UsageError
from gi_energy.pareto import front_outcomes
from gi_energy.tasks.results import Evaluation, Outcome

from .files import atomic_open, now_iso, write_json_atomic
from .tables import (
    METRIC_COLUMNS,
    EvaluationLines,
    evaluation_from_row,
    front_row,
    parse_scalar,
    read_csv,
    task_metric_columns,
    union_keys,
    write_csv,
    write_evaluations,
)

RUN_FORMAT_VERSION = 1

RUN_JSON = "run.json"
PROBLEM_TOML = "problem.toml"
EVALUATIONS_CSV = "evaluations.csv"
FRONT_CSV = "front.csv"
HISTORY_CSV = "history.csv"
FRONT_PNG = "front.png"


def evaluator_settings(evaluator) -> Mapping[str, object]:
    """What a run directory records about the evaluator that produced its numbers."""
    return {"evaluator": type(evaluator).__name__, "replayed": bool(getattr(evaluator, "replayed", False)),
            "measured": getattr(evaluator, "measured", None),
            "meter": getattr(evaluator, "meter_description", None)}


def _absolute(source: str) -> str:
    """A problem file's path made absolute (a resume or a reader elsewhere finds it, and
    the folder its relative paths start from); anything else as it is."""
    path = Path(source)
    return str(path.resolve()) if path.is_file() else source


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    # Package metadata, not imports: importing torch just to name its version costs seconds.
    for dist in ("gi-energy", "torch", "numpy", "deap", "moocore"):
        try:
            out[dist] = _installed_version(importlib.metadata.distribution(dist))
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _installed_version(dist: importlib.metadata.Distribution) -> str | None:
    """``dist.version``, read from the metadata's ``Version:`` header line: the version
    property parses the whole file as an e-mail message, most of the cost of a
    thousands-of-evaluations-a-second replay's start."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.split("\n\n", 1)[0].splitlines():  # the headers end at the first blank line
        if line.startswith("Version:"):
            return line[len("Version:"):].lstrip(" \t")  # as the e-mail parser reads a header
    return dist.version


def _machine() -> dict:
    cpu = platform.processor() or None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"hostname": socket.gethostname(), "cpu_model": cpu, "cores": os.cpu_count(),
            "platform": platform.platform()}


def run_kind(command) -> str:
    """A run's command in words: "an evolve run", "a grid run" ("a run of no recorded
    command" where run.json names none)."""
    if not command:
        return "a run of no recorded command"
    return f"{'an' if str(command)[0] in 'aeiou' else 'a'} {command} run"


def check_identity(run_dir, info: Mapping, current: Mapping) -> None:
    """Refuse to resume a run with a problem whose run identity
    (:func:`gi_energy.config.identity.run_identity`) differs from the one its run.json
    records, naming the keys that differ. A run recorded before identities were is only
    held to its fingerprint (checked by the caller)."""
    from gi_energy.config.identity import describe_keys, identity_differences

    recorded = info.get("identity")
    if not isinstance(recorded, Mapping):
        return
    keys = identity_differences(recorded, current)
    if keys:
        raise UsageError(f"{run_dir}: the problem differs from the one this run holds in {describe_keys(keys)}; "
                         f"a resume runs the run's own problem: resume with {Path(run_dir) / PROBLEM_TOML}, "
                         "or start a new run")


# ---------------------------------------------------------------- the directory


class RunDirectory:
    """One run's folder. ``create`` starts a new run, ``open`` an existing one (resume)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # False for a replay: run.json's rewrites skip the fsync (see runs.files.atomic_open).
        self.durable = True
        # evaluations.csv's rows as last written, kept by a run that rewrites it as it goes
        # (evolve): a rewrite then renders only the new rows. None: render every row.
        self.lines: EvaluationLines | None = None

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # -- lifecycle

    @classmethod
    def create(cls, path, problem, command: str, settings: Mapping | None = None, *, durable: bool = True,
               fields: Mapping | None = None) -> RunDirectory:
        """Make the folder, write problem.toml and run.json (status "running", plus
        ``fields``). ``durable=False`` (a replay, whose every write can be redone free)
        leaves out the fsyncs, here and in the run.json updates that follow."""
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
        rd.durable = durable
        with atomic_open(path / PROBLEM_TOML, durable=durable) as fh:
            fh.write(problem.to_toml())
        write_json_atomic(path / RUN_JSON, {
            "format": RUN_FORMAT_VERSION,
            "problem": problem.name,
            "problem_source": _absolute(problem.source),
            "fingerprint": problem.fingerprint(),
            "fingerprint_parts": problem.fingerprint_parts(),
            "seed": problem.seed,
            "command": command,
            "objectives": dict(problem.objectives),
            "settings": dict(settings or {}),
            "versions": _versions(),
            "machine": _machine(),
            "status": "running",
            "started_at": now_iso(),
            **dict(fields or {}),
        }, durable=durable)
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
        write_json_atomic(self.path / RUN_JSON, data, durable=self.durable)
        return data

    # -- results

    def write_results(self, outcomes: Sequence[Outcome], objectives: Mapping[str, str],
                      history: Sequence[Mapping] = (), *,
                      constraints: Mapping[str, float] | None = None,
                      spent: Container[tuple[str, int]] | None = None,
                      front: Sequence[Outcome] | None = None) -> list[Outcome]:
        """Rewrite evaluations.csv, front.csv and history.csv from everything the run has
        so far, and return the front. (front.png is drawn by the report stage:
        :func:`gi_energy.report.plots.write_front_png`.)

        ``outcomes`` are in arrival order; the front holds only outcomes that meet
        ``constraints`` (``front``: the caller's :func:`front_outcomes` of the same
        arguments, not computed again). ``spent`` holds the (key, repeat) pairs whose
        energy this run counts (its journal); without it a row is spent when it was not
        cached."""
        entries = [(ev, i, o.cached, None if spent is None else (ev.key, ev.repeat) in spent)
                   for i, o in enumerate(outcomes) for ev in o.evaluations]
        own = [m for m in task_metric_columns(ev for o in outcomes for ev in o.evaluations)
               if m not in METRIC_COLUMNS]

        def columns_of(keys: list[str]) -> list[str]:
            genome_cols = [c for c in keys if c not in METRIC_COLUMNS and c not in ("index", "key")
                           and c not in own]
            # The task's own metrics beside the built-in ones, after validation accuracy.
            at = METRIC_COLUMNS.index("test_accuracy") + 1
            return ["index", "key", *genome_cols, *METRIC_COLUMNS[:at], *own, *METRIC_COLUMNS[at:]]

        write_evaluations(self.path / EVALUATIONS_CSV, entries, columns_of, self.lines, durable=self.durable)

        index_of = {}
        for i, o in enumerate(outcomes):
            index_of.setdefault(o.key, i)
        if front is None:
            front = front_outcomes(outcomes, objectives, constraints)
        # Best first objective first: for accuracy that is the most accurate model.
        frows = [front_row(o, index_of[o.key], objectives)
                 for o in sorted(front, key=lambda o: o.objectives(objectives))]
        write_csv(self.path / FRONT_CSV, union_keys(frows) or ["index", "key", *objectives], frows,
                  durable=self.durable)

        history = list(history)
        write_csv(self.path / HISTORY_CSV, union_keys(history) or ["evaluations"], history, durable=self.durable)
        return list(front)

    def read_evaluations(self) -> list[Evaluation]:
        """Every evaluation, in the order written."""
        return [evaluation_from_row(r) for r in self._rows(EVALUATIONS_CSV)]

    def read_outcomes_and_spent(self) -> tuple[list[Outcome], list[tuple[bool, ...]]]:
        """evaluations.csv, parsed once: the evaluations grouped back into Outcomes (one
        per genome evaluated, in order) and, per outcome and evaluation, whether its
        energy counts as spent by this run (the ``spent`` column; files written before it
        existed fall back to ``not cached``)."""
        groups = _by_index(self._rows(EVALUATIONS_CSV))
        order = sorted(groups)
        return [_outcome_of(groups[i]) for i in order], [tuple(_spent(r) for r in groups[i]) for i in order]

    def read_outcomes_at(self, indexes: Collection[int]) -> dict[int, Outcome]:
        """{index: outcome} of the outcomes with these ``index`` values in evaluations.csv,
        each as :meth:`read_outcomes` builds it, built from its own rows alone: a reader
        that needs a few outcomes of a large run (a report's front and the points it
        draws) does not build an Evaluation for every row."""
        wanted = set(indexes)
        path = self.path / EVALUATIONS_CSV
        if not path.is_file():
            raise UsageError(f"{self.path}: no {EVALUATIONS_CSV} (the run wrote no results yet)")
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = csv.reader(fh)
                header = next(rows, [])
                at = header.index("index")
                # a dict (as csv.DictReader makes it) only for the rows wanted
                groups = _by_index(dict(zip(header, cells)) for cells in rows if int(cells[at]) in wanted)
        except (OSError, csv.Error, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"{path}: unreadable: {exc}") from None
        return {i: _outcome_of(r) for i, r in groups.items()}

    def read_outcomes(self) -> list[Outcome]:
        """Evaluations grouped back into Outcomes (one per genome evaluated), in order."""
        return self.read_outcomes_and_spent()[0]

    def read_spent(self) -> list[tuple[bool, ...]]:
        """Per outcome of :meth:`read_outcomes`, per evaluation: does its energy count as
        spent by this run? (See :meth:`read_outcomes_and_spent`.)"""
        return self.read_outcomes_and_spent()[1]

    def read_history(self) -> list[dict]:
        return [{k: parse_scalar(v) for k, v in r.items()} for r in self._rows(HISTORY_CSV)]

    def read_front(self) -> list[dict]:
        return [{k: parse_scalar(v) for k, v in r.items()} for r in self._rows(FRONT_CSV)]

    def has_results(self) -> bool:
        return (self.path / EVALUATIONS_CSV).is_file()

    def _rows(self, name: str) -> list[dict[str, str]]:
        path = self.path / name
        if not path.is_file():
            raise UsageError(f"{self.path}: no {name} (the run wrote no results yet)")
        try:
            return read_csv(path)
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: unreadable: {exc}") from None


def _by_index(rows: Iterable[Mapping[str, str]]) -> dict[int, list[Mapping[str, str]]]:
    """evaluations.csv rows grouped by their outcome's ``index``, each group in file order."""
    groups: dict[int, list[Mapping[str, str]]] = {}
    for r in rows:
        groups.setdefault(int(r["index"]), []).append(r)
    return groups


def _outcome_of(rows: Sequence[Mapping[str, str]]) -> Outcome:
    """One outcome's rows (in file order) as the Outcome they were written from: cached as
    its last row says."""
    evaluations = tuple(evaluation_from_row(r) for r in rows)
    return Outcome(genome=evaluations[0].genome, evaluations=evaluations, cached=rows[-1].get("cached") == "true")


def _spent(row: Mapping[str, str]) -> bool:
    """Does a row's energy count as spent by the run (the ``spent`` column; files written
    before it existed: ``not cached``)?"""
    flag = row.get("spent")
    return (flag == "true") if flag not in (None, "") else row.get("cached") != "true"


# ---------------------------------------------------------------- the journal
