"""``gi-energy evolve`` and ``gi_energy.evolve(...)``: an NSGA-II run set up, new or
resumed, with its budgets, run directory, store and evaluator; the run itself is driven
by :mod:`.session` (checkpoints, results, terminal lines) over the generations of
:class:`gi_energy.search.loop.SearchLoop`.

Every draw comes from one ``np.random.Generator`` seeded from the problem (or ``seed``).
After every generation the state is checkpointed as JSON; after a crash or Ctrl-C,
``resume`` restores the generator from the last checkpoint and replays the unfinished
generation, and the evaluation store serves the evaluations that had finished, so the
resumed run reaches the same front as an unbroken one. The run's journal (trained.jsonl,
one line per evaluation it trained, written as each finishes, inside the store's write of
it when there is a store: runs.journal.JournaledWrites) makes those store hits count as this
run's energy, once, so the totals match an unbroken run's too. A resume
keeps the seed, search settings and evaluator kind recorded in run.json, runs on the store
run.json records from any working directory, holds the run directory's lock, and refuses
a problem whose run identity (:mod:`gi_energy.config.identity`) differs, naming the keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gi_energy.config.identity import run_identity
from gi_energy.config.parse import load_problem, seed_and_search
from gi_energy.config.problem import Problem, SearchConfig
from gi_energy.errors import UsageError
from gi_energy.evaluation.store import Store, default_store_path, resume_store_path
from gi_energy.problems.arrays import with_arrays
from gi_energy.report.progress import Progress, progress_for
from gi_energy.report.run import RunResult
from gi_energy.runs.lock import RunLock, claim_new, create_locked
from gi_energy.runs.rundir import PROBLEM_TOML, check_identity, evaluator_settings, run_kind
from gi_energy.tasks.loader import bind

from .checkpoint import load_checkpoint
from .loop import EvaluatorLike
from .session import EvolveResult, already_complete, run_in
from .termination import AnyOf, from_config

# ---------------------------------------------------------------- the library API


def _resolve_problem(problem: Problem | str | Path, seed: int | None, workers: int | None,
                     dataset=None) -> Problem:
    if not isinstance(problem, Problem):
        problem = load_problem(problem)
    if dataset is not None:
        problem = with_arrays(problem, dataset, Path(problem.output.directory) / "datasets")
    if seed is not None:
        # Not with_overrides: it skips falsy values, and seed 0 is a seed.
        problem = dataclasses.replace(problem, seed=int(seed))
    if workers is not None:
        problem = problem.with_overrides(evaluation={"workers": int(workers)})
    return bind(problem)


def _default_evaluator(problem: Problem, store_path: Path):
    """The real Evaluator over the shared store (the store creates its folder)."""
    from gi_energy.evaluation.evaluator import Evaluator
    from gi_energy.evaluation.runners import check_data
    from gi_energy.evaluation.store import Store

    check_data(problem)  # bad data is bad input: before the store, a run directory or a worker
    store = Store(store_path)
    try:
        evaluator = Evaluator(problem, store, workers=problem.evaluation.workers)
    except BaseException:
        store.close()
        raise
    return evaluator, store


# Budgets a resume may extend (or shorten); every other search setting stays as recorded.
RESUME_BUDGETS = ("generations", "max_evaluations", "max_wall_s", "energy_budget_j")


def recorded_replay_source(settings: Mapping) -> str | None:
    """The grid run a recorded evolve run replayed (None: it trained for real)."""
    source = settings.get("replay") or (settings.get("flags") or {}).get("replay")
    return None if not source else str(source)


def _arg(name: str, value, cli: bool) -> str:
    """How the caller spelled a setting: ``--max-evaluations 5`` on the command line,
    ``max_evaluations=5`` in Python."""
    return f"--{name.replace('_', '-')} {value}" if cli else f"{name}={value!r}"


def _resume_problem(problem: Problem, info: Mapping, recorded: Mapping, seed: int | None,
                    overrides: Mapping, path: Path, cli: bool = False) -> Problem:
    """``problem`` with the seed and search settings the run recorded, then the budget
    overrides; a different seed, population or other setting asked for is refused (the
    message names the argument as the caller spelled it: ``cli``, a flag)."""
    rec_seed = info.get("seed", recorded.get("seed"))
    if cli:
        _check_file_unchanged(problem, seed, path)
    if rec_seed is not None:
        if seed is not None and int(seed) != int(rec_seed):
            raise UsageError(f"{path} ran with seed {rec_seed}; a resumed run keeps its seed "
                             f"(drop {_arg('seed', seed, cli)}, or start a new run)")
        problem = dataclasses.replace(problem, seed=int(rec_seed))
    names = [f.name for f in dataclasses.fields(SearchConfig)]
    kept = {k: recorded[k] for k in names if k in recorded}
    for k, v in overrides.items():
        if k not in RESUME_BUDGETS and k in kept and kept[k] != v:
            raise UsageError(f"{path} ran with {k} {kept[k]}; a resumed run keeps it (asked for {v}): "
                             f"drop {_arg(k, v, cli)}, or start a new run")
        kept[k] = v
    return dataclasses.replace(problem, search=dataclasses.replace(problem.search, **kept))


def _check_file_unchanged(problem: Problem, seed: int | None, path: Path) -> None:
    """A command-line resume given a problem file: refuse it when the file now says
    another seed or search setting (budgets aside) than the run's copy of its problem
    (problem.toml, the file as the run started), naming the keys. What the run's flags set
    is the flags' in both, so only an edit of the file shows."""
    copy = path / PROBLEM_TOML
    if not problem.text or not copy.is_file():
        return  # a Problem built in code, or a run from before the copy: nothing to compare
    now_seed, now = seed_and_search(problem.text, problem.source)
    then_seed, then = seed_and_search(copy.read_text(encoding="utf-8"), str(copy))
    changed = [] if seed is not None or now_seed == then_seed else [("[problem] seed", then_seed, now_seed)]
    changed += [(f"[search] {f.name}", getattr(then, f.name), getattr(now, f.name))
                for f in dataclasses.fields(SearchConfig)
                if f.name not in RESUME_BUDGETS and getattr(then, f.name) != getattr(now, f.name)]
    if changed:
        said = "; ".join(f"{key} {new!r} (the run's: {old!r})" for key, old, new in changed)
        raise UsageError(f"{problem.source} differs from the problem {path} ran: {said}. A resumed run keeps "
                         f"them: put them back, resume with the run's own problem (gi-energy evolve --resume "
                         f"{path}), or start a new run")


