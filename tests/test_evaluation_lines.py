"""evaluations.csv rewritten with the rows of the last write kept (runs.tables.EvaluationLines,
what an evolve run does) is byte for byte the file written from scratch, however the run
changed between the writes: more outcomes, a flag changed, a new column, fewer outcomes."""

from __future__ import annotations

from gi_energy.config.genome import Genome
from gi_energy.config.parse import parse_problem
from gi_energy.meters.reading import Reading
from gi_energy.runs import tables
from gi_energy.runs.rundir import EVALUATIONS_CSV, RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome

OBJECTIVES = {"accuracy": "max", "inference_energy_j_per_1k": "min"}


def _outcome(i: int, *, metrics=None, extra_value=None, cached=False) -> Outcome:
    values = {"lr": 10.0 ** -(1 + i % 4), "opt": "adam" if i % 2 else "sgd, \"quoted\""}
    if extra_value is not None:
        values["momentum"] = extra_value
    g = Genome(layers={"hidden": (8 * (1 + i % 3),) * (1 + i % 2)}, values=values)
    ev = Evaluation(genome=g, status="ok" if i % 5 else "failed", val_accuracy=0.5 + i / 100,
                    train=Reading("estimate", "process-estimate", False, 1.0 + i, 0.1),
                    inference=Reading("estimate", "process-estimate", False, 0.01 * i, 0.01),
                    inference_samples=1000, params=100 + i, metrics=metrics or {})
    return Outcome(genome=g, evaluations=(ev,), cached=cached)


def _pair(tmp_path):
    problem = parse_problem({"problem": {"name": "lines"}, "objectives": OBJECTIVES}, source="<lines>")
    kept = RunDirectory.create(tmp_path / "kept", problem, "evolve", {}, durable=False)
    kept.lines = tables.EvaluationLines()
    fresh = RunDirectory.create(tmp_path / "fresh", problem, "evolve", {}, durable=False)
    return kept, fresh


def _same(kept, fresh, outcomes, spent=None) -> bytes:
    kept.write_results(outcomes, OBJECTIVES, spent=spent)
    fresh.write_results(outcomes, OBJECTIVES, spent=spent)
    text = (kept.path / EVALUATIONS_CSV).read_bytes()
    assert text == (fresh.path / EVALUATIONS_CSV).read_bytes()
    return text


def test_a_rewrite_with_kept_rows_is_the_file_written_from_scratch(tmp_path):
    kept, fresh = _pair(tmp_path)
    run = [_outcome(i) for i in range(6)]
    _same(kept, fresh, run)
    run += [_outcome(i) for i in range(6, 11)]  # the run goes on
    text = _same(kept, fresh, run)
    assert text.count(b"\r\n") == 1 + 11 and b'"sgd, ""quoted"""' in text
    spent = {(o.key, 0) for o in run[:3]}  # the journal now says who paid: a flag of old rows changes
    _same(kept, fresh, run, spent=spent)
    run += [_outcome(11, metrics={"f1": 0.25})]  # a task metric: a new column
    _same(kept, fresh, run, spent=spent)
    run += [_outcome(12, extra_value=0.9)]  # a new genome column
    _same(kept, fresh, run, spent=spent)
    run = run[:4]  # a resume from an older checkpoint
    _same(kept, fresh, run)
    run = [_outcome(0, cached=True)] + run[1:]  # another object for row 0
    text = _same(kept, fresh, run)
    assert text.count(b"\r\n") == 1 + 4


def test_kept_rows_are_not_rendered_again(tmp_path, monkeypatch):
    kept, _ = _pair(tmp_path)
    run = [_outcome(i) for i in range(5)]
    kept.write_results(run, OBJECTIVES)
    rendered = []
    real = tables.evaluation_row
    monkeypatch.setattr(tables, "evaluation_row", lambda ev, *a: rendered.append(ev.key) or real(ev, *a))
    run += [_outcome(5), _outcome(6)]
    kept.write_results(run, OBJECTIVES)
    assert rendered == [run[5].key, run[6].key]
