"""The search loop against a fake evaluator: determinism, budgets, failures, constraints,
checkpoints and resume after an interrupt."""

from __future__ import annotations

import csv
import json
import math
import time

import numpy as np
import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.problem import Problem, SearchConfig
from gi_energy.config.space import (
    Choice,
    Fixed,
    IntRange,
    LayerSpace,
    RealRange,
    SearchSpace,
)
from gi_energy.errors import UsageError
from gi_energy.meters.reading import Reading
from gi_energy.report.progress import Progress, front_table
from gi_energy.search import checkpoint as ckpt_mod
from gi_energy.search.evolve import evolve
from gi_energy.search.loop import reference_point
from gi_energy.tasks.results import Evaluation, Outcome

SPACE = SearchSpace(
    layers={"hidden": LayerSpace(count=IntRange(1, 3), size=IntRange(2, 256, log=True))},
    params={
        "learning_rate": RealRange(1e-4, 1e-1, log=True),
        "activation": Choice(("relu", "tanh")),
        "epochs": IntRange(1, 20),
        "batch_size": Fixed(32),
    },
)


class SimulatedKill(BaseException):
    """Stands in for kill -9: nothing of the loop's own clean-up may depend on it."""


def synthetic_evaluation(genome: Genome, fail_lr_above: float | None = None) -> Evaluation:
    """Deterministic objectives: accuracy rises with width (saturating), inference energy
    rises with width x layers; a learning rate above ``fail_lr_above`` 'diverges'."""
    widths = genome.layers["hidden"]
    lr = genome.values["learning_rate"]
    if fail_lr_above is not None and lr > fail_lr_above:
        return Evaluation(genome=genome, status="nan", reason="loss diverged (synthetic)", wall_time_s=0.0)
    total = float(sum(widths))
    lr_penalty = 0.05 * abs(math.log10(lr) + 2.5)
    accuracy = max(0.0, min(1.0, 1.0 - 1.0 / (1.0 + total / 16.0) - lr_penalty
                            + 0.01 * genome.values["epochs"] / 20))
    energy_j = 1e-3 * total * len(widths) * (1.1 if genome.values["activation"] == "tanh" else 1.0)
    params = sum(a * b for a, b in zip((64,) + widths, widths + (10,)))
    reading = Reading(backend="estimate", scope="process-estimate", measured=False, energy_j=energy_j,
                      duration_s=0.01)
    train = Reading(backend="estimate", scope="process-estimate", measured=False,
                    energy_j=energy_j * genome.values["epochs"], duration_s=0.1)
    return Evaluation(genome=genome, status="ok", val_accuracy=accuracy, test_accuracy=accuracy,
                      train=train, inference=reading, train_time_s=0.1, inference_time_s=0.01,
                      inference_samples=1000, params=params, flops_per_sample=2 * params,
                      wall_time_s=0.0)


class FakeEvaluator:
    """The evaluate() contract with a dict as the store: results in input order, each
    reported through on_result as it finishes, cached when the 'store' had it."""

    measured = False
    meter_description = "synthetic (tests)"

    def __init__(self, store: dict | None = None, *, fail_lr_above=None, kill_after=None, sleep_s=0.0):
        self.store = {} if store is None else store
        self.fail_lr_above = fail_lr_above
        self.kill_after = kill_after
        self.sleep_s = sleep_s
        self.trained = 0

    def evaluate(self, genomes, on_result=None):
        out = []
        for g in genomes:
            ev = self.store.get(g.key)
            cached = ev is not None
            if ev is None:
                if self.kill_after is not None and self.trained >= self.kill_after:
                    raise SimulatedKill()
                if self.sleep_s:
                    time.sleep(self.sleep_s)
                ev = self.synthesise(g)
                self.store[g.key] = ev
                self.trained += 1
            if on_result is not None:
                on_result(ev, cached)
            out.append(Outcome(g, (ev,), cached))
        return out

    def synthesise(self, genome: Genome) -> Evaluation:
        """The evaluation of a genome the 'store' does not hold."""
        return synthetic_evaluation(genome, self.fail_lr_above)


def make_problem(**search) -> Problem:
    defaults = {"population": 8, "generations": 4}
    return Problem(name="fake", space=SPACE, seed=3, search=SearchConfig(**{**defaults, **search}))


def front_signature(result):
    return sorted((o.key, o.objectives(result.problem.objectives)) for o in result.front)