def _searched(problem: Problem, evaluator) -> Problem:
    """``problem`` as the search runs it: a replay can only answer points of its grid, so
    the search explores the grid's restricted space."""
    restrict = getattr(evaluator, "restrict", None)
    return dataclasses.replace(problem, space=restrict(problem.space)) if callable(restrict) else problem


def _replay_source(evaluator) -> str | None:
    """The grid run a replay evaluator reads, as an absolute path (a resume may run elsewhere)."""
    source = getattr(evaluator, "source", None)
    if not getattr(evaluator, "replayed", False) or source is None:
        return None
    return str(Path(source).resolve())


def _settings(problem: Problem, termination: AnyOf, store_path: Path | None, evaluator,
              extra: Mapping | None) -> dict:
    s = problem.search
    return {
        "population": s.population,
        "generations": s.generations,
        "max_evaluations": s.max_evaluations,
        "max_wall_s": s.max_wall_s,
        "energy_budget_j": s.energy_budget_j,
        "crossover_prob": s.crossover_prob,
        "mutation_prob": s.mutation_prob,
        "max_remutations": s.max_remutations,
        "surrogate": s.surrogate,
        "surrogate_pool": s.surrogate_pool,
        "budgets": termination.describe(),
        "workers": problem.evaluation.workers,
        "repeats": problem.evaluation.repeats,
        "store": None if store_path is None else str(store_path),
        **evaluator_settings(evaluator),
        "replay": _replay_source(evaluator),
        "seed": problem.seed,
        "constraints": dict(problem.constraints),
        **dict(extra or {}),
    }


def evolve(
    problem: Problem | str | Path | None,
    *,
    out: str | Path | None = None,
    store: str | Path | None = None,
    seed: int | None = None,
    workers: int | None = None,
    resume: str | Path | None = None,
    evaluator: EvaluatorLike | None = None,
    progress: Progress | bool = False,
    plot: bool = True,
    settings: Mapping | None = None,
    overrides: Mapping | None = None,
    dataset=None,
) -> EvolveResult:
    """Run NSGA-II on ``problem`` (a Problem, a TOML path or a bundled name; None with
    ``resume``: the run's own problem, as ``gi-energy evolve --resume RUN_DIR``).

    ``out`` is the run directory (default ``<[output] directory>/<name>-evolve-<time>``);
    ``resume`` continues the evolve run in that directory from its last checkpoint with
    the seed, search settings and evaluator kind (replay source) recorded in its run.json,
    whatever ``problem`` says. ``overrides`` are explicit [search] settings (the command
    line's flags): on a new run they replace the problem's; on a resume the budgets
    (generations, max_evaluations, max_wall_s, energy_budget_j) may extend the run, any
    other setting that differs from the recorded one is a UsageError, as is a ``seed``
    other than the recorded one. Resuming a complete run whose budgets leave no room
    returns its result as it stands, saying so, and writes nothing. ``evaluator`` replaces the real one (tests, replay of a
    grid); it is not closed here. ``progress=True`` prints progress and the front to stdout
    (a :class:`Progress` prints where it says); silent by default, when the warning that
    energies are estimated is a Python warning.

    ``dataset``: numpy arrays of your own, ``(x, y)`` or a dict of ``x_train, y_train,
    x_val, y_val, x_test, y_test``, in place of the problem's [dataset] source (kept as an
    .npz file under the problem's output directory, named by the arrays' digest).

    Raises KeyboardInterrupt after saving the checkpoint and marking run.json
    "interrupted"; any other error marks it "failed" and propagates.
    """
    from gi_energy.runs.files import default_run_dir
    from gi_energy.runs.rundir import RunDirectory

    if problem is None:
        if resume is None:
            raise UsageError("evolve(None): give a problem, or resume=RUN_DIR to go on with the run's own")
        problem = resumed_problem(resume, "evolve")
    problem = _resolve_problem(problem, seed, workers, dataset)
    if evaluator is None and problem.table is not None:
        from gi_energy.evaluation.table import TableEvaluator

        evaluator = TableEvaluator(problem)  # a [table] problem looks results up; nothing is trained
    progress = progress_for(progress)
    cli = "flags" in (settings or {})  # cli_evolve: messages name its flags, not arguments
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(SearchConfig)})
    if unknown:
        raise UsageError(f"unknown search setting(s) {', '.join(unknown)}")
    checkpoint = None
    recorded_replay: str | None = None
    if resume is not None:
        rd = RunDirectory.open(resume)
        info = rd.read_run_json()
        if info.get("command") != "evolve":
            raise UsageError(f"{rd.path}: {run_kind(info.get('command'))}, not an evolve run; evolve --resume only "
                             "continues evolve runs (a grid run resumes with gi-energy grid --resume)")
        if info.get("fingerprint") not in (None, problem.fingerprint()):
            change = problem.fingerprint_change(info.get("fingerprint_parts"))
            raise UsageError(f"{rd.path} ran a different problem (fingerprint {info.get('fingerprint')}, "
                             f"this one {problem.fingerprint()}{': ' + change if change else ''}); "
                             "its results would not be what this problem gives, so it cannot go on with it")
        recorded = info.get("settings") or {}
        problem = _resume_problem(problem, info, recorded, seed, overrides, rd.path, cli)
        recorded_replay = recorded_replay_source(recorded)
        checkpoint = load_checkpoint(rd.path)
        if checkpoint is not None and checkpoint.seed != problem.seed:
            raise UsageError(f"{rd.path} ran with seed {checkpoint.seed}, not {problem.seed}")
        was_replay = bool(recorded.get("replayed")) or recorded_replay is not None
        if evaluator is None and was_replay:
            if recorded_replay is None:
                raise UsageError(f"{rd.path}: a replay run whose run.json does not name its grid run; "
                                 "it cannot be resumed")
            from gi_energy.runs.replay import ReplayEvaluator

            evaluator = ReplayEvaluator(problem, Path(recorded_replay))
        is_replay = bool(getattr(evaluator, "replayed", False))
        if is_replay != was_replay:
            then, now = ("replayed a grid run", "train for real") if was_replay else \
                ("trained for real", "replay a grid run")
            raise UsageError(f"{rd.path}: the run {then}; resuming it would {now} and mix the two in one run")
        source = getattr(evaluator, "source", None)
        if is_replay and recorded_replay is not None and source is not None \
                and Path(source).resolve() != Path(recorded_replay).resolve():
            raise UsageError(f"{rd.path}: the run replays {recorded_replay}, not {source}")
    elif overrides:
        problem = dataclasses.replace(problem, search=dataclasses.replace(problem.search, **overrides))

    owned: list[Any] = []
    if resume is not None:
        # The problem as it will run (a replay searches its grid's part of the space)
        # against the one the run holds; then, before the first write, the lock: a second
        # resume of the folder stops here, having touched nothing.
        searched = _searched(problem, evaluator)
        check_identity(rd.path, info, run_identity(searched, "evolve"))
        lock = RunLock(rd.path)
        lock.acquire_existing()  # not yet named in the lock file: a run already complete changes nothing
        try:
            done = already_complete(searched, from_config(problem.search), rd, checkpoint, progress,
                                    _raise_hint(cli))
        except BaseException:
            lock.release()
            raise
        if done is not None:
            lock.release()
            return done
        owned.append(lock.acquire())
    else:
        path = Path(out) if out is not None else default_run_dir(problem, "evolve", Path(problem.output.directory))
        owned.append(claim_new(path, cli))
    store_path: Path | None = None
    if evaluator is None:
        try:
            # A resume uses the store its run.json records (absolute), wherever it starts from.
            store_path = default_store_path(problem, store) if resume is None else \
                resume_store_path(problem, store, info, rd.path)
            evaluator, store_obj = _default_evaluator(problem, store_path)
        except BaseException:
            for thing in owned:
                thing.close()
            raise
        owned += [evaluator, store_obj]
    problem = _searched(problem, evaluator)

    try:
        termination = from_config(problem.search)
        run_settings = _settings(problem, termination, store_path, evaluator, settings)
        if resume is not None:
            rd.update_run_json(status="running", resumed_from_generation=(
                None if checkpoint is None else checkpoint.generation), settings=run_settings)
        else:
            # A replay's files are flushed, not fsynced: its every write can be redone free.
            rd, _ = create_locked(path, problem, "evolve", run_settings, lock=owned[0],
                                  durable=not getattr(evaluator, "replayed", False),
                                  fields={"identity": run_identity(problem, "evolve")})
        return run_in(problem, evaluator, termination, rd, checkpoint, progress, plot, store=_store_of(evaluator))
    finally:
        for thing in reversed(owned):  # the run directory's lock last, once the workers are gone
            thing.close()