def run(tmp_path, name, problem=None, **kw):
    kw.setdefault("evaluator", FakeEvaluator())
    return evolve(problem or make_problem(), out=tmp_path / name, plot=False, **kw)


def test_same_seed_same_front(tmp_path):
    a = run(tmp_path, "a")
    b = run(tmp_path, "b")
    c = run(tmp_path, "c", seed=99)
    assert front_signature(a) == front_signature(b)
    assert [o.key for o in a.evaluations] == [o.key for o in b.evaluations]
    assert [o.key for o in a.evaluations] != [o.key for o in c.evaluations]
    assert a.front and all(o.ok for o in a.front)


def test_run_directory_and_history(tmp_path):
    r = run(tmp_path, "a", problem=make_problem(generations=3))
    assert r.status == "complete" and r.stop_reason == "generations"
    assert [h["generation"] for h in r.history] == [0, 1, 2, 3]
    assert all(h["front_size"] >= 1 and h["hypervolume"] > 0 for h in r.history)
    # elitism over an archive front: hypervolume never goes down
    hvs = [h["hypervolume"] for h in r.history]
    assert hvs == sorted(hvs)
    info = json.loads((r.run_dir / "run.json").read_text())
    assert info["status"] == "complete"
    assert set(info["hypervolume_reference"]) == set(r.problem.objectives)
    assert info["settings"]["population"] == 8
    assert info["totals"]["evaluations"] == len(r.evaluations)
    for name in ("evaluations.csv", "front.csv", "history.csv", "problem.toml", "checkpoint.json"):
        assert (r.run_dir / name).is_file(), name
    # keys unique: the loop never pays twice for a genome within a run
    keys = [o.key for o in r.evaluations]
    assert len(keys) == len(set(keys))


def test_every_genome_in_space(tmp_path):
    r = run(tmp_path, "a")
    assert all(SPACE.contains(o.genome) for o in r.evaluations)


@pytest.mark.parametrize("generations", [0, 1, 3])
def test_generation_budget(tmp_path, generations):
    r = run(tmp_path, "a", problem=make_problem(generations=generations))
    assert r.history[-1]["generation"] == generations
    assert r.stop_reason == "generations"


@pytest.mark.parametrize("max_evaluations", [5, 8, 13, 20])
def test_evaluation_budget(tmp_path, max_evaluations):
    r = run(tmp_path, "a", problem=make_problem(generations=50, max_evaluations=max_evaluations))
    assert r.totals["evaluations"] == max_evaluations
    assert r.stop_reason == "max_evaluations"


def test_wall_time_budget(tmp_path):
    r = run(tmp_path, "a", problem=make_problem(generations=1000, max_wall_s=0.3),
            evaluator=FakeEvaluator(sleep_s=0.01))
    assert r.stop_reason == "max_wall_s"
    assert r.history[-1]["generation"] < 1000


def test_energy_budget(tmp_path):
    r = run(tmp_path, "a", problem=make_problem(generations=1000, energy_budget_j=100.0))
    assert r.stop_reason == "energy_budget_j"
    assert r.totals["energy_spent_j"] >= 100.0
    # it stopped at the first generation boundary past the budget
    assert r.history[-2]["energy_spent_j"] < 100.0


def test_energy_unknown_is_not_zero(tmp_path):
    class NoEnergy(FakeEvaluator):
        def evaluate(self, genomes, on_result=None):
            outs = super().evaluate(genomes, on_result)
            missing = Reading.missing_reading("rapl", "counter unreadable")
            return [Outcome(o.genome, tuple(
                Evaluation(**{**e.__dict__, "train": missing}) for e in o.evaluations), o.cached)
                for o in outs]

    r = run(tmp_path, "a", problem=make_problem(generations=1), evaluator=NoEnergy())
    info = json.loads((r.run_dir / "run.json").read_text())
    assert info["totals"]["energy_unknown"] == len(r.evaluations)
    assert info["totals"]["energy_complete"] is False


def test_cached_evaluations_spend_no_energy(tmp_path):
    store: dict = {}
    first = run(tmp_path, "a", evaluator=FakeEvaluator(store))
    again = run(tmp_path, "b", evaluator=FakeEvaluator(store))
    assert front_signature(first) == front_signature(again)
    assert again.totals["energy_spent_j"] == 0.0
    assert again.totals["cached"] == again.totals["evaluations"]


def test_failed_evaluations_never_on_the_front(tmp_path):
    r = run(tmp_path, "a", problem=make_problem(generations=5),
            evaluator=FakeEvaluator(fail_lr_above=3e-3))
    assert r.totals["failures"] > 0
    assert r.front and all(o.ok for o in r.front)
    front_csv = (r.run_dir / "front.csv").read_text()
    assert all(o.key not in front_csv for o in r.evaluations if not o.ok)


def test_each_generations_hypervolume_is_that_of_the_front_so_far(tmp_path):
    """The history's hypervolume is kept while the front does not change; it must still be
    the hypervolume of the front of everything evaluated up to that generation."""
    from gi_energy.pareto import front_outcomes
    from gi_energy.report.indicators import hypervolume

    problem = make_problem(generations=12)
    r = run(tmp_path, "a", problem=problem)
    ref = np.asarray(r.reference_point, dtype=float)
    unchanged = 0
    for before, h in zip([None, *r.history], r.history):
        front = front_outcomes(r.evaluations[:h["evaluations"]], problem.objectives, problem.constraints)
        pts = np.array([o.objectives(problem.objectives) for o in front], dtype=float)
        assert h["hypervolume"] == hypervolume(pts, ref)
        unchanged += before is not None and before["hypervolume"] == h["hypervolume"]
    assert 0 < len(r.history) - unchanged  # the front moved in some generations


def test_everything_fails(tmp_path):
    r = run(tmp_path, "a", problem=make_problem(generations=2), evaluator=FakeEvaluator(fail_lr_above=0.0))
    assert r.front == []
    assert r.totals["failures"] == r.totals["evaluations"] > 0
    assert r.history[-1]["hypervolume"] is None


def test_constraints_respected(tmp_path):
    limit = 2000.0
    problem = make_problem(generations=5)
    problem = Problem(**{**problem.__dict__, "constraints": {"params": limit}})
    r = run(tmp_path, "a", problem=problem)
    assert r.front and all(o.metric("params") <= limit for o in r.front)
    assert any(o.metric("params") > limit for o in r.evaluations)
    # front.csv is the same feasible front, not the unconstrained one
    with open(r.run_dir / "front.csv") as fh:
        keys = {row["key"] for row in csv.DictReader(fh)}
    assert keys == {o.key for o in r.front}
    # the search's own front is the one pareto.front_outcomes recomputes from every outcome
    from gi_energy.pareto import front_outcomes

    assert [o.key for o in r.front] == [o.key for o in front_outcomes(r.evaluations, problem.objectives, {"params": limit})]


def test_checkpoint_is_json_and_round_trips(tmp_path):
    r = run(tmp_path, "a", problem=make_problem(generations=2))
    text = (r.run_dir / "checkpoint.json").read_text()
    data = json.loads(text)  # JSON, not pickle
    assert data["generation"] == 2
    ck = ckpt_mod.load_checkpoint(r.run_dir)
    assert [o.key for o in ck.outcomes] == [o.key for o in r.evaluations]
    rng = np.random.default_rng()
    rng.bit_generator.state = ck.rng_state  # a valid generator state
    assert len(ck.population) == 8
    lines = (r.run_dir / ckpt_mod.OUTCOMES_NAME).read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == [o.key for o in r.evaluations]


def test_outcome_lines_beyond_the_checkpoint_are_ignored(tmp_path):
    """A kill between appending outcomes and replacing checkpoint.json leaves extra lines."""
    r = run(tmp_path, "a", problem=make_problem(generations=1))
    ck = ckpt_mod.load_checkpoint(r.run_dir)
    with open(r.run_dir / ckpt_mod.OUTCOMES_NAME, "a") as fh:
        fh.write(json.dumps(ckpt_mod.outcome_to_dict(ck.outcomes[0])) + "\n")
        fh.write('{"half a li')
    again = ckpt_mod.load_checkpoint(r.run_dir)
    assert len(again.outcomes) == len(ck.outcomes)
    writer = ckpt_mod.CheckpointWriter(r.run_dir)
    writer.save(again)  # the first save of a writer rewrites the file without the extras
    assert len((r.run_dir / ckpt_mod.OUTCOMES_NAME).read_text().splitlines()) == len(ck.outcomes)