def _store_of(evaluator) -> Store | None:
    """The evaluation store ``evaluator`` trains into (the real Evaluator's), or None."""
    store = getattr(evaluator, "store", None)
    return store if isinstance(store, Store) else None


def _raise_hint(cli: bool) -> str:
    """How a completed run's budget is raised, as the caller spells it."""
    if cli:
        return "raise a budget: --generations N or --max-evaluations N with --resume"
    return "raise a budget: overrides={'generations': N} (or max_evaluations, max_wall_s, energy_budget_j)"


# ---------------------------------------------------------------- the command line


def cli_evolve(*, problem, out=None, store=None, seed=None, workers=None, population=None, generations=None,
               max_evaluations=None, resume=None, replay=None) -> EvolveResult:
    """``gi-energy evolve``: flags override the problem file; run.json records what ran.

    With ``--resume`` the run's recorded settings, seed and replay source win over the
    file; only budget flags may change them (see :func:`evolve`)."""
    if out is not None and resume is not None:  # a resume continues in RUN_DIR itself: --out was ignored
        raise UsageError("give --out or --resume, not both (--resume continues in RUN_DIR itself)")
    if problem is None:
        problem = resumed_problem(resume, "evolve")
    p = problem if isinstance(problem, Problem) else load_problem(problem)
    overrides = {k: v for k, v in (("population", population), ("generations", generations),
                                   ("max_evaluations", max_evaluations)) if v is not None}
    evaluator = None
    closing = []
    if resume is not None:
        replay_dir = _resume_replay_dir(resume, replay)
        if replay_dir is not None and p.table is None and not Path(replay_dir).is_dir():
            raise UsageError(f"{resume} searched the table {replay_dir}, which {p.source} does not name; "
                             f"resume it with its own problem: gi-energy evolve --resume {resume}")
    else:
        replay_dir = replay if replay is not None else p.evaluation.replay
    if p.table is not None and replay is not None:
        raise UsageError(f"{p.source}: a [table] problem looks its results up in {p.table.path}; drop --replay")
    if replay_dir is not None and p.table is None:  # a [table] run replays its table (evolve() opens it)
        from gi_energy.runs.replay import ReplayEvaluator

        evaluator = ReplayEvaluator(p, Path(replay_dir))
        if hasattr(evaluator, "close"):
            closing.append(evaluator)
    flags = {"seed": seed, "workers": workers, "population": population, "generations": generations,
             "max_evaluations": max_evaluations, "store": store, "out": out, "resume": resume,
             "replay": None if replay_dir is None else str(replay_dir)}
    try:
        return evolve(p, out=out, store=store, seed=seed, workers=workers, resume=resume, evaluator=evaluator,
                      progress=Progress(), settings={"flags": {k: v for k, v in flags.items() if v is not None}},
                      overrides=overrides)
    finally:
        for thing in closing:
            thing.close()


def resumed_problem(resume, command: str) -> Problem:
    """``--resume RUN_DIR`` without PROBLEM: the problem the run holds (UsageError when
    RUN_DIR is not a ``command`` run)."""
    if resume is None:
        raise UsageError("missing PROBLEM (or --resume RUN_DIR, which takes the run's own problem)")
    run = RunResult(resume)
    if run.command != command:
        raise UsageError(f"{resume}: {run_kind(run.command)}, not {run_kind(command)}; resume it with "
                         f"gi-energy {run.command} --resume {resume}")
    return run.problem


def _resume_replay_dir(resume, replay) -> str | None:
    """The replay source of the run being resumed: the recorded one (the problem file's
    ``replay`` is ignored); an explicit ``--replay`` must name the same grid run."""
    from gi_energy.runs.rundir import RunDirectory

    recorded = recorded_replay_source(RunDirectory.open(resume).read_run_json().get("settings") or {})
    if replay is not None:
        if recorded is None:
            raise UsageError(f"{resume}: the run trained for real; it cannot be resumed with --replay {replay}")
        if Path(replay).resolve() != Path(recorded).resolve():
            raise UsageError(f"{resume}: the run replays {recorded}, not {replay}")
    return recorded