def test_resume_after_kill_gives_the_same_front(tmp_path):
    problem = make_problem(generations=5)
    whole = run(tmp_path, "whole", problem=problem)

    store: dict = {}
    # 8 initial + 8 per generation: the 'kill' lands in the middle of generation 3
    with pytest.raises(SimulatedKill):
        run(tmp_path, "broken", problem=problem, evaluator=FakeEvaluator(store, kill_after=8 * 3 + 3))
    ck = ckpt_mod.load_checkpoint(tmp_path / "broken")
    assert ck.generation == 2
    evaluator = FakeEvaluator(store)
    resumed = evolve(problem, resume=tmp_path / "broken", evaluator=evaluator, plot=False)
    assert front_signature(resumed) == front_signature(whole)
    assert [o.key for o in resumed.evaluations] == [o.key for o in whole.evaluations]
    # the three evaluations finished before the kill were served by the store, not retrained
    assert evaluator.trained == len(whole.evaluations) - (8 * 3 + 3)
    # ... yet this run paid for them (its journal says so): energy counted once, not lost
    assert resumed.totals["cached"] == 0
    for name in ("evaluations", "energy_spent_j", "energy_unknown", "energy_complete"):
        assert resumed.totals[name] == pytest.approx(whole.totals[name]), name
    info = json.loads((tmp_path / "broken" / "run.json").read_text())
    assert info["totals"]["energy_spent_j"] == pytest.approx(whole.totals["energy_spent_j"])


def test_keyboard_interrupt_saves_and_resumes(tmp_path):
    class CtrlC(FakeEvaluator):
        def evaluate(self, genomes, on_result=None):
            if self.trained >= 12:
                raise KeyboardInterrupt
            return super().evaluate(genomes, on_result)

    problem = make_problem(generations=3)
    whole = run(tmp_path, "whole", problem=problem)
    store: dict = {}
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "int", problem=problem, evaluator=CtrlC(store))
    info = json.loads((tmp_path / "int" / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert ckpt_mod.load_checkpoint(tmp_path / "int").generation == 1
    resumed = evolve(problem, resume=tmp_path / "int", evaluator=FakeEvaluator(store), plot=False)
    assert front_signature(resumed) == front_signature(whole)
    assert json.loads((tmp_path / "int" / "run.json").read_text())["status"] == "complete"


def test_interrupt_before_first_checkpoint_restarts_from_the_seed(tmp_path):
    problem = make_problem(generations=2)
    whole = run(tmp_path, "whole", problem=problem)
    store: dict = {}
    with pytest.raises(SimulatedKill):
        run(tmp_path, "b", problem=problem, evaluator=FakeEvaluator(store, kill_after=4))
    assert ckpt_mod.load_checkpoint(tmp_path / "b") is None
    resumed = evolve(problem, resume=tmp_path / "b", evaluator=FakeEvaluator(store), plot=False)
    assert front_signature(resumed) == front_signature(whole)


def test_resume_refuses_another_problem(tmp_path):
    run(tmp_path, "a", problem=make_problem(generations=1))
    other = make_problem(generations=1)
    other = Problem(**{**other.__dict__, "evaluation": type(other.evaluation)(seed=5)})
    with pytest.raises(UsageError):
        evolve(other, resume=tmp_path / "a", evaluator=FakeEvaluator(), plot=False)


def test_progress_and_front_table(tmp_path, capsys):
    import io

    stream = io.StringIO()
    r = run(tmp_path, "a", problem=make_problem(generations=2), progress=Progress(stream, live=False))
    text = stream.getvalue()
    assert "gen 2/2" in text and "front" in text
    assert "widths" in text and "learning_rate" in text and "batch_size" not in text  # Fixed values left out
    assert "estimate:process-estimate (estimated)" in text
    assert "HV 1.000× init" in text  # relative to the initial population's front
    assert "energy is estimated, not measured (synthetic (tests))" in capsys.readouterr().err
    table = front_table(r.front, r.problem.objectives)
    assert table.splitlines()[0].startswith("accuracy")


def test_front_png_is_written(tmp_path):
    r = evolve(make_problem(generations=1), out=tmp_path / "p", evaluator=FakeEvaluator())
    assert (r.run_dir / "front.png").stat().st_size > 1000


def test_reference_point_is_fixed_by_the_first_points():
    g = SPACE.sample(np.random.default_rng(0))
    outs = [Outcome(g, (synthetic_evaluation(g),))]
    ref = reference_point(outs, {"accuracy": "max", "inference_energy_j_per_1k": "min"})
    assert ref[0] == 0.0 and ref[1] > outs[0].metric("inference_energy_j_per_1k")


def test_package_level_evolve_is_the_function(tmp_path):
    import gi_energy
    import gi_energy.search.evolve  # noqa: F401  (importing the loop module must not shadow the function)

    assert callable(gi_energy.evolve) and gi_energy.evolve is evolve
    r = gi_energy.evolve(make_problem(generations=1), out=tmp_path / "pkg", evaluator=FakeEvaluator(),
                         plot=False)
    assert r.front and r.run_dir == tmp_path / "pkg"


# ---------------------------------------------------------------- resume: what it continues


def _grid_run(tmp_path):
    from gi_energy.config.parse import load_problem
    from gi_energy.runs.replay import SyntheticEvaluator
    from gi_energy.search.grid import run_grid

    problem = load_problem("quickstart")
    run_grid(problem, out=tmp_path / "grid", evaluator=SyntheticEvaluator(problem), echo=lambda s: None,
             warn=lambda s: None)
    return problem, tmp_path / "grid"


def test_resume_refuses_a_grid_run(tmp_path):
    from click.testing import CliRunner

    from gi_energy.cli import main

    problem, grid = _grid_run(tmp_path)
    before = {f.name: f.read_bytes() for f in grid.iterdir() if f.is_file()}
    with pytest.raises(UsageError, match=r"grid: a grid run, not an evolve run"):
        evolve(problem, resume=grid, evaluator=FakeEvaluator(), plot=False)
    result = CliRunner().invoke(main, ["evolve", "quickstart", "--resume", str(grid)])
    assert result.exit_code == 2 and "not an evolve run" in result.output
    assert {f.name: f.read_bytes() for f in grid.iterdir() if f.is_file()} == before


def _killed(tmp_path, problem, name, kill_after=8 * 2 + 3):
    store: dict = {}
    with pytest.raises(SimulatedKill):
        run(tmp_path, name, problem=problem, evaluator=FakeEvaluator(store, kill_after=kill_after))
    return store


def test_resume_keeps_the_recorded_search_settings(tmp_path):
    """Started with population 8 and 4 generations; the problem handed to the resume says
    12 and 5 (as the problem file would): the run goes on as it started."""
    problem = make_problem(population=8, generations=4)
    whole = run(tmp_path, "whole", problem=problem)
    store = _killed(tmp_path, problem, "b")
    other = make_problem(population=12, generations=5, crossover_prob=0.5)
    resumed = evolve(other, resume=tmp_path / "b", evaluator=FakeEvaluator(store), plot=False)
    assert resumed.problem.search == problem.search
    assert front_signature(resumed) == front_signature(whole)
    assert [h["generation"] for h in resumed.history] == [0, 1, 2, 3, 4]


def test_resume_may_extend_the_budget_but_not_change_population_or_seed(tmp_path):
    problem = make_problem(population=8, generations=2)
    store = _killed(tmp_path, problem, "b", kill_after=8 + 3)
    for bad, match in (({"overrides": {"population": 12}}, "population 8"), ({"seed": 4}, "seed 3")):
        with pytest.raises(UsageError, match=match):
            evolve(problem, resume=tmp_path / "b", evaluator=FakeEvaluator(store), plot=False, **bad)
    # the same value as recorded is not a change
    longer = evolve(problem, resume=tmp_path / "b", evaluator=FakeEvaluator(store), plot=False,
                    overrides={"population": 8, "generations": 4}, seed=3)
    assert longer.history[-1]["generation"] == 4 and longer.problem.search.population == 8
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert info["settings"]["generations"] == 4


def test_cli_resume_refuses_another_population(tmp_path):
    from click.testing import CliRunner

    from gi_energy.cli import main

    problem, grid = _grid_run(tmp_path)
    args = ["evolve", "quickstart", "--replay", str(grid), "--population", "6", "--generations", "1"]
    first = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "e")])
    assert first.exit_code == 0, first.output
    result = CliRunner().invoke(main, ["evolve", "quickstart", "--resume", str(tmp_path / "e"),
                                       "--population", "12"])
    assert result.exit_code == 2 and "population 6" in result.output
    # the budget may grow; population and replay come from run.json, not the file's 12
    result = CliRunner().invoke(main, ["evolve", "quickstart", "--resume", str(tmp_path / "e"),
                                       "--generations", "3"])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "e" / "run.json").read_text())
    assert info["settings"]["population"] == 6 and info["settings"]["replayed"] is True
    assert info["generation"] == 3


def test_cli_resume_refuses_a_problem_file_edited_since_naming_the_keys(tmp_path):
    """The README's promise: a resume given a problem file that now says another seed or
    search setting than the run took from it is refused, naming the keys (they used to be
    replaced by the recorded ones in silence). A value the run's own flags set stays theirs."""
    from click.testing import CliRunner

    from gi_energy.cli import main

    _, grid = _grid_run(tmp_path)
    from gi_energy.config.parse import resolve_problem_path

    text = resolve_problem_path("quickstart").read_text()
    (tmp_path / "q.toml").write_text(text)
    first = CliRunner().invoke(main, ["evolve", str(tmp_path / "q.toml"), "--replay", str(grid), "--population", "6",
                                      "--generations", "1", "--out", str(tmp_path / "e")])
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in (tmp_path / "e").iterdir() if p.is_file()}
    edited = text.replace("seed = 1", "seed = 7").replace("[search]", "[search]\ncrossover_prob = 0.5")
    assert edited.count("seed = 7") == 1
    (tmp_path / "q.toml").write_text(edited)
    refused = CliRunner().invoke(main, ["evolve", str(tmp_path / "q.toml"), "--resume", str(tmp_path / "e"),
                                        "--generations", "2"])
    assert refused.exit_code == 2, refused.output
    line = refused.output.strip()
    assert "[problem] seed 7 (the run's: 1)" in line and "[search] crossover_prob 0.5 (the run's: 0.9)" in line
    assert "population" not in line  # 6 came from the run's flag, not the file's 16
    assert {p.name: p.read_bytes() for p in (tmp_path / "e").iterdir() if p.is_file()} == before
    # the file put back goes on, again and again (each resume records its own flags: the
    # run's first --population 6 must not be forgotten), and so does the run's own problem
    (tmp_path / "q.toml").write_text(text)
    for generations in ("2", "3"):
        again = CliRunner().invoke(main, ["evolve", str(tmp_path / "q.toml"), "--resume", str(tmp_path / "e"),
                                          "--generations", generations])
        assert again.exit_code == 0, again.output
    own = CliRunner().invoke(main, ["evolve", "--resume", str(tmp_path / "e"), "--generations", "4"])
    assert own.exit_code == 0, own.output
    assert json.loads((tmp_path / "e" / "run.json").read_text())["settings"]["population"] == 6


class HookedReplay:
    """A replay that looks genomes up one at a time and calls ``before_lookup()`` before
    each (``asked``: the lookups made so far): a subclass stops or snapshots the run there."""

    def __init__(self, problem, grid, after):
        from gi_energy.runs.replay import ReplayEvaluator

        self.inner = ReplayEvaluator(problem, grid)
        self.after = after
        self.asked = 0
        self.replayed, self.measured = True, self.inner.measured
        self.meter_description, self.source = self.inner.meter_description, self.inner.source
        self.restrict = self.inner.restrict

    def before_lookup(self) -> None:
        pass

    def evaluate(self, genomes, on_result=None):
        out = []
        for g in genomes:
            self.before_lookup()
            self.asked += 1
            out += self.inner.evaluate([g], on_result)
        return out


class _ReplayCtrlC(HookedReplay):
    """A replay that is interrupted (Ctrl-C) after ``after`` lookups."""

    def before_lookup(self) -> None:
        if self.asked >= self.after:
            raise KeyboardInterrupt


def test_replay_interrupted_and_resumed_counts_energy_once(tmp_path):
    """Ctrl-C mid-generation, then resume without --replay: the recorded grid run is
    replayed again (nothing trained for real) and every joule is counted exactly once."""
    from gi_energy.runs.replay import ReplayEvaluator

    problem, grid = _grid_run(tmp_path)
    problem = Problem(**{**problem.__dict__, "search": SearchConfig(population=4, generations=3)})
    whole = evolve(problem, out=tmp_path / "whole", evaluator=ReplayEvaluator(problem, grid), plot=False)
    with pytest.raises(KeyboardInterrupt):
        evolve(problem, out=tmp_path / "int", evaluator=_ReplayCtrlC(problem, grid, 4 + 2), plot=False)
    # no evaluator given: evolve rebuilds the replay from run.json (a real one would train)
    resumed = evolve(problem, resume=tmp_path / "int", plot=False)
    assert [o.key for o in resumed.evaluations] == [o.key for o in whole.evaluations]
    assert resumed.totals["evaluations"] == whole.totals["evaluations"]
    assert resumed.totals["energy_spent_j"] == pytest.approx(whole.totals["energy_spent_j"])
    info = json.loads((tmp_path / "int" / "run.json").read_text())
    assert info["settings"]["replayed"] is True
    assert info["totals"]["energy_spent_j"] == pytest.approx(whole.totals["energy_spent_j"])


def test_resume_refuses_a_change_of_evaluator_kind(tmp_path):
    from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator

    problem, grid = _grid_run(tmp_path)
    problem = Problem(**{**problem.__dict__, "search": SearchConfig(population=4, generations=1)})
    with pytest.raises(KeyboardInterrupt):
        evolve(problem, out=tmp_path / "r", evaluator=_ReplayCtrlC(problem, grid, 2), plot=False)
    with pytest.raises(UsageError, match="replayed a grid run; resuming it would train for real"):
        evolve(problem, resume=tmp_path / "r", evaluator=SyntheticEvaluator(problem), plot=False)
    store: dict = {}
    with pytest.raises(SimulatedKill):
        evolve(problem, out=tmp_path / "t", evaluator=FakeEvaluator(store, kill_after=2), plot=False)
    with pytest.raises(UsageError, match="trained for real; resuming it would replay"):
        evolve(problem, resume=tmp_path / "t", evaluator=ReplayEvaluator(problem, grid), plot=False)


# ---------------------------------------------------------------- surrogate pre-screening


def test_surrogate_same_seed_same_front(tmp_path):
    problem = make_problem(generations=5, surrogate="forest")
    a = run(tmp_path, "a", problem=problem)
    b = run(tmp_path, "b", problem=problem)
    plain = run(tmp_path, "plain", problem=make_problem(generations=5))
    assert front_signature(a) == front_signature(b)
    assert [o.key for o in a.evaluations] == [o.key for o in b.evaluations]
    # it screened: the same seed evaluates other children than without the surrogate
    assert [o.key for o in a.evaluations][:8] == [o.key for o in plain.evaluations][:8]
    assert [o.key for o in a.evaluations] != [o.key for o in plain.evaluations]
    assert len(a.evaluations) == len(plain.evaluations) == 8 * 6
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert (info["settings"]["surrogate"], info["settings"]["surrogate_pool"]) == ("forest", 16)



def test_surrogate_screening_honours_constraints(tmp_path):
    limit = 1000.0  # most of the space is infeasible (plain NSGA-II: 28 of 64 children)
    shares = {}
    for surrogate in ("none", "forest"):
        problem = make_problem(generations=8, surrogate=surrogate)
        problem = Problem(**{**problem.__dict__, "constraints": {"params": limit}})
        r = run(tmp_path, surrogate, problem=problem)
        assert r.front and all(o.metric("params") <= limit for o in r.front)
        children = r.evaluations[problem.search.population:]  # after the random start
        shares[surrogate] = sum(o.metric("params") > limit for o in children) / len(children)
    # the screening predicts the constrained metric and skips children predicted infeasible
    assert shares["forest"] < 0.5 * shares["none"]

def test_surrogate_resume_after_kill_gives_the_same_front(tmp_path):
    problem = make_problem(generations=5, surrogate="forest", surrogate_pool=4)
    whole = run(tmp_path, "whole", problem=problem)
    store: dict = {}
    with pytest.raises(SimulatedKill):
        run(tmp_path, "broken", problem=problem, evaluator=FakeEvaluator(store, kill_after=8 * 3 + 3))
    assert ckpt_mod.load_checkpoint(tmp_path / "broken").generation == 2
    # the resume keeps the recorded surrogate settings even if the file now says otherwise
    evaluator = FakeEvaluator(store)
    resumed = evolve(make_problem(generations=5), resume=tmp_path / "broken", evaluator=evaluator, plot=False)
    assert front_signature(resumed) == front_signature(whole)
    assert [o.key for o in resumed.evaluations] == [o.key for o in whole.evaluations]
    assert evaluator.trained == len(whole.evaluations) - (8 * 3 + 3)
